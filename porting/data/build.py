"""Build a RecordIO data set: scan, validate, dedupe, split, pack, mean, manifest.

``build(config)`` is the whole of ``python -m porting.data``. The order of work is what
makes the classic traps impossible:

1. Every candidate file is read and decoded once (``probe_image``); unreadable, truncated
   and non-image files are skipped here, listed, and never reach a list or a record.
2. Identical pictures (same decoded pixels) are collapsed *before* splitting, so one
   picture cannot be in train and in val/test; the split is then checked for overlap by
   content hash anyway, and the per-record hashes are written to ``contents.tsv``.
3. The split is stratified and seeded; each ``.lst`` is shuffled across classes.
4. Records are packed in ``.lst`` order with ``mx.recordio.MXIndexedRecordIO`` /
   ``pack_img``; the ``.idx`` is what lets ImageRecordIter shuffle globally.
5. The mean image and per-channel mean/std come from the training records only, decoded
   and center-cropped exactly as the validation iterator will see them.

Atomicity (``porting.data.output_dir``): everything is written into a staging directory
under ``*.partial`` names; only when every file is complete are they renamed into ``OUT``
and ``manifest.json`` written last (atomically). A killed run leaves no ``.rec`` under its
final name and no manifest; the previous complete data set, if any, stays valid until the
final renames. A write that fails (a full disk) is one ``DataError`` saying what was
kept; a run that created ``OUT`` and then failed or was refused removes it again.

Before anything is written: the arguments, ``--out`` against ``--src`` (an ``--out``
inside the source is refused without creating anything there), the up-to-date check
(re-running with the same arguments on unchanged sources is a no-op that reads only, so
it needs neither the lock nor a writable folder), then ``--out`` itself (kind, a write
probe). A source with fewer than two classes is refused, and so is a run that would
re-split an existing data set (another ``--val``, ``--test``, ``--seed`` or
``--official-split``) without ``--force``. Every split file's SHA-256 and sampled hash
(``porting.data.integrity``) go into the manifest, and its ``.idx`` is checked.

The arguments and records are ``porting.data.build_config``'s; the probing, packing, mean
and manifest record (steps 1, 4, 5) ``porting.data.packing``'s (with its test hook).
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import numpy as np

from porting import util
from porting.data import imageproc, output_dir, sources
from porting.data.build_config import BuildConfig, BuildResult, PackPlan, Skipped
from porting.data.manifest import MANIFEST_NAME, ManifestError, load_manifest
from porting.data.output_dir import DIGITS_SRC_NAME
from porting.data.packing import pack_and_describe, probe_all
from porting.data.sources import DataError, Source
from porting.data.splits import SPLITS, SplitError, dedupe, overlaps, stratified_split, shuffled


def build(config: BuildConfig, err: TextIO | None = None) -> BuildResult:
    """Build (or confirm up to date) the data set described by ``config``.

    The order is what keeps a refused run from touching anything: arguments, then
    ``--out`` against ``--src``, then the up-to-date check (reads only, so a finished data
    set on a read-only disk is confirmed without a lock), then the output folder check
    (kind, a write probe), and only then the folder, its lock and the work.

    Raises:
        DataError: bad input; the message is one line that names what is wrong and
        what was expected.
    """
    err = err or sys.stderr
    t0 = time.perf_counter()
    cfg = config.resolved()
    out = cfg.out
    src_root = _source_root(cfg)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    done = _up_to_date(cfg, src_root)
    if done is not None:
        done.seconds = time.perf_counter() - t0
        return done
    try:
        util.check_output_dir(out, "--out")
    except util.UsageError as e:
        raise DataError(str(e)) from None
    created = not out.exists()
    output_dir.prepare_out(out)
    try:
        return _build_locked(cfg, src_root, err, t0)
    except BaseException:
        if created:  # this run made the folder: a refused or failed run leaves none behind
            output_dir.remove_if_unused(out)
        raise


def _build_locked(cfg: BuildConfig, src_root: Path, err: TextIO, t0: float) -> BuildResult:
    out = cfg.out
    with output_dir.locked(out):
        output_dir.clean_stale(out)
        if cfg.layout == "digits":
            sources.write_digits(src_root)
        source = _scan(cfg, src_root)
        versions = output_dir.tool_versions(cfg.layout)
        fp = output_dir.fingerprint(cfg, source, versions)

        old = output_dir.existing_manifest(out)
        if old is not None:
            old_identity = old.get("dataset", {}).get("identity")
            if old_identity != source.identity and not cfg.force:
                raise DataError(
                    f"--out {out} holds a different data set ({old_identity or 'unreadable manifest'}; "
                    f"this run: {source.identity}); use another --out, or --force to replace it"
                )
            if old.get("fingerprint") == fp and _intact(out):
                skipped = [Skipped(s["path"], s["reason"]) for s in old.get("skipped", [])]
                return BuildResult("up-to-date", out / MANIFEST_NAME, old, skipped, time.perf_counter() - t0)
            changed = split_changes(old, cfg) if old_identity == source.identity else []
            if changed and not cfg.force:
                raise DataError(
                    f"--out {out} holds this data set split with {', '.join(f'{flag} {was}' for flag, was, _ in changed)}; "
                    f"this run asks for {', '.join(f'{flag} {now}' for flag, _, now in changed)}, which re-splits "
                    f"the images (a model trained on the old split would see validation images in training): "
                    f"pass --force to replace it, or use another --out"
                )

        manifest, skipped = _build_into(out, cfg, source, fp, versions, err)
        return BuildResult("built", out / MANIFEST_NAME, manifest, skipped, time.perf_counter() - t0)


def _source_root(cfg: BuildConfig) -> Path:
    """The folder the images are read from, after refusing an ``--out`` inside it (before anything is written)."""
    if cfg.layout == "digits" and cfg.src is None:
        return cfg.out / DIGITS_SRC_NAME
    src_root = cfg.src
    if cfg.out.resolve().is_relative_to(src_root.resolve()):
        raise DataError(f"--out {cfg.out} is inside --src {src_root}; it would be scanned as input "
                        f"(choose an --out outside {src_root})")
    return src_root


def _scan(cfg: BuildConfig, src_root: Path) -> Source:
    """The source's layout scan, refusing a source with fewer than two classes."""
    source = sources.scan(cfg.layout, src_root, cfg.official_split)
    if len(source.classes) < 2:
        found = f" ('{source.classes[0]}')" if source.classes else ""
        raise DataError(f"--src {src_root}: found {len(source.classes)} class{found}, need at least 2 to train a "
                        f"classifier (one sub-folder per class)")
    return source


def _intact(out: Path) -> bool:
    """The manifest in ``out`` loads and its files pass the quick content check."""
    try:
        load_manifest(out, verify="quick")
    except ManifestError:
        return False
    return True


def _up_to_date(cfg: BuildConfig, src_root: Path) -> BuildResult | None:
    """The existing data set when it matches this run exactly and is intact; None otherwise.

    Reads only (no lock, no digits written): a finished data set on a read-only disk is
    confirmed. A run that wrote the manifest after this check started is caught again
    under the lock.
    """
    old = output_dir.existing_manifest(cfg.out) if cfg.out.is_dir() else None
    if not old:
        return None
    try:
        source = sources.scan(cfg.layout, src_root, cfg.official_split)
    except DataError:
        return None
    if old.get("fingerprint") != output_dir.fingerprint(cfg, source, output_dir.tool_versions(cfg.layout)):
        return None
    if not _intact(cfg.out):
        return None
    skipped = [Skipped(s["path"], s["reason"]) for s in old.get("skipped", [])]
    return BuildResult("up-to-date", cfg.out / MANIFEST_NAME, old, skipped)


def split_changes(old: dict, cfg: BuildConfig) -> list[tuple[str, str, str]]:
    """``(flag, old value, new value)`` for every split setting this run changes against the manifest ``old``."""
    def shown(value) -> str:
        return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    was_official = bool(old.get("dataset", {}).get("official_split"))
    split = old.get("split", {})
    pairs = [("--official-split", was_official, cfg.official_split)]
    if not (was_official and cfg.official_split):
        pairs += [("--val", split.get("val"), None if cfg.official_split else cfg.val),
                  ("--test", split.get("test"), None if cfg.official_split else cfg.test)]
    pairs.append(("--seed", old.get("seed"), cfg.seed))
    changed = []
    for flag, was, now in pairs:
        same = (was == now) if not (isinstance(was, (int, float)) and isinstance(now, (int, float))) \
            else abs(float(was) - float(now)) < 1e-12
        if not same:
            changed.append((flag, shown(was), shown(now)))
    return changed


def _build_into(out: Path, cfg: BuildConfig, source: Source, fp: str, versions: dict, err: TextIO):
    items = source.items
    good, hashes, skipped = probe_all(source, cfg.progress)
    skipped = [Skipped(r, why) for r, why in source.ignored] + skipped

    keys = [items[i].relpath for i in good]
    labels = [items[i].label for i in good]
    dd = dedupe(keys, hashes, labels)
    for i, others in dd.conflicts:
        names = ", ".join(f"{keys[j]} ('{source.classes[labels[j]]}')" for j in others)
        skipped.append(Skipped(keys[i], f"same pixels as {names} under another class; all copies dropped"))
    duplicates = [{"path": keys[d], "same_as": keys[k]} for d, k in dd.duplicates]
    kept = dd.kept  # positions into good/keys/labels/hashes

    for s in skipped:
        print(f"skipped: {s.relpath}: {s.reason}", file=err)
    if duplicates:
        print(f"note: {len(duplicates)} duplicate image(s) dropped before splitting (listed in the manifest)", file=err)

    per_class = Counter(labels[k] for k in kept)
    for y, cls in enumerate(source.classes):
        if per_class[y] == 0:
            n_bad = sum(1 for s in skipped if Path(s.relpath).parts[:1] == (cls,)) if source.layout in ("folders", "digits") else 0
            detail = f" ({n_bad} file(s) there were skipped)" if n_bad else ""
            raise DataError(f"class '{cls}' has no usable images{detail}; every class needs at least one")

    rng = np.random.default_rng(cfg.seed)
    if cfg.official_split:
        split_pos = {s: shuffled([k for k in kept if items[good[k]].split == s], rng) for s in SPLITS}
        train_classes = Counter(labels[k] for k in split_pos["train"])
        missing = [source.classes[y] for y in range(len(source.classes)) if not train_classes[y]]
        if missing:
            raise DataError(f"the official split leaves class '{missing[0]}' without training images")
    else:
        try:
            local = stratified_split([labels[k] for k in kept], cfg.val, cfg.test, cfg.seed, source.classes)
        except SplitError as e:
            raise DataError(str(e)) from None
        split_pos = {s: [kept[j] for j in v] for s, v in local.items()}
    split_pos = {s: v for s, v in split_pos.items() if v or s == "train"}

    clash = overlaps({s: [hashes[k] for k in v] for s, v in split_pos.items()})
    if clash:  # dedupe makes this impossible; checked anyway because a leak is silent
        h, a, b = clash[0]
        raise RuntimeError(f"internal error: content {h[:12]} is in both {a} and {b}")

    plan = PackPlan(cfg, source, fp, versions, split_pos, keys, labels, hashes, skipped, duplicates)
    try:
        with output_dir.staging(out) as stage:
            manifest, staged = pack_and_describe(stage, plan)
    except (OSError, imageproc.mxnet().base.MXNetError) as e:
        raise DataError(f"writing the data set in {out} failed ({_why(e)}); nothing was committed: "
                        f"{'the previous data set is unchanged' if (out / MANIFEST_NAME).exists() else 'no manifest'}"
                        f"; free some space or choose another --out, then re-run") from e
    try:
        output_dir.commit(out, stage, staged, manifest)
    except OSError as e:
        raise DataError(f"committing the data set in {out} failed ({_why(e)}); it has no manifest, so nothing "
                        f"claims it is complete: free some space, then re-run the same command") from e
    return manifest, skipped


def _why(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__
