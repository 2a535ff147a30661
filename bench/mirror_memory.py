"""Memory mirroring (MXNET_BACKWARD_DO_MIRROR) on the training executor: peak RSS and speed.

Each setting runs in its own subprocess (a process's peak RSS never goes down, and
MXNet reads the variable when the executor is bound): bind Inception-ResNet-v2 for
training at a fixed batch, run warm-up steps, then time ``forward_backward + update``.
The parent samples the child's RSS with psutil; the child also reports its own
``ru_maxrss`` (the kernel's exact peak). Prints a Markdown table.

    .venv/bin/python bench/mirror_memory.py                      # reduced net, 75x75, batch 16
    .venv/bin/python bench/mirror_memory.py --batch 32 --steps 5 --repeats 1,1,1

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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(args) -> None:
    os.environ["MXNET_BACKWARD_DO_MIRROR"] = "1" if args.mirror else "0"
    sys.path.insert(0, str(REPO))
    from porting import compat

    mx = compat.import_mx()
    from porting import training

    size = (args.size, args.size)
    ctxs = training.contexts(args.gpus)
    sym = training.build_symbol(10, size, repeats=args.repeats, align_feature_maps=args.size < 75)
    mod = mx.mod.Module(sym, label_names=(training.LABEL_NAME,), context=ctxs)
    mod.bind(data_shapes=[("data", (args.batch, 3, *size))], label_shapes=[(training.LABEL_NAME, (args.batch,))])
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2.0))
    name, params = training.optimizer_spec(training.TrainConfig(data="-", model_dir="-"), 10)
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
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.01)
    out = proc.stdout.read().decode().strip().splitlines()
    if proc.returncode != 0 or not out:
        raise SystemExit(f"child failed (exit {proc.returncode}): {' '.join(cmd)}")
    result = json.loads(out[-1])
    result["sampled_peak_rss_mib"] = peak / 2**20
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=75, help="input side (below 75: align_feature_maps)")
    p.add_argument("--repeats", default="reduced", help="full, reduced (2,2,2, default) or A,B,C")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--gpus", help="GPU numbers as for porting.train (default: CPU); adds GPU memory in use")
    p.add_argument("--mirror", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    named = {"full": (10, 20, 9), "reduced": (2, 2, 2)}
    args.repeats = named.get(args.repeats) or tuple(int(v) for v in args.repeats.split(","))
    if args.child:
        child(args)
        return 0
    rows = {m: measure(args, m) for m in (False, True)}
    where = f"GPU {args.gpus}" if args.gpus else "CPU"
    print(f"Inception-ResNet-v2 repeats {args.repeats}, input {args.size}x{args.size}, batch {args.batch}, "
          f"{args.steps} timed steps ({where})\n")
    print("| MXNET_BACKWARD_DO_MIRROR | executor plan | peak RSS (ru_maxrss) | peak RSS (sampled) | GPU in use | samples/s |")
    print("|---|---|---|---|---|---|")
    for m, r in rows.items():
        gpu = "--" if r["gpu_used_mib"] is None else f"{r['gpu_used_mib']:.0f} MiB"
        print(f"| {int(m)} | {r['planned_mb']} MB | {r['ru_maxrss_mib']:.0f} MiB | {r['sampled_peak_rss_mib']:.0f} MiB | "
              f"{gpu} | {r['samples_per_s']:.2f} |")
    off, on = rows[False], rows[True]
    print(f"\nmirroring: peak RSS {on['ru_maxrss_mib'] - off['ru_maxrss_mib']:+.0f} MiB "
          f"({(on['ru_maxrss_mib'] / off['ru_maxrss_mib'] - 1) * 100:+.1f}%), "
          f"speed {(on['samples_per_s'] / off['samples_per_s'] - 1) * 100:+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
