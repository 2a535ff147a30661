"""bench/train_memory.py: bad arguments, and one ``--quick`` run's table and JSON.

The numbers depend on the machine; the test checks that every variant ran, the parts add
up to the peak they split, the trainer's variant shares the Module's host copy of the
parameters (and the defaults do not), and the committed full-run report is left alone.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bench import run_bench_script

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv, timeout=600, env=None):
    return run_bench_script("train_memory", *argv, timeout=timeout, env=env)


@pytest.mark.parametrize("argv, message", [(["--variants", "gluon"], "--variants"), (["--timeout", "0"], "--timeout")])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path):
    out = tmp_path / "never.json"
    done = _run(*argv, "--out", str(out))
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_quick_run_splits_the_peak_and_writes_beside_the_committed_report(tmp_path):
    committed = ROOT / "reports" / "bench" / "train_memory.json"
    before = committed.read_bytes() if committed.exists() else None
    done = _run("--quick", "--variants", "module-defaults,trainer", env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "porting-bench-quick" / "train_memory.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert (committed.read_bytes() if committed.exists() else None) == before
    report = json.loads(out.read_text())
    assert report["quick"] is True and list(report["runs"]) == ["module-defaults", "trainer"]
    for name, run in report["runs"].items():
        parts = run["parts_mb"]
        assert set(parts) == set(report["parts"])
        assert sum(parts.values()) == pytest.approx(run["peak_rss_mb"])
        assert parts["parameters"] > 0 and parts["gradients"] == pytest.approx(parts["parameters"])
        assert parts["optimizer_states"] == pytest.approx(parts["parameters"])  # SGD momentum: one state
        assert parts["executor_plan"] > 0 and parts["libraries"] > 50
        assert [s["stage"] for s in run["stages"]] == ["import", "bind", "init_params", "init_optimizer",
                                                      "forward_1", "backward_1", "update_1", "steps"]
        assert run["train_ips"] > 0 and run["mkldnn"] is True
        assert sum(s["outputs"] for s in run["activations_by_stage"]) > 100
    defaults, trainer = report["runs"]["module-defaults"], report["runs"]["trainer"]
    assert defaults["host_params_shared"] is False and defaults["parts_mb"]["host_param_copy"] > 0
    assert trainer["host_params_shared"] is True and trainer["parts_mb"]["host_param_copy"] == 0
    assert report["ratios"]["trainer_over_defaults_rss"] == pytest.approx(
        trainer["peak_rss_mb"] / defaults["peak_rss_mb"])
    assert report["table"] in done.stdout
    assert "executor memory plan" in report["table"] and "forward outputs by stage" in report["table"]
