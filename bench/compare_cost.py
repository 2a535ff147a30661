"""What the shape-only comparison costs on top of its floor, measured in one run.

* floor: a fresh interpreter imports TensorFlow and MXNet (through
  ``porting.compat``), builds the registered pair's TF graph exactly as
  ``verify()`` does (``tf_reader.build_graph``: a fresh graph, an NHWC
  placeholder, the builder, training mode) and its MX symbol (the registered
  builder) — nothing else.
* full: a fresh interpreter imports the same way and runs ``verify(model)``:
  records on both sides (MXNet ``infer_shape`` included), name and structural
  matching, the per-layer diff and the lint pass; no numeric parity.

The verifier's own cost is ``full - floor``, as a percentage of the floor; the
target is at most 20 %. Runs alternate in ABBA order (floor, full, full, floor...)
so a load change on a shared machine hits both, and medians are compared. Because the
difference of two noisy process times is itself noisy (on a loaded machine it can even come out negative), the full run also times
the verifier's own steps directly, on the graphs it has already built (TF
records + a second ``verify(tf_graph=...)``, minus the MX symbol build), and
reports that as the direct overhead.

Usage::

    .venv/bin/python bench/compare_cost.py [--model inception_resnet_v2] [--repeats 3]

Writes ``reports/bench/compare_cost.json`` (atomically; for another ``--model``, a temporary
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from bench.common import (ChildFailed, UsageError, out_help, report_path, run_python,  # noqa: E402
                          tagged_json)
from porting.util import atomic_write_text  # noqa: E402  (no framework import)

NAME = "compare_cost"
DEFAULT_MODEL = "inception_resnet_v2"
TARGET_PERCENT = 20.0

_FLOOR = r"""
import json, sys, time
start = time.perf_counter()
from porting import compat
compat.import_tf(); compat.import_mx()
imported = time.perf_counter()
from porting.frameworks import models, tf_reader
spec = models.get_model(sys.argv[1])
tf_reader.build_graph(models.tf_builder(spec), spec.size, spec.classes, 1, True)
tf_built = time.perf_counter()
models.mx_builder(spec, spec.size)(spec.classes)
done = time.perf_counter()
print("BENCH " + json.dumps({"total": done - start, "import": imported - start,
                             "tf_build": tf_built - imported, "mx_build": done - tf_built}))
"""

_FULL = r"""
import json, sys, time
start = time.perf_counter()
from porting import compat
compat.import_tf(); compat.import_mx()
imported = time.perf_counter()
from porting.verifier.api import verify
result = verify(sys.argv[1])
done = time.perf_counter()
# The verifier's own steps, timed directly on the graphs already built.
from porting.frameworks import models, tf_reader
graph = result.tf_graph
outputs = [graph.logits] + [t for t in graph.end_points.values() if hasattr(t, "op")]
t0 = time.perf_counter()
tf_reader.records_from_graph(graph.graph, graph.images, outputs)
t1 = time.perf_counter()
again = verify(sys.argv[1], tf_graph=graph)
t2 = time.perf_counter()
spec = models.get_model(sys.argv[1])
models.mx_builder(spec, spec.size)(spec.classes)
t3 = time.perf_counter()
print("BENCH " + json.dumps({
    "total": done - start, "import": imported - start, "verify": done - imported,
    "verify_timings": result.timings, "verdict": result.verdict_line(), "rows": len(result.rows),
    "own_direct": (t1 - t0) + (t2 - t1) - (t3 - t2),
    "own_parts": {"tf_records": t1 - t0, "verify_with_prebuilt_tf": t2 - t1, "mx_build": t3 - t2},
    "same_verdict_again": again.verdict_line() == result.verdict_line()}))
"""


def _run(code: str, model: str) -> dict:
    """One fresh interpreter; its own timings plus the process wall time."""
    wall, stdout = run_python(["-c", code, model])
    data = tagged_json(stdout)
    data["wall"] = wall
    return data


def measure(model: str, repeats: int) -> dict:
    floors, fulls = [], []
    for index in range(repeats):
        # ABBA order: a load that drifts during the run does not favour either kind.
        if index % 2 == 0:
            floors.append(_run(_FLOOR, model))
            fulls.append(_run(_FULL, model))
        else:
            fulls.append(_run(_FULL, model))
            floors.append(_run(_FLOOR, model))
        print(f"run {index + 1}/{repeats}: floor {floors[-1]['total']:.2f} s, full {fulls[-1]['total']:.2f} s",
              file=sys.stderr)
    floor = statistics.median(run["total"] for run in floors)
    full = statistics.median(run["total"] for run in fulls)
    own_direct = statistics.median(run["own_direct"] for run in fulls)
    return {
        "model": model,
        "repeats": repeats,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "floor_s": {"median": floor, "min": min(run["total"] for run in floors),
                    "runs": [run["total"] for run in floors]},
        "full_s": {"median": full, "min": min(run["total"] for run in fulls),
                   "runs": [run["total"] for run in fulls]},
        "overhead_s": full - floor,
        "overhead_percent": 100.0 * (full - floor) / floor,
        "own_direct_s": own_direct,
        "own_direct_percent": 100.0 * own_direct / floor,
        "target_percent": TARGET_PERCENT,
        "within_target": 100.0 * max(full - floor, own_direct) / floor <= TARGET_PERCENT,
        "verdict": fulls[-1]["verdict"],
        "rows": fulls[-1]["rows"],
        "floor_parts_s": {key: statistics.median(run[key] for run in floors)
                          for key in ("import", "tf_build", "mx_build")},
        "full_parts_s": {"import": statistics.median(run["import"] for run in fulls),
                         "verify": statistics.median(run["verify"] for run in fulls)},
        "own_parts_s": {key: statistics.median(run["own_parts"][key] for run in fulls)
                        for key in fulls[-1]["own_parts"]},
    }


def render(result: dict) -> str:
    floor, full = result["floor_s"], result["full_s"]
    table = [
        ["floor: import TF + MXNet, build both graphs", f"{floor['median']:.2f}", f"{floor['min']:.2f}", "--"],
        ["full: verify() shape-only comparison", f"{full['median']:.2f}", f"{full['min']:.2f}", "--"],
        ["verifier's own cost (full - floor)", f"{result['overhead_s']:.2f}", "--",
         f"{result['overhead_percent']:.1f} %"],
        ["verifier's own cost (timed directly)", f"{result['own_direct_s']:.2f}", "--",
         f"{result['own_direct_percent']:.1f} %"],
    ]
    lines = [f"compare cost: {result['model']} ({result['rows']} rows, {result['verdict']}), "
             f"{result['repeats']} runs each, {result['machine']['cpus']} CPUs",
             tabulate(table, headers=["", "median s", "min s", "% of floor"], tablefmt="simple",
                      disable_numparse=True),
             f"target: own cost <= {result['target_percent']:.0f} % of the floor: "
             + ("met" if result["within_target"] else "NOT met")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered pair (default: the full network)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind, alternating (default 3)")
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
