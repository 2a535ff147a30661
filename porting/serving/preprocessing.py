"""How an image file becomes the network's input when serving: :class:`Preprocessing`.

A ``porting.train`` model's preprocessing is its data manifest copy (``kind="manifest"``, through
``porting.data.iterators.preprocess_image``: MXNet's decoder (RGB), the packer's resize and
codec, the center crop and the mean/std of training), so a prediction cannot drift from what
the validation iterator fed the network during training. A converted model (``porting.convert``,
autoport) has no manifest and is served with an explicit one: ``inception`` (slim's eval
preprocessing, pixels scaled to [-1, 1]) or ``mean-std`` (a shorter-side resize, a center crop
and ``(pixel - mean) / std``), which ``porting.serving.model_loading.PreprocessOptions`` builds
from the command-line flags.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from porting.data import imageproc, iterators  # porting.compat's shims before OpenCV and MXNet load
from porting.data.manifest import Manifest

import cv2  # noqa: E402

#: slim's eval preprocessing (``inception_preprocessing.preprocess_for_eval``) keeps the central 87.5 %.
INCEPTION_CENTRAL_FRACTION = 0.875
PREPROCESS_KINDS = ("inception", "mean-std")


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes the network's input, (3, H, W) float32 RGB.

    ``kind``:
      * ``"manifest"``: a ``porting.train`` model's data manifest decides everything
        (``porting.data.iterators.preprocess_image``: the packer's resize and codec, the
        center crop, the mean image or mean RGB, the std);
      * ``"inception"``: slim's eval preprocessing for converted slim checkpoints: the central
        87.5 % of the image, a bilinear resize to H x W (OpenCV, half-pixel centres), then
        ``pixel / 127.5 - 1`` (slim's [-1, 1] scaling: mean and std 127.5);
      * ``"mean-std"``: the shorter side resized to ``resize`` (default: the larger of H and
        W), the center H x W, then ``(pixel - mean_rgb) / std_rgb`` on 0..255 values.
    """

    kind: str
    data_shape: tuple[int, int, int]
    manifest: Manifest | None = None
    mean_rgb: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std_rgb: tuple[float, float, float] = (127.5, 127.5, 127.5)
    resize: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("manifest", *PREPROCESS_KINDS):
            raise ValueError(f"unknown preprocessing {self.kind!r}. Available: {', '.join(PREPROCESS_KINDS)}")
        if (self.kind == "manifest") != (self.manifest is not None):
            raise ValueError("a manifest goes with kind 'manifest' and only with it")

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> "Preprocessing":
        return cls("manifest", tuple(manifest.data_shape), manifest)

    def __call__(self, buf: bytes) -> np.ndarray:
        """One image's bytes as the network input.

        Raises:
            imageproc.BadImage: not decodable (or too large to decode).
            ValueError: smaller than the crop.
        """
        if self.kind == "manifest":
            return iterators.preprocess_image(self.manifest, buf)
        _, height, width = self.data_shape
        img = imageproc.decode_rgb(buf)
        if self.kind == "inception":
            h, w = img.shape[:2]
            top = int((h - h * INCEPTION_CENTRAL_FRACTION) / 2)  # tf.image.central_crop's arithmetic
            left = int((w - w * INCEPTION_CENTRAL_FRACTION) / 2)
            img = img[top:h - top, left:w - left]
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            side = self.resize or max(height, width)
            img = imageproc.resize_rgb(img, imageproc.ResizeSpec("shorter", shorter=side))
            img = imageproc.center_crop(img, height, width)
        mean = np.broadcast_to(np.asarray(self.mean_rgb, np.float32).reshape(3, 1, 1), (3, height, width))
        return imageproc.normalize_chw(img, mean, self.std_rgb)

    def describe(self) -> str:
        if self.kind == "manifest":
            return f"the manifest copy {self.manifest.path}"
        _, h, w = self.data_shape
        if self.kind == "inception":
            return f"inception (central 87.5 %, bilinear to {h}x{w}, pixels to [-1, 1])"
        return (f"mean-std (shorter side {self.resize or max(h, w)}, center {h}x{w}, mean RGB "
                f"{', '.join(f'{v:g}' for v in self.mean_rgb)}, std RGB {', '.join(f'{v:g}' for v in self.std_rgb)})")
