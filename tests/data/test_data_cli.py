"""End-to-end tests of ``python -m porting.data`` on fixtures the tests create.

Layouts (class folders, Oxford 17, Oxford 102 with .mat files, embedded digits), every
bad-input case of the issue, atomicity (a packer killed mid-way, then re-run), the
no-overlap guarantee (checked on the decoded records themselves), and the iterators.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

import cv2  # noqa: E402
from scipy.io import savemat  # noqa: E402

from porting.data import imageproc  # noqa: E402
from porting.cli.data import main  # noqa: E402
from porting.data.iterators import make_iterators, make_split_iterator, preprocess_image  # noqa: E402
from porting.data.manifest import ManifestError, load_manifest  # noqa: E402
from porting.data.packing import PAUSE_ENV  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["ant", "bee", "cat", "dog"]


# -- fixtures -----------------------------------------------------------------------------


def write_image(path: Path, seed: int, h: int = 20, w: int = 24) -> None:
    """A unique noise image (so no two fixtures are duplicates unless made so on purpose)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)


def make_folders(root: Path, per_class: int = 10, classes=CLASSES, seed0: int = 0) -> Path:
    """Class folders, written class by class (the order that gives single-class batches)."""
    for c, cls in enumerate(classes):
        for i in range(per_class):
            write_image(root / cls / f"img_{i:03d}.jpg", seed0 + 1000 * c + i)
    return root


def run_ok(argv, capsys) -> tuple[str, str]:
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out, err


def run_error(argv, capsys) -> str:
    """Run expecting exit 2 with exactly one ``error:`` line; return that line."""
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def records(rec: Path, idx: Path):
    """``(label, RGB image)`` of every record, in file order, decoded as the iterator does."""
    reader = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "r")
    try:
        return [imageproc.record_image(reader.read_idx(k)) for k in sorted(reader.keys)]
    finally:
        reader.close()


def pixel_hash(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def lst_rows(path: Path) -> list[tuple[int, float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        i, label, rel = line.split("\t")
        rows.append((int(i), float(label), rel))
    return rows


# -- class folders: the whole pipeline ----------------------------------------------------


@pytest.fixture(scope="module")
def folders_build(tmp_path_factory):
    """A class-sorted folder set with every kind of bad file and duplicate, built once."""
    tmp = tmp_path_factory.mktemp("folders")
    src = make_folders(tmp / "src")
    whole = (src / "ant" / "img_000.jpg").read_bytes()
    (src / "ant" / "truncated.jpg").write_bytes((src / "ant" / "img_001.jpg").read_bytes()[:300])
    (src / "bee" / "notes.txt").write_text("not an image\n")
    (src / "cat" / "empty.png").write_bytes(b"")
    os.symlink(src / "nowhere.jpg", src / "dog" / "broken_link.jpg")  # unreadable
    (src / "ant" / "zz_copy.jpg").write_bytes(whole)  # same class: a duplicate, kept once
    write_image(src / "bee" / "same.png", 99)  # the same picture in two classes: dropped
    write_image(src / "cat" / "same.png", 99)
    (src / "README.txt").write_text("not in a class folder\n")
    out = tmp / "out"
    argv = ["--layout", "folders", "--src", src, "--out", out, "--resize", 16, "--crop", "12x12", "--test", 0.2]
    return src, out, argv


def test_folders_build_lists_splits_and_skips(folders_build, capsys):
    src, out, argv = folders_build
    stdout, stderr = run_ok(argv, capsys)
    assert "wrote" in stdout
    m = load_manifest(out, verify="hash")
    assert m.classes == CLASSES
    assert m.colour_order == "RGB" and m.data_shape == (3, 12, 12) and m.seed == 0
    # 10 usable images per class: val round(1.0) = 1, test round(2.0) = 2, train 7
    for split, want in (("train", 7), ("val", 1), ("test", 2)):
        assert m.splits[split].per_class == {c: want for c in CLASSES}, split
        assert m.splits[split].count == 4 * want

    bad = {"ant/truncated.jpg", "bee/notes.txt", "cat/empty.png", "dog/broken_link.jpg",
           "bee/same.png", "cat/same.png", "README.txt"}
    assert {s["path"] for s in m.skipped} == bad
    for path in bad:
        assert f"skipped: {path}:" in stderr
    reasons = {s["path"]: s["reason"] for s in m.skipped}
    assert "truncated JPEG" in reasons["ant/truncated.jpg"]
    assert "not a decodable image" in reasons["bee/notes.txt"]
    assert "empty file" in reasons["cat/empty.png"]
    assert "unreadable" in reasons["dog/broken_link.jpg"]
    assert "under another class" in reasons["bee/same.png"]
    assert m.duplicates == [{"path": "ant/zz_copy.jpg", "same_as": "ant/img_000.jpg"}]

    listed = [rel for s in m.splits.values() for _, _, rel in lst_rows(s.lst)]
    assert len(listed) == len(set(listed)) == 40
    assert not (set(listed) & (bad | {"ant/zz_copy.jpg"}))
    train_labels = [label for _, label, _ in lst_rows(m.splits["train"].lst)]
    assert train_labels != sorted(train_labels)  # shuffled, although the folders are class-sorted
    assert m.raw["tool_versions"]["mxnet"] == mx.__version__
    assert set(m.raw["splits"]["train"]["sha256"]) == {"lst", "rec", "idx"}


def test_folders_records_match_lists_and_never_overlap(folders_build, capsys):
    src, out, argv = folders_build
    if not (out / "manifest.json").exists():
        run_ok(argv, capsys)
    m = load_manifest(out)
    seen: dict[str, str] = {}
    for name, s in m.splits.items():
        recs = records(s.rec, s.idx)
        rows = lst_rows(s.lst)
        assert [label for label, _ in recs] == [label for _, label, _ in rows]  # .rec in .lst order
        for (_, img), (_, _, rel) in zip(recs, rows):
            assert img.shape[:2] == imageproc.ResizeSpec("shorter", 16).output_hw(20, 24)  # 16 x 19
            h = pixel_hash(img)
            assert seen.setdefault(h, name) == name, f"{rel} content is in {seen[h]} and {name}"
    # The pipeline's own record of source-content hashes agrees: disjoint across splits.
    by_split: dict[str, set] = {}
    for line in (out / "contents.tsv").read_text().splitlines()[1:]:
        split, _, _, digest, _ = line.split("\t")
        by_split.setdefault(split, set()).add(digest)
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])


def test_mean_image_comes_from_training_records_only(folders_build, capsys):
    src, out, argv = folders_build
    if not (out / "manifest.json").exists():
        run_ok(argv, capsys)
    m = load_manifest(out)
    crops = np.stack([imageproc.center_crop(img, 12, 12) for _, img in records(m.splits["train"].rec, m.splits["train"].idx)])
    expected = crops.astype(np.float64).mean(axis=0).transpose(2, 0, 1)
    saved = mx.nd.load(str(m.normalization.mean_img))
    assert list(saved) == ["mean_img"]
    assert saved["mean_img"].shape == (3, 12, 12)
    np.testing.assert_allclose(saved["mean_img"].asnumpy(), expected, atol=1e-3)
    np.testing.assert_allclose(m.normalization.mean_rgb, expected.mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(m.normalization.std_rgb, crops.reshape(-1, 3).std(axis=0), rtol=1e-6)


def test_iterators_subtract_the_manifest_mean_and_match_preprocess_image(folders_build, capsys):
    src, out, argv = folders_build
    if not (out / "manifest.json").exists():
        run_ok(argv, capsys)
    m = load_manifest(out)
    train, val = make_iterators(out, batch_size=4)
    assert train.provide_data[0].shape == (4, 3, 12, 12)
    batch = val.next()
    x = batch.data[0].asnumpy()
    mean_img = mx.nd.load(str(out / m.raw["normalization"]["mean_img"]))["mean_img"].asnumpy()
    std = np.asarray(m.raw["normalization"]["std_rgb"], np.float32).reshape(3, 1, 1)
    val_recs = records(m.splits["val"].rec, m.splits["val"].idx)
    rows = lst_rows(m.splits["val"].lst)
    for k in range(4):
        crop = imageproc.center_crop(val_recs[k][1], 12, 12).transpose(2, 0, 1).astype(np.float32)
        np.testing.assert_allclose(x[k], (crop - mean_img) / std, atol=1e-4)
        # prediction-time preprocessing of the *source file* gives what validation saw
        from_source = preprocess_image(m, src / rows[k][2])
        np.testing.assert_allclose(from_source, x[k], atol=1e-5)
    assert batch.label[0].asnumpy().tolist() == [label for _, label, _ in rows[:4]]

    test_iter = make_split_iterator(m, "test", batch_size=4)
    assert test_iter.next().data[0].shape == (4, 3, 12, 12)
    with pytest.raises(ValueError, match="differs from the mean image"):
        make_iterators(m, batch_size=4, data_shape=(3, 10, 10))


def test_rerun_with_same_arguments_is_a_no_op(folders_build, capsys):
    src, out, argv = folders_build
    if not (out / "manifest.json").exists():
        run_ok(argv, capsys)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    stdout, _ = run_ok(argv, capsys)
    assert stdout.startswith("up to date")
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert after == before


# -- the other layouts --------------------------------------------------------------------


def make_oxford17(root: Path, n: int) -> Path:
    for i in range(1, n + 1):
        write_image(root / "jpg" / f"image_{i:04d}.jpg", i, 8, 8)
    return root


def test_oxford17_labels_by_position_and_channel_normalization(tmp_path, capsys):
    src = make_oxford17(tmp_path / "17flowers", 160)
    out = tmp_path / "out"
    run_ok(["--layout", "oxford17", "--src", src, "--out", out, "--size", "8x8", "--normalize", "channel"], capsys)
    m = load_manifest(out)
    assert m.classes == ["class_00", "class_01"]
    assert m.splits["train"].per_class == {"class_00": 72, "class_01": 72}
    assert m.splits["val"].per_class == {"class_00": 8, "class_01": 8}
    for s in m.splits.values():
        for _, label, rel in lst_rows(s.lst):
            number = int(rel[len("jpg/image_"):-len(".jpg")])
            assert label == (number - 1) // 80
    # per-channel mode: what the iterator subtracts is the manifest's mean_rgb
    _, val = make_iterators(m, batch_size=8)
    x = val.next().data[0].asnumpy()
    first = records(m.splits["val"].rec, m.splits["val"].idx)[0][1].transpose(2, 0, 1).astype(np.float32)
    mean = np.asarray(m.normalization.mean_rgb, np.float32).reshape(3, 1, 1)
    std = np.asarray(m.normalization.std_rgb, np.float32).reshape(3, 1, 1)
    np.testing.assert_allclose(x[0], (first - mean) / std, atol=1e-4)


def test_oxford17_bad_counts(tmp_path, capsys):
    src = make_oxford17(tmp_path / "17flowers", 81)
    msg = run_error(["--layout", "oxford17", "--src", src, "--out", tmp_path / "o1"], capsys)
    assert "81 images cannot be labelled" in msg and "multiple of 80" in msg
    (src / "jpg" / "image_0005.jpg").unlink()
    msg = run_error(["--layout", "oxford17", "--src", src, "--out", tmp_path / "o2"], capsys)
    assert "without gaps" in msg and "5" in msg
    msg = run_error(["--layout", "oxford17", "--src", tmp_path / "none", "--out", tmp_path / "o3"], capsys)
    assert "does not exist" in msg


OX102_LABELS = [1, 1, 2, 3, 2, 1, 3, 3, 2, 1, 2, 3, 1, 2, 3, 1, 2, 3]  # 6 per class


def make_oxford102(root: Path, labels=OX102_LABELS, setid=True) -> Path:
    for i in range(1, len(labels) + 1):
        write_image(root / "jpg" / f"image_{i:05d}.jpg", 5000 + i, 10, 12)
    savemat(str(root / "imagelabels.mat"), {"labels": np.asarray([labels], np.uint8)})
    if setid:
        savemat(str(root / "setid.mat"), {
            "trnid": np.asarray([[1, 3, 4, 5, 7, 10, 11, 12, 13]], np.uint16),
            "valid": np.asarray([[2, 8, 9, 14, 15]], np.uint16),
            "tstid": np.asarray([[6, 16, 17, 18]], np.uint16),
        })
    return root


def test_oxford102_official_split(tmp_path, capsys):
    src = make_oxford102(tmp_path / "102flowers")
    out = tmp_path / "out"
    run_ok(["--layout", "oxford102", "--src", src, "--out", out, "--size", "10x12", "--official-split"], capsys)
    m = load_manifest(out)
    assert m.classes == ["class_001", "class_002", "class_003"]
    want = {"train": {1, 3, 4, 5, 7, 10, 11, 12, 13}, "val": {2, 8, 9, 14, 15}, "test": {6, 16, 17, 18}}
    for split, ids in want.items():
        rows = lst_rows(m.splits[split].lst)
        assert {int(rel[len("jpg/image_"):-4]) for _, _, rel in rows} == ids
        for _, label, rel in rows:
            assert label == OX102_LABELS[int(rel[len("jpg/image_"):-4]) - 1] - 1
    assert m.raw["split"]["method"].startswith("official")


def test_oxford102_stratified_when_not_official(tmp_path, capsys):
    src = make_oxford102(tmp_path / "102flowers", setid=False)
    out = tmp_path / "out"
    run_ok(["--layout", "oxford102", "--src", src, "--out", out, "--size", "10x12", "--val", "0.2"], capsys)
    m = load_manifest(out)
    assert m.splits["val"].per_class == {"class_001": 1, "class_002": 1, "class_003": 1}
    assert m.splits["train"].count == 15


def test_oxford102_bad_mat_files(tmp_path, capsys):
    src = make_oxford102(tmp_path / "a", setid=False)
    base = ["--layout", "oxford102", "--src", src, "--size", "10x12"]
    msg = run_error(base + ["--out", tmp_path / "o1", "--official-split"], capsys)
    assert "setid.mat (not found)" in msg
    (src / "imagelabels.mat").unlink()
    msg = run_error(base + ["--out", tmp_path / "o2"], capsys)
    assert "imagelabels.mat (not found)" in msg
    savemat(str(src / "imagelabels.mat"), {"labels": np.asarray([OX102_LABELS[:-1]])})
    msg = run_error(base + ["--out", tmp_path / "o3"], capsys)
    assert "has 17 labels but" in msg and "holds 18" in msg
    (src / "imagelabels.mat").write_bytes(b"MATLAB? no, garbage")
    msg = run_error(base + ["--out", tmp_path / "o4"], capsys)
    assert "not a readable .mat file" in msg


def test_digits_embedded_default(tmp_path, capsys):
    out = tmp_path / "digits"
    stdout, _ = run_ok(["--layout", "digits", "--out", out], capsys)
    m = load_manifest(out)
    assert m.classes == [str(d) for d in range(10)]
    assert sum(s.count for s in m.splits.values()) + len(m.duplicates) + len(m.skipped) == 1797
    assert m.raw["dataset"]["identity"] == "digits:sklearn.datasets.load_digits"
    assert m.augmentation["rand_mirror"] is False  # a mirrored digit is another digit
    pngs = sorted((out / "digits_src").rglob("*.png"))
    assert len(pngs) == 1797
    img = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    assert max(cv2.imread(str(p)).max() for p in pngs[:50]) == 255  # 16 scaled to 255
    label, first = records(m.splits["train"].rec, m.splits["train"].idx)[0]
    assert first.shape == (36, 36, 3)
    train, val = make_iterators(m, batch_size=100)
    b = train.next()
    assert b.data[0].shape == (100, 3, 32, 32)
    assert (np.bincount(b.label[0].asnumpy().astype(int), minlength=10) > 0).all()
    stdout, _ = run_ok(["--layout", "digits", "--out", out], capsys)
    assert stdout.startswith("up to date")


# -- bad input: one clear error each ------------------------------------------------------


def test_empty_class_folder(tmp_path, capsys):
    src = make_folders(tmp_path / "src", per_class=3)
    (src / "emu").mkdir()
    msg = run_error(["--layout", "folders", "--src", src, "--out", tmp_path / "out", "--resize", 16], capsys)
    assert "class 'emu' is empty" in msg


def test_class_whose_files_are_all_bad(tmp_path, capsys):
    src = make_folders(tmp_path / "src", per_class=3)
    (src / "emu").mkdir()
    (src / "emu" / "a.jpg").write_bytes(b"\xff\xd8 broken")
    msg = run_error(["--layout", "folders", "--src", src, "--out", tmp_path / "out", "--resize", 16], capsys)
    assert "class 'emu' has no usable images (1 file(s) there were skipped)" in msg


def test_class_too_small_for_the_split(tmp_path, capsys):
    src = make_folders(tmp_path / "src", per_class=3)
    write_image(src / "emu" / "only.jpg", 777)
    msg = run_error(["--layout", "folders", "--src", src, "--out", tmp_path / "out", "--resize", 16], capsys)
    assert "class 'emu' has 1 image(s)" in msg and "needs at least 2" in msg


def test_output_directory_holding_another_data_set(tmp_path, capsys):
    a = make_folders(tmp_path / "a", per_class=3)
    b = make_folders(tmp_path / "b", per_class=3, seed0=50_000)
    out = tmp_path / "out"
    run_ok(["--layout", "folders", "--src", a, "--out", out, "--resize", 16], capsys)
    msg = run_error(["--layout", "folders", "--src", b, "--out", out, "--resize", 16], capsys)
    assert "holds a different data set" in msg and "--force" in msg
    run_ok(["--layout", "folders", "--src", b, "--out", out, "--resize", 16, "--force"], capsys)
    assert load_manifest(out).raw["dataset"]["source"] == str(b.resolve())
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    msg = run_error(["--layout", "folders", "--src", a, "--out", foreign, "--resize", 16], capsys)
    assert "did not write (thesis.tex)" in msg


@pytest.mark.parametrize("extra, expected", [
    (["--val", "1.2"], "must each be in [0, 1)"),
    (["--val", "0.5", "--test", "0.5"], "val + test < 1"),
    (["--official-split"], "only for --layout oxford102"),
    (["--crop", "40x40"], "larger than the resized images"),
    (["--encoding", "png", "--quality", "50"], "out of range for png"),
])
def test_bad_arguments(tmp_path, capsys, extra, expected):
    src = make_folders(tmp_path / "src", per_class=2)
    msg = run_error(["--layout", "folders", "--src", src, "--out", tmp_path / "out", "--resize", 16] + extra, capsys)
    assert expected in msg


def test_out_inside_src_is_refused(tmp_path, capsys):
    src = make_folders(tmp_path / "src", per_class=2)
    msg = run_error(["--layout", "folders", "--src", src, "--out", src / "out", "--resize", 16], capsys)
    assert "is inside --src" in msg


def test_no_validation_split(tmp_path, capsys):
    src = make_folders(tmp_path / "src", per_class=2)
    run_ok(["--layout", "folders", "--src", src, "--out", tmp_path / "out", "--resize", 16, "--val", 0], capsys)
    m = load_manifest(tmp_path / "out")
    assert list(m.splits) == ["train"] and m.splits["train"].count == 8
    train, val = make_iterators(m, batch_size=4)
    assert val is None and train.next().data[0].shape == (4, 3, 16, 16)


def test_missing_src(tmp_path, capsys):
    msg = run_error(["--layout", "folders", "--out", tmp_path / "out"], capsys)
    assert "--src is required" in msg


# -- atomicity ----------------------------------------------------------------------------


def _start_paused(argv, after: int) -> subprocess.Popen:
    env = dict(os.environ, **{PAUSE_ENV: str(after)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "porting.data", *map(str, argv), "--no-progress"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    for line in proc.stderr:  # blocks until the packer reports the pause
        if "paused after" in line:
            return proc
        assert time.monotonic() < deadline
    proc.kill()
    raise AssertionError(f"the packer never paused: rc={proc.wait()} {proc.stdout.read()}")


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def test_killed_while_packing_leaves_nothing_that_looks_complete(tmp_path, capsys):
    src = make_folders(tmp_path / "src", per_class=10)
    out = tmp_path / "out"
    argv = ["--layout", "folders", "--src", src, "--out", out, "--resize", 16]
    proc = _start_paused(argv, after=15)  # in the middle of train.rec
    _kill(proc)
    names = sorted(p.name for p in out.iterdir())
    assert "manifest.json" not in names
    assert not list(out.glob("*.rec")) and not list(out.glob("*.idx"))
    staged = [p.name for p in out.glob(".staging-*/*")]
    assert "train.rec.partial" in staged  # the partial file exists, but only under that name
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(out)

    run_ok(argv, capsys)  # re-run: completes and cleans up
    assert not list(out.glob(".staging-*"))
    m = load_manifest(out, verify="hash")
    assert sum(s.count for s in m.splits.values()) == 40
    assert len(records(m.splits["train"].rec, m.splits["train"].idx)) == m.splits["train"].count

    # A rebuild (new seed: a changed split, so --force) killed mid-way leaves the previous data set intact.
    before = json.loads((out / "manifest.json").read_text())
    proc = _start_paused(argv + ["--seed", "1", "--force"], after=5)
    _kill(proc)
    assert json.loads((out / "manifest.json").read_text()) == before
    load_manifest(out, verify="hash")
    stdout, _ = run_ok(argv + ["--seed", "1", "--force"], capsys)
    assert stdout.startswith("wrote") and load_manifest(out, verify="hash").seed == 1
    assert Counter(p.name.split(".")[-1] for p in out.iterdir() if p.is_file() and not p.name.startswith(".")) == \
        Counter({"lst": 2, "rec": 2, "idx": 2, "json": 1, "bin": 1, "tsv": 1})


# -- progress -------------------------------------------------------------------------------


def test_progress_bars_on_a_terminal_and_no_progress(tmp_path, capsys):
    from porting import progress

    src = make_folders(tmp_path / "src", per_class=3)
    argv = ["--layout", "folders", "--src", str(src), "--resize", "16"]
    progress.configure(True)  # as on a terminal
    try:
        assert main(argv + ["--out", str(tmp_path / "a")]) == 0
        err = capsys.readouterr().err
        assert "check:" in err and "pack train:" in err and "img/s]" in err
        assert main(argv + ["--out", str(tmp_path / "b"), "--no-progress"]) == 0
        err = capsys.readouterr().err
        assert "check:" not in err and "pack train:" not in err
    finally:
        progress.configure(None)
