"""What pairing costs next to the compare floor, and how it grows with the layer count.

For Inception-ResNet-v2 at the repeat presets ``reduced`` (1,1,1), ``small`` (2,2,2) and ``full``
(10,20,9), in one process:

* floor: what every comparison pays before the verifier does anything: importing TensorFlow and
  MXNet (timed once, at start-up, in this fresh interpreter) plus building the TF graph as
  ``verify()`` does (``tf_reader.build_graph``) and the MX symbol (the registered builder);
* matching step: ``equivalences.normalise`` + ``match.match`` + ``diff.compare_pairs`` (pairing,
  the per-layer diff and the root-cause attribution) on the records both readers produced, median
  of ``--runs`` runs; once with the port's own names (name pairing, O(N)) and once with every
  MXNet record renamed ``layer<i>`` (no name agrees: the structural alignment over every record,
  O(n·m), the worst case).

Prints a table (records, floor, matching with names / anonymous, % of the floor, time per record) and
writes ``reports/bench/match_cost.json``; ``--quick`` (reduced and small, 3 runs) writes to
``$TMPDIR/porting-bench-quick/`` instead. The target: the matching step (own names) of the full
network stays under 5 % of its floor.

Usage::

    .venv/bin/python bench/match_cost.py [--quick] [--runs 5] [--out FILE]
"""
from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from bench.common import UsageError, out_help, report_path, settle  # noqa: E402
from porting.util import atomic_write_text  # noqa: E402  (no framework import)

NAME = "match_cost"
PRESETS = ("reduced", "small", "full")
QUICK = {"presets": ("reduced", "small"), "runs": 3}
TARGET_PERCENT = 5.0


def _import_frameworks() -> float:
    """Import TF and MXNet the way every command does; the seconds since this interpreter started."""
    from porting import compat

    compat.import_tf()
    compat.import_mx()
    return time.perf_counter() - _STARTED


def anonymous(records):
    """The records with every name replaced by ``layer<i>`` (inputs renamed alike): no name pairs."""
    names = {record.name: f"layer{index}" for index, record in enumerate(records)}
    return [replace(record, name=names[record.name], inputs=tuple(names.get(n, n) for n in record.inputs))
            for record in records]


def matching_step(tf_records, mx_records) -> int:
    """normalise + match + compare_pairs, as ``verify()`` runs them; the number of rows."""
    from porting.core.diff import compare_pairs
    from porting.core.equivalences import normalise
    from porting.core.match import match

    tf_norm, mx_norm, _ = normalise(tf_records, mx_records)
    return len(compare_pairs(match(tf_norm, mx_norm)))


def _median_seconds(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_preset(preset: str, runs: int, import_s: float) -> dict:
    from mx_impl import inception_resnet_v2 as mx_irv2
    from porting.frameworks import models, mx_reader, tf_reader

    repeats = tuple(mx_irv2.REPEAT_PRESETS[preset])
    base = models.get_model("inception_resnet_v2")
    spec = replace(base, tf_kwargs={**base.tf_kwargs, "repeats": repeats},
                   mx_kwargs={**base.mx_kwargs, "repeats": repeats})
    tf_builder, mx_builder = models.tf_builder(spec), models.mx_builder(spec, spec.size)
    started = time.perf_counter()
    tf_reader.build_graph(tf_builder, spec.size, spec.classes, 1, True)
    tf_build = time.perf_counter() - started
    started = time.perf_counter()
    mx_builder(spec.classes)
    mx_build = time.perf_counter() - started
    tf_records = tf_reader.read_graph(tf_builder, spec.size, spec.classes, 1, True).records
    mx_records = mx_reader.read_symbol(mx_builder, spec.size, spec.classes, 1).records
    rows = matching_step(tf_records, mx_records)
    named = _median_seconds(lambda: matching_step(tf_records, mx_records), runs)
    unnamed_mx = anonymous(mx_records)
    unnamed = _median_seconds(lambda: matching_step(tf_records, unnamed_mx), runs)
    floor = import_s + tf_build + mx_build
    records = len(tf_records) + len(mx_records)
    return {"preset": preset, "repeats": list(repeats), "tf_records": len(tf_records),
            "mx_records": len(mx_records), "rows": rows,
            "floor_s": floor, "floor_parts_s": {"import": import_s, "tf_build": tf_build, "mx_build": mx_build},
            "match_named_s": named, "match_anonymous_s": unnamed,
            "match_named_percent": 100.0 * named / floor, "match_anonymous_percent": 100.0 * unnamed / floor,
            "named_us_per_record": 1e6 * named / records, "anonymous_us_per_record": 1e6 * unnamed / records}


def render(result: dict) -> str:
    table = [[p["preset"], p["tf_records"] + p["mx_records"], f"{p['floor_s']:.2f}",
              f"{1e3 * p['match_named_s']:.1f}", f"{p['match_named_percent']:.2f} %",
              f"{p['named_us_per_record']:.0f}", f"{1e3 * p['match_anonymous_s']:.1f}",
              f"{p['match_anonymous_percent']:.2f} %", f"{p['anonymous_us_per_record']:.0f}"]
             for p in result["presets"]]
    headers = ["IRv2 repeats", "records", "floor s", "match ms (names)", "% floor", "µs/record",
               "match ms (anonymous)", "% floor", "µs/record"]
    lines = [f"matching step (normalise + match + compare_pairs), median of {result['runs']} runs; "
             f"{result['machine']['cpus']} CPUs",
             tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)]
    checked = [p for p in result["presets"] if p["preset"] == "full"]
    if checked:
        lines.append(f"target: matching (own names) of the full network <= {TARGET_PERCENT:.0f} % of its floor: "
                     + ("met" if result["within_target"] else "NOT met"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=list(PRESETS),
                        help="IRv2 repeat presets to measure (default all three)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of the matching step per preset (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: reduced and small, 3 runs")
    parser.add_argument("--out", help=out_help(NAME))
    args = parser.parse_args(argv)
    try:
        settle(args, QUICK, ("runs",))
        out = report_path(args.out, NAME, smoke=args.quick or tuple(args.presets) != PRESETS)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import_s = _import_frameworks()
    presets = []
    for preset in args.presets:
        presets.append(measure_preset(preset, args.runs, import_s))
        print(f"{preset}: {presets[-1]['tf_records']} + {presets[-1]['mx_records']} records, "
              f"match {1e3 * presets[-1]['match_named_s']:.1f} ms", file=sys.stderr)
    full = [p for p in presets if p["preset"] == "full"]
    result = {"runs": args.runs, "presets": presets, "target_percent": TARGET_PERCENT,
              "within_target": all(p["match_named_percent"] <= TARGET_PERCENT for p in full) if full else None,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()}}
    print(render(result))
    atomic_write_text(out, json.dumps(result, indent=1) + "\n", parents=True)
    print(f"wrote {out}")
    return 0 if result["within_target"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
