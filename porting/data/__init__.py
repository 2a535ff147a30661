"""Data sets: sources (folder layouts), splits, image processing, RecordIO packing, the manifest, iterators.

``python -m porting.data`` is the command (``porting.cli.data``).
"""
