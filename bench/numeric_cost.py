"""What ``compare --numeric`` costs against its floor, measured in one run.

* floor: a fresh interpreter imports TensorFlow and MXNet (through ``porting.compat``),
  builds the registered pair's TF graph in inference mode (``tf_reader.build_graph``),
  initializes its variables and runs one forward; builds the MX symbol, binds it,
  initializes its parameters and runs one forward. Nothing a verifier could skip.
* full: a fresh interpreter runs ``python -m porting.compare MODEL --numeric`` (batch 1):
  both graphs built and read into records, matched, diffed, linted, seeded random
  weights created on the TF side and transferred to MXNet through the pairing, one
  forward on each side fetching every paired layer, and every layer compared in float64.

Both are timed as process wall time by this script. The target is full <= 2 x floor.
Runs alternate (floor, full, floor, full...) when ``--repeats`` > 1 and medians are
compared, so a load change on a shared machine hits both.

Usage::

    .venv/bin/python bench/numeric_cost.py [--model inception_resnet_v2] [--repeats 1]

Writes ``reports/bench/numeric_cost.json`` (atomically; for another ``--model``, a temporary
folder unless ``--out`` is given, so the committed report stays) and prints a table.
A child that fails is reported with its own error line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from bench.common import (ChildFailed, UsageError, out_help, report_path, run_python,  # noqa: E402
                          tagged_json)
from porting.util import atomic_write_text  # noqa: E402  (no framework import)

NAME = "numeric_cost"
DEFAULT_MODEL = "inception_resnet_v2"
TARGET_RATIO = 2.0

_FLOOR = r"""
import json, sys, time
start = time.perf_counter()
from porting import compat
tf = compat.import_tf(); mx = compat.import_mx()
imported = time.perf_counter()
import numpy as np
from porting.frameworks import models, tf_reader
spec = models.get_model(sys.argv[1])
h, w = spec.size
graph, images, logits, _, _ = tf_reader.build_graph(models.tf_builder(spec), spec.size, spec.classes, 1, False)
tf_built = time.perf_counter()
x = np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
with graph.as_default():
    init = tf.compat.v1.global_variables_initializer()
with tf.compat.v1.Session(graph=graph) as session:
    session.run(init)
    session.run(logits, {images: x})
tf_run = time.perf_counter()
symbol = models.mx_builder(spec, spec.size)(spec.classes)
module = mx.mod.Module(symbol, data_names=("data",), label_names=None, context=mx.cpu())
module.bind(data_shapes=[("data", (1, 3, h, w))], for_training=False)
module.init_params(mx.init.Xavier(magnitude=2.0))
module.forward(mx.io.DataBatch([mx.nd.array(x.transpose(0, 3, 1, 2))]), is_train=False)
[out.asnumpy() for out in module.get_outputs()]
done = time.perf_counter()
print("BENCH " + json.dumps({"import": imported - start, "tf_build": tf_built - imported,
                             "tf_init_forward": tf_run - tf_built, "mx_build_init_forward": done - tf_run}))
"""


def _floor(model: str) -> dict:
    wall, stdout = run_python(["-c", _FLOOR, model])
    return {"wall": wall, "parts": tagged_json(stdout)}


def _full(model: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report.json"
        wall, _ = run_python(["-m", "porting.compare", model, "--numeric", "--format", "json", "--out", str(out)],
                             ok_codes=(0, 1))
        document = json.loads(out.read_text())
    numeric = document.get("numeric") or {}
    return {"wall": wall, "verdict": document.get("verdict_line"), "rows": len(document.get("rows", [])),
            "numeric_passed": numeric.get("passed"), "layers": numeric.get("layers"),
            "numeric_parts": numeric.get("seconds", {}), "max_abs": numeric.get("max_abs"),
            "min_atol_range": numeric.get("min_atol_range")}


def measure(model: str, repeats: int) -> dict:
    floors, fulls = [], []
    for index in range(repeats):
        floors.append(_floor(model))
        fulls.append(_full(model))
        print(f"run {index + 1}/{repeats}: floor {floors[-1]['wall']:.2f} s, full {fulls[-1]['wall']:.2f} s",
              file=sys.stderr)
    floor = statistics.median(run["wall"] for run in floors)
    full = statistics.median(run["wall"] for run in fulls)
    last = fulls[-1]
    return {
        "model": model,
        "repeats": repeats,
        "batch": 1,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": list(os.getloadavg())},
        "floor_s": {"median": floor, "runs": [run["wall"] for run in floors]},
        "full_s": {"median": full, "runs": [run["wall"] for run in fulls]},
        "ratio": full / floor,
        "target_ratio": TARGET_RATIO,
        "within_target": full / floor <= TARGET_RATIO,
        "floor_parts_s": {key: statistics.median(run["parts"][key] for run in floors)
                          for key in floors[-1]["parts"]},
        "numeric_parts_s": last["numeric_parts"],
        "verdict": last["verdict"],
        "numeric_passed": last["numeric_passed"],
        "layers_compared": last["layers"],
        "max_abs": last["max_abs"],
        "min_atol_range": last["min_atol_range"],
    }


def render(result: dict) -> str:
    floor, full = result["floor_s"], result["full_s"]
    parts = ", ".join(f"{key} {value:.2f}" for key, value in result["floor_parts_s"].items())
    numeric = ", ".join(f"{key} {value:.2f}" for key, value in result["numeric_parts_s"].items())
    table = [
        ["floor: imports, both graphs built, one forward each", f"{floor['median']:.2f}", "1.00", parts],
        ["full: compare --numeric (every layer compared)", f"{full['median']:.2f}", f"{result['ratio']:.2f}",
         f"numeric pass: {numeric}"],
    ]
    lines = [f"numeric cost: {result['model']} at batch 1 ({result['layers_compared']} layers compared, "
             f"{result['verdict']}), {result['repeats']} run(s) each, {result['machine']['cpus']} CPUs, "
             f"load {result['machine']['load_average'][0]:.1f}",
             tabulate(table, headers=["", "wall s", "x floor", "parts (s)"], tablefmt="simple",
                      disable_numparse=True),
             f"target: full <= {result['target_ratio']:.0f} x floor: " + ("met" if result["within_target"]
                                                                         else "NOT met")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered pair (default: the full network)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each kind, alternating (default 1)")
    parser.add_argument("--out", help=out_help(NAME, "another --model"))
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        out = report_path(args.out, NAME, smoke=args.model != DEFAULT_MODEL)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = measure(args.model, args.repeats)
    except ChildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(render(result))
    atomic_write_text(out, json.dumps(result, indent=1) + "\n", parents=True)
    print(f"wrote {out}")
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
