"""Regenerate ``tests/corpus/baseline.md``: today's verifier on every corpus port and mutant (not a test).

For each port ``tests/support/ports/<net>.py`` (the 8 of ``NETWORKS``): ``verify()`` (the API behind
``python -m porting.compare --tf <port>.py:tf_build --mx <port>.py:<builder> --size S --classes C``)
on the correct port in the default mode (slim's training-mode graph: shapes + lint), again with
``numeric=True``, and on every mutant in the default mode (the correct port's TF graph reused).
Records the verdict, the problem rows (and, for a mutant, how many the correct port's report lacks),
the lint errors/warnings/infos, the first problem row, and whether that row is at the mutant's root
(``MUTANT_ROOTS``: slim's layer where the defect is). Usage (from the repository root)::

    PYTHONPATH=$PWD /work/main/.venv/bin/python tests/corpus/make_baseline.py [--out FILE] [net ...]

With nets named, only those are run (and written to ``--out``, default the baseline itself). ``--table``
prints only the README's corpus table (the "Corpus" section of README.md is this output) and writes nothing.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from porting import compat  # noqa: E402,F401  (shims first)
from porting.core.diff import Status  # noqa: E402
from porting.verifier.api import verify  # noqa: E402
from porting.verifier.lint.base import Severity  # noqa: E402

NETWORKS = ("vgg_16", "alexnet_v2", "resnet_v1_50", "resnet_v2_50",
            "inception_v1", "inception_v2", "inception_v3", "overfeat")
OUT = ROOT / "tests/corpus/baseline.md"
#: At most this many of the correct port's problem rows / lint errors are listed per network.
LISTED = 12


def _cell(text, limit: int = 170) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _side(side) -> str:
    return f"`{side.name}` ({side.op} {'x'.join(map(str, side.shape))})" if side is not None else "--"


def _row_text(row) -> str:
    return f"#{row.index} {row.status.value} TF {_side(row.tf)} / MX {_side(row.mx)}: {row.note.split('; names differ')[0]}"


def _row_key(row) -> tuple:
    return ("row", row.status, row.tf.name if row.tf else None, row.mx.name if row.mx else None, row.note)


def _finding_key(finding) -> tuple:
    return ("lint", finding.check, finding.layer, finding.message)


def _at(name: str | None, root: str) -> bool:
    """``name`` is slim's layer ``root`` or a layer under that scope."""
    return bool(name) and (name == root or name.startswith(root + "/"))


def _names_root(row, root: str) -> bool:
    """The row's TF layer is at the root; for a row without a TF side, its note names the root's layer."""
    if row.tf is not None:
        return _at(row.tf.name, root)
    return re.search(rf"(?<![\w/]){re.escape(root)}(?![\w])", row.note or "") is not None


def _facts(result, seconds: float, root: str | None = None, known: frozenset = frozenset()) -> dict:
    problems = [row for row in result.rows if row.status != Status.MATCH]
    findings = result.findings
    count = {severity: sum(1 for f in findings if f.severity == severity) for severity in Severity}
    new_rows = [row for row in problems if _row_key(row) not in known]
    new_findings = [f for f in findings if _finding_key(f) not in known]
    first_error = next((f for f in new_findings if f.severity == Severity.ERROR), None)
    roots = [row for row in problems if row.cause is None]  # rows that only inherit a difference are not first
    facts = {
        "verdict": "PASSED" if result else "FAILED",
        "problems": len(problems), "new": len(new_rows),
        "lint": f"{count[Severity.ERROR]}/{count[Severity.WARNING]}/{count[Severity.INFO]}",
        "first": (_row_text(roots[0]) if roots else
                  f"lint: {first_error.check} @ `{first_error.layer}`" if first_error else "--"),
        "first_error": (f"{first_error.check} @ `{first_error.layer}`: TF {first_error.tf}, MX {first_error.mx}"
                        if first_error else "--"),
        "first_at_root": "--", "named_at": "--", "seconds": seconds,
        "keys": frozenset(_row_key(row) for row in problems) | frozenset(_finding_key(f) for f in findings),
    }
    if root is not None:
        if roots:
            first_at_root = _names_root(roots[0], root) and _row_key(roots[0]) not in known
        else:  # the rows all match: the report's first problem is its first new lint error
            first_at_root = first_error is not None and _at(first_error.layer, root)
        facts["first_at_root"] = "yes" if first_at_root else "no"
        places = []
        k = next((k for k, row in enumerate(new_rows, start=1) if _names_root(row, root)), None)
        if k is not None:
            places.append(f"new row {k}/{len(new_rows)}")
        k = next((k for k, f in enumerate(new_findings, start=1) if _at(f.layer, root)), None)
        if k is not None:
            places.append(f"new lint {k}/{len(new_findings)}")
        facts["named_at"] = ", ".join(places) or "nowhere"
    return facts


def _numeric_text(result) -> str:
    data = result.numeric or {}
    if data.get("error"):
        return f"not run: {data['error']}"
    if data.get("passed"):
        return f"passed ({data.get('layers')} layers, max abs {data.get('max_abs'):.2g})"
    first = data.get("first_divergence") or {}
    return (f"failed: {data.get('failed')}/{data.get('layers')} layers, "
            f"first {first.get('layer')} / {first.get('mx_layer')}")


def _line(case: str, root: str | None, facts: dict) -> str:
    return (f"| {_cell(case, 140)} | {f'`{root}`' if root else '--'} | {facts['verdict']} | "
            f"{facts['problems']} ({facts['new']}) | {facts['lint']} | {_cell(facts['first'])} | "
            f"{facts['first_at_root']} | {facts['named_at']} | {_cell(facts['first_error'], 120)} | "
            f"{facts['seconds']:.1f} |")


def run_port(net: str, summary: dict) -> list[str]:
    port = importlib.import_module(f"tests.support.ports.{net}")
    size = dict(size=port.SIZE, classes=port.CLASSES)
    started = time.perf_counter()
    correct = verify(tf=port.tf_build, mx=port.build, title=f"{net} port", **size)
    facts = _facts(correct, time.perf_counter() - started)
    started = time.perf_counter()
    numeric = verify(tf=port.tf_build, mx=port.build, title=f"{net} port", numeric=True, **size)
    numeric_seconds = time.perf_counter() - started
    summary["correct"].append((net, facts["verdict"], "PASSED" if numeric else "FAILED"))
    kwargs = getattr(port, "SLIM_KWARGS", {})
    lines = [f"## {net}", "",
             f"slim `{port.SLIM}` under `{port.ARG_SCOPE}()`"
             f"{' with ' + ', '.join(f'{k}={v}' for k, v in kwargs.items()) if kwargs else ''}, "
             f"size {port.SIZE}, {port.CLASSES} classes; port `tests/support/ports/{net}.py`.", "",
             "| case | root (`MUTANT_ROOTS`) | verdict | problem rows (new) | lint E/W/I | first problem row "
             "| first row at root? | root named at | first lint error (mutants: new) | s |",
             "|---|---|---|---|---|---|---|---|---|---|",
             _line("(correct port)", None, facts),
             f"| (correct port, `--numeric`) | -- | {'PASSED' if numeric else 'FAILED'} | "
             f"{sum(1 for r in numeric.rows if r.status != Status.MATCH)} | "
             f"{sum(1 for f in numeric.findings if f.severity == Severity.ERROR)}/"
             f"{sum(1 for f in numeric.findings if f.severity == Severity.WARNING)}/"
             f"{sum(1 for f in numeric.findings if f.severity == Severity.INFO)} | "
             f"numeric: {_cell(_numeric_text(numeric))} | -- | -- | -- | {numeric_seconds:.1f} |"]
    training_only = getattr(port, "TRAINING_ONLY", {})
    for mutant, (builder, why) in port.MUTANTS.items():
        root = port.MUTANT_ROOTS[mutant]
        print(f"{net} {mutant} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        result = verify(tf_graph=correct.tf_graph, tf=port.tf_build, mx=builder, title=f"{net} {mutant}", **size)
        mutant_facts = _facts(result, time.perf_counter() - started, root, facts["keys"])
        summary["mutants"].append((f"{net}:{mutant}", mutant_facts["verdict"], mutant_facts["first_at_root"]))
        note = " (training only)" if mutant in training_only and "training only" not in why else ""
        lines.append(_line(f"{mutant}: {why}{note}", root, mutant_facts))
    problems = [row for row in correct.rows if row.status != Status.MATCH]
    errors = [f for f in correct.findings if f.severity == Severity.ERROR]
    ours = [entry for entry in summary["mutants"] if entry[0].startswith(f"{net}:")]
    summary["networks"].append({
        "net": net, "verdict": facts["verdict"], "numeric": "PASSED" if numeric else "FAILED", "mutants": len(ours),
        "caught": sum(verdict == "FAILED" for _, verdict, _ in ours),
        "at_root": sum(first == "yes" for _, _, first in ours),
        "false_alarms": len(problems) + sum(1 for f in correct.findings if f.severity != Severity.INFO),
        "seconds": facts["seconds"], "numeric_seconds": numeric_seconds})
    lines += ["", "Problem rows and lint errors on the correct port (default mode):", ""]
    lines += [f"- row {_cell(_row_text(row), 240)}" for row in problems[:LISTED]]
    if len(problems) > LISTED:
        lines.append(f"- ... and {len(problems) - LISTED} more rows")
    lines += [f"- lint error {f.check} @ `{f.layer}`: TF {f.tf}, MX {_cell(f.mx, 60)}" for f in errors[:LISTED]]
    if len(errors) > LISTED:
        lines.append(f"- ... and {len(errors) - LISTED} more lint errors")
    return lines + [""]


def readme_table(networks: list[dict]) -> list[str]:
    """The README's corpus table: per network, the correct port's verdict (shapes + lint, and ``--numeric`` with
    seeded weights), its mutants caught (FAILED) and with the root as the first problem, its false alarms
    (problem rows + lint errors and warnings on the correct port) and the wall time of its comparisons (build both
    graphs, match, lint; then the same with ``--numeric``)."""
    lines = ["| network | correct port: shapes + lint | `--numeric` | defects caught | root cause first | false alarms "
             "| wall time (s): compare / `--numeric` |",
             "|---|---|---|---|---|---|---|"]
    for entry in networks:
        lines.append(f"| {entry['net']} | {entry['verdict']} | {entry['numeric']} | {entry['caught']}/{entry['mutants']} | "
                     f"{entry['at_root']}/{entry['mutants']} | {entry['false_alarms']} | "
                     f"{entry['seconds']:.1f} / {entry['numeric_seconds']:.1f} |")
    total = {key: sum(entry[key] for entry in networks) for key in ("caught", "mutants", "at_root", "false_alarms")}
    passed = sum(entry["verdict"] == "PASSED" for entry in networks)
    numeric = sum(entry["numeric"] == "PASSED" for entry in networks)
    lines.append(f"| **all {len(networks)}** | {passed}/{len(networks)} PASSED | {numeric}/{len(networks)} PASSED | "
                 f"{total['caught']}/{total['mutants']} | {total['at_root']}/{total['mutants']} | {total['false_alarms']} | "
                 f"{sum(entry['seconds'] for entry in networks):.1f} / "
                 f"{sum(entry['numeric_seconds'] for entry in networks):.1f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="*", default=list(NETWORKS))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--table", action="store_true",
                        help="print only the README's corpus table (network x verdict, defects caught, false alarms, "
                             "wall time) to stdout; write nothing")
    args = parser.parse_args(argv)
    summary = {"correct": [], "mutants": [], "networks": []}
    started = time.perf_counter()
    body = []
    for net in args.nets:
        body += run_port(net, summary)
    correct, mutants = summary["correct"], summary["mutants"]
    at_root = [name for name, _, first in mutants if first == "yes"]
    table = readme_table(summary["networks"])
    if args.table:
        print("\n".join(table))
        return 0
    header = [
        f"# Baseline: today's verifier on the corpus ({', '.join(args.nets)})", "",
        "Generated by `PYTHONPATH=$PWD /work/main/.venv/bin/python tests/corpus/make_baseline.py` (not a test; "
        f"{time.perf_counter() - started:.0f} s). Each case is one `verify()` call, the API behind "
        "`python -m porting.compare --tf tests/support/ports/<net>.py:tf_build --mx tests/support/ports/"
        "<net>.py:<builder> --size S --classes C`: the default mode (slim's training-mode graph, shapes + lint); "
        "the correct port is run again with `--numeric` (the verifier's own seeded weights and transfer, not the "
        "port's `weights_from_tf`); mutants reuse the correct port's TF graph.", "",
        "A correct port should PASS; a mutant should FAIL with its root (`MUTANT_ROOTS`: slim's layer where the "
        "defect is) as the first problem row. `problem rows (new)`: rows whose status is not `match`, and how "
        "many of them the correct port's report does not have. `first problem row`: the first row that is a root "
        "cause (rows that only inherit an earlier row's difference, `LayerDiff.cause`, are attributed to it and "
        "not counted as first); when every row matches, the first new lint error. `first row at root?`: that "
        "row's TF layer is the root or under it (for a row without a TF side: its note names that layer), and "
        "the correct port's report does not have the same row (for a lint error: its layer is the root or "
        "under it). `root named at`: the k-th of the n new rows / new lint "
        "findings that names the root; `nowhere` = not named. `first lint error`: for a mutant, the first error "
        "the correct port's report does not have. Training-only mutants change nothing at inference; only the "
        "lint can see them.", "",
        "## Summary", "",
        f"- correct ports that PASS: {sum(v == 'PASSED' for _, v, _ in correct)}/{len(correct)}",
        f"- correct ports that PASS `--numeric` (seeded weights through the verifier's transfer): "
        f"{sum(n == 'PASSED' for _, _, n in correct)}/{len(correct)}"
        f"{'; failing: ' + ', '.join(net for net, _, n in correct if n != 'PASSED') if any(n != 'PASSED' for _, _, n in correct) else ''}",
        f"- mutants that FAIL: {sum(v == 'FAILED' for _, v, _ in mutants)}/{len(mutants)} "
        "(a failure means little while the correct port fails too)",
        f"- mutants whose first problem row is at their root: {len(at_root)}/{len(mutants)}: "
        f"{', '.join(at_root) or 'none'}",
        f"- mutants whose first problem row is elsewhere: "
        f"{', '.join(name for name, _, first in mutants if first != 'yes') or 'none'}", "",
        "## README table", "", *table, ""]
    Path(args.out).write_text("\n".join(header + body).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
