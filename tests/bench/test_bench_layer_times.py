"""bench/layer_times.py: oneDNN verbose parsing, bad arguments, and one ``--quick`` run.

The times depend on the machine; the run is checked for structure: every convolution of
both sides is accounted for, the shape groups agree with the verifier's records, and
the totals are the sums of the rows.
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
SCRIPT = ROOT / "bench" / "layer_times.py"

bench = load_bench("layer_times")


def test_dnnl_verbose_lines_parse_to_the_records_key():
    line = ("dnnl_verbose,exec,cpu,convolution,jit:avx2,forward_inference,src_f32::blocked:aBcd8b:f0 "
            "wei_f32::blocked:ABcd8b8a:f0 bia_undef::undef::f0 dst_f32::blocked:aBcd8b:f0,"
            "attr-post-ops:eltwise_relu:0:1 ,alg:convolution_direct,"
            "mb8_ic3oc32_ih299oh149kh3sh2dh0ph0_iw299ow149kw3sw2dw0pw0,2.3125")
    assert bench.dnnl_key(line) == ("3>32 299x299>149x149 k3x3 s2x2", 2.3125)
    assert bench.dnnl_key(line.replace(",convolution,", ",pooling_v2,")) is None
    assert bench.dnnl_key(line.replace("exec", "create")) is None

    from porting.core.records import Kind, LayerRecord

    record = LayerRecord(name="c", kind=Kind.CONV, op="Conv2D", inputs=("x",), shape=(8, 32, 149, 149),
                         in_shape=(8, 3, 299, 299), kernel=(3, 3), stride=(2, 2))
    assert bench.conv_key(record) == "3>32 299x299>149x149 k3x3 s2x2"


@pytest.mark.parametrize("argv, message", [(["--repeats", "1,2"], "--repeats"), (["--batch", "0"], "--batch")])
def test_bad_arguments_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "never.json"
    assert bench.main(argv + ["--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_quick_run_accounts_for_every_convolution(tmp_path):
    committed = (ROOT / "reports" / "bench" / "layer_times.json").read_bytes()
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=dict(os.environ, TMPDIR=str(tmp_path)))  # no --out: a smoke run's own folder
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "porting-bench-quick" / "layer_times.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert (ROOT / "reports" / "bench" / "layer_times.json").read_bytes() == committed
    report = json.loads(out.read_text())
    groups = report["groups"]
    calls = report["mx"]["calls"]
    assert calls == report["config"]["warmup"] + report["config"]["steps"]
    # reduced IRv2 (1/1/1): both sides have the same conv layers, grouped by the same shapes
    assert sum(g["layers"] for g in groups) == sum(g["tf_layers"] for g in groups) == 48
    for group in groups:
        assert group["layers"] == group["tf_layers"], group["key"]
        assert group["mx_executions"] == group["layers"] * calls, group["key"]  # oneDNN ran every one
        assert group["mx_ms"] > 0 and group["tf_ms"] > 0 and group["macs"] > 0
    assert report["mx"]["conv_ms"] == pytest.approx(sum(g["mx_ms"] for g in groups))
    assert report["tf"]["conv_ms"] == pytest.approx(sum(g["tf_ms"] for g in groups))
    assert report["mx"]["forward_ms"] > 0 and report["tf"]["forward_ms"] > 0
    lines = done.stdout.splitlines()
    assert any(line.startswith("conv shape") for line in lines)
    assert any(line.startswith("all convolutions (") for line in lines)
    assert any(line.startswith("forward, untraced (best)") for line in lines)
    assert report["table"] in done.stdout
