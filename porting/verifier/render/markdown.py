"""The Markdown report: the same rows as a GitHub table, the passes' sections below it."""
from __future__ import annotations

from tabulate import tabulate

from porting.core.cost import cost_columns
from porting.verifier.render.grouping import defect_summary_lines, root_cause_lines
from porting.verifier.render.table import (END_POINT_HEADERS, HEADERS, cost_line, end_point_table, layer_table,
                                           pass_sections)


def _escape(cells: list) -> list[str]:
    return [str(cell).replace("|", "\\|") for cell in cells]


def render_markdown(result, only_problems: bool = False, end_points: bool = False) -> str:
    """Title, verdict, the per-layer table (or the end-point table), the cost line, each distinct row
    defect once with its count, the passes' sections."""
    lines = [f"# porting compare: {result.title}", "", f"**{result.verdict_line()}**", ""]
    if end_points:
        lines.append(tabulate(end_point_table(result), headers=END_POINT_HEADERS, tablefmt="github"))
    else:
        columns = cost_columns(result)
        table = [_escape(cells) for cells in layer_table(result, columns, only_problems, None)]
        lines.append(tabulate(table, headers=HEADERS, tablefmt="github", disable_numparse=True))
        lines.extend(["", cost_line(result, columns)])
        summary = defect_summary_lines(result.rows, limit=None)
        if summary:
            lines.extend(["", summary[0], ""] + [f"- {line.strip()}" for line in summary[1:]])
        causes = root_cause_lines(result.rows, limit=None)
        if causes:
            lines.extend(["", causes[0], ""] + [f"- {line.strip()}" for line in causes[1:]])
    notes = [] if end_points else getattr(result, "equivalences", None) or []
    if notes:  # only when a rule rewrote something (our own pair: none, its reports unchanged)
        lines.extend(["", f"## Equivalent forms taken as one ({len(notes)})", ""])
        lines.extend(f"- {note}" for note in notes)
    lines.extend(pass_sections(result, "markdown"))
    return "\n".join(lines) + "\n"
