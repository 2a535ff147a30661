"""Autoport every network of the zoo table and write the table: layers, parameters, times, errors.

Each network runs in its own process (a fresh TF and MXNet, and its memory is returned
when it ends), through the same ``porting.autoport.autoport`` the command line uses:
inference graph, training graph (dropout rates, batch-norm decays, training-mode lint),
translation, shapes + lint, seeded random weights, layer-by-layer numeric parity and the
deployed symbol's outputs.

    python bench/autoport_zoo.py                       # every network at its default size
    python bench/autoport_zoo.py --nets vgg_a,overfeat --test-size
    python bench/autoport_zoo.py --markdown            # also print the README table

Writes ``reports/bench/autoport_zoo.json`` (atomically) for the full table (every network, default
sizes, training hints); a partial run (``--nets``, ``--test-size``, ``--no-training-hints``) writes
to a temporary folder unless ``--out`` is given, so it never replaces the committed table.
Timings are wall-clock seconds on whatever machine runs it; the JSON records the host's CPU
count. A network whose process fails gets its own error line in its row.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import UsageError, child_failure, out_help, report_path  # noqa: E402

NAME = "autoport_zoo"
VERIFY_STEPS = ("verify_shapes", "verify_training", "weights", "verify_numeric", "verify_deployed")


def run_one(name: str, test_size: bool, hints: bool) -> dict:
    """Autoport one network in this process; a JSON-able row."""
    from porting import compat  # noqa: F401  (shims first)
    from porting.autoport import zoo
    from porting.autoport.pipeline import autoport
    from porting.autoport.translate import UnsupportedOps

    net = zoo.get(name)
    size = net.test_size if test_size else net.size
    row = {"network": name, "size": list(size), "classes": net.classes, "note": net.note}
    if net.skip:
        return {**row, "status": "skipped", "reason": net.skip}
    started = time.perf_counter()
    try:
        outcome = autoport(zoo.builder(net), size=size, classes=net.classes, name=name, rtol=net.rtol,
                           atol=net.atol, hints=hints)
    except UnsupportedOps as error:
        return {**row, "status": "untranslatable", "unsupported": error.as_dict()}
    timings = outcome.timings
    numeric = outcome.compare.numeric or {}
    row.update(
        status="passed" if outcome else "failed", verdict=outcome.verdict_line(), layers=outcome.layers,
        parameters=outcome.parameters, tf_build_s=round(timings.get("tf_graph", 0.0), 2),
        training_graph_s=round(timings.get("training_graph", 0.0), 2),
        translate_s=round(timings.get("translate", 0.0), 2),
        verify_s=round(sum(timings.get(step, 0.0) for step in VERIFY_STEPS), 2),
        total_s=round(time.perf_counter() - started, 2), max_abs_error=numeric.get("max_abs"),
        max_error_of_range=numeric.get("min_atol_range"), deployed_max_abs=max(
            (check["max_abs"] for check in outcome.deployed), default=None),
        ops=dict(sorted(outcome.translation.op_counts.items())), timings=outcome.summary()["timings"])
    return row


def _child(name: str, test_size: bool, hints: bool, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", name]
    command += ["--test-size"] if test_size else []
    command += [] if hints else ["--no-training-hints"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"network": name, "status": "timeout", "total_s": round(time.perf_counter() - started, 1)}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"network": name, "status": "error",
                "error": child_failure(f"autoport {name}", done.returncode, done.stderr, done.stdout)}
    return json.loads(lines[-1])


def _fmt_e(value) -> str:
    return "--" if value is None else f"{value:.1e}"


def markdown(rows: list[dict]) -> str:
    """The README table."""
    lines = ["| network | input | layers | parameters | TF build (s) | translate (s) | verify (s) | "
             "max abs error | error / layer range | result |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        size = "x".join(map(str, row["size"])) if row.get("size") else "--"
        if "layers" not in row:
            why = row.get("reason") or (row.get("error") or "").strip().splitlines()[-1:] or [""]
            why = why if isinstance(why, str) else why[0]
            lines.append(f"| {row['network']} | {size} | -- | -- | -- | -- | -- | -- | -- | "
                         f"{row['status']}{': ' + why if why else ''} |")
            continue
        lines.append(f"| {row['network']} | {size} | {row['layers']} | {row['parameters']:,} | "
                     f"{row['tf_build_s']:.1f} | {row['translate_s']:.2f} | {row['verify_s']:.1f} | "
                     f"{_fmt_e(row['max_abs_error'])} | {_fmt_e(row['max_error_of_range'])} | {row['status']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", help="comma-separated zoo names (default: all)")
    parser.add_argument("--test-size", action="store_true", help="use each network's smaller test size")
    parser.add_argument("--no-training-hints", action="store_true", help="skip the training-mode graph and check")
    parser.add_argument("--out", help=out_help(NAME, "--nets, --test-size or --no-training-hints"))
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per network (default 1800)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # worker mode: one network, one JSON line
    args = parser.parse_args(argv)
    hints = not args.no_training_hints
    if args.one:
        print(json.dumps(run_one(args.one, args.test_size, hints)))
        return 0
    from porting.autoport import zoo  # no framework import: the table only

    names = args.nets.split(",") if args.nets else list(zoo.ZOO)
    unknown = [name for name in names if name not in zoo.ZOO]
    if unknown:
        print(f"error: unknown network(s) {', '.join(unknown)}. Available: {zoo.available()}", file=sys.stderr)
        return 2
    try:
        out = report_path(args.out, NAME, smoke=bool(args.nets or args.test_size or not hints))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        row = _child(name, args.test_size, hints, args.timeout)
        rows.append(row)
        print(f"{name:30s} {row['status']:8s} {row.get('verdict', row.get('error', ''))}", flush=True)
    from porting.util import atomic_write_text

    data = {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
            "sizes": "test" if args.test_size else "default", "training_hints": hints, "rows": rows}
    atomic_write_text(out, json.dumps(data, indent=2) + "\n", parents=True)
    table = markdown(rows)
    if args.markdown:
        print(table)
    print(f"wrote {out}")
    return 0 if all(row["status"] == "passed" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
