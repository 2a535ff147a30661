"""Packing a planned build: probe the candidate files, pack each split into RecordIO, the mean, the manifest.

1. :func:`probe_all` reads and decodes every candidate file once (``imageproc.probe_image``);
   unreadable, truncated and non-image files are skipped here, listed, and never reach a
   list or a record. The readable ones get their content hash (SHA-256 of the decoded pixels).
2. :func:`pack_split` packs records in ``.lst`` order with ``mx.recordio.MXIndexedRecordIO`` /
   ``pack_img``; the ``.idx`` is what lets ImageRecordIter shuffle globally.
3. :func:`pack_and_describe` writes every output of a ``PackPlan`` into the staging directory
   (``.lst``/``.rec``/``.idx`` per split, the mean image, ``contents.tsv``) and returns the
   manifest. The mean image and per-channel mean/std come from the training records only,
   decoded and center-cropped exactly as the validation iterator will see them.

The order of the work, the checks and the atomic commit are ``porting.data.build``'s.

Test hook: ``PORTING_DATA_PAUSE_AFTER=N`` makes the packer stop after N records and sleep,
so a test can kill it in the middle of packing deterministically.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from porting import progress, util
from porting.data import imageproc, integrity
from porting.data.build_config import BuildConfig, PackPlan, Skipped
from porting.data.imageproc import BadImage
from porting.data.manifest import FORMAT, sha256_file
from porting.data.output_dir import CONTENTS_NAME, MEAN_IMG_NAME
from porting.data.sources import DataError, Source

PAUSE_ENV = "PORTING_DATA_PAUSE_AFTER"


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


def probe_all(source: Source, progress: bool) -> tuple[list[int], list[str], list[Skipped]]:
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


def pack_and_describe(stage: Path, plan: PackPlan) -> tuple[dict, dict[str, Path]]:
    """Write every output into ``stage``; return the manifest and ``{final name: staged path}``."""
    cfg, source, keys, labels, hashes = plan.cfg, plan.source, plan.keys, plan.labels, plan.hashes
    hook, packed = util.pause_hook(PAUSE_ENV, "porting.data", "records"), [0]

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
