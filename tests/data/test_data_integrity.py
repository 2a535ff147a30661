"""Content checks of a packed data set (``porting.data.integrity``), header-size checks before decoding, split changes.

The data set is built once (two classes of noise images); each test damages a copy.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from porting.cli.data import main
from porting.data import imageproc, integrity
from porting.data.build import split_changes
from porting.data.build_config import BuildConfig
from porting.data.manifest import ManifestError, load_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    for c, cls in enumerate(("ant", "bee")):
        for i in range(10):
            path = root / "src" / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), np.random.default_rng(100 * c + i).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    out = root / "data"
    assert main(["--layout", "folders", "--src", str(root / "src"), "--out", str(out), "--resize", "20",
                 "--no-progress"]) == 0
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    return Path(shutil.copytree(dataset, tmp_path / "data"))


def _flip(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))


def _rewrite_manifest(data: Path, change) -> None:
    raw = json.loads((data / "manifest.json").read_text())
    change(raw)
    (data / "manifest.json").write_text(json.dumps(raw))


def test_manifest_records_both_digests_and_the_sampling(dataset):
    m = load_manifest(dataset, verify="quick")
    assert m.raw["integrity"] == {"full_sha256_below": integrity.FULL_HASH_BELOW, "chunks": integrity.SAMPLE_CHUNKS,
                                  "chunk_bytes": integrity.SAMPLE_BYTES}
    rec = m.splits["train"].rec
    assert m.splits["train"].sha256["rec"] == integrity.sha256_file(rec)
    assert m.splits["train"].sampled["rec"] == integrity.sampled_sha256(rec)
    assert m.warnings == []


def test_one_flipped_bit_with_the_same_size_is_caught_by_the_quick_check(copy):
    rec = copy / "train.rec"
    size = rec.stat().st_size
    _flip(rec, size // 2)
    assert rec.stat().st_size == size
    load_manifest(copy, verify="size")  # sizes alone cannot see it
    with pytest.raises(ManifestError, match=r"train.rec does not match its recorded content hash .* re-run porting"):
        load_manifest(copy, verify="quick")
    with pytest.raises(ManifestError, match="does not match its recorded SHA-256"):
        load_manifest(copy, verify="hash")


def test_large_files_are_sampled_and_the_full_check_sees_every_byte(copy):
    """A file above full_sha256_below gets the sampled hash: a flip between samples passes, --verify-data catches it."""
    params = {"full_sha256_below": 0, "chunks": 2, "chunk_bytes": 64}  # as if every file were large

    def sampled(raw):
        raw["integrity"] = params
        for split in raw["splits"].values():
            split["sampled_sha256"] = {ext: integrity.sampled_sha256(copy / f"{name}.{ext}", 2, 64)
                                       for name in [split["files"]["rec"][:-4]] for ext in ("lst", "rec", "idx")}

    _rewrite_manifest(copy, sampled)
    rec = copy / "train.rec"
    load_manifest(copy, verify="quick")
    _flip(rec, 10)  # inside the first sampled chunk
    with pytest.raises(ManifestError, match="content hash"):
        load_manifest(copy, verify="quick")
    _flip(rec, 10)
    _flip(rec, rec.stat().st_size // 2)  # between the two samples
    load_manifest(copy, verify="quick")  # the documented limit of sampling
    with pytest.raises(ManifestError, match="SHA-256"):
        load_manifest(copy, verify="hash")


def test_older_manifests_still_load(copy, monkeypatch):
    def older(raw):  # before sampled hashes: full SHA-256 per file only
        raw.pop("integrity")
        for split in raw["splits"].values():
            split.pop("sampled_sha256")

    _rewrite_manifest(copy, older)
    m = load_manifest(copy, verify="quick")  # small files: their full SHA-256 serves the quick check
    assert m.warnings == []
    _flip(copy / "val.rec", 40)
    with pytest.raises(ManifestError, match="val.rec does not match"):
        load_manifest(copy, verify="quick")
    _flip(copy / "val.rec", 40)
    monkeypatch.setattr(integrity, "FULL_HASH_BELOW", 0)  # large files, nothing sampled recorded: a note, no error
    m = load_manifest(copy, verify="quick")
    assert any("train.rec: no content hashes recorded for the quick check; re-run porting.data to add them" in w
               for w in m.warnings), m.warnings


def _idx_lines(data: Path) -> list[str]:
    return (data / "train.idx").read_text().splitlines()


@pytest.mark.parametrize("damage, message", [
    (lambda lines: lines.__setitem__(2, lines[2].split("\t")[0] + "\t" + str(int(lines[2].split("\t")[1]) + 4)),
     "line 3: offset .* is not at the start of a record"),
    (lambda lines: lines.__setitem__(1, lines[1].split("\t")[0] + "\t" + str(int(lines[1].split("\t")[1]) + 1)),
     "line 2: offset .* is not a record position .* multiples of 4"),
    (lambda lines: lines.__setitem__(0, "0\t99999999"), "line 1: offset 99999999 is not a record position"),
    (lambda lines: lines.__setitem__(0, "zero\t0"), "line 1: expected 'key<TAB>offset'"),
    (lambda lines: lines.__setitem__(1, "0\t" + lines[1].split("\t")[1]), "lists a record key twice"),
    (lambda lines: lines.pop(), "has 17 entries, the manifest says 18 records"),
])
def test_index_offsets_are_checked(copy, damage, message):
    lines = _idx_lines(copy)
    damage(lines)
    (copy / "train.idx").write_text("\n".join(lines) + "\n")
    m = load_manifest(copy, verify="none")
    with pytest.raises(integrity.IntegrityError, match=message):
        integrity.check_index(m.splits["train"].rec, m.splits["train"].idx, m.splits["train"].count)


def test_the_packed_index_passes(dataset):
    m = load_manifest(dataset, verify="none")
    for split in m.splits.values():
        integrity.check_index(split.rec, split.idx, split.count)


def test_sampled_hash_reads_the_whole_of_a_small_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(5000))
    a = integrity.sampled_sha256(path, chunks=4, chunk_bytes=2000)  # 8000 > 5000: all of it
    _flip(path, 2500)
    assert integrity.sampled_sha256(path, chunks=4, chunk_bytes=2000) != a


# -- header sizes, before any decoder --------------------------------------------------------


@pytest.mark.parametrize("ext, params", [(".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                                         (".bmp", [])])
def test_header_size_without_decoding(ext, params):
    ok, buf = cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8), params)
    assert imageproc.header_size(buf.tobytes()) == (37, 53)


def test_header_size_of_a_gif_and_of_unknown_bytes():
    gif = b"GIF89a" + (53).to_bytes(2, "little") + (37).to_bytes(2, "little") + b"\0" * 10
    assert imageproc.header_size(gif) == (37, 53)
    assert imageproc.header_size(b"not an image") is None
    assert imageproc.header_size(b"\xff\xd8\xff\xd9") is None  # a JPEG that ends before any frame


def test_pixel_limit_is_openCVs_own(monkeypatch):
    """OPENCV_IO_MAX_IMAGE_PIXELS, read as OpenCV reads it: our header check and OpenCV refuse the same images."""
    ok, buf = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))
    monkeypatch.setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(imageproc.BadImage, match=r"40x40 pixels \(1,600\) is above OpenCV's limit of 1,000"):
        imageproc.probe_image(buf.tobytes())
    # OpenCV reads the variable once per process: in a fresh one, a format whose header we do not read (TIFF)
    # fails inside OpenCV, and that failure is a BadImage too.
    code = ("import cv2, numpy as np\nfrom porting.data import imageproc\n"
            "ok, buf = cv2.imencode('.tiff', np.zeros((40, 40, 3), np.uint8))\n"
            "assert imageproc.header_size(buf.tobytes()) is None\n"
            "try:\n    imageproc.probe_image(buf.tobytes())\nexcept imageproc.BadImage as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OPENCV_IO_MAX_IMAGE_PIXELS="1000", PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    assert "above OpenCV's pixel limit of 1,000 pixels" in out.stdout


def test_memory_check_before_decoding(monkeypatch):
    import psutil

    ok, buf = cv2.imencode(".png", np.zeros((100, 200, 3), np.uint8))
    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=100 * 200 * 3))
    with pytest.raises(imageproc.BadImage, match=r"100x200 pixels would need about 117.2 KiB to decode, but the "
                                                 r"machine has 58.6 KiB available"):
        imageproc.decode_rgb(buf.tobytes())


# -- a changed split ------------------------------------------------------------------------


def test_split_changes_name_each_setting():
    old = {"seed": 0, "split": {"val": 0.1, "test": 0.0}, "dataset": {"official_split": False}}
    cfg = BuildConfig("folders", Path("o"), Path("s"), val=0.1, test=0.0, seed=0).resolved()
    assert split_changes(old, cfg) == []
    cfg = BuildConfig("folders", Path("o"), Path("s"), val=0.2, test=0.1, seed=4).resolved()
    assert split_changes(old, cfg) == [("--val", "0.1", "0.2"), ("--test", "0", "0.1"), ("--seed", "0", "4")]
    official = {"seed": 0, "split": {"val": None, "test": None}, "dataset": {"official_split": True}}
    cfg = BuildConfig("oxford102", Path("o"), Path("s")).resolved()
    assert split_changes(official, cfg) == [("--official-split", "True", "False"), ("--val", "none", "0.1"),
                                            ("--test", "none", "0")]


def test_changed_seed_needs_force_and_force_rebuilds(copy, capsys):
    src = Path(load_manifest(copy, verify="none").raw["dataset"]["source"])
    argv = ["--layout", "folders", "--src", str(src), "--out", str(copy), "--resize", "20", "--no-progress"]
    assert main(argv + ["--seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "split with --seed 0; this run asks for --seed 2" in err and "pass --force" in err
    assert load_manifest(copy).seed == 0
    assert main(argv + ["--seed", "2", "--force"]) == 0
    assert load_manifest(copy, verify="quick").seed == 2
