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

The reference cache (``porting.verifier.reference_cache``), side by side in the same run:

* cold: a fresh interpreter runs ``verify(model, cache=True)`` on an empty cache folder
  (a new one per run): both sides are built and their entries written;
* warm: the same again on the folder the cold run filled: both sides are read from their
  entries, no framework is imported;
* warm, MX side changed: the same with the MX side's entries removed (what an edit of the MX
  port costs): the TF side is read from its entry, MXNet is imported and the symbol read live;

and the same three with ``numeric=True`` (weights transferred, every layer compared): the warm
run reads both forwards' outputs for the seeded weights and input from beside the entries and
compares the layers on them (no framework imported); with the MX side changed (its entries and
stored outputs removed) MXNet is imported, the symbol read and run live, the TF forward read.
Each reports the warm/cold ratio of the process wall time (target ≤ 0.15 for the warm runs with
neither side changed; the MX-changed ratio is reported beside it), checks that warm and cold
rendered the same report, and breaks each run down: the interpreter's start and exit, importing
``porting``, the cache reads, importing MXNet, loading the builders, building / reading each side,
matching, the lint, the numeric pass and rendering the Markdown report.

Usage::

    .venv/bin/python bench/compare_cost.py [--model inception_resnet_v2] [--repeats 3] [--quick]
                                           [--parts shape,cache,numeric-cache]

Writes ``reports/bench/compare_cost.json`` (atomically; for ``--quick`` (the reduced network, one
run) or another ``--model``, a temporary folder unless ``--out`` is given, so the committed
report stays) and prints a table. A child that fails is reported with its own error line.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
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

NAME = "compare_cost"
DEFAULT_MODEL = "inception_resnet_v2"
TARGET_PERCENT = 20.0
#: The warm/cold wall-time ratio the reference cache aims at.
TARGET_WARM_RATIO = 0.15
PARTS = ("shape", "cache", "numeric-cache")
QUICK_MODEL = "inception_resnet_v2_reduced"
#: The committed report of the default model, which a cold and a warm run must both render byte for byte.
GOLDEN = ROOT / "reports" / f"{DEFAULT_MODEL}.md"

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


_CACHED = r"""
import hashlib, json, os, sys, time
start = time.perf_counter()
os.environ["PORTING_CACHE"] = sys.argv[2]
from porting.verifier.api import verify
imported = time.perf_counter()
result = verify(sys.argv[1], cache=True, numeric=sys.argv[3] == "numeric")
verified = time.perf_counter()
report = result.report("markdown")
done = time.perf_counter()
layers = [] if result.numeric_report is None else [
    [layer.tf, layer.mx, layer.result.max_abs, bool(layer.result)] for layer in result.numeric_report.layers]
print("BENCH " + json.dumps({
    "total": done - start, "import": imported - start, "verify": verified - imported, "render": done - verified,
    "timings": result.timings, "cache": result.reference_cache,
    "tensorflow_imported": "tensorflow" in sys.modules, "mxnet_imported": "mxnet" in sys.modules,
    "verdict": result.verdict_line(), "report_sha256": hashlib.sha256(report.encode()).hexdigest(),
    "numeric_sha256": hashlib.sha256(json.dumps(layers).encode()).hexdigest()}))
"""
#: A run's parts, in the order they happen (``verify()``'s timings between import and render).
BREAKDOWN = ("python_start_exit", "import_porting", "tf_cache_read", "tf_load", "tf", "mx_cache_read", "mx_import",
             "mx_load", "mx", "match", "lint", "numeric", "verify_other", "render")
_VERIFY_PARTS = BREAKDOWN[2:-2]


def _run(code: str, model: str, *extra: str) -> dict:
    """One fresh interpreter; its own timings plus the process wall time."""
    wall, stdout = run_python(["-c", code, model, *extra])
    data = tagged_json(stdout)
    data["wall"] = wall
    return data


def breakdown(run: dict) -> dict:
    """Where one run's process wall time went (``BREAKDOWN``); the parts add up to the wall time."""
    verify_parts = {key: run["timings"].get(key, 0.0) for key in _VERIFY_PARTS}
    parts = {"python_start_exit": run["wall"] - run["total"], "import_porting": run["import"], **verify_parts,
             "verify_other": run["verify"] - sum(verify_parts.values()), "render": run["render"]}
    return {key: parts[key] for key in BREAKDOWN}


def _median_parts(runs: list[dict]) -> dict:
    return {key: statistics.median(breakdown(run)[key] for run in runs) for key in BREAKDOWN}


def _summary(colds: list[dict], warms: list[dict], target: bool) -> dict:
    """One warm kind against the cold runs of the same cache folders."""
    ratio = statistics.median(w["wall"] / c["wall"] for c, w in zip(colds, warms))
    return {
        "warm_s": {"median": statistics.median(run["wall"] for run in warms), "runs": [run["wall"] for run in warms]},
        "warm_over_cold": ratio,
        **({"within_target": ratio <= TARGET_WARM_RATIO} if target else {}),
        "warm_status": warms[-1]["cache"],
        "warm_imports_tensorflow": any(run["tensorflow_imported"] for run in warms),
        "warm_imports_mxnet": any(run["mxnet_imported"] for run in warms),
        "same_report": all(c["report_sha256"] == w["report_sha256"] and c["numeric_sha256"] == w["numeric_sha256"]
                           for c, w in zip(colds, warms)),
        "warm_parts_s": _median_parts(warms),
    }


def measure_cache(model: str, repeats: int, numeric: bool) -> dict:
    """Cold (an empty cache folder of its own), warm (the folder the cold run filled) and warm with
    the MX side's entries (and its stored forwards) removed; ``repeats`` times, the two warm kinds in
    alternating order."""
    colds, warms, tf_onlys = [], [], []
    kind = "numeric" if numeric else "shape"
    for index in range(repeats):
        folder = tempfile.mkdtemp(prefix="porting-bench-cache-")
        try:
            colds.append(_run(_CACHED, model, folder, kind))
            order = ("warm", "tf_only") if index % 2 == 0 else ("tf_only", "warm")
            for which in order:
                if which == "warm":
                    warms.append(_run(_CACHED, model, folder, kind))
                else:  # the MX side changed: its entry is gone (this run writes it again)
                    shutil.rmtree(Path(folder) / "reference-mx", ignore_errors=True)
                    tf_onlys.append(_run(_CACHED, model, folder, kind))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"{kind} cache run {index + 1}/{repeats}: cold {colds[-1]['wall']:.2f} s ({colds[-1]['cache']}), "
              f"warm {warms[-1]['wall']:.2f} s ({warms[-1]['cache']})"
              + (f", MX side changed {tf_onlys[-1]['wall']:.2f} s ({tf_onlys[-1]['cache']})" if tf_onlys else ""),
              file=sys.stderr)
    last = warms[-1]
    result = {
        "cold_s": {"median": statistics.median(run["wall"] for run in colds), "runs": [run["wall"] for run in colds]},
        **_summary(colds, warms, target=True),
        "target_ratio": TARGET_WARM_RATIO,
        "cold_status": colds[-1]["cache"],
        "warm_hit": all(run["cache"].startswith("hit") and "MX side hit" in run["cache"]
                        and (not numeric or run["cache"].endswith("MX forward read")) for run in warms),
        "verdict": last["verdict"],
        "matches_golden": (all(run["report_sha256"] == hashlib.sha256(GOLDEN.read_bytes()).hexdigest()
                               for run in colds + warms + tf_onlys) if model == DEFAULT_MODEL and not numeric
                           else None),
        "cold_parts_s": _median_parts(colds),
    }
    if tf_onlys:  # its floor: what reading the MX side live costs (MXNet's import first)
        result["mx_changed"] = _summary(colds, tf_onlys, target=False)
    return result


def measure(model: str, repeats: int, parts: tuple[str, ...] = PARTS) -> dict:
    result = {"model": model, "repeats": repeats, "parts": list(parts),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()}}
    if "shape" in parts:
        result.update(measure_floor(model, repeats))
    for part, numeric in (("cache", False), ("numeric-cache", True)):
        if part in parts:
            result["cache" if not numeric else "numeric_cache"] = measure_cache(model, repeats, numeric)
    return result


def measure_floor(model: str, repeats: int) -> dict:
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


#: The warm kinds of the table: (label, part of the result, its summary's key or None for the part itself).
_WARM_KINDS = (("compare, warm", "cache", None), ("compare, MX side changed", "cache", "mx_changed"),
               ("compare --numeric, warm", "numeric_cache", None),
               ("compare --numeric, MX side changed", "numeric_cache", "mx_changed"))


def render(result: dict) -> str:
    lines = render_floor(result) if "floor_s" in result else []
    rows, columns = [], []
    for label, key, sub in _WARM_KINDS:
        if key not in result or (sub and sub not in result[key]):
            continue
        part = result[key]
        if sub is None:  # each part's cold runs first, then its warm kinds
            columns.append(("cold" if key == "cache" else "--numeric, cold", part["cold_parts_s"]))
        warm = part[sub] if sub else part
        rows.append([label, f"{part['cold_s']['median']:.2f}", f"{warm['warm_s']['median']:.2f}",
                     f"{warm['warm_over_cold']:.3f}", "yes" if warm["same_report"] else "NO",
                     "yes" if warm["warm_imports_tensorflow"] else "no", "yes" if warm["warm_imports_mxnet"] else "no"])
        columns.append((label.replace("compare", "").strip(", ") or label, warm["warm_parts_s"]))
    if rows:
        parts = [[name] + [f"{values[name]:.3f}" for _, values in columns] for name in BREAKDOWN]
        met = all(result[key]["within_target"] for key in ("cache", "numeric_cache") if key in result)
        lines += [f"reference cache: {result['model']}, {result['repeats']} cold/warm runs, "
                  f"{result['machine']['cpus']} CPUs",
                  tabulate(rows, headers=["", "cold s", "warm s", "warm/cold", "same report", "imports TF",
                                          "imports MXNet"], tablefmt="simple", disable_numparse=True),
                  f"target: warm <= {TARGET_WARM_RATIO} x cold (neither side changed; and with --numeric): "
                  + ("met" if met else "NOT met"),
                  "where the time goes (s, medians):",
                  tabulate(parts, headers=[""] + [name for name, _ in columns], tablefmt="simple",
                           disable_numparse=True)]
    return "\n".join(lines)


def render_floor(result: dict) -> list[str]:
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
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered pair (default: the full network)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind, alternating (default 3)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"what to measure, comma-separated (default all): {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_MODEL}, one run of each kind, report in the temporary folder")
    parser.add_argument("--out", help=out_help(NAME, "--quick or another --model"))
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.repeats = QUICK_MODEL, 1
    parts = tuple(part.strip() for part in args.parts.split(","))
    try:
        if args.repeats < 1:
            raise UsageError(f"--repeats must be a positive integer, got {args.repeats}")
        if not parts or any(part not in PARTS for part in parts):
            raise UsageError(f"--parts must be a comma-separated subset of {','.join(PARTS)}, got {args.parts!r}")
        out = report_path(args.out, NAME, smoke=args.model != DEFAULT_MODEL or args.quick or parts != PARTS)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = measure(args.model, args.repeats, parts)
    except ChildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(render(result))
    atomic_write_text(out, json.dumps(result, indent=1) + "\n", parents=True)
    print(f"wrote {out}")
    met = [result[key]["within_target"] for key in ("cache", "numeric_cache") if key in result]
    return 0 if result.get("within_target", True) and all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
