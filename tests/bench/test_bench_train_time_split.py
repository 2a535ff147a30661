"""bench/train_time_split.py: oneDNN verbose lines by primitive kind, bad arguments, one ``--quick`` run.

Times depend on the machine; the run is checked for structure: the rows add up to the
oneDNN totals, the training primitives are there on both thread counts, and a smoke run
never touches the committed report.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import load_bench

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "train_time_split.py"

bench = load_bench("train_time_split")

CONV = ("dnnl_verbose,exec,cpu,convolution,jit_1x1:avx512_common,backward_weights,src_f32::blocked:aBcd16b:f0 "
        "wei_f32::blocked:ABcd16b16a:f0 bia_undef::undef::f0 dst_f32::blocked:aBcd16b:f0,,alg:convolution_direct,"
        "mb8_ic2080oc192_ih8oh8kh1sh1dh0ph0_iw8ow8kw1sw1dw0pw0,1.5")
REORDER = ("dnnl_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:abcd:f0 dst_f32::blocked:ABcd16b16a:f0,,,"
           "192x2080x1x1,0.25")


def test_verbose_lines_are_summed_per_primitive_kind_and_step():
    assert bench.primitive_kind(CONV) == ("convolution backward_weights", 1.5)
    assert bench.primitive_kind(REORDER) == ("reorder", 0.25)
    assert bench.primitive_kind(CONV.replace(",exec,", ",create:cache_miss,")) is None
    assert bench.primitive_kind("RESULT {}") is None
    split = bench.split_by_kind([CONV, REORDER, CONV, "noise", REORDER.replace("0.25", "0.75")], steps=2)
    assert split == {"convolution backward_weights": 1.5, "reorder": 0.5}


def test_bad_steps_exit_2_before_running_anything(tmp_path, capsys):
    out = tmp_path / "never.json"
    assert bench.main(["--steps", "0", "--out", str(out)]) == 2
    assert "--steps" in capsys.readouterr().err and not out.exists()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="scaling needs two cores")
def test_quick_run_splits_the_step_on_one_thread_and_all_cores(tmp_path):
    committed = ROOT / "reports" / "bench" / "train_time_split.json"
    before = committed.read_bytes() if committed.exists() else None
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=dict(os.environ, TMPDIR=str(tmp_path)))  # no --out: a smoke run's own folder
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "porting-bench-quick" / "train_time_split.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert (committed.read_bytes() if committed.exists() else None) == before
    report = json.loads(out.read_text())
    kinds = {row["kind"] for row in report["rows"]}
    assert {"convolution forward_training", "convolution backward_data", "convolution backward_weights",
            "batch_normalization forward_training", "batch_normalization backward", "reorder"} <= kinds
    for column, total in (("ms_1_thread", "1_thread"), ("ms_all_cores", "all_cores")):
        assert sum(row[column] for row in report["rows"]) == pytest.approx(report["onednn_ms"][total])
        assert report["onednn_ms"][total] > 0 and report["step_ms"][total] > 0
    assert report["mx_env"]["OMP_WAIT_POLICY"] == "ACTIVE"  # the trainer's settings
    assert report["mx_over_tf"] == pytest.approx(report["step_ms"]["tensorflow"] / report["step_ms"]["all_cores"])
    assert "convolution backward_data" in report["table"] and "TensorFlow step" in report["table"]
