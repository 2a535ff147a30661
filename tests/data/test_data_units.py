"""Unit tests of the data pipeline's pure parts: splits, image checks, resize, iterator shuffling."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

import cv2  # noqa: E402

from porting.data import imageproc  # noqa: E402
from porting.data.imageproc import BadImage, ResizeSpec  # noqa: E402
from porting.data.splits import (  # noqa: E402
    SplitError, dedupe, is_class_sorted, overlaps, split_sizes, stratified_split,
)


# -- splits -------------------------------------------------------------------------------


def test_stratified_split_keeps_every_class_in_every_split_and_is_seeded():
    labels = [y for y in range(4) for _ in range(30)]  # class-sorted input
    a = stratified_split(labels, 0.1, 0.2, seed=7)
    b = stratified_split(labels, 0.1, 0.2, seed=7)
    c = stratified_split(labels, 0.1, 0.2, seed=8)
    assert a == b and a != c
    for split, want in (("train", 21), ("val", 3), ("test", 6)):
        counts = Counter(labels[i] for i in a[split])
        assert counts == {y: want for y in range(4)}, split
    everything = a["train"] + a["val"] + a["test"]
    assert sorted(everything) == list(range(len(labels)))  # a partition
    for split in ("train", "val", "test"):
        assert not is_class_sorted([labels[i] for i in a[split]]), split


def test_split_sizes_need_one_image_per_requested_split():
    assert split_sizes(10, 0.1, 0.0) == (9, 1, 0)
    assert split_sizes(2, 0.1, 0.0) == (1, 1, 0)  # at least one val image when val is asked
    assert split_sizes(5, 0.0, 0.0) == (5, 0, 0)
    with pytest.raises(SplitError, match="needs at least 2"):
        split_sizes(1, 0.1, 0.0)
    with pytest.raises(SplitError, match="needs at least 3"):
        split_sizes(2, 0.1, 0.1)
    with pytest.raises(SplitError, match="class 'b'"):
        stratified_split([0, 0, 0, 1], 0.1, 0.0, 0, ["a", "b"])


def test_dedupe_keeps_one_copy_and_drops_label_conflicts():
    keys = ["a/1", "a/2", "b/3", "a/4", "b/5"]
    hashes = ["h1", "h1", "h2", "h2", "h3"]
    labels = [0, 0, 1, 0, 1]
    d = dedupe(keys, hashes, labels)
    assert d.kept == [0, 4]  # a/1 (a/2 is its duplicate); h2 is in two classes: both dropped
    assert d.duplicates == [(1, 0)]
    assert sorted(i for i, _ in d.conflicts) == [2, 3]


def test_overlaps_reports_content_in_two_splits():
    assert overlaps({"train": ["x", "y"], "val": ["z"]}) == []
    assert overlaps({"train": ["x", "y"], "val": ["y"]}) == [("y", "train", "val")]


# -- image checks -------------------------------------------------------------------------


def _encoded(fmt: str, h=24, w=20, seed=0) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.imencode(fmt, img)[1].tobytes()


@pytest.mark.parametrize("fmt", [".jpg", ".png"])
def test_truncated_images_are_rejected_although_opencv_decodes_them(fmt):
    whole = _encoded(fmt)
    imageproc.check_complete(whole)
    imageproc.probe_image(whole)
    cut = whole[: len(whole) * 2 // 3]
    if fmt == ".jpg":  # the trap: OpenCV returns a half-grey picture without an error
        assert cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(BadImage, match="truncated"):
        imageproc.probe_image(cut)
    with pytest.raises(BadImage, match="truncated"):
        imageproc.decode_rgb(cut)


@pytest.mark.parametrize("buf, reason", [(b"", "empty"), (b"plain text, not an image", "not a decodable"),
                                         (b"\x89PNG\r\n\x1a\n" + b"\0" * 40 + b"IEND", "not a decodable")])
def test_non_images_are_rejected_synchronously(buf, reason):
    with pytest.raises(BadImage, match=reason):
        imageproc.probe_image(buf)
    mx.nd.waitall()  # nothing asynchronous was left behind to fail later


def test_decode_is_rgb_and_survives_packing():
    red_bgr = np.zeros((10, 12, 3), np.uint8)
    red_bgr[:, :, 2] = 255  # pure red in OpenCV's BGR
    png = cv2.imencode(".png", red_bgr)[1].tobytes()
    rgb = imageproc.decode_rgb(png)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    label, back = imageproc.record_image(imageproc.encode_image(rgb, 3, 7, ".png", 3))
    assert label == 3.0 and back[0, 0].tolist() == [255, 0, 0]


def test_resize_spec_sizes():
    s = ResizeSpec("shorter", 32)
    assert s.output_hw(64, 100) == (32, 50)
    assert s.output_hw(100, 64) == (50, 32)
    assert s.output_hw(8, 8) == (32, 32)
    assert ResizeSpec("exact", height=20, width=30).output_hw(64, 100) == (20, 30)
    assert imageproc.resize_rgb(np.zeros((64, 100, 3), np.uint8), s).shape == (32, 50, 3)
    with pytest.raises(ValueError):
        ResizeSpec("shorter", 0)


def test_center_crop_offsets_match_image_record_iter():
    img = np.arange(36 * 41 * 3, dtype=np.int64).reshape(36, 41, 3)
    c = imageproc.center_crop(img, 32, 32)
    assert c[0, 0, 0] == img[2, 4, 0]  # (36-32)//2, (41-32)//2
    with pytest.raises(ValueError, match="smaller than the crop"):
        imageproc.center_crop(img, 40, 40)


# -- iterator shuffling on a class-sorted record file --------------------------------------


def _sorted_rec(tmp_path, n_classes=4, per_class=48):
    rec, idx = tmp_path / "sorted.rec", tmp_path / "sorted.idx"
    w = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
    i = 0
    for y in range(n_classes):
        for _ in range(per_class):
            img = np.full((8, 8, 3), i, np.uint8)  # the pixel value is the record id
            w.write_idx(i, imageproc.encode_image(img, y, i, ".png", 1))
            i += 1
    w.close()
    return rec, idx


def test_index_plus_shuffle_mixes_a_class_sorted_record_file(tmp_path):
    from porting.data.iterators import image_record_iter

    rec, idx = _sorted_rec(tmp_path)
    norm = {"mean_r": 0.0, "mean_g": 0.0, "mean_b": 0.0}
    control = image_record_iter(rec, idx, 32, (3, 8, 8), norm, train=False)
    first = control.next().label[0].asnumpy()
    assert len(set(first.tolist())) == 1  # what an unshuffled, sorted .rec gives: one class per batch

    it = image_record_iter(rec, idx, 32, (3, 8, 8), norm, train=True, seed=3)
    for epoch in range(2):
        it.reset()
        for k, batch in enumerate(it):
            if k == 3:
                break
            hist = np.bincount(batch.label[0].asnumpy().astype(int), minlength=4)
            assert (hist > 0).sum() >= 3, (epoch, k, hist)
            assert hist.max() <= 20, (epoch, k, hist)  # 32 drawn from 4 equal classes


def test_every_epoch_is_one_full_pass_with_pad_only_at_the_end(tmp_path):
    """MXNet's own reset() skips records and reports stray pads; EpochRecordIter must not."""
    from porting.data.iterators import image_record_iter

    rec, idx = _sorted_rec(tmp_path)  # 192 records, ids 0..191 stored as pixel values
    norm = {"mean_r": 0.0, "mean_g": 0.0, "mean_b": 0.0}
    for train in (True, False):
        it = image_record_iter(rec, idx, 50, (3, 8, 8), norm, train=train, seed=5)
        orders = []
        for epoch in range(3):
            ids, pads = [], []
            for batch in it:
                pads.append(batch.pad)
                ids += batch.data[0].asnumpy()[: 50 - batch.pad, 0, 0, 0].astype(int).tolist()
            it.reset()
            assert pads == [0, 0, 0, 8], (train, epoch, pads)  # 192 = 3 * 50 + 42
            assert sorted(ids) == list(range(192)), (train, epoch)
            orders.append(ids)
        if train:
            assert orders[0] != orders[1] != orders[2]  # a new shuffle every epoch
        else:
            assert orders[0] == orders[1] == orders[2] == list(range(192))
