"""Rendering lint findings: the report section, the ``--lint-only`` report, bug reports, the README table."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tabulate import tabulate

from porting import util
from porting.verifier.lint.base import CHECKS, PAIR_CHECKS, SEVERITY_MEANING, SEVERITY_ORDER, Finding, Severity


def counts(findings) -> dict[str, int]:
    """Findings per severity: ``{"error": n, "warning": n, "info": n}``."""
    tally = Counter(str(f.severity) for f in findings)
    return {str(severity): tally.get(str(severity), 0) for severity in SEVERITY_ORDER}


def summary_line(findings) -> str:
    """'lint PASSED | 0 errors, 1 warning, 2 infos' (FAILED when there is an error)."""
    tally = counts(findings)
    words = ", ".join(f"{tally[s]} {s}{'' if tally[s] == 1 else 's'}" for s in ("error", "warning", "info"))
    return f"lint {'FAILED' if tally['error'] else 'PASSED'} | {words}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _md(text) -> str:
    return str(text if text not in (None, "") else "--").replace("|", "\\|")


def render_section(findings, fmt: str) -> str:
    """The findings table for the compare report ('text' or 'markdown'; '' otherwise)."""
    findings = list(findings or ())
    if fmt == "text":
        head = f"\nLint findings: {summary_line(findings)}"
        if not findings:
            return head
        rows = [[str(f.severity), f.check, _cut(f.layer, 48) + (f"\n({f.location})" if f.file else ""), f.tf, f.mx,
                 f.message, f.fix] for f in findings]
        table = tabulate(rows, headers=["severity", "check", "layer", "TF", "MXNet", "why", "fix"], tablefmt="simple",
                         maxcolwidths=[None, None, 48, 22, 22, 60, 40], disable_numparse=True)
        return f"{head}\n{table}"
    if fmt == "markdown":
        lines = ["", "## Lint findings", "", f"**{summary_line(findings)}**", ""]
        if not findings:
            return "\n".join(lines)
        rows = [[_md(f.severity), _md(f.check), _md(f.layer) + (f" ({_md(f.location)})" if f.file else ""), _md(f.tf),
                 _md(f.mx), _md(f.message), _md(f.fix)] for f in findings]
        lines.append(tabulate(rows, headers=["severity", "check", "layer", "TF", "MXNet", "why", "fix"],
                              tablefmt="github", disable_numparse=True))
        return "\n".join(lines)
    return ""


def render_lint_only(result, fmt: str = "text") -> str:
    """The report of ``--lint-only``: only the findings and the lint verdict."""
    findings = getattr(result, "findings", []) or []
    if fmt == "json":
        document = {"title": result.title, "verdict": "fail" if counts(findings)["error"] else "pass",
                    "verdict_line": summary_line(findings), "summary": counts(findings),
                    "findings": [f.as_dict() for f in findings]}
        return json.dumps(document, indent=1) + "\n"
    if fmt == "markdown":
        return f"# porting lint: {result.title}\n{render_section(findings, 'markdown')}\n"
    return f"porting lint: {result.title}{render_section(findings, 'text')}\n{summary_line(findings)}\n"


def checks_markdown() -> str:
    """The table of registered checks (for the README), generated from the registry."""
    rows = [[f"`{name}`", "layer pair" if name in PAIR_CHECKS else "network", description.replace("|", "\\|")]
            for name, description in CHECKS.items()]
    return tabulate(rows, headers=["check", "runs on", "what it compares"], tablefmt="github")


def _source_line(file: str, line: int | None) -> str:
    if line is None:
        return ""
    try:
        return Path(file).read_text().splitlines()[line - 1].rstrip()
    except (OSError, IndexError):
        return ""


def bug_report(finding: Finding, result=None) -> str:
    """One Markdown bug report for one finding (``result``: the comparison, for its title)."""
    title = getattr(result, "title", "")
    lines = [f"# Port lint {finding.severity}: {finding.check} at {finding.layer}", "",
             f"Found by the lint pass of `porting compare`{f' ({title})' if title else ''}. "
             f"Severity **{finding.severity}**: {SEVERITY_MEANING[finding.severity]}.", "",
             "| | TF | MXNet |", "|---|---|---|",
             f"| layer | {_md(finding.layer)} | {_md(finding.mx_layer or finding.layer)} |",
             f"| setting | {_md(finding.tf)} | {_md(finding.mx)} |", "",
             "## Why", "", finding.message, "", "## Fix", "", finding.fix or "--", ""]
    if finding.file is not None:
        lines += ["## Where", "", f"`{finding.location}`", ""]
        source = _source_line(finding.file, finding.line)
        if source:
            lines += ["```python", source, "```", ""]
    return "\n".join(lines)


def bug_reports(result):
    """``(name, Markdown)`` of every error and warning finding of a comparison, in order."""
    for finding in getattr(result, "findings", []) or []:
        if finding.severity != Severity.INFO:
            yield f"{finding.check}_{finding.layer}", bug_report(finding, result)


def write_bug_reports(result, directory) -> list[Path]:
    """One Markdown file per error or warning finding (``--lint-only --bug-reports DIR``)."""
    directory = Path(directory)
    written = []
    for number, (name, text) in enumerate(bug_reports(result)):
        path = directory / f"finding_{number:03d}_{util.slug(name)}.md"
        util.atomic_write_text(path, text, durable=False, parents=True)
        written.append(path)
    return written
