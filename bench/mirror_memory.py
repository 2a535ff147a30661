"""Memory mirroring (MXNET_BACKWARD_DO_MIRROR) on the training executor: peak RSS and speed.

Each setting runs in its own subprocess (a process's peak RSS never goes down, and
MXNet reads the variable when the executor is bound): bind Inception-ResNet-v2 for
training at a fixed batch, run warm-up steps, then time ``forward_backward + update``.
The parent samples the child's RSS with psutil; the child also reports its own
``ru_maxrss`` (the kernel's exact peak). Prints a table with the on/off ratios and
writes ``reports/bench/mirror_memory.json`` (atomically; ``--quick`` writes to a temporary
folder instead, see ``bench.common.report_path``). A child that fails is reported with its
own error line.

    .venv/bin/python bench/mirror_memory.py                      # small net (2,2,2), 75x75, batch 16
    .venv/bin/python bench/mirror_memory.py --batch 32 --size 149 --steps 5
    .venv/bin/python bench/mirror_memory.py --quick              # smoke test (tests/test_bench_mirror.py)

With mirroring, MXNet 1.x recomputes in backward the outputs of cheap operators
(activations, pooling, elementwise, ...) instead of keeping them; convolution,
fully-connected, batch norm, concat and the softmax output are always kept
(src/executor/graph_executor.cc, ``need_mirror``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # porting (no framework is imported by the parent)
from bench.common import (publish, ChildFailed, UsageError, child_failure, out_help, parse_repeats,  # noqa: E402
                          report_path, settle)

NAME = "mirror_memory"
#: The presets of mx_impl.inception_resnet_v2.REPEAT_PRESETS (not imported: the parent loads no framework).
NAMED_REPEATS = {"full": (10, 20, 9), "reduced": (1, 1, 1), "small": (2, 2, 2)}
#: --quick: one block of each kind, the smallest aligned input, a tiny batch, one timed step.
QUICK = {"batch": 4, "size": 43, "repeats": (1, 1, 1), "steps": 1, "warmup": 1}
TABLE_HEADERS = ["MXNET_BACKWARD_DO_MIRROR", "executor plan MB", "peak RSS MiB (ru_maxrss)",
                 "peak RSS MiB (sampled)", "GPU in use MiB", "samples/s"]


def child(args) -> None:
    os.environ["MXNET_BACKWARD_DO_MIRROR"] = "1" if args.mirror else "0"
    from porting import compat

    mx = compat.import_mx()
    from porting.training.config import TrainConfig
    from porting.training.devices import contexts
    from porting.training.network import build_symbol
    from porting.training.optimizer import optimizer_spec
    from porting.training.symbol_heads import LABEL_NAME

    size = (args.size, args.size)
    ctxs = contexts(args.gpus)
    sym = build_symbol(10, size, repeats=args.repeats, align_feature_maps=args.size < 75)
    mod = mx.mod.Module(sym, label_names=(LABEL_NAME,), context=ctxs)
    mod.bind(data_shapes=[("data", (args.batch, 3, *size))], label_shapes=[(LABEL_NAME, (args.batch,))])
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2.0))
    name, params = optimizer_spec(TrainConfig(data="-", model_dir="-"), 10)
    mod.init_optimizer(optimizer=name, optimizer_params=params)
    batch = mx.io.DataBatch([mx.nd.random.uniform(-1, 1, (args.batch, 3, *size))],
                            [mx.nd.array(mx.nd.random.randint(0, 10, (args.batch,)).asnumpy())])
    for _ in range(args.warmup):
        mod.forward_backward(batch)
        mod.update()
    mx.nd.waitall()
    tic = time.perf_counter()
    for _ in range(args.steps):
        mod.forward_backward(batch)
        mod.update()
    mx.nd.waitall()
    seconds = time.perf_counter() - tic
    # The executor's own plan ("Total N MB allocated"); Module has no public accessor for it.
    plan = [line for line in mod._exec_group.execs[0].debug_str().splitlines() if "MB allocated" in line]
    gpu_used = None
    if args.gpus:  # MXNet's pool keeps what the run needed: in use after the run ~ the peak
        free, total = mx.context.gpu_memory_info(ctxs[0].device_id)
        gpu_used = (total - free) / 2**20
    print(json.dumps({"samples_per_s": args.batch * args.steps / seconds,
                      "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "planned_mb": int(plan[-1].split()[1]) if plan else None, "gpu_used_mib": gpu_used}))


def measure(args, mirror: bool) -> dict:
    import psutil

    cmd = [sys.executable, __file__, "--child", "--batch", str(args.batch), "--size", str(args.size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--repeats", ",".join(map(str, args.repeats))]
    if args.gpus:
        cmd += ["--gpus", args.gpus]
    if mirror:
        cmd.append("--mirror")
    # stderr to a file, not a pipe: the parent polls RSS and reads nothing until the child ends.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, cwd=REPO)
        watched = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.01)
        stdout = proc.stdout.read().decode(errors="replace")
        proc.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    out = stdout.strip().splitlines()
    if proc.returncode != 0 or not out:
        raise ChildFailed(child_failure(f"the MXNET_BACKWARD_DO_MIRROR={int(mirror)} child", proc.returncode,
                                        stderr, stdout))
    result = json.loads(out[-1])
    result["sampled_peak_rss_mib"] = peak / 2**20
    return result


def _cell(value, fmt: str = "{:.0f}") -> str:
    return "--" if value is None else fmt.format(value)


def render(report: dict) -> str:
    """The table: one row per setting, then the on/off ratios."""
    from tabulate import tabulate

    rows = []
    for key in ("off", "on"):
        r = report["runs"][key]
        rows.append([key, _cell(r["planned_mb"]), _cell(r["ru_maxrss_mib"]), _cell(r["sampled_peak_rss_mib"]),
                     _cell(r["gpu_used_mib"]), _cell(r["samples_per_s"], "{:.2f}")])
    ratio = report["on_over_off"]
    rows.append(["on/off", _cell(ratio["planned_mb"], "{:.3f}x"), _cell(ratio["ru_maxrss_mib"], "{:.3f}x"),
                 _cell(ratio["sampled_peak_rss_mib"], "{:.3f}x"), _cell(ratio["gpu_used_mib"], "{:.3f}x"),
                 _cell(ratio["samples_per_s"], "{:.3f}x")])
    c = report["config"]
    title = (f"mirror_memory: Inception-ResNet-v2 repeats {tuple(c['repeats'])}, input {c['size']}x{c['size']}, "
             f"batch {c['batch']}, {c['steps']} timed steps ({report['device']})")
    return title + "\n" + tabulate(rows, headers=TABLE_HEADERS, tablefmt="simple", disable_numparse=True) + "\n"


def _ratio(on, off):
    return None if on is None or not off else on / off


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=75, help="input side (below 75: align_feature_maps)")
    p.add_argument("--repeats", default="small", help="full, reduced (1,1,1), small (2,2,2, default) or A,B,C")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--gpus", help="GPU numbers as for porting.train (default: CPU); adds GPU memory in use")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny input and batch, one timed step")
    p.add_argument("--out", help=out_help(NAME))
    p.add_argument("--mirror", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.repeats = parse_repeats(args.repeats, NAMED_REPEATS)
        settle(args, QUICK, ("batch", "size", "steps"))
        out = report_path(args.out, NAME, args.quick) if not args.child else None
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.child:
        child(args)
        return 0
    try:
        runs = {"off": measure(args, False), "on": measure(args, True)}
    except ChildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = {
        "format": "porting-bench-mirror-memory/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": bool(args.quick),
        "device": f"GPU {args.gpus}" if args.gpus else "CPU",
        "config": {"batch": args.batch, "size": args.size, "repeats": list(args.repeats), "steps": args.steps,
                   "warmup": args.warmup},
        "runs": runs,
        "on_over_off": {key: _ratio(runs["on"][key], runs["off"][key])
                        for key in ("planned_mb", "ru_maxrss_mib", "sampled_peak_rss_mib", "gpu_used_mib",
                                    "samples_per_s")},
    }
    report["table"] = render(report)
    publish(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
