"""Where MXNet's training step goes, and how each part scales from one OpenMP thread to all cores.

``bench/train_throughput.py`` says how fast MXNet trains against TF; this one says why the
ratio is what it is. The trainer's step (``bench.train_throughput.mxnet_trainer``: what
``python -m porting.train`` binds, SGD with momentum, one fixed batch) runs in fresh processes:

* with ``DNNL_VERBOSE=1`` on one OpenMP thread and on one per core (the trainer's settings,
  ``porting.threads.mxnet_cpu_env(training=True)``): oneDNN prints every primitive it runs with
  its milliseconds; they are summed per kind (convolution forward, backward data, backward
  weights, batch norm, ReLU, reorders, sums...) and divided by the steps run. Verbose output
  slows the step a little; shares and scaling, not the absolute times, are the result.
* untraced, on one thread and on all cores, and TF's step (``train_throughput``'s own child):
  the wall time each part adds up to, and what the rest (the optimizer update, the engine)
  costs.

The scaling of a part is ``t(1 thread) / (cores x t(cores))``: 1.0 when it uses every core
fully. Compute-bound convolutions scale; memory-bound parts (reorders, sums, batch norm,
ReLU) scale with the memory bandwidth the machine gives, and decide the multi-core step.

    .venv/bin/python bench/train_time_split.py              # full network, 299x299, batch 8
    .venv/bin/python bench/train_time_split.py --quick      # smoke test (tests/bench/test_bench_train_time_split.py)

Writes ``reports/bench/train_time_split.json`` (atomically; ``--quick`` writes to a temporary
folder unless ``--out`` is given) and prints the table. A child that fails is reported with its
own error line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import train_throughput as throughput  # noqa: E402
from bench.common import (RESULT_PREFIX, ChildFailed, UsageError, out_help, report_path, run_bench,  # noqa: E402
                          run_result_child, step_times)

FORMAT = "porting.bench.train_time_split/1"
NAME = "train_time_split"
VERBOSE_PREFIX = "dnnl_verbose,exec,"


def primitive_kind(line: str) -> tuple[str, float] | None:
    """``("convolution backward_data", ms)`` of a ``dnnl_verbose,exec,cpu,...`` line; None for other lines.

    The kind is the primitive and its propagation kind (forward_training, backward_data,
    backward_weights...; none for reorders, sums and concatenations).
    """
    if not line.startswith(VERBOSE_PREFIX):
        return None
    parts = line.rstrip().split(",")
    try:
        ms = float(parts[-1])
    except ValueError:
        return None
    primitive, propagation = parts[3], parts[5]
    kind = primitive if propagation in ("", "undef") else f"{primitive} {propagation}"
    return kind, ms


def split_by_kind(lines, steps: int) -> dict[str, float]:
    """Milliseconds per step of each primitive kind in oneDNN's verbose ``lines`` (``steps`` steps ran)."""
    totals: dict[str, float] = {}
    for line in lines:
        parsed = primitive_kind(line)
        if parsed is not None:
            totals[parsed[0]] = totals.get(parsed[0], 0.0) + parsed[1]
    return {kind: ms / steps for kind, ms in sorted(totals.items())}


# ------------------------------------------------------------------------------ parent


def mxnet_env(threads: int, verbose: bool) -> dict:
    """The trainer's MXNet environment with ``threads`` OpenMP threads (oneDNN's verbose log on or off)."""
    env = throughput.child_env("mxnet", throughput.parser().parse_args([]))
    env["OMP_NUM_THREADS"] = str(threads)
    if verbose:
        env["DNNL_VERBOSE"] = "1"
    else:
        env.pop("DNNL_VERBOSE", None)
    return env


def run_child(cfg: throughput.BenchConfig, threads: int, verbose: bool, timeout: float) -> dict:
    """One MXNet training child: its RESULT (step times) and, verbose, ms per step by primitive kind."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(asdict(cfg))]
    what = f"MXNet, {threads} thread(s){', oneDNN verbose' if verbose else ''}"
    result, lines = run_result_child(command, mxnet_env(threads, verbose), what, timeout)
    if verbose:
        result["ms_by_kind"] = split_by_kind(lines, cfg.warmup + cfg.steps)
    return result


def tf_step_s(cfg: throughput.BenchConfig, timeout: float) -> float:
    """TF's median training step (``bench/train_throughput.py``'s child), seconds."""
    args = throughput.parser().parse_args([])
    throughput.validate(args)
    try:
        result = throughput.run_child("tensorflow", cfg, args, timeout)
    except RuntimeError as error:
        raise ChildFailed(str(error)) from error
    return statistics.median(result["train_step_s"])


def measure(cfg: throughput.BenchConfig, cores: int, timeout: float) -> dict:
    load_start = os.getloadavg()
    traced = {threads: run_child(cfg, threads, True, timeout) for threads in (1, cores)}
    untraced = {threads: run_child(cfg, threads, False, timeout) for threads in (1, cores)}
    tf_s = tf_step_s(cfg, timeout)
    step_ms = {threads: 1000 * statistics.median(r["train_step_s"]) for threads, r in untraced.items()}
    kinds = sorted(set(traced[1]["ms_by_kind"]) | set(traced[cores]["ms_by_kind"]),
                   key=lambda kind: -traced[cores]["ms_by_kind"].get(kind, 0.0))
    rows = []
    for kind in kinds:
        one, many = traced[1]["ms_by_kind"].get(kind, 0.0), traced[cores]["ms_by_kind"].get(kind, 0.0)
        rows.append({"kind": kind, "ms_1_thread": one, "ms_all_cores": many,
                     "scaling": one / (cores * many) if many else None,
                     "share_all_cores": many / step_ms[cores]})
    onednn = {threads: sum(traced[threads]["ms_by_kind"].values()) for threads in (1, cores)}
    report = {
        "format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": cfg.name.startswith("quick"),
        "config": asdict(cfg), "network": cfg.describe(), "cores": cores,
        "host": {"loadavg_start": [round(v, 2) for v in load_start],
                 "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
        "mx_env": {k: v for k, v in mxnet_env(cores, False).items() if k.startswith(("MXNET_", "OMP_"))},
        "conventions": {"ms": "per training step; verbose rows: oneDNN's own times summed per primitive kind over "
                              "the warm-up and timed steps, divided by their number",
                        "scaling": "t(1 thread) / (cores x t(all cores)); 1.0 = every core fully used",
                        "step": "median untraced step of a fresh process (the trainer's settings)"},
        "rows": rows,
        "onednn_ms": {"1_thread": onednn[1], "all_cores": onednn[cores]},
        "step_ms": {"1_thread": step_ms[1], "all_cores": step_ms[cores], "tensorflow": 1000 * tf_s},
        "outside_onednn_ms": {"1_thread": step_ms[1] - onednn[1], "all_cores": step_ms[cores] - onednn[cores]},
        "cpu_s_per_image": {str(threads): r["cpu_s"] / (cfg.batch * cfg.steps) for threads, r in untraced.items()},
        "mx_over_tf": 1000 * tf_s / step_ms[cores],
        "fusion": untraced[cores]["fusion"],
    }
    report["table"] = render(report)
    return report


def _fmt(value, digits: int = 1) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


def render(report: dict) -> str:
    from tabulate import tabulate

    cores = report["cores"]
    header = ["part of MXNet's training step", "ms, 1 thread", f"ms, {cores} threads", "scaling", "share of step"]
    body = [[row["kind"], _fmt(row["ms_1_thread"]), _fmt(row["ms_all_cores"]), _fmt(row["scaling"], 2),
             f"{100 * row['share_all_cores']:.1f}%"] for row in report["rows"]]
    step, onednn, outside = report["step_ms"], report["onednn_ms"], report["outside_onednn_ms"]
    body += [["all oneDNN primitives", _fmt(onednn["1_thread"]), _fmt(onednn["all_cores"]),
              _fmt(onednn["1_thread"] / (cores * onednn["all_cores"]), 2), ""],
             ["outside oneDNN (optimizer, engine)", _fmt(outside["1_thread"]), _fmt(outside["all_cores"]), "", ""],
             ["step, untraced", _fmt(step["1_thread"]), _fmt(step["all_cores"]),
              _fmt(step["1_thread"] / (cores * step["all_cores"]), 2), ""],
             ["TensorFlow step, untraced", "", _fmt(step["tensorflow"]), "", ""]]
    cpu = report["cpu_s_per_image"]
    return (f"train_time_split: {report['network']}, {cores} cores, load average "
            f"{report['host']['loadavg_start'][0]} -> {report['host']['loadavg_end'][0]}\n"
            + tabulate(body, headers=header, tablefmt="simple", disable_numparse=True) + "\n"
            + f"MXNet/TF training speed: {report['mx_over_tf']:.2f}x; CPU seconds per image: "
            + ", ".join(f"{threads} thread(s) {value:.3f}" for threads, value in cpu.items()) + "\n"
            + f"MXNet's step: {report['fusion']}\n")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/train_time_split.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: reduced net, tiny input, two steps")
    p.add_argument("--config", default="full", choices=sorted(throughput.CONFIGS),
                   help="network and input (bench/train_throughput.py's configs; default full: 299, batch 8)")
    p.add_argument("--steps", type=int, help="timed training steps (default: the config's)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per process (default 900)")
    p.add_argument("--out", help=out_help(NAME))
    p.add_argument("--child", metavar="CONFIG_JSON", help=argparse.SUPPRESS)
    return p


def prepare(args) -> tuple[tuple, Path]:
    from porting import threads

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be a positive integer, got {args.steps}")
    cfg = throughput.QUICK if args.quick else throughput.CONFIGS[args.config]
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    cores = threads.mxnet_cpu_env()["OMP_NUM_THREADS"]
    if int(cores) < 2:
        raise UsageError("this machine gives the process one core: there is no scaling to measure")
    return (cfg, int(cores), args.timeout), report_path(args.out, NAME, args.quick)


def child_main(config_json: str) -> int:
    from porting import compat

    config = json.loads(config_json)
    cfg = throughput.BenchConfig(**{**config, "repeats": tuple(config["repeats"])})
    mx = compat.import_mx(training=True)
    _, _, train_step, proof = throughput.mxnet_trainer(cfg, [mx.cpu()])
    for _ in range(cfg.warmup):
        train_step()
    cpu_started = throughput.cpu_s()
    times = step_times(train_step, cfg.steps, warmup=0)
    result = {"train_step_s": times, "cpu_s": throughput.cpu_s() - cpu_started, "fusion": proof.describe()}
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return child_main(args.child)
    return run_bench(lambda: prepare(args), lambda state: measure(*state))


if __name__ == "__main__":
    sys.exit(main())
