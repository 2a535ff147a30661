"""bench/mirror_memory.py: bad arguments, and one ``--quick`` run's table and JSON.

The numbers depend on the machine; the test checks that both settings ran, every
measurement is there and positive, and the ratio row is computed from the two runs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bench import run_bench_script

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv, timeout=600, env=None):
    return run_bench_script("mirror_memory", *argv, timeout=timeout, env=env)


@pytest.mark.parametrize("argv, message", [(["--repeats", "a,b"], "--repeats"), (["--batch", "0"], "--batch")])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path):
    out = tmp_path / "never.json"
    done = _run(*argv, "--out", str(out))
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_quick_run_writes_the_table_and_the_json_beside_the_committed_report(tmp_path):
    committed = (ROOT / "reports" / "bench" / "mirror_memory.json").read_bytes()
    done = _run("--quick", env=dict(os.environ, TMPDIR=str(tmp_path)))  # no --out: a smoke run's own folder
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    out = tmp_path / "porting-bench-quick" / "mirror_memory.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert (ROOT / "reports" / "bench" / "mirror_memory.json").read_bytes() == committed
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["device"] == "CPU"
    runs = report["runs"]
    for key in ("off", "on"):
        assert runs[key]["samples_per_s"] > 0 and runs[key]["ru_maxrss_mib"] > 100
        assert runs[key]["sampled_peak_rss_mib"] > 0 and runs[key]["planned_mb"] is not None
        assert runs[key]["gpu_used_mib"] is None
    ratio = report["on_over_off"]
    assert ratio["samples_per_s"] == pytest.approx(runs["on"]["samples_per_s"] / runs["off"]["samples_per_s"])
    assert ratio["ru_maxrss_mib"] == pytest.approx(runs["on"]["ru_maxrss_mib"] / runs["off"]["ru_maxrss_mib"])
    assert ratio["gpu_used_mib"] is None
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("MXNET_BACKWARD_DO_MIRROR"))
    assert "samples/s" in header and "peak RSS MiB (ru_maxrss)" in header
    labels = [line.split()[0] for line in lines if line.split()[:1] in (["off"], ["on"], ["on/off"])]
    assert labels == ["off", "on", "on/off"]
    assert report["table"] in done.stdout
