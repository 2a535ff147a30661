"""porting.util: atomic files, locks, stale temporary files, slugs and argument parsers (stdlib only)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from porting import util


# -- atomic files ---------------------------------------------------------------------------

def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    util.atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    util.atomic_write_bytes(target, b"\x00\x01", durable=False)
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.params"
    target.write_text("committed")

    def half_written(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        util.atomic_write_via(target, half_written)
    assert target.read_text() == "committed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.params"]


def test_atomic_files_are_readable_by_everyone_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        util.atomic_write_text(tmp_path / "a.txt", "x")
        util.atomic_write_via(tmp_path / "b.bin", lambda tmp: Path(tmp).write_bytes(b"y"))
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_parents_creates_missing_folders_only_when_asked(tmp_path):
    deep = tmp_path / "reports" / "bench" / "out.json"
    with pytest.raises(FileNotFoundError):
        util.atomic_write_text(deep, "{}")
    util.atomic_write_text(deep, "{}\n", parents=True)
    assert deep.read_text() == "{}\n"


def test_temporary_names_are_recognised_and_unique(tmp_path):
    a, b = util.temp_path(tmp_path / "checkpoint.json"), util.temp_path(tmp_path / "checkpoint.json")
    assert a != b and a.parent == tmp_path
    assert a.name.startswith(f".checkpoint.json.tmp-{os.getpid()}-")
    assert util.is_temp_name(a.name)
    assert util.is_temp_name(".model-0001.params.tmp-123")  # the older pattern (pid only) too
    for name in ("checkpoint.json", ".lock", "model.tmp-1", ".staging-12"):
        assert not util.is_temp_name(name), name


def test_remove_stale_temps_removes_only_temporary_files(tmp_path):
    keep = ["manifest.json", ".lock", "train.rec", "notes.tmp-1"]
    for name in keep:
        (tmp_path / name).write_text("x")
    (tmp_path / ".staging-7").mkdir()
    stale = [util.temp_path(tmp_path / "manifest.json"), tmp_path / ".train.rec.tmp-99"]
    for path in stale:
        path.write_text("partial")
    removed = util.remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + [".staging-7"])
    assert util.remove_stale_temps(tmp_path / "missing") == []


# -- locks ----------------------------------------------------------------------------------

def test_a_second_descriptor_finds_the_lock_busy(tmp_path):
    lock_file = tmp_path / ".lock"
    fd = util.acquire_lock(lock_file)
    try:
        with pytest.raises(util.LockBusy, match=r"\.lock"):
            util.acquire_lock(lock_file)
        with pytest.raises(util.LockBusy):
            with util.exclusive_lock(lock_file):
                pass
    finally:
        os.close(fd)
    with util.exclusive_lock(lock_file):  # released: free again
        pass
    util.acquire_lock(lock_file)  # and the context manager released it too (the fd closes at exit)


def test_a_second_process_finds_the_lock_busy_until_it_is_released(tmp_path):
    lock_file = tmp_path / ".lock"
    code = ("import sys; from porting import util\n"
            "try:\n    util.acquire_lock(sys.argv[1])\nexcept util.LockBusy:\n    sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def other_process() -> int:
        return subprocess.run([sys.executable, "-c", code, str(lock_file)], env=env, timeout=60).returncode

    with util.exclusive_lock(lock_file):
        assert other_process() == 3
    assert other_process() == 0


# -- names and arguments --------------------------------------------------------------------

def test_slug():
    assert util.slug("InceptionResnetV2/Repeat_1/block17_3/Conv2d_1x1") == "InceptionResnetV2_Repeat_1_block17_3_Conv2d_1x1"
    assert util.slug("  a  b  ") == "a_b"
    assert util.slug("///") == "layer"
    assert util.slug("///", default="x") == "x"
    assert util.slug("abcdef", limit=3) == "abc"


def test_short_list():
    assert util.short_list(["a", "b"]) == "a, b"
    assert util.short_list([str(i) for i in range(10)], 3) == "0, 1, 2 and 7 more"
    assert util.short_list([]) == ""


def test_parse_hxw():
    assert util.parse_hxw("24x32") == (24, 32)
    assert util.parse_hxw(" 299 X 300 ") == (299, 300)
    for bad in ("24", "0x5", "5x0", "x5", "2.5x3", "-1x3", "3x3x3", ""):
        with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
            util.parse_hxw(bad)


def test_parse_size():
    assert util.parse_size("299") == (299, 299)
    assert util.parse_size(" 150x149 ") == (150, 149)
    for bad in ("0", "-3", "abc", "1x0", "", "3.5"):
        with pytest.raises(ValueError, match="expected N or HxW"):
            util.parse_size(bad)


def test_parse_gpus():
    assert util.parse_gpus(None) == util.parse_gpus("") == util.parse_gpus("  ") == []
    assert util.parse_gpus("0") == [0]
    assert util.parse_gpus("0, 1,3") == [0, 1, 3]
    for bad in ("a", "-1", "1;2", "0,", "1.0"):
        with pytest.raises(ValueError) as e:
            util.parse_gpus(bad)
        # read after the option's name: "--gpus expects ..."
        assert str(e.value) == f"expects comma-separated GPU numbers like 0 or 0,1, got {bad!r}"
    with pytest.raises(ValueError) as e:
        util.parse_gpus("1,0,1")
    assert str(e.value) == "lists a GPU twice: '1,0,1'"
