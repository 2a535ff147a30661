"""What the text and Markdown reports share: the per-layer table with its cost cells, the cost line,
the sections of the passes that ran, and each row's numeric evidence.

Rows are data (``porting.core.diff.LayerDiff``); the passes' results are declared fields
of the ``CompareResult`` (``lint``, ``numeric_report``), joined to the rows here, at render
time. Empty cells show ``--``.
"""
from __future__ import annotations

from porting.core.cost import CostColumns, human
from porting.core.diff import LayerDiff, Status
from porting.core.records import format_shape

HEADERS = ["#", "TF layer", "TF op", "TF output (NCHW)", "MX layer", "MX op", "MX output", "params", "MACs",
           "status", "note"]


def _params(count: int | None) -> str:
    return "--" if count is None else f"{count:,}"


def _cost_cells(columns: CostColumns, position: int) -> list[str]:
    """'params', 'MACs' of one row; where the sides differ, the MX value follows in brackets."""
    params, macs = columns.rows[position]
    cells = [_params(params), human(macs)]
    if position in columns.disagree:
        mx_params, mx_macs = columns.mx_rows[position]
        if mx_params != params:
            cells[0] += f" (MX {mx_params:,})"
        if mx_macs != macs:
            cells[1] += f" (MX {human(mx_macs)})"
    return cells


def row_note(row: LayerDiff) -> str:
    """The row's note, with its place in the root-cause attribution: 'inherited from #k: …' for a row whose
    difference follows from an earlier one, '…; root cause of N rows below' for a root that explains rows."""
    note = row.note or "--"
    if row.cause is not None:
        return f"inherited from #{row.cause}: {note}"
    if row.explains:
        return f"{note}; root cause of {len(row.explains)} row{'s' if len(row.explains) != 1 else ''} below"
    return note


def _cells(row: LayerDiff, width: int | None, cost: list[str]) -> list:
    def cut(text: str) -> str:
        if width is None or len(text) <= width:
            return text
        return "…" + text[-(width - 1):]

    return [row.index,
            cut(row.tf.name) if row.tf else "--", row.tf.op if row.tf else "--",
            format_shape(row.tf.shape) if row.tf else "--",
            cut(row.mx.name) if row.mx else "--", row.mx.op if row.mx else "--",
            format_shape(row.mx.shape) if row.mx else "--",
            *cost, row.status.value, row_note(row)]


def _total_rows(columns: CostColumns) -> list[list]:
    """The totals under the table: one row, or one per side when they differ."""
    def row(label, totals):
        return ["", label, "", "", "", "", "", _params(totals.params), human(totals.macs), "", ""]

    if (columns.tf.params, columns.tf.macs) == (columns.mx.params, columns.mx.macs):
        return [row("total", columns.tf)]
    return [row("total TF", columns.tf), row("total MX", columns.mx)]


#: In a collapsed table, runs of at least this many rows that match (or that inherit from one root) are one line.
COLLAPSE_RUN = 4


def _run_key(row: LayerDiff):
    """Rows with the same key in a run collapse together: matching rows, or rows inheriting from one root."""
    if row.status == Status.MATCH:
        return "match"
    return ("cause", row.cause) if row.cause is not None else None


def _collapsed_line(run: list[LayerDiff]) -> list:
    first, last = run[0], run[-1]
    if _run_key(first) == "match":
        text = f"rows {first.index}-{last.index}: {len(run)} layers match"
    else:
        text = f"rows {first.index}-{last.index}: {len(run)} rows only inherit the difference of #{first.cause}"
    return ["…", text, "", "", "", "", "", "", "", "", "(--format markdown or json lists every row)"]


def layer_table(result, columns: CostColumns, only_problems: bool, width: int | None,
                collapse: bool = False) -> list[list]:
    """The per-layer rows (all, or only the problems) with their cost cells, then the totals.

    ``width`` cuts long layer names from the left (``None``: never). ``collapse``: runs of
    ``COLLAPSE_RUN`` or more matching rows, or of rows that only inherit one root's difference,
    are one line each (what the text report of a failed comparison shows).
    """
    shown = [(position, row) for position, row in enumerate(result.rows)
             if not only_problems or row.status != Status.MATCH]
    table = []
    start = 0
    while start < len(shown):
        end = start
        key = _run_key(shown[start][1])
        while collapse and key is not None and end + 1 < len(shown) and _run_key(shown[end + 1][1]) == key:
            end += 1
        if end - start + 1 >= COLLAPSE_RUN:
            table.append(_collapsed_line([row for _, row in shown[start:end + 1]]))
        else:
            table.extend(_cells(row, width, _cost_cells(columns, position)) for position, row in shown[start:end + 1])
        start = end + 1
    return table + _total_rows(columns)


def end_point_table(result) -> list[list]:
    """One row per end point: its name, both shapes, its status."""
    return [[e["name"], format_shape(e["tf"]), format_shape(e["mx"]), e["status"]] for e in result.end_points]


END_POINT_HEADERS = ["end point", "TF (NCHW)", "MXNet", "status"]


def cost_line(result, columns: CostColumns) -> str:
    """One line: both sides' totals and whether they equal the frameworks' own parameter counts."""
    tf, mx = columns.tf, columns.mx
    if (tf.params, tf.macs, tf.moving) == (mx.params, mx.macs, mx.moving):
        line = (f"cost: {tf.params:,} trainable parameters, {tf.moving:,} moving statistics, "
                f"{human(tf.macs)} multiply-adds per image (forward)")
    else:
        line = (f"cost differs: TF {tf.params:,} parameters / {human(tf.macs)} MACs, "
                f"MX {mx.params:,} parameters / {human(mx.macs)} MACs ({gap_rows_text(result, columns)})")
    checks = []
    for side, label, counted in (("tf", "TF trainable variables", tf.params),
                                 ("mx", "MXNet learnable arguments", mx.params)):
        reported = result.framework_params.get(side)
        if reported is not None:
            checks.append(f"{label} {reported:,}" + ("" if reported == counted else
                                                        f" != {counted:,} counted from the layers"))
    return line + ("; " + ", ".join(checks) if checks else "")


def gap_rows(result, columns: CostColumns) -> list[int]:
    """The positions of the rows that make up a cost gap: rows whose sides cost differently, and rows on
    one side only that have parameters or multiply-adds (a missing head, an extra bias...)."""
    found = []
    for position, row in enumerate(result.rows):
        one_sided = (row.tf is None) != (row.mx is None)
        params, macs = columns.rows[position]
        if position in columns.disagree or (one_sided and (params or macs)):
            found.append(position)
    return found


def gap_rows_text(result, columns: CostColumns) -> str:
    """'rows 3, 7' or, for many, '19 rows, #12..#30', then the layers on one side only among them (a missing
    head: 'only in TF: AuxLogits/Conv2d_1b_1x1, …'); 'rows none' if no row accounts for the gap."""
    from porting.verifier.render.grouping import compact_layers

    positions = gap_rows(result, columns)
    if not positions:
        return "rows none"
    indexes = [result.rows[p].index for p in positions]
    text = f"rows {', '.join(map(str, indexes))}" if len(indexes) <= 8 else \
        f"{len(indexes)} rows, #{indexes[0]}..#{indexes[-1]}"
    for label, missing in (("only in TF", "mx"), ("only in MXNet", "tf")):
        names = [result.rows[p].layer for p in positions if getattr(result.rows[p], missing) is None]
        if names:
            text += f"; {label}: {compact_layers(names, limit=3)}"
    return text


def pass_sections(result, fmt: str) -> list[str]:
    """The sections of the passes that ran ('text' or 'markdown'): lint findings, then numeric parity."""
    from porting.verifier import lint, parity

    sections = []
    if result.lint is not None:
        sections.append(lint.render_section(result.lint.findings, fmt))
    if result.numeric_report is not None:
        sections.append(parity.render_section(result, fmt))
    return [section for section in sections if section]


def numeric_by_row(result) -> dict[int, dict]:
    """Row position -> that layer's numeric evidence, for the rows numeric parity compared."""
    report = result.numeric_report
    if report is None:
        return {}
    annotations = report.row_annotations()
    found = {}
    for position, row in enumerate(result.rows):
        if row.tf is not None and row.mx is not None and (row.tf.name, row.mx.name) in annotations:
            found[position] = annotations[(row.tf.name, row.mx.name)]
    return found
