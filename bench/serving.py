"""Serving throughput: MXNet before and after the inference rewrites, onnxruntime on our export, and TF.

    python bench/serving.py             # the full Inception-ResNet-v2 at 299 and 139, batch 1 and 8
    python bench/serving.py --quick     # a smoke test: the reduced net at 75, batch 1 and 2, one round

What is measured, each in a fresh process per round, the runners alternating round by round
(so a burst of other load on a shared machine hits each of them in some round):

* ``mxnet``: the verified inference symbol (softmax over the main logits,
  ``porting.serving.model_loading.inference_symbol``) bound by MXNet's Module as it is (MXNet
  1.9.1 applies its MKL-DNN subgraph fusion at that bind).
* ``mxnet-rewritten``: the same after the exact inference rewrites of
  ``porting.serving.rewrites.serving_graph`` (batch norms and residual scales folded), as
  ``porting.predict --runtime mxnet`` serves.
* ``onnxruntime``: that rewritten copy exported by ``porting.serving.onnx_export`` and run in an
  onnxruntime session, as ``porting.predict --runtime onnxruntime`` serves.
* ``tensorflow``: the tf.slim reference network in graph mode (``is_training=False``), softmax
  fetched, one ``Session.run`` per batch.

Every runner gets the same random input batch (NCHW for MXNet/onnxruntime, the same values
NHWC for TF) fed from numpy, so the host-to-framework copy is part of every step. The MXNet
runners and onnxruntime serve the same random weights; their softmax scores on the first
image are compared (``max_score_difference``: the rewrites and the export are exact). A
point's throughput is ``batch / median step time`` of a round (warm-up excluded), and a
runner's is its best round. The table gives each runner's img/s and its ratio to the fastest
of the four at that point; "ours" is the best of the three that serve our model. The load
average before each child and at the start and end is recorded (the machine may be shared).

Writes ``reports/bench/serving.json`` (``--out``) for a full run; ``--quick`` or a partial run
(``--sizes``/``--batches``/``--runners``/``--repeats`` other than the full ones) writes to
``$TMPDIR/porting-bench-quick/serving.json`` unless ``--out`` is given.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (UsageError, out_help, parse_repeats, report_path, run_bench, run_python,  # noqa: E402
                          settle, step_times, tagged_json)

FORMAT = "porting.bench.serving/1"
NAME = "serving"
RUNNERS = ("mxnet", "mxnet-rewritten", "onnxruntime", "tensorflow")
OURS = ("mxnet", "mxnet-rewritten", "onnxruntime")
LABELS = {"mxnet": "MXNet (verified symbol)", "mxnet-rewritten": "MXNet, rewritten",
          "onnxruntime": "onnxruntime (our export)", "tensorflow": "TF slim (graph)"}
REPEATS = {"full": (10, 20, 9), "reduced": (1, 1, 1)}
NUM_CLASSES = 1001
FULL = {"repeats": "full", "sizes": "299,139", "batches": "1,8", "runners": ",".join(RUNNERS)}
QUICK = {"repeats": "reduced", "sizes": "75", "batches": "1,2", "rounds": 1, "steps": 2}
RESULT_TAG = "RESULT "


# ----------------------------------------------------------------------------- parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/serving.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: the reduced net at 75, batch 1 and 2, 1 round")
    p.add_argument("--repeats", default=FULL["repeats"], help="full, reduced or A,B,C blocks per stage (default full)")
    p.add_argument("--sizes", default=FULL["sizes"], help="comma list of input sizes (default 299,139)")
    p.add_argument("--batches", default=FULL["batches"], help="comma list of batch sizes (default 1,8)")
    p.add_argument("--runners", default=FULL["runners"], help=f"comma list of {', '.join(RUNNERS)} (default all)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds, one fresh process per runner (default 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per point (default 5; one warm-up before)")
    p.add_argument("--out", help=out_help(NAME))
    p.add_argument("--child", choices=RUNNERS, help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    return p


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UsageError(f"--{flag} must be a comma list of positive integers, got {text!r}")
    return values


def validate(args) -> dict:
    """The run's configuration (checked, before any work); ``smoke`` says whether it is a full run."""
    settle(args, QUICK, ("rounds", "steps"))
    repeats = parse_repeats(args.repeats, REPEATS)
    sizes, batches = _int_list(args.sizes, "sizes"), _int_list(args.batches, "batches")
    if min(sizes) < 75:
        raise UsageError(f"--sizes: Inception-ResNet-v2 needs inputs of at least 75 pixels, got {min(sizes)}")
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    if not runners or any(r not in RUNNERS for r in runners):
        raise UsageError(f"--runners must be a comma list of {', '.join(RUNNERS)}, got {args.runners!r}")
    full = (not args.quick and tuple(repeats) == REPEATS["full"] and args.sizes == FULL["sizes"]
            and args.batches == FULL["batches"] and set(runners) == set(RUNNERS))
    return {"repeats": list(repeats), "sizes": sizes, "batches": batches, "steps": args.steps,
            "runners": [r for r in RUNNERS if r in runners], "rounds": args.rounds, "smoke": not full}


def run_child(runner: str, config: dict) -> dict:
    """One runner's measurements of every point in a fresh interpreter."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    _, stdout = run_python([str(Path(__file__).resolve()), "--child", runner, "--child-config", json.dumps(config)])
    result = tagged_json(stdout, RESULT_TAG)
    result["wall_s"] = round(time.perf_counter() - started, 2)
    result["loadavg_before"] = [round(v, 2) for v in load_before]
    return result


def summarize(config: dict, rounds: dict[str, list[dict]]) -> list[dict]:
    """One entry per (size, batch): each runner's best round, ratios to the fastest, ours vs the fastest."""
    points = []
    for size in config["sizes"]:
        for batch in config["batches"]:
            key = f"{size}x{batch}"
            ips = {runner: max(r["points"][key]["images_per_s"] for r in results)
                   for runner, results in rounds.items()}
            fastest = max(ips, key=ips.get)
            ours = {runner: value for runner, value in ips.items() if runner in OURS}
            entry = {"size": size, "batch": batch, "images_per_s": ips, "fastest": fastest,
                     "ratio_to_fastest": {runner: value / ips[fastest] for runner, value in ips.items()}}
            if ours:
                best = max(ours, key=ours.get)
                entry.update(ours_best=best, ours_best_to_fastest=ours[best] / ips[fastest])
            if "tensorflow" in ips:
                entry["ratio_to_tensorflow"] = {runner: value / ips["tensorflow"] for runner, value in ips.items()}
            points.append(entry)
    return points


def score_agreement(rounds: dict[str, list[dict]]) -> dict:
    """Largest difference between our runners' softmax scores (same weights, same image) at each size."""
    ours = [results[0] for runner, results in rounds.items() if runner in OURS]
    agreement = {}
    for key in (ours[0]["scores"] if len(ours) > 1 else {}):
        first = ours[0]["scores"][key]
        agreement[key] = max(max(abs(a - b) for a, b in zip(first, other["scores"][key])) for other in ours[1:])
    return agreement


def render(report: dict) -> str:
    runners = report["config"]["runners"]
    header = ["size", "batch", *[LABELS[r] for r in runners], "fastest", "ours/fastest"]
    rows = []
    for point in report["points"]:
        cells = [f"{point['images_per_s'][r]:.2f} ({point['ratio_to_fastest'][r]:.2f}x)" for r in runners]
        ours = f"{point['ours_best_to_fastest']:.2f}x ({point['ours_best']})" if "ours_best" in point else "--"
        rows.append([str(point["size"]), str(point["batch"]), *cells, point["fastest"], ours])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    host = report["host"]
    lines.append("")
    lines.append(f"img/s (ratio to the fastest at that point); best of {report['config']['rounds']} round(s), "
                 f"{report['network']}; load average {host['loadavg_start'][0]:.2f} at start, "
                 f"{host['loadavg_end'][0]:.2f} at end on {host['cpus']} CPUs")
    if report.get("max_score_difference"):
        worst = max(report["max_score_difference"].values())
        lines.append(f"our runners' softmax scores agree within {worst:.2g} (same weights and image)")
    return "\n".join(lines) + "\n"


def run(config: dict) -> dict:
    load_start = os.getloadavg()
    rounds: dict[str, list[dict]] = {runner: [] for runner in config["runners"]}
    for _ in range(config["rounds"]):
        for runner in config["runners"]:
            rounds[runner].append(run_child(runner, config))
    net = "full" if tuple(config["repeats"]) == REPEATS["full"] else "reduced " + "/".join(map(str,
                                                                                              config["repeats"]))
    report = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": config["smoke"],
        "network": f"Inception-ResNet-v2 ({net}), {NUM_CLASSES} classes",
        "config": {key: value for key, value in config.items() if key != "smoke"},
        "host": {"cpus": os.cpu_count(), "loadavg_start": [round(v, 2) for v in load_start],
                 "processor": platform.processor() or platform.machine(),
                 "python": platform.python_version(), "platform": platform.platform()},
        "conventions": {"throughput": "batch / median step time of a round (one warm-up step excluded); "
                                      "a runner's best round",
                        "ratio_to_fastest": "img/s / the fastest runner's img/s at that point, same run",
                        "ours": ", ".join(OURS)},
        "points": summarize(config, rounds),
        "max_score_difference": score_agreement(rounds),
        "versions": {runner: results[0].get("version") for runner, results in rounds.items()},
        "rounds": {runner: [{k: v for k, v in r.items() if k != "scores"} for r in results]
                   for runner, results in rounds.items()},
    }
    report["host"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    report["table"] = render(report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return child_main(args)

    def prepare():
        config = validate(args)
        return config, report_path(args.out, NAME, config["smoke"])

    return run_bench(prepare, run)


# ------------------------------------------------------------------------------ child


def _inputs(size: int, batch: int):
    import numpy as np

    return np.random.default_rng(size).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)


def _mx_model(config: dict, size: int):
    """The inference symbol at ``size`` with random weights and moving statistics (seeded: every runner the same)."""
    import numpy as np

    from porting import compat

    mx = compat.import_mx()
    from mx_impl import inception_resnet_v2 as irv2
    from porting.serving.model_loading import inference_symbol

    symbol = inference_symbol(irv2.get_symbol(NUM_CLASSES, create_aux_logits=False,
                                              repeats=tuple(config["repeats"]), image_size=size))
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=(1, 3, size, size))
    rng = np.random.default_rng(0)
    args = {name: mx.nd.array(rng.normal(0, 0.05, shape).astype(np.float32))
            for name, shape in zip(symbol.list_arguments(), arg_shapes) if name != "data"}
    aux = {name: mx.nd.array((rng.uniform(0.5, 1.5, shape) if name.endswith("_var") else
                              rng.normal(0, 0.1, shape)).astype(np.float32))
           for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return symbol, args, aux


def child_ours(runner: str, config: dict) -> dict:
    from porting import compat

    mx = compat.import_mx()
    from porting.serving import rewrites
    from porting.serving.predictor import onnx_session

    points, scores, setup = {}, {}, {}
    for size in config["sizes"]:
        started = time.perf_counter()
        symbol, args, aux = _mx_model(config, size)
        if runner == "mxnet":
            served = rewrites.ServingGraph(symbol, args, aux)
        else:
            served = rewrites.serving_graph(symbol, args, aux)
        session = None
        if runner == "onnxruntime":
            session = onnx_session(served, (max(config["batches"]), 3, size, size))
        setup[str(size)] = round(time.perf_counter() - started, 2)
        for batch in config["batches"]:
            images = _inputs(size, batch)
            if session is not None:
                def step():
                    return next(iter(session.run(images).values()))
            else:
                module = mx.mod.Module(served.symbol, data_names=("data",), label_names=None, context=mx.cpu())
                module.bind(data_shapes=[("data", images.shape)], for_training=False)
                module.set_params(served.arg_params, served.aux_params, allow_missing=False, allow_extra=True)

                def step(module=module):
                    module.forward(mx.io.DataBatch([mx.nd.array(images)]), is_train=False)
                    return module.get_outputs()[0].asnumpy()
            if batch == min(config["batches"]):
                scores[str(size)] = [float(v) for v in step()[0]]
            times = step_times(step, config["steps"])
            points[f"{size}x{batch}"] = {"step_s": times, "images_per_s": batch / statistics.median(times)}
    version = mx.__version__
    if runner == "onnxruntime":
        import onnxruntime

        version = onnxruntime.__version__
    return {"runner": runner, "version": version, "setup_s": setup, "points": points, "scores": scores}


def child_tensorflow(config: dict) -> dict:
    from porting import compat

    tf = compat.import_tf()
    slim = compat.import_slim()
    from reference_tf import inception_resnet_v2 as irv2

    v1 = tf.compat.v1
    points, setup = {}, {}
    for size in config["sizes"]:
        started = time.perf_counter()
        graph = tf.Graph()
        with graph.as_default(), compat.fast_graph_building():
            images = v1.placeholder(tf.float32, (None, size, size, 3))
            with slim.arg_scope(irv2.inception_resnet_v2_arg_scope()):
                _, end_points = irv2.inception_resnet_v2(images, NUM_CLASSES, is_training=False,
                                                         create_aux_logits=False, repeats=tuple(config["repeats"]))
            predictions = end_points["Predictions"]
            init = v1.global_variables_initializer()
        session = v1.Session(graph=graph)
        session.run(init)
        setup[str(size)] = round(time.perf_counter() - started, 2)
        for batch in config["batches"]:
            nhwc = _inputs(size, batch).transpose(0, 2, 3, 1).copy()

            def step(nhwc=nhwc):
                return session.run(predictions, {images: nhwc})
            times = step_times(step, config["steps"])
            points[f"{size}x{batch}"] = {"step_s": times, "images_per_s": batch / statistics.median(times)}
        session.close()
    return {"runner": "tensorflow", "version": tf.__version__, "setup_s": setup, "points": points,
            "settings": {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}}


def child_main(args) -> int:
    config = json.loads(args.child_config)
    result = child_tensorflow(config) if args.child == "tensorflow" else child_ours(args.child, config)
    result["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
