"""The records of a ``python -m porting.data`` build: its arguments, its result and its plan.

* :class:`BuildConfig` holds every argument that decides the output; :meth:`BuildConfig.resolved`
  fills in the layout's defaults (:data:`LAYOUT_DEFAULTS`: resize, crop, encoding, mirror) and
  checks every value, one ``DataError`` per bad argument.
* :class:`BuildResult` is what ``porting.data.build.build`` did (built or up to date), with the
  :class:`Skipped` files.
* :class:`PackPlan` is what a build packs, decided before anything is written
  (``porting.data.packing.pack_and_describe`` writes it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from porting.data import sources
from porting.data.imageproc import ENCODINGS, ResizeSpec
from porting.data.sources import DataError, Source

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
