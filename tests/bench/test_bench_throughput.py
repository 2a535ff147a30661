"""bench/train_throughput.py: argument checks, the table's structure, and one ``--quick`` run.

The numbers depend on the machine and its load; these tests check only that every
measurement is there, positive and consistent with the rows it is rendered into.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bench import load_bench

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "train_throughput.py"

bench = load_bench("train_throughput")

RUN_KEYS = {"train_ips", "infer_ips", "peak_rss_mb", "train_peak_rss_mb", "rss_after_import_mb", "train_gflops",
            "infer_gflops", "train_peak_fraction", "infer_peak_fraction", "version", "build_s", "settings",
            "rounds"}


@pytest.mark.parametrize("argv, message", [
    (["--gpus", "0,1"], "one GPU id"),
    (["--gpus", "x"], "--gpus"),
    (["--configs", "huge"], "Available: reduced, full"),
    (["--batch", "0"], "--batch"),
    (["--rounds", "0"], "--rounds"),
    (["--warmup", "-1"], "--warmup"),
    (["--frameworks", "torch"], "--frameworks"),
    (["--mx-env", "NOEQUALS"], "KEY=VALUE"),
    (["--tf-threads", "2"], "INTRA,INTER"),
])
def test_bad_arguments_exit_2_before_running_anything(argv, message, capsys, tmp_path):
    out = tmp_path / "never.json"
    assert bench.main(argv + ["--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_gpu_arguments_parse_without_a_gpu():
    args = bench.parser().parse_args(["--gpus", "0", "--configs", "full"])
    configs = bench.validate(args)
    assert bench.parse_gpus("0") == [0]
    assert [cfg.name for cfg in configs] == ["full-299"] and configs[0].batch == 32  # GPU default batch
    quick = bench.validate(bench.parser().parse_args(["--quick", "--gpus", "1", "--batch", "2"]))
    assert quick[0].batch == 2 and quick[0].repeats == (1, 1, 1)


def test_mxnet_runs_with_the_perf_settings_unless_asked_for_defaults(monkeypatch):
    from porting import threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    args = bench.parser().parse_args([])
    bench.validate(args)
    assert args.runners == ["mxnet", "tensorflow"]
    env = bench.child_env("mxnet", args)
    trainer = threads.mxnet_cpu_env(training=True)  # the settings python -m porting.train loads MXNet with
    assert trainer["OMP_WAIT_POLICY"] == "ACTIVE" and all(env[k] == v for k, v in trainer.items())
    assert not set(trainer) & set(bench.child_env("tensorflow", args))
    assert not set(trainer) & set(bench.child_env("mxnet-defaults", args))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert bench.child_env("mxnet", args)["OMP_NUM_THREADS"] == "7"  # the caller's export wins
    assert "OMP_NUM_THREADS" not in bench.child_env("mxnet-defaults", args)  # the library's default
    args = bench.parser().parse_args(["--mx-env-default", "--mx-env", "MXNET_ENGINE_TYPE=NaiveEngine", "--mx-baseline"])
    bench.validate(args)
    assert args.runners == ["mxnet-defaults", "mxnet", "tensorflow"]
    env = bench.child_env("mxnet", args)
    assert env["MXNET_ENGINE_TYPE"] == "NaiveEngine" and env["OMP_NUM_THREADS"] == "7"


def _fake_report(gpus=None, baseline=False):
    def run(ips):
        return {"train_ips": ips, "infer_ips": 3 * ips, "peak_rss_mb": 900.0, "rss_after_train_mb": 800.0,
                "rss_after_import_mb": 300.0, "accel_mem_mb": 100.0 if gpus else None, "version": "x",
                "build_s": 1.0, "settings": {}, "train_step_s": [1.0], "infer_step_s": [0.5],
                "train_cpu_s_per_image": 0.5, "infer_cpu_s_per_image": 0.1, "infer_folded_ips": 4 * ips,
                "gemm_gflops": 50.0}

    cfg = bench.QUICK
    cost = {"params": 10, "macs_per_image": 1e9, "train_flops_per_image": 6e9, "infer_flops_per_image": 2e9}
    rounds = {"mxnet": [run(2.0), run(4.0)], "tensorflow": [run(2.0)]}
    if baseline:
        rounds["mxnet-defaults"] = [run(1.0)]
    entry = bench.summarize(cfg, cost, rounds, 100.0)
    return {"configs": [entry], "gpus": gpus, "device": "CPU", "matmul": {"peak_gflops": 100.0, "numpy_gflops": 90.0},
            "host": {"cpus": 2, "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [2.0, 2.0, 2.0]}}


def test_summary_takes_the_best_round_and_divides_mxnet_by_tf():
    entry = _fake_report()["configs"][0]
    mx = entry["runs"]["mxnet"]
    assert mx["train_ips"] == 4.0 and mx["infer_ips"] == 12.0
    assert mx["train_gflops"] == pytest.approx(24.0) and mx["train_peak_fraction"] == pytest.approx(0.24)
    assert entry["ratios"]["train_ips"] == pytest.approx(2.0)
    assert entry["ratios"]["infer_ips"] == pytest.approx(2.0)
    assert entry["ratios"]["train_peak_rss"] == pytest.approx(1.0)


def test_table_has_a_row_per_framework_and_a_ratio_row():
    report = _fake_report()
    text = bench.render(report)
    assert "load average 1.00 -> 2.00 on 2 CPUs" in text
    for header in bench.TABLE_HEADERS:
        assert header in text
    rows = bench.table_rows(report)
    assert [row[1] for row in rows] == ["mxnet", bench.FOLDED_LABEL, "tensorflow", "MXNet/TF",
                                        f"{bench.FOLDED_LABEL}/TF"]
    assert rows[3][2] == "2.00x"  # MXNet's best round (4 img/s) over TF's (2)
    assert rows[4][3] == "2.67x"  # folded inference 16 img/s over TF's 6
    gpu_text = bench.render(_fake_report(gpus="0"))
    assert "accel MB" in gpu_text


def test_baseline_rows_and_speedup():
    report = _fake_report(baseline=True)
    entry = report["configs"][0]
    assert entry["speedup_over_defaults"]["train_ips"] == pytest.approx(4.0)
    assert entry["ratios_defaults"]["train_ips"] == pytest.approx(0.5)
    labels = [row[1] for row in bench.table_rows(report)]
    assert labels == ["mxnet (library defaults)", "mxnet", bench.FOLDED_LABEL, "tensorflow", "MXNet defaults/TF",
                      "MXNet/TF", f"{bench.FOLDED_LABEL}/TF"]


@pytest.mark.slow
def test_quick_run_prints_the_table_and_writes_the_json_beside_the_committed_report(tmp_path):
    committed = (ROOT / "reports" / "bench" / "train_throughput.json").read_bytes()
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, TMPDIR=str(tmp_path)))  # no --out: its own folder
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "porting-bench-quick" / "train_throughput.json"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert (ROOT / "reports" / "bench" / "train_throughput.json").read_bytes() == committed
    print(f"\n--quick took {elapsed:.0f} s\n{done.stdout}")
    text = done.stdout
    assert "train_throughput:" in text and "load average" in text
    for header in bench.TABLE_HEADERS:
        assert header in text
    for label in ("mxnet", "tensorflow", "MXNet/TF"):
        assert label in text

    report = json.loads(out.read_text())
    assert report["format"] == bench.FORMAT and report["quick"] is True
    assert report["table"] == text[: len(report["table"])]
    assert report["matmul"]["peak_gflops"] >= report["matmul"]["numpy_gflops"] > 0
    assert len(report["host"]["loadavg_start"]) == 3
    (entry,) = report["configs"]
    assert entry["name"] == bench.QUICK.name and entry["macs_per_image"] > 0 and entry["params"] > 0
    assert set(entry["runs"]) == {"mxnet", "tensorflow"}
    for framework, run in entry["runs"].items():
        assert RUN_KEYS <= set(run), framework
        for key in ("train_ips", "infer_ips", "peak_rss_mb", "train_peak_rss_mb", "train_gflops", "infer_gflops"):
            assert run[key] > 0, (framework, key)
        assert run["peak_rss_mb"] >= run["train_peak_rss_mb"] >= run["rss_after_import_mb"] > 0
        assert run["train_cpu_s_per_image"] > 0 and run["infer_cpu_s_per_image"] > 0
        (round_,) = run["rounds"]
        assert len(round_["train_step_s"]) == bench.QUICK.steps
        assert len(round_["infer_step_s"]) == bench.QUICK.infer_steps
    assert entry["runs"]["mxnet"]["infer_folded_ips"] > 0
    assert entry["runs"]["mxnet"]["rounds"][0]["folded_layers"] == 4  # one block of each kind + Block8
    assert bench.FOLDED_LABEL in text
    assert set(entry["ratios"]) >= {"train_ips", "infer_ips", "train_peak_rss", "infer_folded_ips"}
    assert all(value > 0 for value in entry["ratios"].values())
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left no temporary file
