"""``manifest.json``: the single record of how a data set was built and must be fed.

Training and prediction read preprocessing *only* from here: the class names in label
order, the resize and crop, the colour order, the mean image and the per-channel
mean/std, and which normalisation to apply. ``load_manifest`` also checks that the files
the manifest names are the ones that were written (size always, SHA-256 on request).

The manifest is written last, atomically (``porting.util.atomic_write_text``), by the
packer; its presence is what makes an output directory complete. The content checks
(``verify="quick"`` or ``"hash"``: digests and the RecordIO index) live in
``porting.data.integrity``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from porting.data import integrity
from porting.data.imageproc import ResizeSpec
from porting.data.integrity import sha256_file  # noqa: F401  (the one digest; imported from here by callers)

FORMAT = "porting.data/1"
MANIFEST_NAME = "manifest.json"


class ManifestError(Exception):
    """The manifest is missing, malformed, or does not match the files beside it."""


# -- typed view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitInfo:
    """One split's files (absolute paths) and counts."""

    name: str
    lst: Path
    rec: Path
    idx: Path
    count: int
    per_class: dict[str, int]
    sha256: dict[str, str]  # "lst" / "rec" / "idx" -> hex digest (empty in a hand-made manifest)
    sizes: dict[str, int]  # "lst" / "rec" / "idx" -> bytes
    sampled: dict[str, str] = field(default_factory=dict)  # integrity.sampled_sha256 (older manifests: none)


@dataclass(frozen=True)
class Normalization:
    """What is subtracted and divided: ``(pixel - mean) / std``, channel order RGB.

    ``mode="image"``: ``mean`` is the per-pixel mean image (``mean_img``, shape
    ``(3, H, W)``, what ``ImageRecordIter(mean_img=...)`` reads); ``mode="channel"``:
    ``mean_rgb`` broadcast over the image. ``std_rgb`` divides in both modes.
    """

    mode: str
    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]
    mean_img: Path | None
    mean_img_shape: tuple[int, int, int]

    def mean_array(self) -> np.ndarray:
        """The mean that is subtracted, as a (3, H, W) float32 array."""
        c, h, w = self.mean_img_shape
        if self.mode == "channel":
            return np.broadcast_to(np.asarray(self.mean_rgb, np.float32).reshape(3, 1, 1), (c, h, w)).copy()
        from porting import compat

        mx = compat.import_mx()
        loaded = mx.nd.load(str(self.mean_img))
        return loaded["mean_img"].asnumpy().astype(np.float32)


@dataclass(frozen=True)
class Manifest:
    """Typed view of ``manifest.json``; ``raw`` keeps the full document."""

    path: Path
    classes: list[str]
    seed: int
    splits: dict[str, SplitInfo]
    resize: ResizeSpec
    encoding: str
    quality: int
    data_shape: tuple[int, int, int]
    colour_order: str
    normalization: Normalization
    augmentation: dict
    skipped: list[dict]
    duplicates: list[dict]
    fingerprint: str
    raw: dict = field(repr=False)
    #: What the last content check could not do (an older manifest without sampled hashes).
    warnings: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def root(self) -> Path:
        return self.path.parent


def read_format_json(path: Path, expected_format: str, error: type[Exception], missing_hint: str) -> dict:
    """A JSON file this project wrote, with its ``format`` tag checked; ``error`` names what is wrong."""
    if not path.is_file():
        raise error(f"{path} not found: {missing_hint}")
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise error(f"{path} is not valid JSON: {e}") from e
    if record.get("format") != expected_format:
        raise error(f"{path}: format {record.get('format')!r}, expected {expected_format!r}")
    return record


VERIFY_LEVELS = ("none", "size", "quick", "hash")


def load_manifest(path: str | os.PathLike, verify: str = "size") -> Manifest:
    """Read a manifest (or the ``manifest.json`` inside a directory) and check its files.

    Args:
        path: ``manifest.json`` or the output directory that holds it.
        verify: ``"size"`` (default, cheap) compares file sizes; ``"quick"`` also the
            digests of ``porting.data.integrity``'s quick check and every ``.idx`` offset
            (what training does before MXNet reads the files); ``"hash"`` the SHA-256 of
            every byte and the index; ``"none"`` checks nothing. Notes of a check that
            could not be done in full (an older manifest) are in ``Manifest.warnings``.

    Raises:
        ManifestError: missing or malformed, a different format version, or a file the
        manifest names is missing or differs from what was written.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    raw = read_format_json(path, FORMAT, ManifestError,
                           "run `python -m porting.data` first (an interrupted run leaves none)")
    if verify not in VERIFY_LEVELS:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_LEVELS)}, got {verify!r}")
    root = path.parent
    try:
        splits = {}
        for name, s in raw["splits"].items():
            files = {k: root / s["files"][k] for k in ("lst", "rec", "idx")}
            splits[name] = SplitInfo(
                name, files["lst"], files["rec"], files["idx"], int(s["count"]), dict(s["per_class"]),
                dict(s.get("sha256", {})), {k: int(v) for k, v in s["sizes"].items()},
                dict(s.get("sampled_sha256", {})),
            )
        img, norm = raw["image"], raw["normalization"]
        normalization = Normalization(
            norm["mode"], tuple(norm["mean_rgb"]), tuple(norm["std_rgb"]),
            root / norm["mean_img"] if norm.get("mean_img") else None, tuple(norm["mean_img_shape"]),
        )
        manifest = Manifest(
            path=path, classes=list(raw["classes"]), seed=int(raw["seed"]), splits=splits,
            resize=ResizeSpec.from_json(img["resize"]), encoding=img["encoding"], quality=int(img["quality"]),
            data_shape=tuple(img["data_shape"]), colour_order=img["colour_order"], normalization=normalization,
            augmentation=dict(raw.get("augmentation", {})), skipped=list(raw.get("skipped", [])),
            duplicates=list(raw.get("duplicates", [])), fingerprint=raw.get("fingerprint", ""), raw=raw,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ManifestError(f"{path} is missing or has a malformed field: {e!r}") from e
    if verify != "none":
        manifest.warnings.extend(check_files(manifest, verify))
    return manifest


_REBUILD = "re-run porting.data with the same arguments to rebuild it"


def check_files(manifest: Manifest, level: str | bool = "size", on_bytes=None) -> list[str]:
    """Compare every file the manifest names with what the packer recorded.

    Args:
        level: ``"size"``, ``"quick"`` or ``"hash"`` (see :func:`load_manifest`; ``True``
            means ``"hash"``, ``False`` ``"size"``).
        on_bytes: called with the number of bytes hashed, for a progress bar (``"hash"``).

    Returns:
        notes on checks an older manifest could not support (no digest recorded).

    Raises:
        ManifestError: naming the first file that is missing or differs, and how to fix it.
    """
    level = {True: "hash", False: "size"}.get(level, level)
    files = [(f"{s.name}.{k}", getattr(s, k), s.sizes[k], s.sha256.get(k), s.sampled.get(k))
             for s in manifest.splits.values() for k in ("lst", "rec", "idx")]
    extra = manifest.raw.get("files", {})
    files += [(k, manifest.root / v["path"], v["size"], v.get("sha256"), None) for k, v in extra.items()]
    params = manifest.raw.get("integrity", {})
    notes = []
    for what, p, size, digest, sampled in files:
        if not p.is_file():
            raise ManifestError(f"{manifest.path}: {what} file {p} is missing; {_REBUILD}")
        if p.stat().st_size != size:
            raise ManifestError(f"{manifest.path}: {what} file {p} has {p.stat().st_size} bytes, manifest says "
                                f"{size}; {_REBUILD}")
        if level == "hash":
            if digest is None:
                notes.append(f"{p.name}: no SHA-256 recorded; re-run porting.data to add it (checked by size only)")
            elif sha256_file(p, on_bytes=on_bytes) != digest:
                raise ManifestError(f"{manifest.path}: {what} file {p} does not match its recorded SHA-256 "
                                    f"(damaged or changed since it was packed); {_REBUILD}")
        elif level == "quick":
            differs, note = integrity.quick_mismatch(p, digest, sampled, params)
            if differs:
                raise ManifestError(f"{manifest.path}: {what} file {p} does not match its recorded content hash "
                                    f"(damaged or changed since it was packed); {_REBUILD}")
            if note:
                notes.append(note)
    if level in ("quick", "hash"):
        for s in manifest.splits.values():
            try:
                integrity.check_index(s.rec, s.idx, s.count)
            except integrity.IntegrityError as e:
                raise ManifestError(f"{e}; {_REBUILD}") from None
    return notes
