"""Where MXNet's training memory goes: the peak of one training process, part by part.

    python bench/train_memory.py            # full network at 299, batch 8 (bench/train_throughput.py's full-299)
    python bench/train_memory.py --quick    # a smoke test: reduced net, tiny input

Trains Inception-ResNet-v2 (slim's AuxLogits head included; SGD with momentum, as in
``bench/train_throughput.py``) on one fixed random batch, one fresh process per variant:

* ``module-defaults``: ``mx.mod.Module`` on mx_impl's training symbol as MXNet sets it up
  (glibc's malloc arenas per thread, the Module's host copy of the parameters);
* ``trainer``: what ``python -m porting.train`` runs with: the residual scales applied to
  the convolutions' weights (``porting.training.network.scale_residuals_in_weights``),
  one malloc arena and the host copy shared with the executor (``porting.training.memory``);
* ``trainer, oneDNN off``: the same with ``MXNET_MKLDNN_ENABLED=0``, to measure what the
  oneDNN (MKL-DNN) operators hold beyond the executor's memory plan (and what they save
  in time).

Each process records its resident set (``VmRSS``) and peak (``ru_maxrss``) and glibc's
heap in use and free (``mallinfo2``) after each stage (import, bind, parameters,
optimizer, first forward, first backward, first update, the timed steps), and splits its
peak into parts it can count exactly: the libraries after import, the parameters, their
gradients, the optimizer's momentum, the Module's host copy, the batch, and the
executor's memory plan (``Total N MB allocated`` of the bound executor's ``debug_str``:
the activations kept for backward and the backward's buffers). What is left is the
oneDNN operators' buffers, temporary arrays and allocator slack. The activations are also
summed by stage of the network from the symbol's inferred shapes (every forward output at
the batch: what the plan shares buffers between).

Writes ``reports/bench/train_memory.json`` (``--out``) for a full run; ``--quick`` writes to
``$TMPDIR/porting-bench-quick/`` (``bench.common.report_path``). A child that fails is
reported with its own error line.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULT_PREFIX, UsageError, out_help, publish, report_path, run_result_child  # noqa: E402
from bench.train_throughput import BenchConfig  # noqa: E402

FORMAT = "porting.bench.train_memory/1"
NAME = "train_memory"
NUM_CLASSES = 1001
LR, MOMENTUM, WD = 0.01, 0.9, 4e-5
MB = 2.0 ** 20

#: The variants, in the order they run: label, whether the trainer's settings apply, extra environment.
VARIANTS = {
    "module-defaults": {"label": "Module defaults", "trainer": False, "env": {}},
    "trainer": {"label": "trainer", "trainer": True, "env": {}},
    "trainer-onednn-off": {"label": "trainer, oneDNN off", "trainer": True, "env": {"MXNET_MKLDNN_ENABLED": "0"}},
}


#: The network, input and steps measured (train_throughput's config: no inference steps here).
FULL = BenchConfig("full-299", (10, 20, 9), 299, 8, warmup=1, steps=2, infer_steps=0)
QUICK = BenchConfig("quick-reduced-107", (1, 1, 1), 107, 4, warmup=1, steps=1, infer_steps=0)

#: The parts of the peak, in table order: (key, row label).
PARTS = (
    ("libraries", "libraries after import (RSS)"),
    ("parameters", "parameters (executor)"),
    ("gradients", "gradients"),
    ("optimizer_states", "optimizer states (momentum)"),
    ("host_param_copy", "Module's host copy of the parameters"),
    ("aux_states", "batch-norm moving statistics"),
    ("batch", "input batch"),
    ("executor_plan", "executor memory plan (activations + backward buffers)"),
    ("rest", "rest: oneDNN buffers, temporaries, allocator slack"),
)
STAGES = ("import", "bind", "init_params", "init_optimizer", "forward_1", "backward_1", "update_1", "steps")


# ----------------------------------------------------------------------------- child


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_mb() -> dict:
    """glibc's heap: in use (arenas + mmapped blocks) and free inside the arenas, MB; {} without glibc."""
    try:
        info = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):  # pragma: no cover - not glibc 2.33+
        return {}
    info.restype = _MallInfo2
    m = info()
    return {"heap_used_mb": (m.uordblks + m.hblkhd) / MB, "heap_free_mb": m.fordblks / MB}


def rss_now_mb() -> float:
    with open("/proc/self/status") as handle:
        return int(re.search(r"VmRSS:\s+(\d+)", handle.read()).group(1)) / 1024.0


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def snapshot(stage: str) -> dict:
    return {"stage": stage, "rss_mb": rss_now_mb(), "peak_rss_mb": rss_peak_mb(), **heap_mb()}


def stage_of(name: str) -> str:
    """The network stage an internal output belongs to (slim's scope names)."""
    parts = name.split("/")
    scope = parts[1] if parts[0] == "InceptionResnetV2" and len(parts) > 1 else parts[0]
    if scope.startswith(("Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4", "MaxPool_")):
        return "stem"
    if scope.startswith(("Conv2d_7b", "Logits")):
        return "Conv2d_7b + logits"
    return {"Repeat": "block35", "Repeat_1": "block17", "Repeat_2": "block8", "Block8": "block8",
            "AuxLogits": "aux head"}.get(scope, scope)


def activations_by_stage(sym, shapes: dict, batch: int) -> list[dict]:
    """Every forward output of ``sym`` summed by network stage, MB at this batch, in network order."""
    import numpy as np

    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(**shapes)
    variables = set(sym.list_arguments()) | set(sym.list_auxiliary_states())
    stages: dict[str, dict] = {}
    for name, shape in zip(internals.list_outputs(), out_shapes):
        if name in variables or shape is None:
            continue
        entry = stages.setdefault(stage_of(name), {"stage": stage_of(name), "outputs": 0, "mb": 0.0})
        entry["outputs"] += 1
        entry["mb"] += int(np.prod(shape)) * 4 / MB
    return list(stages.values())


def child_main(variant: str, cfg: BenchConfig) -> dict:
    import numpy as np

    from porting import compat

    trainer = VARIANTS[variant]["trainer"]
    mx = compat.import_mx(training=trainer)
    stages = [snapshot("import")]
    from porting.training import fusion, memory
    from porting.training.network import build_symbol, scale_residuals_in_weights
    from porting.training.symbol_heads import LABEL_NAME

    if trainer:
        memory.limit_malloc_arenas()  # as porting.training.preparation does, before the first operator
    sym = build_symbol(NUM_CLASSES, (cfg.size, cfg.size), repeats=tuple(cfg.repeats), aux_logits=True)
    data_shape = (cfg.batch, 3, cfg.size, cfg.size)
    bound = (fusion.proven_fusion(scale_residuals_in_weights(sym), [mx.cpu()], data_shape, (cfg.batch,))[0]
             if trainer else sym)
    mod = mx.mod.Module(bound, data_names=["data"], label_names=[LABEL_NAME], context=[mx.cpu()])
    mod.bind(data_shapes=[("data", data_shape)], label_shapes=[(LABEL_NAME, (cfg.batch,))])
    executor = mod._exec_group.execs[0]  # Module has no public accessor for its executor's plan
    plan = re.search(r"Total (\d+) MB allocated", executor.debug_str())
    stages.append(snapshot("bind"))
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    shared = memory.share_host_params(mod) if trainer else False
    mx.nd.waitall()
    stages.append(snapshot("init_params"))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": LR, "momentum": MOMENTUM, "wd": WD})
    stages.append(snapshot("init_optimizer"))
    rng = np.random.default_rng(0)
    batch = mx.io.DataBatch(
        data=[mx.nd.array(rng.uniform(-1, 1, data_shape).astype(np.float32))],
        label=[mx.nd.array(rng.integers(0, NUM_CLASSES, cfg.batch).astype(np.float32))])
    with compat.quiet_native_stderr():  # MKL-DNN pooling's one log line per layer at the first forward
        mod.forward(batch, is_train=True)
        mx.nd.waitall()
        stages.append(snapshot("forward_1"))
        mod.backward()
        mx.nd.waitall()
        stages.append(snapshot("backward_1"))
        mod.update()
        mx.nd.waitall()
        stages.append(snapshot("update_1"))
        for _ in range(max(0, cfg.warmup - 1)):
            mod.forward_backward(batch)
            mod.update()
        mx.nd.waitall()
        times = []
        for _ in range(cfg.steps):
            started = time.perf_counter()
            mod.forward_backward(batch)
            mod.update()
            mx.nd.waitall()
            times.append(time.perf_counter() - started)
    stages.append(snapshot("steps"))

    params = [n for n in sym.list_arguments() if n not in ("data", LABEL_NAME)]
    learnable = sum(executor.arg_dict[n].size for n in params) * 4 / MB
    grads = sum(executor.grad_dict[n].size for n in params if executor.grad_dict.get(n) is not None) * 4 / MB
    aux = sum(a.size for a in executor.aux_arrays) * 4 / MB
    peak = rss_peak_mb()
    parts = {
        "libraries": stages[0]["rss_mb"],
        "parameters": learnable,
        "gradients": grads,
        "optimizer_states": memory.optimizer_states("sgd", MOMENTUM) * learnable,
        "host_param_copy": 0.0 if shared else learnable + aux,
        "aux_states": aux,
        "batch": (np.prod(data_shape) + cfg.batch) * 4 / MB,
        "executor_plan": float(plan.group(1)) if plan else 0.0,
    }
    parts["rest"] = peak - sum(parts.values())
    shapes = {"data": data_shape, LABEL_NAME: (cfg.batch,)}
    return {"variant": variant, "version": mx.__version__, "peak_rss_mb": peak, "parts_mb": parts,
            "host_params_shared": shared, "stages": stages, "step_s": times,
            "train_ips": cfg.batch / min(times) if times else None,
            "mkldnn": mx.runtime.Features().is_enabled("MKLDNN") and os.environ.get("MXNET_MKLDNN_ENABLED") != "0",
            "activations_by_stage": activations_by_stage(sym, shapes, cfg.batch),
            "settings": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("MXNET_", "OMP_", "MALLOC_"))}}


# ----------------------------------------------------------------------------- parent


def run_child(variant: str, cfg: BenchConfig, timeout: float) -> dict:
    from porting import threads

    env = threads.environ_without_applied()
    env.update(VARIANTS[variant]["env"])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--child-config",
               json.dumps(asdict(cfg))]
    load = os.getloadavg()
    result, _ = run_result_child(command, env, f"{variant} {cfg.name}", timeout)
    result["loadavg_before"] = [round(v, 2) for v in load]
    return result


def render(report: dict) -> str:
    from tabulate import tabulate

    runs = report["runs"]
    names = list(runs)
    headers = ["MB"] + [VARIANTS[n]["label"] for n in names]
    rows = [[label] + [f"{runs[n]['parts_mb'][key]:.0f}" for n in names] for key, label in PARTS]
    rows.append(["peak RSS (ru_maxrss)"] + [f"{runs[n]['peak_rss_mb']:.0f}" for n in names])
    rows.append(["train img/s (best step)"] + [f"{runs[n]['train_ips']:.2f}" for n in names])
    stage_rows = [[stage] + [f"{next(s['rss_mb'] for s in runs[n]['stages'] if s['stage'] == stage):.0f}"
                             for n in names] for stage in STAGES]
    stage_rows.append(["heap free in arenas at the end"] +
                      [f"{runs[n]['stages'][-1].get('heap_free_mb', 0.0):.0f}" for n in names])
    by_stage = runs[names[0]]["activations_by_stage"]
    lines = [f"train_memory: {report['config']['network']}, SGD momentum, CPU; load average "
             f"{report['host']['loadavg_start'][0]:.2f} -> {report['host']['loadavg_end'][0]:.2f} on "
             f"{report['host']['cpus']} CPUs",
             tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True), "",
             tabulate(stage_rows, headers=["RSS MB after"] + headers[1:], tablefmt="simple",
                      disable_numparse=True), "",
             tabulate([[s["stage"], s["outputs"], f"{s['mb']:.0f}"] for s in by_stage] +
                      [["total", sum(s["outputs"] for s in by_stage), f"{sum(s['mb'] for s in by_stage):.0f}"]],
                      headers=["forward outputs by stage", "outputs", "MB"], tablefmt="simple",
                      disable_numparse=True)]
    if "ratios" in report:
        r = report["ratios"]
        lines.append(f"trainer / Module defaults: peak RSS {r['trainer_over_defaults_rss']:.2f}x, "
                     f"img/s {r['trainer_over_defaults_ips']:.2f}x")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/train_memory.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: reduced net, tiny input, one step")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)} (default all)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per process (default 900)")
    p.add_argument("--out", help=out_help(NAME))
    p.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:  # child_main loads MXNet through porting.compat (shims and threads first)
        fields = json.loads(args.child_config)
        fields["repeats"] = tuple(fields["repeats"])
        result = child_main(args.child, BenchConfig(**fields))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    try:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown or not variants:
            raise UsageError(f"--variants must be a comma list of {', '.join(VARIANTS)}, got {args.variants!r}")
        if args.timeout <= 0:
            raise UsageError(f"--timeout must be positive, got {args.timeout}")
        out = report_path(args.out, NAME, args.quick)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cfg = QUICK if args.quick else FULL
    load_start = os.getloadavg()
    try:
        runs = {variant: run_child(variant, cfg, args.timeout) for variant in VARIANTS if variant in variants}
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": bool(args.quick),
              "config": {**asdict(cfg), "network": cfg.describe()},
              "host": {"cpus": os.cpu_count(), "loadavg_start": [round(v, 2) for v in load_start],
                       "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
              "parts": dict(PARTS), "runs": runs}
    if {"module-defaults", "trainer"} <= set(runs):
        report["ratios"] = {
            "trainer_over_defaults_rss": runs["trainer"]["peak_rss_mb"] / runs["module-defaults"]["peak_rss_mb"],
            "trainer_over_defaults_ips": runs["trainer"]["train_ips"] / runs["module-defaults"]["train_ips"]}
    report["table"] = render(report)
    publish(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
