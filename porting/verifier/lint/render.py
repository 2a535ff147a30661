"""Rendering lint findings: the report section, the ``--lint-only`` report, bug reports, the README table."""
from __future__ import annotations

import json
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from porting import util
from porting.verifier.lint.base import CHECKS, PAIR_CHECKS, SEVERITY_MEANING, SEVERITY_ORDER, Finding, Severity
from porting.verifier.render.grouping import compact_layers

#: In the text report, a group's layers are written in at most this many parts (runs or names).
TEXT_LAYER_PARTS = 3


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


@dataclass(frozen=True)
class FindingGroup:
    """Identical findings on several layers: same check, severity, TF and MXNet settings, message and
    fix (the layers' names masked), same source location. ``findings[0]`` stands for the group."""

    number: int
    findings: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def count(self) -> int:
        return len(self.findings)

    @property
    def layers(self) -> list[str]:
        return [f.layer for f in self.findings]

    def as_dict(self) -> dict:
        first = self.first
        data = {"group": self.number, "check": first.check, "severity": str(first.severity), "tf": first.tf,
                "mx": first.mx, "message": _generic(first.message, self), "fix": _generic(first.fix, self), "count": self.count,
                "layers": self.layers, "layers_compact": compact_layers(self.layers)}
        if first.file is not None:
            data["file"], data["line"] = first.file, first.line
        return data


def _mask(text: str, finding: Finding) -> str:
    for name in sorted({n for n in (finding.layer, finding.mx_layer) if n}, key=len, reverse=True):
        text = text.replace(name, "<layer>")
    return text


def _generic(text: str, group: FindingGroup) -> str:
    """A group's message or fix, its first layer's names replaced by words that hold for each layer."""
    finding = group.first
    if group.count == 1 or not text:
        return text
    names = [(finding.layer, "each TF layer")] + ([(finding.mx_layer, "each MXNet layer")] if finding.mx_layer else [])
    for name, words in sorted(names, key=lambda item: -len(item[0])):
        text = text.replace(name, words)
    return text


def finding_key(finding: Finding) -> tuple:
    """What makes two findings the same defect (see ``FindingGroup``)."""
    return (finding.check, str(finding.severity), _mask(finding.tf, finding), _mask(finding.mx, finding),
            _mask(finding.message, finding), _mask(finding.fix or "", finding), finding.file, finding.line)


def group_findings(findings) -> list[FindingGroup]:
    """The findings grouped by ``finding_key``, in the order of each group's first finding."""
    groups: OrderedDict = OrderedDict()
    for finding in findings or ():
        groups.setdefault(finding_key(finding), []).append(finding)
    return [FindingGroup(number, tuple(members)) for number, members in enumerate(groups.values())]


def grouped(findings) -> bool:
    """Some findings are identical (fewer groups than findings)."""
    findings = list(findings or ())
    return len(group_findings(findings)) < len(findings)


def _group_layer_text(group: FindingGroup) -> str:
    if group.count == 1:
        return _cut(group.first.layer, 48)
    return f"{group.count} layers: {compact_layers(group.layers, TEXT_LAYER_PARTS)}"


def render_section(findings, fmt: str) -> str:
    """The findings table for the compare report ('text' or 'markdown'; '' otherwise): one row per
    group of identical findings (a group of one reads as the finding itself)."""
    findings = list(findings or ())
    groups = group_findings(findings)
    distinct = f" ({len(groups)} distinct)" if len(groups) < len(findings) else ""
    if fmt == "text":
        head = f"\nLint findings: {summary_line(findings)}{distinct}"
        if not findings:
            return head
        rows = [[str(f.severity), f.check, _group_layer_text(g) + (f"\n({f.location})" if f.file else ""), f.tf,
                 f.mx, _generic(f.message, g), _generic(f.fix, g)] for g in groups for f in [g.first]]
        table = tabulate(rows, headers=["severity", "check", "layer", "TF", "MXNet", "why", "fix"], tablefmt="simple",
                         maxcolwidths=[None, None, 48, 22, 22, 60, 40], disable_numparse=True)
        return f"{head}\n{table}"
    if fmt == "markdown":
        lines = ["", "## Lint findings", "", f"**{summary_line(findings)}**{distinct}", ""]
        if not findings:
            return "\n".join(lines)
        rows = [[_md(f.severity), _md(f.check), _md(f.layer if g.count == 1 else
                                                    f"{g.count} layers: {compact_layers(g.layers)}")
                 + (f" ({_md(f.location)})" if f.file else ""), _md(f.tf),
                 _md(f.mx), _md(_generic(f.message, g)), _md(_generic(f.fix, g))] for g in groups for f in [g.first]]
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
        if grouped(findings):
            document["finding_groups"] = [group.as_dict() for group in group_findings(findings)]
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
    lines += _where(finding)
    return "\n".join(lines)


def _where(finding: Finding) -> list[str]:
    """The source line a shape-comment finding points at (nothing for other findings)."""
    if finding.file is None:
        return []
    lines = ["## Where", "", f"`{finding.location}`", ""]
    source = _source_line(finding.file, finding.line)
    return lines + (["```python", source, "```", ""] if source else [])


def group_bug_report(group: FindingGroup, result=None) -> str:
    """One Markdown bug report for a group of identical findings: the defect once, every layer it touches
    (a group of one is ``bug_report`` of its finding)."""
    if group.count == 1:
        return bug_report(group.first, result)
    finding, title = group.first, getattr(result, "title", "")
    lines = [f"# Port lint {finding.severity}: {finding.check} at {group.count} layers", "",
             f"Found by the lint pass of `porting compare`{f' ({title})' if title else ''}. "
             f"Severity **{finding.severity}**: {SEVERITY_MEANING[finding.severity]}. "
             f"One defect repeated on {group.count} layers: {compact_layers(group.layers)}.", "",
             "| | TF | MXNet |", "|---|---|---|",
             f"| setting | {_md(finding.tf)} | {_md(finding.mx)} |", "",
             "## Why", "", _generic(finding.message, group), "", "## Fix", "",
             f"On each layer below: {_generic(finding.fix, group)}" if finding.fix else "--", "",
             "## Layers", "", "| # | TF layer | MXNet layer |", "|---|---|---|"]
    lines += [f"| {number} | {_md(f.layer)} | {_md(f.mx_layer or f.layer)} |"
              for number, f in enumerate(group.findings, start=1)]
    lines.append("")
    lines += _where(finding)
    return "\n".join(lines)


def bug_reports(result):
    """``(name, Markdown)`` of every group of identical error or warning findings of a comparison, in
    order: a group of one is its finding's report, named as before; a larger one lists every layer."""
    for group in group_findings(getattr(result, "findings", []) or []):
        finding = group.first
        if finding.severity == Severity.INFO:
            continue
        more = f"_and_{group.count - 1}_more" if group.count > 1 else ""
        yield f"{finding.check}_{finding.layer}{more}", group_bug_report(group, result)


def write_bug_reports(result, directory) -> list[Path]:
    """One Markdown file per group of identical error or warning findings (``--lint-only --bug-reports DIR``)."""
    directory = Path(directory)
    written = []
    for number, (name, text) in enumerate(bug_reports(result)):
        path = directory / f"finding_{number:03d}_{util.slug(name)}.md"
        util.atomic_write_text(path, text, durable=False, parents=True)
        written.append(path)
    return written
