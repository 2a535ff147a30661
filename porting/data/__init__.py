"""Data sets: from a folder of images to a shuffled, stratified RecordIO data set and its manifest.

``python -m porting.data`` is the command (``porting.cli.data``); ``build.build`` is the
whole of it. Modules: ``sources`` (folder layouts -> labelled candidates), ``splits``
(dedupe, stratified split), ``imageproc`` (one image from bytes to network input, shared
with prediction), ``build_config`` (the arguments, the result and the plan of a build),
``build`` (the order of work: checks, up to date, dedupe, split, commit), ``packing``
(probe, pack records, mean, manifest record), ``output_dir`` (what
the output directory may hold, its lock, fingerprint, staging and atomic commit),
``manifest`` (the typed record training and prediction read), ``integrity`` (content
hashes of the packed files and the ``.idx`` check, run before training), ``iterators``
(MXNet record iterators fed from the manifest).
"""
