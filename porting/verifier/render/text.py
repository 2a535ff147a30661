"""The plain-text report (tabulate's 'simple' table): what ``python -m porting.compare`` prints."""
from __future__ import annotations

from tabulate import tabulate

from porting.core.cost import cost_columns
from porting.verifier.render.grouping import defect_summary_lines, root_cause_lines
from porting.verifier.render.table import (END_POINT_HEADERS, HEADERS, cost_line, end_point_table, layer_table,
                                           pass_sections)

#: Layer names longer than this are cut from the left in the text table.
NAME_WIDTH = 60


def render_text(result, only_problems: bool = False, end_points: bool = False) -> str:
    """The per-layer table (or the end-point table), the cost line, each distinct row defect once with its
    count, each root cause once, the passes' sections and the verdict line.

    A failed comparison's table is collapsed (``table.layer_table``): runs of matching rows, and of rows
    that only inherit one root's difference, are one line each; a passed one lists every row."""
    lines = [f"porting compare: {result.title}"]
    if end_points:
        lines.append(tabulate(end_point_table(result), headers=END_POINT_HEADERS, tablefmt="simple"))
    else:
        columns = cost_columns(result)
        table = layer_table(result, columns, only_problems, NAME_WIDTH, collapse=not result.passed)
        lines.append(tabulate(table, headers=HEADERS, tablefmt="simple", disable_numparse=True))
        lines.append(cost_line(result, columns))
        lines.extend(defect_summary_lines(result.rows))
        lines.extend(root_cause_lines(result.rows))
    notes = [] if end_points else getattr(result, "equivalences", None) or []
    if notes:  # only when a rule rewrote something (our own pair: none, its reports unchanged)
        lines.append(f"equivalent forms taken as one ({len(notes)}):")
        lines.extend(f"  - {note}" for note in notes)
    lines.extend(pass_sections(result, "text"))
    lines.append(result.verdict_line())
    return "\n".join(lines) + "\n"
