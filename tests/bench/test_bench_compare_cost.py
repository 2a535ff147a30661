"""bench/compare_cost.py: bad arguments, and one ``--quick`` run of the reference-cache parts.

The numbers depend on the machine; the test checks that the cold run built and stored both
sides (with ``--numeric``: both forwards too), the warm run read them without importing
TensorFlow or MXNet, the run with the MX side changed read the TF side only, each rendered the
same report, the ratios are computed from the runs and each run's breakdown adds up to its wall
time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bench import run_bench_script

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "reports" / "bench" / "compare_cost.json"


def _run(*argv, timeout=600, env=None):
    return run_bench_script("compare_cost", *argv, timeout=timeout, env=env)


@pytest.mark.parametrize("argv, message", [(["--parts", "shape,nope"], "--parts"), (["--repeats", "0"], "--repeats")])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path):
    out = tmp_path / "never.json"
    done = _run(*argv, "--out", str(out))
    assert done.returncode == 2 and done.stderr.startswith(f"error: {message}")
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_quick_cache_run_writes_cold_and_warm_beside_the_committed_report(tmp_path):
    committed = COMMITTED.read_bytes()
    done = _run("--quick", "--parts", "cache,numeric-cache", env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: the ratio target not met on a small network
    out = tmp_path / "porting-bench-quick" / "compare_cost.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert COMMITTED.read_bytes() == committed
    report = json.loads(out.read_text())
    assert report["model"] == "inception_resnet_v2_reduced" and report["parts"] == ["cache", "numeric-cache"]
    assert "floor_s" not in report
    _check_cache_part(report["cache"], numeric=False)
    _check_cache_part(report["numeric_cache"], numeric=True)
    assert "warm/cold" in done.stdout and "MX side changed" in done.stdout and "mx_import" in done.stdout
    assert "compare --numeric, MX side changed" in done.stdout and "--numeric, cold" in done.stdout
    assert ("NOT met" in done.stdout) == (done.returncode == 1)
    assert not list(tmp_path.glob("porting-bench-cache-*"))  # each run's cache folder is removed


def _check_cache_part(cache: dict, numeric: bool) -> None:
    """One part's cold, warm and MX-changed runs; ``numeric``: the statuses name both stored forwards."""
    stored, read = ("; TF forward stored", "; TF forward read") if numeric else ("", "")
    mx_stored, mx_read = ("; MX forward stored", "; MX forward read") if numeric else ("", "")
    assert cache["cold_status"] == f"miss, stored{stored}; MX side miss, stored{mx_stored}"
    assert cache["warm_hit"] and cache["warm_status"] == f"hit{read}; MX side hit{mx_read}"
    assert cache["same_report"] and not cache["warm_imports_tensorflow"] and not cache["warm_imports_mxnet"]
    changed = cache["mx_changed"]
    assert changed["warm_status"] == f"hit{read}; MX side miss, stored{mx_stored}" and changed["same_report"]
    assert changed["warm_imports_mxnet"] and not changed["warm_imports_tensorflow"]
    cold, warm = cache["cold_s"]["runs"][0], cache["warm_s"]["runs"][0]
    assert cache["warm_over_cold"] == pytest.approx(warm / cold)
    assert changed["warm_over_cold"] == pytest.approx(changed["warm_s"]["runs"][0] / cold)
    assert cache["within_target"] == (warm / cold <= cache["target_ratio"])
    for parts, wall in ((cache["cold_parts_s"], cold), (cache["warm_parts_s"], warm),
                        (changed["warm_parts_s"], changed["warm_s"]["runs"][0])):
        assert sum(parts.values()) == pytest.approx(wall)
    assert cache["warm_parts_s"]["tf"] < cache["cold_parts_s"]["tf"]
    assert cache["warm_parts_s"]["mx_import"] == 0.0 < changed["warm_parts_s"]["mx_import"]
    assert (cache["cold_parts_s"]["numeric"] > 0.0) == numeric and (cache["warm_parts_s"]["numeric"] > 0.0) == numeric
