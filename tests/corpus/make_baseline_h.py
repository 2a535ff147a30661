"""Regenerate tests/corpus/baseline_h.md: today's verifier on corpus H's ports and mutants (not a test).

For each port and each mutant, runs the command a new user would run,
``python -m porting.compare --tf <port>.py:tf_build --mx <port>.py:<builder> --size S --classes C
--only-problems --numeric --format json``, and records the verdict, the problem rows, the lint
counts, the first problem row (and whether it names the mutant's root, ``MUTANT_ROOTS``) and the
numeric result. Usage (from the repository root)::

    PYTHONPATH=$PWD python tests/corpus/make_baseline_h.py [--out tests/corpus/baseline_h.md] [net ...]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

NETWORKS = ("vgg_16", "alexnet_v2", "resnet_v1_50", "resnet_v2_50")
ROOT = Path(__file__).resolve().parents[2]


def _compare(net: str, builder: str, size: int, classes: int) -> dict:
    port_file = f"tests/support/ports/{net}.py"
    command = [sys.executable, "-m", "porting.compare", "--tf", f"{port_file}:tf_build",
               "--mx", f"{port_file}:{builder}", "--size", str(size), "--classes", str(classes),
               "--only-problems", "--numeric", "--format", "json"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    result = {"rc": done.returncode, "seconds": seconds, "command": " ".join(command[1:])}
    try:
        result["report"] = json.loads(done.stdout)
    except json.JSONDecodeError:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:") or "Error" in line]
        result["error"] = (errors[-1] if errors else done.stderr.strip()[-300:]) or f"exit {done.returncode}"
    return result


def _row_text(row: dict) -> str:
    tf = (row.get("tf") or {}).get("name") or "--"
    mx = (row.get("mx") or {}).get("name") or "--"
    note = row.get("note", "").split("; names differ")[0]
    return f"#{row['index']} {row['status']} TF `{tf}` / MX `{mx}`: {note[:160]}"


def _is_root(name: str | None, root: str | None) -> bool:
    return bool(name and root and (name == root or name.startswith(root + "/")))


def _row_key(row: dict) -> tuple:
    return (row["status"], (row.get("tf") or {}).get("name"), (row.get("mx") or {}).get("name"), row.get("note"))


def _finding_key(finding: dict) -> tuple:
    return ("lint", finding.get("check"), finding.get("layer"), finding.get("message"))


def _where_root(rows: list[dict], findings: list[dict], root: str | None, known: set) -> str:
    """Where the root is named: 'row 1' (first problem row), 'new row k/n' (k-th of the n rows the correct
    port's report lacks), 'new lint k/n' (the same among lint findings); 'nowhere' when not named."""
    if root is None:
        return "--"
    places = []
    if rows and _is_root((rows[0].get("tf") or {}).get("name"), root) and _row_key(rows[0]) not in known:
        places.append("row 1")
    new = [row for row in rows if _row_key(row) not in known]
    for k, row in enumerate(new, start=1):
        if _is_root((row.get("tf") or {}).get("name"), root):
            places.append(f"new row {k}/{len(new)}")
            break
    new = [finding for finding in findings if _finding_key(finding) not in known]
    for k, finding in enumerate(new, start=1):
        if _is_root(finding.get("layer"), root):
            places.append(f"new lint {k}/{len(new)}")
            break
    return ", ".join(places) or "nowhere"


def _summary(result: dict, root: str | None = None, known: set = frozenset()) -> dict:
    if "report" not in result:
        return {"verdict": f"error (exit {result['rc']})", "rows": "--", "lint": "--", "first": result["error"],
                "numeric": "--", "root": "--", "keys": set(), "seconds": result["seconds"]}
    report = result["report"]
    rows = report["rows"]
    lint = Counter(f["severity"] for f in report["findings"])
    numeric = report.get("numeric") or {}
    transfer = numeric.get("transfer") or {}
    if numeric:
        text = "passed" if numeric.get("passed") else "failed"
        text += f" ({numeric.get('layers', 0)} layers compared, {numeric.get('failed', 0)} failed"
        if not transfer.get("ok", True):
            text += f"; weight transfer incomplete: {len(transfer.get('problems', []))} problems"
        divergence = numeric.get("first_divergence")
        if divergence:
            text += f"; first divergence {divergence if isinstance(divergence, str) else json.dumps(divergence)[:80]}"
        text += ")"
    else:
        text = "--"
    first = rows[0] if rows else None
    first_finding = report["findings"][0] if report["findings"] else None
    return {"verdict": report["verdict_line"].split(" |")[0], "verdict_line": report["verdict_line"],
            "rows": len(rows), "lint": f"{lint['error']} E / {lint['warning']} W / {lint['info']} I",
            "first": _row_text(first) if first else "--",
            "first_lint": (f"{first_finding['severity']} {first_finding['check']} `{first_finding['layer']}`"
                           if first_finding else "--"),
            "numeric": text, "root": _where_root(rows, report["findings"], root, known),
            "new_rows": sum(_row_key(row) not in known for row in rows) if root else len(rows),
            "keys": {_row_key(row) for row in rows} | {_finding_key(f) for f in report["findings"]},
            "seconds": result["seconds"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="*", default=list(NETWORKS))
    parser.add_argument("--out", default=str(ROOT / "tests/corpus/baseline_h.md"))
    parser.add_argument("--json", help="also write the raw summaries as JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    lines, raw = [], {}
    for net in args.nets:
        port = importlib.import_module(f"tests.support.ports.{net}")
        cases = [("(correct port)", "build", None, "")]
        cases += [(name, fn.__name__, port.MUTANT_ROOTS.get(name), doc) for name, (fn, doc) in port.MUTANTS.items()]
        lines += [f"## {net}", "", f"slim `{port.SLIM}` under `{port.ARG_SCOPE}()`, size {port.SIZE}, "
                  f"{port.CLASSES} classes; port `tests/support/ports/{net}.py`.", "",
                  "| case | expected root | verdict | problem rows (new) | lint E/W/I | first problem row "
                  "| root named at | first lint finding | --numeric | s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        known = set()
        for name, builder, root, doc in cases:
            print(f"{net} {name} ...", file=sys.stderr, flush=True)
            summary = _summary(_compare(net, builder, port.SIZE, port.CLASSES), root, known)
            if root is None:
                known = summary["keys"]
            raw[f"{net}:{name}"] = {k: v for k, v in summary.items() if k != "keys"}
            case = name if not doc else f"{name}: {doc}"
            lines.append(f"| {case} | {f'`{root}`' if root else '--'} | {summary['verdict']} | "
                         f"{summary['rows']} ({summary.get('new_rows', '--')}) | "
                         f"{summary['lint']} | {summary['first'].replace('|', '/')} | {summary['root']} | "
                         f"{summary.get('first_lint', '--')} | {summary['numeric']} | {summary['seconds']:.0f} |")
        lines.append("")
    header = ["# Baseline: today's verifier on corpus H (vgg_16, alexnet_v2, resnet_v1_50, resnet_v2_50)", "",
              "Generated by `tests/corpus/make_baseline_h.py` (not a test). Each row is one run of",
              "`python -m porting.compare --tf tests/support/ports/<net>.py:tf_build --mx tests/support/ports/"
              "<net>.py:<builder> --size S --classes C --only-problems --numeric --format json`.",
              "A correct port should PASS; a mutant should FAIL with its root (slim's layer) as the first problem row.",
              "`problem rows (new)`: rows with --only-problems, and (for a mutant) how many of them the correct",
              "port's report does not have. `root named at`: where the mutant's root (`MUTANT_ROOTS`, slim's layer)",
              "first appears: `row 1` = the first problem row names it (and is not a row the correct port has too),",
              "`new row k/n` = the k-th of the n new rows, `new lint k/n` = the same among the lint findings the",
              "correct port's report does not have; `nowhere` = not named.",
              "--numeric uses the verifier's own seeded weights and transfer (not the port's `weights_from_tf`).", ""]
    correct = [key for key in raw if key.endswith(":(correct port)")]
    mutants = [key for key in raw if key not in correct]
    passed = [key.split(":")[0] for key in correct if raw[key]["verdict"] == "PASSED"]
    failed = [key for key in mutants if raw[key]["verdict"] == "FAILED"]
    first = [key for key in mutants if raw[key]["root"].startswith("row 1")]
    header += ["## Summary", "",
               f"- correct ports that PASS: {len(passed)}/{len(correct)} {passed or ''}",
               f"- mutants that FAIL: {len(failed)}/{len(mutants)} (a failure means little while the correct port "
               "fails too)",
               f"- mutants whose first problem row is their root: {len(first)}/{len(mutants)}: "
               f"{', '.join(first) or 'none'}", ""]
    Path(args.out).write_text("\n".join(header + lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
