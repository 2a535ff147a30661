"""bench/serving.py: argument checks, where it writes, and one ``--quick`` run's structure.

The numbers depend on the machine and its load; these tests check only that every
measurement is there, positive, and consistent with the table and the ratios.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import load_bench

ROOT = Path(__file__).resolve().parents[2]

bench = load_bench("serving")


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "299,x"], "--sizes must be a comma list of positive integers"),
    (["--sizes", "32"], "at least 75 pixels"),
    (["--batches", "0"], "--batches"),
    (["--runners", "torch"], "--runners must be a comma list of mxnet, mxnet-rewritten, onnxruntime, tensorflow"),
    (["--repeats", "1,2"], "--repeats"),
    (["--rounds", "0"], "--rounds"),
])
def test_bad_arguments_exit_2_before_running_anything(argv, message, capsys, tmp_path):
    out = tmp_path / "never.json"
    assert bench.main(argv + ["--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_only_the_full_run_writes_the_committed_report():
    full = bench.validate(bench.parser().parse_args([]))
    assert not full["smoke"] and full["sizes"] == [299, 139] and full["batches"] == [1, 8]
    assert full["runners"] == list(bench.RUNNERS) and full["repeats"] == [10, 20, 9]
    assert bench.report_path(None, bench.NAME, full["smoke"]) == ROOT / "reports" / "bench" / "serving.json"
    for argv in (["--quick"], ["--sizes", "139"], ["--runners", "mxnet,tensorflow"], ["--repeats", "reduced"]):
        config = bench.validate(bench.parser().parse_args(argv))
        assert config["smoke"], argv
        assert bench.report_path(None, bench.NAME, True).parent.name == "porting-bench-quick"


def test_quick_run_measures_every_runner_at_every_point(tmp_path):
    out = tmp_path / "serving.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["format"] == bench.FORMAT and report["quick"] is True
    assert [(p["size"], p["batch"]) for p in report["points"]] == [(75, 1), (75, 2)]
    for point in report["points"]:
        ips = point["images_per_s"]
        assert set(ips) == set(bench.RUNNERS) and min(ips.values()) > 0
        assert point["fastest"] == max(ips, key=ips.get) and point["ratio_to_fastest"][point["fastest"]] == 1.0
        assert point["ours_best"] in bench.OURS and 0 < point["ours_best_to_fastest"] <= 1.0
        assert point["ratio_to_tensorflow"]["tensorflow"] == 1.0
        for runner in bench.RUNNERS:  # the best round is the one reported
            best = max(r["points"][f"{point['size']}x{point['batch']}"]["images_per_s"]
                       for r in report["rounds"][runner])
            assert ips[runner] == best
    # The rewrites and the export are exact: our three runners give the same softmax.
    assert set(report["max_score_difference"]) == {"75"} and report["max_score_difference"]["75"] < 1e-4
    assert len(report["host"]["loadavg_start"]) == 3 and len(report["rounds"]["tensorflow"][0]["loadavg_before"]) == 3
    for label in bench.LABELS.values():
        assert label in report["table"]
