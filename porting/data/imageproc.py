"""One image, from file bytes to the network's input: the steps packing and prediction share.

Packing (``porting.data.packing``) and prediction (``preprocess_image``) both call
these functions, so an image seen at prediction time goes through exactly what the
training images went through:

    file bytes --check_complete--> --decode_rgb (MXNet's OpenCV, RGB)--> resize_rgb (cv2.resize)
      --encode_image (mx.recordio.pack_img's encoder)-- .rec record
      --decode (what ImageRecordIter does)--> center_crop --normalize--> (3, H, W) float32

Colour order is RGB everywhere (PITFALLS 12a): ``mx.image.imdecode`` and ImageRecordIter
both give RGB; ``mx.recordio.pack_img`` calls ``cv2.imencode``, which expects BGR, so
``encode_image`` swaps the channels before encoding and nowhere else.

Before any decoder sees a file, :func:`check_decodable_size` reads the image size from
the header (PNG, JPEG, GIF, BMP) and refuses an image above OpenCV's pixel limit
(``OPENCV_IO_MAX_IMAGE_PIXELS``, default 2**30: OpenCV raises on it, and MXNet's own
OpenCV would try to allocate it) or one whose decoded pixels would not fit in the
memory the machine has available. Such a file is a :class:`BadImage` like any other
undecodable file: skipped and listed by the packer, listed by prediction.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

import numpy as np
import psutil

from porting import compat, util

import cv2  # noqa: E402


def mxnet():
    """MXNet, imported on first use: a no-op ``porting.data`` run never pays its import (seconds)."""
    return compat.import_mx()

# cv2 interpolation codes (mx.image uses the same numbers): area when shrinking (no aliasing), bicubic when enlarging.
INTERP_SHRINK = 3
INTERP_ENLARGE = 2
INTERP_NAMES = {0: "nearest", 1: "bilinear", 2: "bicubic", 3: "area", 4: "lanczos"}

ENCODINGS = {".jpg": 95, ".png": 3}  # default quality: JPEG 1-100, PNG compression 0-9


class BadImage(Exception):
    """A source file that is not a complete, decodable image; ``str(e)`` is the reason."""


def check_complete(buf: bytes) -> None:
    """Reject empty and truncated files before any decoder sees them.

    OpenCV decodes a truncated JPEG or PNG *without failing* (the missing part comes
    out grey; checked with this wheel), so decoding alone would let a half-written
    download into a ``.rec``. A JPEG is complete when an end-of-image marker follows
    its last start-of-scan marker (entropy-coded data byte-stuffs 0xFF, so neither
    marker can occur inside it); a PNG when its ``IEND`` chunk is present at the end.

    Raises:
        BadImage: empty, or a truncated JPEG/PNG.
    """
    if not buf:
        raise BadImage("empty file")
    if buf[:2] == b"\xff\xd8":
        sos = buf.rfind(b"\xff\xda")
        if sos < 0 or buf.rfind(b"\xff\xd9") < sos:
            raise BadImage("truncated JPEG (no end-of-image marker after the last scan)")
    elif buf[:8] == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in buf[-64:]:
            raise BadImage("truncated PNG (no IEND chunk)")


#: OpenCV's default limit on the pixels of an image it decodes (``OPENCV_IO_MAX_IMAGE_PIXELS`` overrides it).
DEFAULT_MAX_PIXELS = 1 << 30
#: Bytes a decode needs per pixel, about: the decoded RGB image and one copy of it (resize, channel swap).
DECODE_BYTES_PER_PIXEL = 6
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def max_image_pixels() -> int:
    """OpenCV's pixel limit as the decoder will apply it (the environment variable, else 2**30)."""
    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", "").strip() or DEFAULT_MAX_PIXELS)
    except ValueError:
        return DEFAULT_MAX_PIXELS


def header_size(buf: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG, JPEG, GIF or BMP header without decoding; None for other formats."""
    if buf[:8] == b"\x89PNG\r\n\x1a\n" and buf[12:16] == b"IHDR" and len(buf) >= 24:
        width, height = struct.unpack(">II", buf[16:24])
        return height, width
    if buf[:2] == b"\xff\xd8":
        i = 2
        while i + 9 <= len(buf):
            if buf[i] != 0xFF:
                i += 1
                continue
            marker = buf[i + 1]
            if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
                i += 2 if marker != 0xFF else 1
                continue
            if marker in (0xDA, 0xD9):  # start of scan or end of image: no frame header before it
                return None
            (length,) = struct.unpack(">H", buf[i + 2:i + 4])
            if marker in _JPEG_SOF:
                height, width = struct.unpack(">HH", buf[i + 5:i + 9])
                return height, width
            i += 2 + length
        return None
    if buf[:4] == b"GIF8" and len(buf) >= 10:
        width, height = struct.unpack("<HH", buf[6:10])
        return height, width
    if buf[:2] == b"BM" and len(buf) >= 26:
        width, height = struct.unpack("<ii", buf[18:26])
        return abs(height), abs(width)
    return None


def check_decodable_size(buf: bytes) -> None:
    """Refuse, before decoding, an image above OpenCV's pixel limit or too big for the available memory.

    Raises:
        BadImage: naming the size, the limit (or the memory needed and available) and the fix.
    """
    hw = header_size(buf)
    if hw is None:
        return
    height, width = hw
    pixels = height * width
    limit = max_image_pixels()
    if pixels > limit:
        raise BadImage(f"image of {height}x{width} pixels ({pixels:,}) is above OpenCV's limit of {limit:,} "
                       f"pixels (OPENCV_IO_MAX_IMAGE_PIXELS); shrink it first")
    need = pixels * DECODE_BYTES_PER_PIXEL
    available = psutil.virtual_memory().available
    if need > available:
        raise BadImage(f"image of {height}x{width} pixels would need about {util.human_bytes(need)} to decode, "
                       f"but the machine has {util.human_bytes(available)} available; shrink it first")


def _opencv_failure(error: Exception) -> BadImage:
    text = str(error).strip().splitlines()
    if "CV_IO_MAX_IMAGE_PIXELS" in str(error):
        return BadImage(f"image is above OpenCV's pixel limit of {max_image_pixels():,} pixels "
                        f"(OPENCV_IO_MAX_IMAGE_PIXELS); shrink it first")
    return BadImage(f"OpenCV cannot decode it: {text[-1] if text else type(error).__name__}")


def probe_image(buf: bytes) -> tuple[tuple[int, int], str]:
    """Validate one file and return ``((height, width), content_hash)``.

    The check decodes with the pip OpenCV (synchronous, returns None on failure)
    because MXNet's ``imdecode`` reports some failures asynchronously, at the next
    engine sync, where they would break an unrelated operation (checked with a PNG
    header followed by garbage). The content hash is SHA-256 over the decoded pixels
    and their shape, so the same picture stored twice under different names or
    containers gets the same hash.

    Raises:
        BadImage: the file is empty, truncated, not an image, or too large to decode
        (:func:`check_decodable_size`).
    """
    check_complete(buf)
    check_decodable_size(buf)
    try:
        img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:  # e.g. a format whose header we do not read, above the pixel limit
        raise _opencv_failure(e) from e
    if img is None or img.size == 0:
        raise BadImage("not a decodable image")
    h = hashlib.sha256(f"{img.shape}".encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return (int(img.shape[0]), int(img.shape[1])), h.hexdigest()


def decode_rgb(buf: bytes) -> np.ndarray:
    """Decode with ``mx.image.imdecode`` (the decoder ImageRecordIter uses): HxWx3 uint8 RGB.

    Raises:
        BadImage: MXNet could not decode it, or it is too large to decode (:func:`check_decodable_size`).
    """
    check_complete(buf)
    check_decodable_size(buf)
    mx = mxnet()
    try:
        # An NDArray input skips mx.image.imdecode's slow element-wise copy of the bytes.
        nd_buf = mx.nd.from_numpy(np.frombuffer(buf, np.uint8).copy(), zero_copy=True)
        img = mx.image.imdecode(nd_buf, flag=1, to_rgb=True).asnumpy()
    except mx.base.MXNetError as e:
        raise BadImage(f"MXNet cannot decode it: {str(e).strip().splitlines()[-1]}") from e
    if img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise BadImage("MXNet decoded an empty image")
    return img


@dataclass(frozen=True)
class ResizeSpec:
    """How every image is resized before it is encoded.

    ``mode="shorter"``: the shorter side becomes ``shorter`` pixels, the aspect ratio is
    kept (the longer side is rounded). ``mode="exact"``: every image becomes
    ``height`` x ``width`` (the aspect ratio is not kept).
    """

    mode: str
    shorter: int = 0
    height: int = 0
    width: int = 0

    def __post_init__(self) -> None:
        if self.mode == "shorter":
            if self.shorter < 1:
                raise ValueError(f"shorter side must be positive, got {self.shorter}")
        elif self.mode == "exact":
            if self.height < 1 or self.width < 1:
                raise ValueError(f"exact size must be positive, got {self.height}x{self.width}")
        else:
            raise ValueError(f"resize mode must be 'shorter' or 'exact', got {self.mode!r}")

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Size of an image of ``height`` x ``width`` after this resize."""
        if self.mode == "exact":
            return self.height, self.width
        if height <= width:
            return self.shorter, max(1, int(round(width * self.shorter / height)))
        return max(1, int(round(height * self.shorter / width))), self.shorter

    def min_output_hw(self) -> tuple[int, int]:
        """The smallest height and width any output can have (bounds the crop)."""
        if self.mode == "exact":
            return self.height, self.width
        return self.shorter, self.shorter

    def to_json(self) -> dict:
        if self.mode == "exact":
            return {"mode": "exact", "height": self.height, "width": self.width}
        return {"mode": "shorter", "shorter": self.shorter}

    @classmethod
    def from_json(cls, d: dict) -> "ResizeSpec":
        return cls(**d)

    def describe(self) -> str:
        if self.mode == "exact":
            return f"exactly {self.height}x{self.width}"
        return f"shorter side {self.shorter}"


def resize_rgb(img: np.ndarray, spec: ResizeSpec) -> np.ndarray:
    """Resize an HxWx3 uint8 image with ``cv2.resize`` (area shrinking, bicubic enlarging).

    Packing and ``preprocess_image`` both call this one function. It uses the pip
    OpenCV rather than ``mx.image.imresize`` (the same OpenCV routine behind MXNet's
    engine) because going through the engine adds a round trip to every call.
    """
    h, w = img.shape[:2]
    nh, nw = spec.output_hw(h, w)
    if (nh, nw) == (h, w):
        return img
    interp = INTERP_SHRINK if nh * nw < h * w else INTERP_ENLARGE
    return cv2.resize(img, (nw, nh), interpolation=interp)


def encode_image(img: np.ndarray, label: float, record_id: int, encoding: str, quality: int) -> bytes:
    """One RecordIO record of an RGB image, encoded by ``mx.recordio.pack_img``."""
    mx = mxnet()
    header = mx.recordio.IRHeader(0, float(label), int(record_id), 0)
    bgr = np.ascontiguousarray(img[:, :, ::-1])
    return mx.recordio.pack_img(header, bgr, quality=quality, img_fmt=encoding)


def record_image(record: bytes) -> tuple[float, np.ndarray]:
    """``(label, RGB image)`` of a packed record, decoded as ImageRecordIter decodes it."""
    header, buf = mxnet().recordio.unpack(record)
    return float(np.asarray(header.label).reshape(-1)[0]), decode_rgb(buf)


def center_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """The center ``height`` x ``width`` window, offset ``(H-h)//2, (W-w)//2`` as in ImageRecordIter.

    Raises:
        ValueError: the image is smaller than the crop.
    """
    h, w = img.shape[:2]
    if h < height or w < width:
        raise ValueError(f"image {h}x{w} is smaller than the crop {height}x{width}")
    y0, x0 = (h - height) // 2, (w - width) // 2
    return img[y0 : y0 + height, x0 : x0 + width]


def normalize_chw(img_hwc: np.ndarray, mean_chw: np.ndarray, std_rgb) -> np.ndarray:
    """``(pixel - mean) / std`` as (3, H, W) float32, in ImageRecordIter's float32 order of operations."""
    x = img_hwc.astype(np.float32).transpose(2, 0, 1)
    mult = (np.float32(1.0) / np.asarray(std_rgb, np.float32)).reshape(3, 1, 1)
    return ((x - mean_chw.astype(np.float32)) * mult).astype(np.float32)
