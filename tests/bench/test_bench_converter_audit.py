"""bench/converter_audit.py: a bad argument, and one ``--quick`` run's table and JSON.

The numbers depend on the machine and the seed; the test checks the structure of the verdict the
bench exists to show: the importer fails as is, the rewritten import is off, our verifier reports
exactly one error at Mixed_5b's average pool with the count_include_pad fix and its first numeric
divergence there (border only), and after the bench patches that layer the verifier passes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.bench import run_bench_script

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv, env=None):
    return run_bench_script("converter_audit", *argv, timeout=900, env=env)


def test_bad_repeats_exit_2_with_one_line(tmp_path):
    done = _run("--repeats", "a,b", "--out", str(tmp_path / "never.json"))
    assert done.returncode == 2 and "--repeats" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "never.json").exists()


def test_quick_run_shows_the_one_defect_and_passes_after_the_patch(tmp_path):
    committed = ROOT / "reports" / "bench" / "converter_audit.json"
    before = committed.read_bytes() if committed.exists() else None
    done = _run("--quick", env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "porting-bench-quick" / "converter_audit.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert (committed.read_bytes() if committed.exists() else None) == before
    for route in ("tf2onnx", "mx.contrib.onnx.import_model", "our verifier", "after patching", "MMdnn"):
        assert route in done.stdout
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["repeats"] == [1, 1, 1]
    assert report["onnxruntime"]["max_abs"] < 1e-3
    assert report["mx_import_as_is"]["ok"] is False and "KeyError" in report["mx_import_as_is"]["error"]
    assert report["mx_import_rewritten"]["max_abs"] > 1e-2
    verifier = report["verifier"]
    assert verifier["passed"] is False and verifier["rows_match"] == verifier["rows"]
    assert [(e["check"], e["layer"]) for e in verifier["lint_errors"]] == [
        ("avg_pool_padding", "InceptionResnetV2/Mixed_5b/Branch_3/AvgPool_0a_3x3")]
    assert "count_include_pad=False" in verifier["lint_errors"][0]["fix"]
    first = verifier["first_divergence"]
    assert first["layer"] == "InceptionResnetV2/Mixed_5b/Branch_3/AvgPool_0a_3x3" and first["border_only"] is True
    assert verifier["equivalences"] >= report["tf2onnx"]["folded_batch_norms"]
    patched = report["after_patch"]
    assert patched["passed"] is True and patched["patched_layer"] == first["mx_layer"]
    assert patched["max_abs"] < 1e-3 and patched["lint_errors"] == []
