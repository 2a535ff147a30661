"""Regenerate ``tests/corpus/baseline_i.md``: today's verifier on helper I's corpus ports.

Not a test. For each port (``tests/support/ports/<net>.py``): ``verify()`` on the correct port
(shapes + lint, slim's default training-mode graph, as ``python -m porting.compare`` runs it),
again with ``numeric=True``, and on every mutant (the TF graph built once and reused). Records
the verdict, problem rows, lint errors/warnings, the first problem row and whether it names the
mutant's root cause (``ROOT_CAUSES``).

    PYTHONPATH=$PWD /work/main/.venv/bin/python -m tests.corpus.baseline_i
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from porting import compat  # noqa: F401  (shims first)
from porting.core.diff import Status
from porting.verifier.api import verify
from porting.verifier.lint.base import Severity

PORTS = ("inception_v1", "inception_v2", "inception_v3", "overfeat")
OUT = Path(__file__).with_name("baseline_i.md")


def _side(side) -> str:
    return f"{side.name} ({side.op} {'x'.join(map(str, side.shape))})" if side is not None else "--"


def _cell(text: str, limit: int = 170) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_keys(result) -> set:
    return {(f.check, f.layer) for f in result.findings if f.severity == Severity.ERROR}


def _facts(result, seconds: float, roots=(), known_errors=frozenset()) -> dict:
    """The numbers of one run; ``known_errors``: lint errors the correct port has too (not shown first)."""
    problems = [row for row in result.rows if row.status != Status.MATCH]
    findings = result.findings
    count = {severity: sum(1 for f in findings if f.severity == severity) for severity in Severity}
    first = problems[0] if problems else None
    first_error = next((f for f in findings if f.severity == Severity.ERROR and (f.check, f.layer) not in known_errors),
                       None)
    names = [side.name for side in ((first.tf, first.mx) if first else ()) if side is not None]
    error_names = [first_error.layer, getattr(first_error, "mx_layer", "") or ""] if first_error else []
    return {
        "verdict": "PASSED" if result else "FAILED",
        "line": result.verdict_line(),
        "problems": len(problems),
        "errors": count[Severity.ERROR], "warnings": count[Severity.WARNING], "infos": count[Severity.INFO],
        "first": (f"#{first.index} {_side(first.tf)} / {_side(first.mx)}: {first.status.value}: {first.note}"
                  if first else "--"),
        "first_error": (f"{first_error.check} @ {first_error.layer}: TF {first_error.tf}, MX {first_error.mx}"
                        if first_error else "--"),
        "root_first_row": any(name.startswith(root) for name in names for root in roots),
        "root_first_error": any(name and name.startswith(root) for name in error_names for root in roots),
        "seconds": seconds,
    }


def _numeric_text(result) -> str:
    data = result.numeric or {}
    if data.get("error"):
        return f"not run: {data['error']}"
    if data.get("passed"):
        return f"passed ({data.get('layers')} layers, max abs {data.get('max_abs'):.2g})"
    first = data.get("first_divergence") or {}
    return f"failed: {data.get('failed')}/{data.get('layers')} layers, first {first.get('layer')} / {first.get('mx_layer')}"


def run_port(name: str) -> list[str]:
    port = importlib.import_module(f"tests.support.ports.{name}")
    common = dict(size=port.SIZE, classes=port.CLASSES)
    started = time.perf_counter()
    correct = verify(tf=port.tf_build, mx=port.build, title=f"{name} port", **common)
    facts = _facts(correct, time.perf_counter() - started)
    started = time.perf_counter()
    numeric = verify(tf=port.tf_build, mx=port.build, title=f"{name} port", numeric=True, **common)
    numeric_seconds = time.perf_counter() - started
    lines = [f"## {name} ({port.SLIM}, {port.SIZE}x{port.SIZE}, {port.CLASSES} classes"
             f"{', ' + ', '.join(f'{k}={v}' for k, v in port.SLIM_KWARGS.items()) if port.SLIM_KWARGS else ''})", "",
             "```",
             f"PYTHONPATH=$PWD /work/main/.venv/bin/python -m porting.compare --tf tests/support/ports/{name}.py:tf_build "
             f"--mx tests/support/ports/{name}.py:build --size {port.SIZE} --classes {port.CLASSES} --only-problems",
             "```", "",
             "| case | verdict | problem rows | lint E/W/I | first problem row | first lint error (mutants: first "
             "one the correct port does not have) | root first? | s |",
             "|---|---|---|---|---|---|---|---|",
             _row("correct port", facts, None),
             f"| correct port, `--numeric` | {'PASSED' if numeric else 'FAILED'} | "
             f"{sum(1 for r in numeric.rows if r.status != Status.MATCH)} | "
             f"{numeric.lint.errors if numeric.lint is not None else '--'}/"
             f"{sum(1 for f in numeric.findings if f.severity == Severity.WARNING)}/"
             f"{sum(1 for f in numeric.findings if f.severity == Severity.INFO)} | "
             f"numeric: {_cell(_numeric_text(numeric))} | -- | -- | {numeric_seconds:.1f} |"]
    for mutant, (builder, why) in port.MUTANTS.items():
        builder.__name__ = mutant
        started = time.perf_counter()
        result = verify(tf_graph=correct.tf_graph, tf=port.tf_build, mx=builder, title=f"{name} {mutant}", **common)
        roots = port.ROOT_CAUSES.get(mutant, ())
        lines.append(_row(f"`{mutant}`: {why}",
                          _facts(result, time.perf_counter() - started, roots, _error_keys(correct)), roots))
    lines += ["", "Problem rows and lint errors on the correct port (default mode):", ""]
    lines += [f"- row #{row.index} {_side(row.tf)} / {_side(row.mx)}: {row.status.value}: {_cell(row.note, 200)}"
              for row in correct.rows if row.status != Status.MATCH]
    lines += [f"- lint {f.severity.value} {f.check} @ {f.layer}: TF {f.tf}, MX {_cell(f.mx, 60)}"
              for f in correct.findings if f.severity != Severity.INFO]
    print("\n".join(lines), flush=True)
    return lines


def _row(case: str, facts: dict, roots) -> str:
    if roots is None:
        root = "--"
    else:
        root = ("row" if facts["root_first_row"] else "") + (" + lint" if facts["root_first_error"] else "")
        root = root.strip(" +") or "no"
    return (f"| {_cell(case, 140)} | {facts['verdict']} | {facts['problems']} | "
            f"{facts['errors']}/{facts['warnings']}/{facts['infos']} | {_cell(facts['first'])} | "
            f"{_cell(facts['first_error'], 120)} | {root} | {facts['seconds']:.1f} |")


def main(argv: list[str]) -> int:
    names = argv or list(PORTS)
    body = []
    for name in names:
        body += run_port(name) + [""]
    header = ["# Baseline: today's verifier on helper I's corpus ports", "",
              "Generated by `PYTHONPATH=$PWD /work/main/.venv/bin/python -m tests.corpus.baseline_i` "
              "(`verify()`, the API behind `python -m porting.compare`; default mode: slim's training-mode graph, "
              "shapes + lint; mutants reuse the correct port's TF graph). Problem rows: rows whose status is not "
              "`match`. Root first?: the first problem row (row) or the mutant's first new lint error (lint) names "
              "a layer in the port's `ROOT_CAUSES`. Expected today: false alarms on the correct ports (issue 15).", ""]
    if not argv:
        OUT.write_text("\n".join(header + body).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
