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

Test hook: ``PORTING_DATA_PAUSE_AFTER=N`` makes the packer stop after N records and sleep,
so a test can kill it in the middle of packing deterministically.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from porting import progress, util
from porting.data import imageproc, integrity, output_dir, sources
from porting.data.imageproc import ENCODINGS, BadImage, ResizeSpec
from porting.data.manifest import FORMAT, MANIFEST_NAME, ManifestError, load_manifest, sha256_file
from porting.data.output_dir import CONTENTS_NAME, DIGITS_SRC_NAME, MEAN_IMG_NAME
from porting.data.sources import DataError, Source
from porting.data.splits import SPLITS, SplitError, dedupe, overlaps, stratified_split, shuffled

PAUSE_ENV = "PORTING_DATA_PAUSE_AFTER"

LAYOUT_DEFAULTS = {
    # resize, crop, encoding, mirror
    "digits": (ResizeSpec("shorter", 36), (32, 32), ".png", False),
    "folders": (ResizeSpec("shorter", 256), (224, 224), ".jpg", True),
    "oxford17": (ResizeSpec("shorter", 256), (224, 224), ".jpg", True),
    "oxford102": (ResizeSpec("shorter", 256), (224, 224), ".jpg", True),
}


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides the output. ``None`` fields take the layout's default.

    ``crop`` is the network input (``data_shape`` without channels) and the shape of the
    mean image; with an explicit ``resize`` and no ``crop`` it is the smallest output
    size (the whole image for an exact resize).
    """

    layout: str
    out: Path
    src: Path | None = None
    val: float | None = None
    test: float | None = None
    seed: int = 0
    resize: ResizeSpec | None = None
    crop: tuple[int, int] | None = None
    encoding: str | None = None
    quality: int | None = None
    normalize: str = "image"
    mirror: bool | None = None
    official_split: bool = False
    force: bool = False
    progress: bool = True

    def resolved(self) -> "BuildConfig":
        """Defaults filled in and every value checked.

        Raises:
            DataError: one message per bad argument, naming the valid choices.
        """
        if self.layout not in LAYOUT_DEFAULTS:
            raise DataError(f"unknown --layout {self.layout!r}. Available: {', '.join(sources.LAYOUTS)}")
        d_resize, d_crop, d_enc, d_mirror = LAYOUT_DEFAULTS[self.layout]
        if self.official_split:
            if self.layout != "oxford102":
                raise DataError(f"--official-split exists only for --layout oxford102, not {self.layout}")
            if self.val is not None or self.test is not None:
                raise DataError("--val/--test cannot be combined with --official-split (setid.mat decides the split)")
        val = 0.1 if self.val is None else float(self.val)
        test = 0.0 if self.test is None else float(self.test)
        if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
            raise DataError(f"--val {val:g} and --test {test:g} must each be in [0, 1) with val + test < 1")
        if self.seed < 0:
            raise DataError(f"--seed must be >= 0, got {self.seed}")
        resize = self.resize or d_resize
        crop = self.crop or (d_crop if self.resize is None else resize.min_output_hw())
        min_h, min_w = resize.min_output_hw()
        if crop[0] > min_h or crop[1] > min_w:
            raise DataError(f"--crop {crop[0]}x{crop[1]} is larger than the resized images ({resize.describe()})")
        encoding = self.encoding or d_enc
        if encoding not in ENCODINGS:
            raise DataError(f"--encoding {encoding!r} unknown. Available: {', '.join(e[1:] for e in ENCODINGS)}")
        quality = ENCODINGS[encoding] if self.quality is None else int(self.quality)
        lo, hi = (1, 100) if encoding == ".jpg" else (0, 9)
        if not lo <= quality <= hi:
            raise DataError(f"--quality {quality} out of range for {encoding[1:]}: {lo}..{hi}")
        if self.normalize not in ("image", "channel"):
            raise DataError(f"--normalize {self.normalize!r} unknown. Available: image, channel")
        if self.layout != "digits" and self.src is None:
            raise DataError(f"--src is required for --layout {self.layout}")
        return BuildConfig(
            self.layout, Path(self.out), Path(self.src) if self.src is not None else None, val, test,
            self.seed, resize, tuple(crop), encoding, quality, self.normalize,
            d_mirror if self.mirror is None else bool(self.mirror), self.official_split, self.force, self.progress,
        )


@dataclass
class Skipped:
    relpath: str
    reason: str


@dataclass
class BuildResult:
    """What ``build`` did: ``status`` is ``"built"`` or ``"up-to-date"``."""

    status: str
    manifest_path: Path
    manifest: dict
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class PackPlan:
    """What a build packs, decided before anything is written.

    ``keys``, ``labels`` and ``hashes`` describe the readable images (relative path, label,
    content hash); ``split_pos`` lists, per split and in ``.lst`` order, positions into them.
    """

    cfg: BuildConfig
    source: Source
    fingerprint: str
    versions: dict[str, str]
    split_pos: dict[str, list[int]]
    keys: list[str]
    labels: list[int]
    hashes: list[str]
    skipped: list[Skipped]
    duplicates: list[dict]


# -- scanning -----------------------------------------------------------------------------


def _progress(total: int, desc: str, enabled: bool):
    """A bar over images (``porting.progress``: only on a terminal); ``enabled=False`` (``--no-progress``) hides it."""
    if not enabled:
        from tqdm import tqdm

        return tqdm(total=total, disable=True)
    return progress.bar(total=total, desc=desc, unit="img")


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _probe_all(source: Source, progress: bool) -> tuple[list[int], list[str], list[Skipped]]:
    """Indices of the readable items, their content hashes, and the skipped files."""
    good, hashes, skipped = [], [], []
    with _progress(len(source.items), "check", progress) as bar:
        for i, item in enumerate(source.items):
            bar.update(1)
            if "\t" in item.relpath or "\n" in item.relpath:
                skipped.append(Skipped(item.relpath, "file name contains a tab or newline (the .lst format cannot hold it)"))
                continue
            try:
                buf = _read(source.root / item.relpath)
            except OSError as e:
                skipped.append(Skipped(item.relpath, f"unreadable ({type(e).__name__}: {e.strerror or e})"))
                continue
            try:
                _, digest = imageproc.probe_image(buf)
            except BadImage as e:
                skipped.append(Skipped(item.relpath, str(e)))
                continue
            good.append(i)
            hashes.append(digest)
    return good, hashes, skipped


# -- packing ------------------------------------------------------------------------------


class _MeanAccumulator:
    """Per-pixel sum and per-channel sums of squares of center-cropped RGB training images."""

    def __init__(self, height: int, width: int):
        self.sum = np.zeros((height, width, 3), np.float64)
        self.sq = np.zeros(3, np.float64)
        self.n = 0

    def add(self, img: np.ndarray) -> None:
        x = img.astype(np.float64)
        self.sum += x
        self.sq += (x * x).sum(axis=(0, 1))
        self.n += 1

    def result(self) -> tuple[np.ndarray, list[float], list[float]]:
        """Mean image (3, H, W) float32, per-channel mean and std (population) as lists."""
        pixels = self.n * self.sum.shape[0] * self.sum.shape[1]
        mean_rgb = self.sum.sum(axis=(0, 1)) / pixels
        var = np.maximum(self.sq / pixels - mean_rgb**2, 0.0)
        # A constant channel (std 0) would make (x - mean) / std blow up; leave it unscaled.
        std = np.where(np.sqrt(var) < 1e-3, 1.0, np.sqrt(var))
        mean_img = (self.sum / self.n).transpose(2, 0, 1).astype(np.float32)
        return mean_img, [float(v) for v in mean_rgb], [float(v) for v in std]


def _pause_hook():
    after = os.environ.get(PAUSE_ENV)
    if not after:
        return lambda n: None
    limit = int(after)

    def hook(n: int) -> None:
        if n == limit:
            print(f"porting.data: paused after {n} records ({PAUSE_ENV})", file=sys.stderr, flush=True)
            time.sleep(3600)

    return hook


def pack_split(
    root: Path, entries: list[tuple[str, int]], rec_path: Path, idx_path: Path, cfg: BuildConfig,
    mean: _MeanAccumulator | None = None, desc: str = "pack", on_record=None,
) -> None:
    """Pack ``(relpath, label)`` entries, in order, into an indexed RecordIO pair.

    Record ``i`` has id ``i`` and the ``.idx`` key ``i``, matching line ``i`` of the
    ``.lst``. With ``mean`` the records are decoded back and center-cropped into it.

    Raises:
        DataError: a source file changed between the check and packing.
    """
    writer = imageproc.mxnet().recordio.MXIndexedRecordIO(str(idx_path), str(rec_path), "w")
    try:
        with _progress(len(entries), desc, cfg.progress) as bar:
            for i, (rel, label) in enumerate(entries):
                try:
                    img = imageproc.resize_rgb(imageproc.decode_rgb(_read(root / rel)), cfg.resize)
                except (OSError, BadImage) as e:
                    raise DataError(f"{root / rel} changed while packing ({e}); run again") from e
                record = imageproc.encode_image(img, label, i, cfg.encoding, cfg.quality)
                writer.write_idx(i, record)
                if mean is not None:
                    # What the iterator will decode: PNG is lossless, JPEG must be decoded back.
                    back = img if cfg.encoding == ".png" else imageproc.record_image(record)[1]
                    mean.add(imageproc.center_crop(back, *cfg.crop))
                bar.update(1)
                if on_record is not None:
                    on_record()
    finally:
        writer.close()


def _lst_text(entries: list[tuple[str, int]]) -> str:
    # im2rec's format: index \t label (as %f) \t path
    return "".join(f"{i}\t{float(label):f}\t{rel}\n" for i, (rel, label) in enumerate(entries))


# -- the build ----------------------------------------------------------------------------


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
    good, hashes, skipped = _probe_all(source, cfg.progress)
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
            manifest, staged = _pack_and_describe(stage, plan)
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


def _pack_and_describe(stage: Path, plan: PackPlan) -> tuple[dict, dict[str, Path]]:
    """Write every output into ``stage``; return the manifest and ``{final name: staged path}``."""
    cfg, source, keys, labels, hashes = plan.cfg, plan.source, plan.keys, plan.labels, plan.hashes
    hook, packed = _pause_hook(), [0]

    def on_record():
        packed[0] += 1
        hook(packed[0])

    files: dict[str, Path] = {}
    split_meta = {}
    mean = _MeanAccumulator(*cfg.crop)
    contents = ["split\tindex\tlabel\tsha256\tpath\n"]
    for s, positions in plan.split_pos.items():
        entries = [(keys[k], labels[k]) for k in positions]
        contents += [f"{s}\t{i}\t{labels[k]}\t{hashes[k]}\t{keys[k]}\n" for i, k in enumerate(positions)]
        lst, rec, idx = (stage / f"{s}.{ext}.partial" for ext in ("lst", "rec", "idx"))
        lst.write_text(_lst_text(entries), "utf-8")
        pack_split(source.root, entries, rec, idx, cfg, mean if s == "train" else None, f"pack {s}", on_record)
        for ext, p in (("lst", lst), ("rec", rec), ("idx", idx)):
            files[f"{s}.{ext}"] = p
        counts = Counter(labels[k] for k in positions)
        split_meta[s] = {
            "count": len(positions),
            "per_class": {cls: counts[y] for y, cls in enumerate(source.classes)},
            "files": {ext: f"{s}.{ext}" for ext in ("lst", "rec", "idx")},
            "sha256": {ext: sha256_file(files[f"{s}.{ext}"]) for ext in ("lst", "rec", "idx")},
            "sampled_sha256": {ext: integrity.sampled_sha256(files[f"{s}.{ext}"]) for ext in ("lst", "rec", "idx")},
            "sizes": {ext: files[f"{s}.{ext}"].stat().st_size for ext in ("lst", "rec", "idx")},
        }
        integrity.check_index(rec, idx, len(positions))  # what training checks; a packer bug shows here first

    mean_img, mean_rgb, std_rgb = mean.result()
    mean_partial = stage / f"{MEAN_IMG_NAME}.partial"
    mx = imageproc.mxnet()
    mx.nd.save(str(mean_partial), {"mean_img": mx.nd.array(mean_img)})
    files[MEAN_IMG_NAME] = mean_partial
    contents_partial = stage / f"{CONTENTS_NAME}.partial"
    contents_partial.write_text("".join(contents), "utf-8")
    files[CONTENTS_NAME] = contents_partial
    return _manifest_record(plan, split_meta, files, mean_rgb, std_rgb), files


def _manifest_record(plan: PackPlan, split_meta: dict, files: dict[str, Path], mean_rgb: list[float],
                     std_rgb: list[float]) -> dict:
    """The ``manifest.json`` of a packed build (``files``: the staged outputs, for sizes and digests)."""
    cfg, source = plan.cfg, plan.source
    return {
        "format": FORMAT,
        "fingerprint": plan.fingerprint,
        "dataset": {
            "layout": cfg.layout, "identity": source.identity, "source": str(source.root.resolve()),
            "official_split": cfg.official_split,
        },
        "classes": list(source.classes),
        "num_classes": len(source.classes),
        "seed": cfg.seed,
        "split": {
            "method": "official (setid.mat)" if cfg.official_split else "stratified per class, then shuffled",
            "val": None if cfg.official_split else cfg.val,
            "test": None if cfg.official_split else cfg.test,
        },
        "splits": split_meta,
        "image": {
            "resize": cfg.resize.to_json(),
            "resizer": "cv2.resize",
            "interpolation": {"shrink": imageproc.INTERP_NAMES[imageproc.INTERP_SHRINK],
                              "enlarge": imageproc.INTERP_NAMES[imageproc.INTERP_ENLARGE]},
            "encoding": cfg.encoding,
            "quality": cfg.quality,
            "data_shape": [3, *cfg.crop],
            "colour_order": "RGB",
            "layout": "CHW",
            "decoder": "mx.image.imdecode (MXNet's OpenCV), as ImageRecordIter",
        },
        "normalization": {
            "mode": cfg.normalize,
            "formula": "(pixel - mean) / std, per channel RGB; mean is mean_img (mode image) or mean_rgb (mode channel)",
            "mean_rgb": mean_rgb,
            "std_rgb": std_rgb,
            "mean_img": MEAN_IMG_NAME,
            "mean_img_shape": [3, *cfg.crop],
            "computed_from": f"train split only ({split_meta['train']['count']} images, center crop {cfg.crop[0]}x{cfg.crop[1]})",
        },
        "augmentation": {"rand_crop": True, "rand_mirror": cfg.mirror, "applies_to": "train only"},
        "files": {
            name: {"path": name, "size": files[name].stat().st_size, "sha256": sha256_file(files[name])}
            for name in (MEAN_IMG_NAME, CONTENTS_NAME)
        },
        "overlap_check": {"key": "SHA-256 of decoded pixels", "passed": True, "details": CONTENTS_NAME},
        "integrity": integrity.sampling(),
        "skipped": [{"path": s.relpath, "reason": s.reason} for s in plan.skipped],
        "duplicates": plan.duplicates,
        "tool_versions": plan.versions,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
