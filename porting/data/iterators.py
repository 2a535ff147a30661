"""Training/validation iterators and the matching single-image preprocessing.

Both read every preprocessing decision from the manifest, never from arguments that
could drift: crop size, colour order, mean (image or per-channel) and std.

* ``make_iterators`` gives ``mx.io.ImageRecordIter`` s built with the ``.idx`` file and
  ``shuffle=True`` on training, the only combination that shuffles globally (without
  the index MXNet shuffles inside ~64 MB chunks; PITFALLS 13). Random crop and mirror
  are applied to training only; validation is a center crop. Each is rebuilt at
  ``reset()`` (``EpochRecordIter``) because MXNet's own reset skips records and
  reports wrong ``pad`` values after the first epoch.
* ``preprocess_image`` does to one image what the validation iterator does to a
  record: decode with ``mx.image.imdecode`` (RGB), the packer's resize and re-encoding,
  center crop, ``(x - mean) / std``. Use it at prediction time.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from porting.data import imageproc
from porting.data.manifest import Manifest, load_manifest

mx = imageproc.mxnet()


def _manifest(manifest: Manifest | str | os.PathLike) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def normalization_kwargs(manifest: Manifest, data_shape: tuple[int, int, int]) -> dict:
    """ImageRecordIter arguments that subtract the manifest's mean and divide by its std.

    Raises:
        ValueError: the manifest uses a mean image and ``data_shape`` differs from its
        shape (ImageRecordIter indexes the mean image per output pixel, so any other
        shape would read the wrong pixels or out of bounds).
    """
    norm = manifest.normalization
    kw = {"std_r": norm.std_rgb[0], "std_g": norm.std_rgb[1], "std_b": norm.std_rgb[2]}
    if norm.mode == "image":
        if tuple(data_shape) != tuple(norm.mean_img_shape):
            raise ValueError(
                f"data_shape {tuple(data_shape)} differs from the mean image {tuple(norm.mean_img_shape)} "
                f"of {manifest.path}; rebuild the data with --crop {data_shape[1]}x{data_shape[2]} "
                f"or with --normalize channel"
            )
        kw["mean_img"] = str(norm.mean_img)
    else:
        kw.update(mean_r=norm.mean_rgb[0], mean_g=norm.mean_rgb[1], mean_b=norm.mean_rgb[2])
    return kw


class EpochRecordIter(mx.io.DataIter):
    """An ``ImageRecordIter`` that is rebuilt at every ``reset()``, so every epoch is one clean pass.

    MXNet 1.9.1's own ``reset()`` misbehaves after the first epoch (checked on the
    digits set, 1618 records, batch 100): with ``round_batch=True`` the next epoch
    starts where the wrapped last batch stopped, so a validation pass skips the first
    records, and ``pad`` comes back non-zero on batches in the middle of the epoch
    (``[0, 0, 0, 0, 82, 0, ...]``), which makes metrics drop real images; with
    ``round_batch=False`` the last batch reports ``pad=0`` although it is partly stale.
    A fresh iterator gets all of this right in its first epoch, and building one costs
    milliseconds. Epoch ``e`` of a shuffled iterator uses seed ``seed + e``: a new order
    every epoch, reproducible from the seed.
    """

    def __init__(self, factory, seed: int, reseed: bool):
        self._factory, self._seed, self._reseed = factory, int(seed), bool(reseed)
        self.epoch = 0
        self._it = factory(self._seed)
        super().__init__(self._it.batch_size)
        self.provide_data = self._it.provide_data
        self.provide_label = self._it.provide_label

    def reset(self):
        self.epoch += 1
        self._it = None  # free the old reader (and its threads) first
        self._it = self._factory(self._seed + self.epoch if self._reseed else self._seed)

    def next(self):
        return self._it.next()

    def iter_next(self):
        return self._it.iter_next()

    def getdata(self):
        return self._it.getdata()

    def getlabel(self):
        return self._it.getlabel()

    def getpad(self):
        return self._it.getpad()

    def getindex(self):
        return self._it.getindex()


def image_record_iter(
    rec: str | os.PathLike, idx: str | os.PathLike, batch_size: int, data_shape: tuple[int, int, int],
    normalization: dict, *, train: bool, rand_mirror: bool = True, seed: int = 0,
    preprocess_threads: int = 2, part_index: int = 0, num_parts: int = 1, **kwargs,
) -> EpochRecordIter:
    """An ``ImageRecordIter`` over an indexed ``.rec`` (wrapped in ``EpochRecordIter``).

    ``train=True``: global shuffle (``path_imgidx`` + ``shuffle``, a new order every
    epoch), random crop, and random mirror when ``rand_mirror``. ``train=False``: file
    order, center crop, no mirror. The last batch of an epoch is filled from the start
    of the file and ``pad`` says how many of its entries are fill.
    """

    def factory(epoch_seed: int):
        return mx.io.ImageRecordIter(
            path_imgrec=str(rec),
            path_imgidx=str(idx),
            data_shape=tuple(int(v) for v in data_shape),
            batch_size=int(batch_size),
            label_width=1,
            shuffle=bool(train),
            seed=epoch_seed,
            rand_crop=bool(train),
            rand_mirror=bool(train and rand_mirror),
            preprocess_threads=int(preprocess_threads),
            part_index=int(part_index),
            num_parts=int(num_parts),
            round_batch=True,
            verbose=False,
            **normalization,
            **kwargs,
        )

    return EpochRecordIter(factory, seed, reseed=train)


def make_split_iterator(
    manifest: Manifest | str | os.PathLike, split: str, batch_size: int, *, train: bool = False,
    data_shape: tuple[int, int, int] | None = None, rand_mirror: bool | None = None, seed: int = 0,
    preprocess_threads: int = 2, part_index: int = 0, num_parts: int = 1, **kwargs,
):
    """The iterator of one split of a manifest (``"train"``, ``"val"`` or ``"test"``).

    Raises:
        KeyError: the manifest has no such split.
        ValueError: ``data_shape`` does not fit the manifest (see ``normalization_kwargs``).
    """
    m = _manifest(manifest)
    if split not in m.splits:
        raise KeyError(f"{m.path} has no '{split}' split. Available: {', '.join(m.splits)}")
    shape = tuple(data_shape) if data_shape is not None else tuple(m.data_shape)
    if len(shape) != 3 or shape[0] != 3:
        raise ValueError(f"data_shape must be (3, H, W), got {shape}")
    min_h, min_w = m.resize.min_output_hw()
    if shape[1] > min_h or shape[2] > min_w:
        raise ValueError(f"data_shape {shape} is larger than the packed images ({m.resize.describe()})")
    mirror = m.augmentation.get("rand_mirror", True) if rand_mirror is None else rand_mirror
    s = m.splits[split]
    return image_record_iter(
        s.rec, s.idx, batch_size, shape, normalization_kwargs(m, shape), train=train, rand_mirror=mirror,
        seed=seed, preprocess_threads=preprocess_threads, part_index=part_index, num_parts=num_parts, **kwargs,
    )


def make_iterators(
    manifest: Manifest | str | os.PathLike, batch_size: int, data_shape: tuple[int, int, int] | None = None,
    *, rand_mirror: bool | None = None, seed: int = 0, preprocess_threads: int = 2,
    part_index: int = 0, num_parts: int = 1, **kwargs,
):
    """``(train_iter, val_iter)`` from a manifest; ``val_iter`` is None when there is no val split.

    Args:
        manifest: a ``Manifest``, ``manifest.json`` or its directory.
        batch_size: images per batch.
        data_shape: ``(3, H, W)``; defaults to the manifest's (the crop the mean image has).
        rand_mirror: defaults to the manifest's ``augmentation.rand_mirror`` (off for digits).
        seed: shuffle/augmentation seed of the training iterator.
        part_index, num_parts: for distributed training, each worker reads its part.
        **kwargs: passed to both ``ImageRecordIter`` s (e.g. ``max_random_scale``).
    """
    m = _manifest(manifest)
    common = dict(data_shape=data_shape, seed=seed, preprocess_threads=preprocess_threads,
                  part_index=part_index, num_parts=num_parts, **kwargs)
    train = make_split_iterator(m, "train", batch_size, train=True, rand_mirror=rand_mirror, **common)
    val = make_split_iterator(m, "val", batch_size, train=False, **common) if "val" in m.splits else None
    return train, val


def preprocess_image(
    manifest: Manifest | str | os.PathLike, image: bytes | str | os.PathLike, *, packed: bool = False,
) -> np.ndarray:
    """One image as the network sees it at validation: (3, H, W) float32, RGB, normalised.

    Args:
        manifest: the data set's manifest (decides every step).
        image: encoded image bytes, or a path to an image file.
        packed: the bytes are already a record's image (resized and encoded by the
            packer): skip the resize and re-encoding.

    The source image is decoded with ``mx.image.imdecode``, resized like the packer
    resized it, encoded and decoded again with the packer's codec and quality (so JPEG
    artefacts match what training saw), center-cropped and normalised with the
    manifest's mean and std.
    """
    m = _manifest(manifest)
    buf = image if isinstance(image, (bytes, bytearray)) else Path(image).read_bytes()
    img = imageproc.decode_rgb(bytes(buf))
    if not packed:
        img = imageproc.resize_rgb(img, m.resize)
        _, img = imageproc.record_image(imageproc.encode_image(img, 0, 0, m.encoding, m.quality))
    _, h, w = m.data_shape
    crop = imageproc.center_crop(img, h, w)
    return imageproc.normalize_chw(crop, _mean_chw(m), m.normalization.std_rgb)


_MEAN_CACHE: dict[tuple[str, float], np.ndarray] = {}


def _mean_chw(m: Manifest) -> np.ndarray:
    key = (str(m.path), m.path.stat().st_mtime)
    if key not in _MEAN_CACHE:
        _MEAN_CACHE[key] = m.normalization.mean_array()
    return _MEAN_CACHE[key]
