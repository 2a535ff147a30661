"""Training and inference throughput of the MXNet port against the tf.slim reference.

    python bench/train_throughput.py            # reduced net at 139 and the full net at 299
    python bench/train_throughput.py --quick    # a smoke test: reduced net, tiny input, 2 steps
    python bench/train_throughput.py --gpus 0   # the same on GPU 0, with accelerator memory
    python bench/train_throughput.py --mx-baseline --configs full   # before/after porting.threads

The same network (Inception-ResNet-v2, slim's AuxLogits head included), the same batch
size, the same loss (softmax cross-entropy + 0.4 x the aux loss, L2 4e-5 on the weights)
and the same optimizer (SGD, momentum 0.9, learning rate 0.01; TF's
``MomentumOptimizer`` and MXNet's ``sgd`` are the same update at a constant learning
rate) are trained on one fixed batch of random data that lives in the framework's own
memory, so no input pipeline is measured. Each framework runs in a fresh process (so the
peak resident memory, ``ru_maxrss``, is that framework's alone), MXNet and TF alternating,
``--rounds`` times; warm-up steps are excluded and a framework's throughput is its best
round (the least disturbed by other load on a shared machine). MXNet trains with
``Module`` (``forward_backward`` + ``update``) as the trainer does: the residual scales
applied to the convolutions' weights (``porting.training.network.scale_residuals_in_weights``),
one malloc arena and the Module's host copy of the parameters shared with the executor
(``porting.training.memory``; ``bench/train_memory.py`` measures each part of the peak), TF with one ``Session.run`` of a
graph-mode train op (with the batch-norm update ops); inference is a forward pass of each
side's inference graph (moving statistics, no dropout). slim trains with RMSProp; SGD
with momentum is used here because it is the same algorithm in both frameworks, while
MXNet's RMSProp is not TF1's (PITFALLS 19) and the optimizer is a few percent of a step.

Cost conventions (``porting.core.cost``): MACs are the forward multiply-adds per image of
conv and FC layers; FLOPs = 2 x MACs; a training step is counted as 3 x the forward
(forward, input gradients, weight gradients). Achieved GFLOP/s are compared with the
machine's matrix-multiply peak, measured in the same run (float32 2048 x 2048 GEMM with
numpy, MXNet and TF; the best of them).

MXNet runs with the trainer's settings ``porting.threads.mxnet_cpu_env(training=True)``
documents (one OpenMP thread per physical core, MXNet's own default being half the cores;
threads that wait actively between operators), unless the caller
exported them; ``--mx-env KEY=VALUE`` adds or overrides one, ``--mx-env-default`` runs
MXNet with the library's defaults instead, and ``--mx-baseline`` runs both in every
round (before/after under the same load). TF runs with its defaults (``--tf-threads
INTRA,INTER`` sets its thread pools).

Writes ``reports/bench/train_throughput.json`` (``--out``), atomically; ``--quick`` writes to a
temporary folder unless ``--out`` is given, so a smoke run never replaces the committed
full-run report. A child that fails is reported with its own error line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (RESULT_PREFIX, UsageError, out_help, report_path, run_bench,  # noqa: E402
                          run_result_child)
from porting import util  # noqa: E402  (no framework import)

FORMAT = "porting.bench.train_throughput/1"
NAME = "train_throughput"
FRAMEWORKS = ("mxnet", "tensorflow")
#: What is measured, in this order each round: MXNet with the library's own defaults
#: (only with --mx-baseline), MXNet with porting.threads's settings, TensorFlow.
RUNNERS = ("mxnet-defaults", "mxnet", "tensorflow")
FOLDED_LABEL = "mxnet, scales folded"
RUNNER_LABELS = {"mxnet-defaults": "mxnet (library defaults)", "mxnet": "mxnet", "tensorflow": "tensorflow"}
NUM_CLASSES = 1001
LR, MOMENTUM, WD, AUX_WEIGHT = 0.01, 0.9, 4e-5, 0.4
GEMM_N = 2048
TRAIN_FACTOR = 3  # a training step ~ 3 forward passes of multiply-adds


@dataclass(frozen=True)
class BenchConfig:
    """One network/input/batch setting, measured for both frameworks."""

    name: str
    repeats: tuple[int, int, int]
    size: int
    batch: int
    warmup: int
    steps: int
    infer_steps: int
    aux: bool = True

    def describe(self) -> str:
        net = "full" if tuple(self.repeats) == (10, 20, 9) else "reduced " + "/".join(map(str, self.repeats))
        return f"{net} @{self.size}, batch {self.batch}"


#: The measured settings: the reduced net at a small size, and slim's full network at 299.
CONFIGS = {
    "reduced": BenchConfig("reduced-139", (1, 1, 1), 139, 16, warmup=2, steps=6, infer_steps=6),
    "full": BenchConfig("full-299", (10, 20, 9), 299, 8, warmup=1, steps=3, infer_steps=3),
}
#: --quick: the reduced net on the smallest input with the aux head, two timed steps.
QUICK = BenchConfig("quick-reduced-107", (1, 1, 1), 107, 4, warmup=1, steps=2, infer_steps=2)


# ----------------------------------------------------------------------------- settings


def mxnet_settings(mx) -> dict:
    """What the MXNet process ran with: relevant environment and library features."""
    features = mx.runtime.Features()
    settings = {key: value for key, value in sorted(os.environ.items())
                if key.startswith(("MXNET_", "OMP_", "KMP_"))}
    settings["MKLDNN"] = features.is_enabled("MKLDNN")
    settings["OPENMP"] = features.is_enabled("OPENMP")
    return settings


# ----------------------------------------------------------------------------- parent


def peak_gemm_numpy(n: int = GEMM_N, repeat: int = 5) -> float:
    """Best GFLOP/s of a float32 n x n x n matrix product with numpy's BLAS."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2.0 * n ** 3 / best / 1e9


def network_cost(cfg: BenchConfig) -> dict:
    """Parameters and forward MACs per image from the MX port's records (porting.core.cost).

    The verifier proves both sides are the same layers (tests/test_cost.py checks that
    their totals agree), so one side's records cost both.
    """
    from porting import compat  # noqa: F401
    from porting.core import cost
    from porting.frameworks import mx_reader
    from mx_impl import inception_resnet_v2 as irv2

    sym = irv2.get_symbol(NUM_CLASSES, create_aux_logits=cfg.aux, repeats=tuple(cfg.repeats),
                          image_size=cfg.size)
    graph = mx_reader.read_symbol(sym, (cfg.size, cfg.size), NUM_CLASSES)
    total = cost.totals(cost.layer_costs(graph.records))
    return {"params": total.params, "macs_per_image": total.macs,
            "train_flops_per_image": 2 * TRAIN_FACTOR * total.macs, "infer_flops_per_image": 2 * total.macs}


def child_env(runner: str, args) -> dict:
    """The environment a runner's process gets.

    ``mxnet``: the trainer's ``porting.threads.mxnet_cpu_env(training=True)`` where the caller has not set a value
    (not on GPUs, not with --mx-env-default), then every --mx-env. ``mxnet-defaults``:
    the library's defaults, so the settings porting.threads manages are removed.
    """
    from porting import compat, threads

    env = threads.environ_without_applied()  # this process loaded MXNet with them; pass on only the user's
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if runner == "mxnet":
        if not (args.mx_env_default or args.gpus):
            threads.apply_mxnet_cpu_env(env, training=True)
        else:
            env[compat.LIBRARY_THREADS_ENV] = "1"
        env.update(dict(item.split("=", 1) for item in args.mx_env))
    elif runner == "mxnet-defaults":
        for key in threads.mxnet_cpu_env(training=True):
            env.pop(key, None)
        env[compat.LIBRARY_THREADS_ENV] = "1"  # or compat.import_mx() would apply them again
    return env


def run_child(runner: str, cfg: BenchConfig, args, timeout: float) -> dict:
    """Run one measurement in a fresh interpreter; its RESULT line as a dict."""
    framework = "tensorflow" if runner == "tensorflow" else "mxnet"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", framework,
               "--child-config", json.dumps(asdict(cfg))]
    if args.gpus:
        command += ["--gpus", args.gpus]
    if args.tf_threads:
        command += ["--tf-threads", args.tf_threads]
    load_before = os.getloadavg()
    started = time.perf_counter()
    result, _ = run_result_child(command, child_env(runner, args), f"{runner} {cfg.name}", timeout)
    result["wall_s"] = round(time.perf_counter() - started, 2)
    result["loadavg_before"] = [round(v, 2) for v in load_before]
    return result


def best(results: list[dict], key: str) -> dict:
    """The round with the highest ``key`` (the least disturbed by other load)."""
    return max(results, key=lambda r: r[key])


def ratios_of(mx: dict, tf: dict) -> dict:
    """MXNet / TF for throughput (higher is better for MXNet) and memory and CPU time (lower is)."""
    ratios = {"train_ips": mx["train_ips"] / tf["train_ips"], "infer_ips": mx["infer_ips"] / tf["infer_ips"],
              "train_peak_rss": mx["train_peak_rss_mb"] / tf["train_peak_rss_mb"],
              "peak_rss": mx["peak_rss_mb"] / tf["peak_rss_mb"],
              "train_cpu_s_per_image": mx["train_cpu_s_per_image"] / tf["train_cpu_s_per_image"],
              "infer_cpu_s_per_image": mx["infer_cpu_s_per_image"] / tf["infer_cpu_s_per_image"]}
    if mx.get("accel_mem_mb") and tf.get("accel_mem_mb"):
        ratios["accel_mem"] = mx["accel_mem_mb"] / tf["accel_mem_mb"]
    if mx.get("infer_folded_ips"):
        ratios["infer_folded_ips"] = mx["infer_folded_ips"] / tf["infer_ips"]
    return ratios


def summarize(cfg: BenchConfig, cost: dict, rounds: dict[str, list[dict]], peak_gflops: float) -> dict:
    """Per runner: best training and inference round, achieved GFLOP/s and fraction of peak.

    ``ratios``: MXNet (porting.threads settings) / TF; ``ratios_defaults``: MXNet with the
    library defaults / TF, when that baseline ran.
    """
    runs = {}
    for framework, results in rounds.items():
        train = best(results, "train_ips")
        infer = best(results, "infer_ips")
        run = {
            "train_ips": train["train_ips"], "infer_ips": infer["infer_ips"],
            "peak_rss_mb": min(r["peak_rss_mb"] for r in results),
            "train_peak_rss_mb": min(r["rss_after_train_mb"] for r in results),
            "rss_after_import_mb": min(r["rss_after_import_mb"] for r in results),
            "accel_mem_mb": train.get("accel_mem_mb"),
            "train_cpu_s_per_image": min(r["train_cpu_s_per_image"] for r in results),
            "infer_cpu_s_per_image": min(r["infer_cpu_s_per_image"] for r in results),
            "train_gflops": train["train_ips"] * cost["train_flops_per_image"] / 1e9,
            "infer_gflops": infer["infer_ips"] * cost["infer_flops_per_image"] / 1e9,
            "gemm_gflops": max(r.get("gemm_gflops") or 0.0 for r in results),
            "version": train["version"], "build_s": train["build_s"], "settings": train["settings"],
            "fusion": train.get("fusion"), "rounds": results,
        }
        run["train_peak_fraction"] = run["train_gflops"] / peak_gflops
        run["infer_peak_fraction"] = run["infer_gflops"] / peak_gflops
        if all(r.get("infer_folded_ips") for r in results):
            run["infer_folded_ips"] = max(r["infer_folded_ips"] for r in results)
            run["infer_folded_gflops"] = run["infer_folded_ips"] * cost["infer_flops_per_image"] / 1e9
            run["infer_folded_peak_fraction"] = run["infer_folded_gflops"] / peak_gflops
        runs[framework] = run
    ratios = ratios_of(runs["mxnet"], runs["tensorflow"]) if {"mxnet", "tensorflow"} <= set(runs) else {}
    entry = {"name": cfg.name, "network": cfg.describe(), "config": asdict(cfg), **cost, "runs": runs,
             "ratios": ratios}
    if {"mxnet-defaults", "tensorflow"} <= set(runs):
        entry["ratios_defaults"] = ratios_of(runs["mxnet-defaults"], runs["tensorflow"])
    if {"mxnet-defaults", "mxnet"} <= set(runs):
        entry["speedup_over_defaults"] = {
            "train_ips": runs["mxnet"]["train_ips"] / runs["mxnet-defaults"]["train_ips"],
            "infer_ips": runs["mxnet"]["infer_ips"] / runs["mxnet-defaults"]["infer_ips"]}
    return entry


TABLE_HEADERS = ["config", "framework", "train img/s", "infer img/s", "train peak RSS MB", "train GFLOP/s",
                 "train % peak", "infer GFLOP/s", "infer % peak"]


def table_rows(report: dict) -> list[list]:
    """One row per runner and config, then the MXNet/TF ratio rows."""
    rows = []
    for entry in report["configs"]:
        for runner in RUNNERS:
            run = entry["runs"].get(runner)
            if run is None:
                continue
            memory = run["train_peak_rss_mb"] if not report["gpus"] else run.get("accel_mem_mb")
            rows.append([entry["network"], RUNNER_LABELS[runner], f"{run['train_ips']:.2f}", f"{run['infer_ips']:.2f}",
                         f"{memory:.0f}" if memory else "--", f"{run['train_gflops']:.1f}",
                         f"{100 * run['train_peak_fraction']:.1f}%", f"{run['infer_gflops']:.1f}",
                         f"{100 * run['infer_peak_fraction']:.1f}%"])
            if runner == "mxnet" and run.get("infer_folded_ips"):
                rows.append([entry["network"], FOLDED_LABEL, "--", f"{run['infer_folded_ips']:.2f}", "--", "--", "--",
                             f"{run['infer_folded_gflops']:.1f}", f"{100 * run['infer_folded_peak_fraction']:.1f}%"])
        for label, key in (("MXNet defaults/TF", "ratios_defaults"), ("MXNet/TF", "ratios")):
            ratios = entry.get(key)
            if not ratios:
                continue
            memory = ratios.get("accel_mem") if report["gpus"] else ratios["train_peak_rss"]
            rows.append([entry["network"], label, f"{ratios['train_ips']:.2f}x",
                         f"{ratios['infer_ips']:.2f}x", f"{memory:.2f}x" if memory else "--",
                         "--", "--", "--", "--"])
            if key == "ratios" and ratios.get("infer_folded_ips"):
                rows.append([entry["network"], f"{FOLDED_LABEL}/TF", "--", f"{ratios['infer_folded_ips']:.2f}x",
                             "--", "--", "--", "--", "--"])
    return rows


def render(report: dict) -> str:
    from tabulate import tabulate

    headers = list(TABLE_HEADERS)
    if report["gpus"]:
        headers[4] = "accel MB"
    load = report["host"]
    lines = [f"train_throughput: {report['device']}, matmul peak {report['matmul']['peak_gflops']:.1f} GFLOP/s "
             f"(numpy {report['matmul']['numpy_gflops']:.1f}), load average {load['loadavg_start'][0]:.2f} -> "
             f"{load['loadavg_end'][0]:.2f} on {load['cpus']} CPUs",
             tabulate(table_rows(report), headers=headers, tablefmt="simple", disable_numparse=True),
             "GFLOP/s: 2 x forward MACs (porting.core.cost) per image, x3 for a training step; "
             "throughput: best of the rounds, warm-up excluded.",
             f"'{FOLDED_LABEL}': inference with the residual scales folded into the up-projection "
             "convolutions (porting.serving.rewrites.fold_residual_scales)."]
    lines += [f"{entry['network']}, mxnet: {entry['runs']['mxnet']['fusion']}" for entry in report["configs"]
              if entry["runs"].get("mxnet", {}).get("fusion")]
    return "\n".join(lines) + "\n"


def parse_gpus(text: str | None) -> list[int]:
    """``porting.util.parse_gpus``, with one GPU at most: the TF reference trains on one device."""
    if text is None:
        return []
    try:
        ids = util.parse_gpus(text)
    except ValueError:
        raise UsageError(f"--gpus must be one GPU id such as 0, got {text!r}") from None
    if len(ids) != 1:
        raise UsageError(f"--gpus takes one GPU id (the TF reference trains on one device), got {text!r}")
    return ids


def parse_configs(text: str) -> list[BenchConfig]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or not names:
        raise UsageError(f"unknown config {', '.join(unknown) or text!r}. Available: {', '.join(CONFIGS)}")
    return [CONFIGS[name] for name in names]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/train_throughput.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: reduced net, tiny input, few steps")
    p.add_argument("--configs", default="reduced,full", help=f"comma list of {', '.join(CONFIGS)} (default all)")
    p.add_argument("--batch", type=int, help="batch size for every config (default: the config's)")
    p.add_argument("--steps", type=int, help="timed training steps (default: the config's)")
    p.add_argument("--warmup", type=int, help="untimed warm-up steps (default: the config's)")
    p.add_argument("--rounds", type=int, default=1, help="alternating MXNet/TF rounds per config (default 1)")
    p.add_argument("--frameworks", default="mxnet,tensorflow", help="comma list (default both)")
    p.add_argument("--gpus", help="one GPU id: run both frameworks on that GPU and report accelerator memory")
    p.add_argument("--mx-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment variable for the MXNet process (repeatable)")
    p.add_argument("--mx-env-default", action="store_true",
                   help="run MXNet with the library defaults, not porting.threads.mxnet_cpu_env()")
    p.add_argument("--mx-baseline", action="store_true",
                   help="also run MXNet with the library defaults each round (before/after in one run)")
    p.add_argument("--tf-threads", metavar="INTRA,INTER", help="TF session thread pools (default: TF's)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per framework process (default 900)")
    p.add_argument("--out", help=out_help(NAME))
    p.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    return p


def validate(args) -> list[BenchConfig]:
    parse_gpus(args.gpus)
    for flag in ("batch", "steps", "rounds"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag} must be a positive integer, got {value}")
    if args.warmup is not None and args.warmup < 0:
        raise UsageError(f"--warmup must be a non-negative integer, got {args.warmup}")
    for item in args.mx_env:
        if "=" not in item or not item.split("=", 1)[0]:
            raise UsageError(f"--mx-env must be KEY=VALUE, got {item!r}")
    if args.tf_threads is not None:
        parts = args.tf_threads.split(",")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise UsageError(f"--tf-threads must be INTRA,INTER (non-negative ints), got {args.tf_threads!r}")
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if not frameworks or any(f not in FRAMEWORKS for f in frameworks):
        raise UsageError(f"--frameworks must be a comma list of {', '.join(FRAMEWORKS)}, got {args.frameworks!r}")
    args.frameworks = [f for f in FRAMEWORKS if f in frameworks]
    args.runners = [runner for runner in RUNNERS
                    if runner in args.frameworks or (runner == "mxnet-defaults" and args.mx_baseline)]
    configs = [QUICK] if args.quick else parse_configs(args.configs)
    overrides = {key: getattr(args, key) for key in ("batch", "steps", "warmup") if getattr(args, key) is not None}
    if args.gpus and args.batch is None and not args.quick:
        overrides["batch"] = 32  # a GPU needs a bigger batch to be busy
    from dataclasses import replace

    return [replace(cfg, **overrides) for cfg in configs]


def run(args, configs: list[BenchConfig]) -> dict:
    load_start = os.getloadavg()
    numpy_gflops = peak_gemm_numpy()
    entries = []
    children: dict[str, dict[str, list[dict]]] = {}
    for cfg in configs:
        cost = network_cost(cfg)
        rounds: dict[str, list[dict]] = {runner: [] for runner in args.runners}
        for _ in range(args.rounds):
            for runner in args.runners:  # MXNet, then TF, then MXNet...
                rounds[runner].append(run_child(runner, cfg, args, args.timeout))
        children[cfg.name] = rounds
        entries.append((cfg, cost, rounds))
    gemm = [numpy_gflops] + [r.get("gemm_gflops") or 0.0 for rounds in children.values()
                             for results in rounds.values() for r in results]
    peak = max(gemm)
    report = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": bool(args.quick),
        "gpus": args.gpus,
        "device": f"GPU {args.gpus}" if args.gpus else f"CPU ({platform.processor() or platform.machine()})",
        "host": {"cpus": os.cpu_count(), "loadavg_start": [round(v, 2) for v in load_start],
                 "python": platform.python_version(), "platform": platform.platform()},
        "matmul": {"n": GEMM_N, "numpy_gflops": numpy_gflops,
                   "mxnet_gflops": max((r.get("gemm_gflops") or 0.0 for rs in children.values()
                                        for r in rs.get("mxnet", []) + rs.get("mxnet-defaults", [])),
                                       default=None),
                   "tensorflow_gflops": max((r.get("gemm_gflops") or 0.0 for rs in children.values()
                                             for r in rs.get("tensorflow", [])), default=None),
                   "peak_gflops": peak},
        "conventions": {"macs": "forward multiply-adds per image of conv and FC layers (porting.core.cost)",
                        "flops": "2 x MACs; a training step = 3 x forward",
                        "throughput": "batch / median step time of a round; the best round; warm-up excluded",
                        "memory": "peak resident set (ru_maxrss) of the framework's own process, imports "
                                  "included: after training (train_peak_rss_mb, the table) and at exit, "
                                  "inference included (peak_rss_mb)"
                                  if not args.gpus else "accelerator memory: MXNet total - free after training "
                                  "(its pool included), TF get_memory_info peak",
                        "cpu_s_per_image": "process CPU seconds (all threads) per image: the work, whatever "
                                           "share of the machine other processes left",
                        "optimizer": f"SGD momentum {MOMENTUM}, lr {LR}, L2 {WD} on weights; aux loss x{AUX_WEIGHT}"},
        "mx_env": {k: v for k, v in child_env("mxnet", args).items()
                   if k.startswith(("MXNET_", "OMP_", "KMP_"))},
        "configs": [summarize(cfg, cost, rounds, peak) for cfg, cost, rounds in entries],
    }
    report["host"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    report["table"] = render(report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return child_main(args)
    return run_bench(lambda: (validate(args), report_path(args.out, NAME, args.quick)),
                     lambda configs: run(args, configs), failures=(RuntimeError,))


# ------------------------------------------------------------------------------ child


def rss_mb() -> float:
    """Peak resident set of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_s() -> float:
    """CPU time (user + system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(step, count: int, cpu: list | None = None) -> list[float]:
    """Wall seconds of ``count`` calls of ``step``; their CPU seconds are appended to ``cpu``."""
    times = []
    for _ in range(count):
        cpu_started, started = cpu_s(), time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(cpu_s() - cpu_started)
    return times


def gemm_gflops(matmul, repeat: int = 3) -> float:
    """Best GFLOP/s of ``matmul()`` (a synchronous 2048^3 float32 product)."""
    matmul()
    best_s = min(timed(matmul, repeat))
    return 2.0 * GEMM_N ** 3 / best_s / 1e9


def mxnet_trainer(cfg: BenchConfig, ctx: list):
    """The network as ``python -m porting.train`` trains it (``porting.training.preparation``: the
    residual scales on the weights, batch norms fused with their ReLU where proven, one malloc arena,
    one host copy of the parameters), SGD with momentum, on one fixed random batch:
    ``(module, batch, train_step, fusion proof)``."""
    import numpy as np

    from porting import compat

    mx = compat.import_mx()
    from porting.training import fusion, memory
    from porting.training.network import build_symbol, scale_residuals_in_weights
    from porting.training.symbol_heads import LABEL_NAME

    memory.limit_malloc_arenas()  # before the first operator, as the trainer does
    sym = build_symbol(NUM_CLASSES, (cfg.size, cfg.size), repeats=tuple(cfg.repeats), aux_logits=cfg.aux)
    data_shape = (cfg.batch, 3, cfg.size, cfg.size)
    trained, proof = fusion.proven_fusion(scale_residuals_in_weights(sym), ctx, data_shape, (cfg.batch,))
    mod = mx.mod.Module(trained, data_names=["data"], label_names=[LABEL_NAME], context=ctx)
    mod.bind(data_shapes=[("data", data_shape)], label_shapes=[(LABEL_NAME, (cfg.batch,))])
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    memory.share_host_params(mod)
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": LR, "momentum": MOMENTUM, "wd": WD})
    rng = np.random.default_rng(0)
    batch = mx.io.DataBatch(
        data=[mx.nd.array(rng.uniform(-1, 1, data_shape).astype(np.float32), ctx=ctx[0])],
        label=[mx.nd.array(rng.integers(0, NUM_CLASSES, cfg.batch).astype(np.float32), ctx=ctx[0])])

    def train_step():
        mod.forward_backward(batch)
        mod.update()
        mx.nd.waitall()

    return mod, batch, train_step, proof


def child_mxnet(cfg: BenchConfig, gpus: list[int]) -> dict:
    from porting import compat

    mx = compat.import_mx()
    from mx_impl import inception_resnet_v2 as irv2
    from porting.serving import rewrites
    from porting.training.devices import contexts

    rss_import = rss_mb()
    ctx = contexts(",".join(map(str, gpus)) or None)  # a GPU this MXNet build cannot use: one clear error
    started = time.perf_counter()
    mod, batch, train_step, proof = mxnet_trainer(cfg, ctx)
    build_s = time.perf_counter() - started

    timed(train_step, cfg.warmup)
    train_cpu: list[float] = []
    train_times = timed(train_step, cfg.steps, train_cpu)
    rss_train = rss_mb()
    accel = None
    if gpus:
        free, total = mx.context.gpu_memory_info(gpus[0])
        accel = (total - free) / 2 ** 20

    infer_sym = mx.sym.Group([out for out in irv2.get_symbol(
        NUM_CLASSES, create_aux_logits=cfg.aux, repeats=tuple(cfg.repeats), image_size=cfg.size)])
    arg_params, aux_params = mod.get_params()
    infer = mx.mod.Module(infer_sym, data_names=["data"], label_names=None, context=ctx)
    # Bound on its own, as porting.predict serves: an inference-only executor gets MXNet's
    # MKLDNN operator fusion (conv + batch norm + ReLU + residual add); one bound with
    # shared_module=<the training module> does not, and ran 0.76x TF instead of ~1.0x at 139.
    infer.bind(data_shapes=[("data", batch.data[0].shape)], for_training=False)
    infer.set_params(arg_params, aux_params, allow_extra=True)
    infer_batch = mx.io.DataBatch(data=batch.data)

    def infer_step():
        infer.forward(infer_batch, is_train=False)
        for out in infer.get_outputs():
            out.wait_to_read()

    timed(infer_step, max(1, cfg.warmup))
    infer_cpu: list[float] = []
    infer_times = timed(infer_step, cfg.infer_steps, infer_cpu)

    # The serving variant: residual scales folded into the up-projections (porting.threads).
    folded_sym, folded_params, folded = rewrites.fold_residual_scales(infer_sym, arg_params)
    served = mx.mod.Module(folded_sym, data_names=["data"], label_names=None, context=ctx)
    served.bind(data_shapes=[("data", batch.data[0].shape)], for_training=False)
    served.set_params(folded_params, aux_params, allow_extra=True)

    def served_step():
        served.forward(infer_batch, is_train=False)
        for out in served.get_outputs():
            out.wait_to_read()

    timed(served_step, max(1, cfg.warmup))
    folded_times = timed(served_step, cfg.infer_steps)

    a = mx.nd.random.normal(shape=(GEMM_N, GEMM_N), ctx=ctx[0])
    b = mx.nd.random.normal(shape=(GEMM_N, GEMM_N), ctx=ctx[0])
    gemm = gemm_gflops(lambda: mx.nd.dot(a, b).wait_to_read())

    return {"framework": "mxnet", "version": mx.__version__, "build_s": round(build_s, 2),
            "train_step_s": train_times, "infer_step_s": infer_times,
            "train_cpu_s": train_cpu, "infer_cpu_s": infer_cpu,
            "infer_folded_step_s": folded_times, "folded_layers": len(folded),
            "rss_after_import_mb": rss_import, "rss_after_train_mb": rss_train, "accel_mem_mb": accel,
            "gemm_gflops": gemm if not gpus else None, "settings": mxnet_settings(mx), "fusion": proof.describe()}


def child_tensorflow(cfg: BenchConfig, gpus: list[int], tf_threads: str | None) -> dict:
    import numpy as np

    from porting import compat

    tf = compat.import_tf()
    slim = compat.import_slim()
    from reference_tf import inception_resnet_v2 as irv2

    v1 = tf.compat.v1
    rss_import = rss_mb()
    visible = tf.config.list_physical_devices("GPU")
    if gpus and gpus[0] >= len(visible):  # soft placement would train on the CPU and call it GPU numbers
        raise RuntimeError(f"--gpus {gpus[0]}: GPU {gpus[0]} is not available; TensorFlow sees {len(visible)} "
                           "GPU(s) (no CUDA driver, or a CPU-only TensorFlow)")
    device = f"/GPU:{gpus[0]}" if gpus else "/CPU:0"
    config = v1.ConfigProto(allow_soft_placement=True)
    if tf_threads:
        intra, inter = (int(v) for v in tf_threads.split(","))
        config.intra_op_parallelism_threads, config.inter_op_parallelism_threads = intra, inter
    if gpus:
        config.gpu_options.allow_growth = True
        config.gpu_options.visible_device_list = str(gpus[0])
        device = "/GPU:0"
    rng = np.random.default_rng(0)
    images_value = rng.uniform(-1, 1, (cfg.batch, cfg.size, cfg.size, 3)).astype(np.float32)
    labels_value = rng.integers(0, NUM_CLASSES, cfg.batch).astype(np.int64)

    def network(images, is_training: bool, reuse: bool):
        with slim.arg_scope(irv2.inception_resnet_v2_arg_scope()):
            return irv2.inception_resnet_v2(images, NUM_CLASSES, is_training=is_training, reuse=reuse,
                                            create_aux_logits=cfg.aux, repeats=tuple(cfg.repeats))

    started = time.perf_counter()
    graph = tf.Graph()
    with graph.as_default(), compat.fast_graph_building(), tf.device(device):
        images = v1.Variable(images_value, trainable=False, name="bench_images")
        logits, end_points = network(images, is_training=True, reuse=False)
        labels = tf.constant(labels_value)
        loss = v1.losses.sparse_softmax_cross_entropy(labels, logits)
        if cfg.aux:
            loss += AUX_WEIGHT * v1.losses.sparse_softmax_cross_entropy(labels, end_points["AuxLogits"])
        loss += v1.losses.get_regularization_loss()
        optimizer = v1.train.MomentumOptimizer(LR, MOMENTUM)
        with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
            train_op = optimizer.minimize(loss)
        # The inference network shares the trained variables (moving statistics, no dropout).
        infer_logits, infer_end_points = network(images, is_training=False, reuse=True)
        fetches = [infer_logits, infer_end_points["Predictions"]]
        fetches += [infer_end_points["AuxLogits"]] if cfg.aux else []
        init = v1.global_variables_initializer()
    session = v1.Session(graph=graph, config=config)
    session.run(init)
    build_s = time.perf_counter() - started

    def train_step():
        session.run(train_op)

    timed(train_step, cfg.warmup)
    train_cpu: list[float] = []
    train_times = timed(train_step, cfg.steps, train_cpu)
    rss_train = rss_mb()
    accel = None
    if gpus:
        accel = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20

    def infer_step():
        session.run(fetches)

    timed(infer_step, max(1, cfg.warmup))
    infer_cpu: list[float] = []
    infer_times = timed(infer_step, cfg.infer_steps, infer_cpu)
    session.close()

    gemm = None
    if not gpus:
        with tf.device("/CPU:0"):
            a = tf.random.normal((GEMM_N, GEMM_N))
            b = tf.random.normal((GEMM_N, GEMM_N))
            gemm = gemm_gflops(lambda: tf.linalg.matmul(a, b).numpy())
    return {"framework": "tensorflow", "version": tf.__version__, "build_s": round(build_s, 2),
            "train_step_s": train_times, "infer_step_s": infer_times,
            "train_cpu_s": train_cpu, "infer_cpu_s": infer_cpu,
            "rss_after_import_mb": rss_import, "rss_after_train_mb": rss_train, "accel_mem_mb": accel,
            "gemm_gflops": gemm,
            "settings": {"intra_op_threads": config.intra_op_parallelism_threads,
                         "inter_op_threads": config.inter_op_parallelism_threads,
                         "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}}


def child_main(args) -> int:
    from porting import compat  # noqa: F401  (shims before any framework import)

    cfg_dict = json.loads(args.child_config)
    cfg_dict["repeats"] = tuple(cfg_dict["repeats"])
    cfg = BenchConfig(**cfg_dict)
    gpus = parse_gpus(args.gpus)
    if args.child == "mxnet":
        result = child_mxnet(cfg, gpus)
    else:
        result = child_tensorflow(cfg, gpus, args.tf_threads)
    # Throughput from the median step: one step slowed down by another process's burst
    # does not move it.
    result["train_ips"] = cfg.batch / statistics.median(result["train_step_s"])
    result["infer_ips"] = cfg.batch / statistics.median(result["infer_step_s"])
    if result.get("infer_folded_step_s"):
        result["infer_folded_ips"] = cfg.batch / statistics.median(result["infer_folded_step_s"])
    # CPU seconds per image (all threads): how much work a step is, whatever share of the
    # machine other processes left this one; the wall-clock numbers above depend on that share.
    result["train_cpu_s_per_image"] = sum(result["train_cpu_s"]) / (cfg.batch * len(result["train_cpu_s"]))
    result["infer_cpu_s_per_image"] = sum(result["infer_cpu_s"]) / (cfg.batch * len(result["infer_cpu_s"]))
    result["peak_rss_mb"] = rss_mb()
    result["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
