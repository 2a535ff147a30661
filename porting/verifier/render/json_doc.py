"""The JSON report: one document with the verdict, the rows, the end points, the cost and the passes' results."""
from __future__ import annotations

import json

from porting.core.cost import cost_columns
from porting.core.diff import LayerDiff, Status
from porting.verifier.render.grouping import cause_groups
from porting.verifier.render.table import cost_line, numeric_by_row


def row_json(row: LayerDiff, numeric: dict | None = None) -> dict:
    """One row as JSON; ``numeric``: its numeric-parity evidence, when the pass compared it."""
    data = {"index": row.index, "status": row.status.value,
            "tf": row.tf.as_dict() if row.tf else None, "mx": row.mx.as_dict() if row.mx else None,
            "note": row.note, "matched_by": row.matched_by,
            "defects": [defect.__dict__ for defect in row.defects]}
    if row.cause is not None:  # only on attributed rows: the reports of a port that matches are unchanged
        data["cause"] = row.cause
    if row.explains:
        data["explains"] = list(row.explains)
    if numeric:
        data["numeric"] = numeric
    return data


def render_json(result, only_problems: bool = False, end_points: bool = False) -> str:
    """``{"title", "verdict", "summary", "verdict_line", "rows", "end_points", "cost"}``, then
    ``"findings"`` when the lint ran and ``"numeric"`` when numeric parity ran.
    When some findings are identical (``lint.group_findings``), ``"finding_groups"`` follows
    ``"findings"`` (which keeps every finding): each group once, with its ``count`` and ``layers``.

    ``end_points``: the coarse view, as in the text and Markdown reports: the end points
    instead of the per-layer rows and their cost (no ``"rows"``, no ``"cost"``).
    """
    if end_points:
        document = {"title": result.title, "verdict": result.summary()["verdict"], "summary": result.summary(),
                    "verdict_line": result.verdict_line(), "end_points": result.end_points}
        return _finish(document, result)
    columns = cost_columns(result)
    numeric = numeric_by_row(result)
    rows = []
    for position, row in enumerate(result.rows):
        if only_problems and row.status == Status.MATCH:
            continue
        data = row_json(row, numeric.get(position))
        data["params"], data["macs"] = columns.rows[position]
        if position in columns.disagree:
            data["mx_params"], data["mx_macs"] = columns.mx_rows[position]
        rows.append(data)
    document = {"title": result.title, "verdict": result.summary()["verdict"], "summary": result.summary(),
                "verdict_line": result.verdict_line(), "rows": rows, "end_points": result.end_points,
                "cost": {"tf": columns.tf.as_dict(), "mx": columns.mx.as_dict(), "agree": columns.agree,
                         "disagree_rows": [result.rows[i].index for i in columns.disagree],
                         "framework_params": dict(result.framework_params),
                         "line": cost_line(result, columns)}}
    causes = root_causes_json(result.rows)
    if causes:
        document["root_causes"] = causes
    return _finish(document, result)


def root_causes_json(rows) -> list[dict]:
    """Each root cause once: its root rows, the rows it explains, its defects; empty when no row only
    inherits a difference (then every problem row is its own root cause)."""
    from porting.core.causes import moved_strides

    if not any(row.cause is not None for row in rows):
        return []
    moves = moved_strides(rows)
    causes = []
    for group in cause_groups(rows):
        roots = [row for row in group if row.cause is None]
        entry = {"roots": [row.index for row in roots], "layers": [row.layer for row in group],
                 "explains": [row.index for row in group if row.cause is not None],
                 "defects": [defect.__dict__ for defect in roots[0].defects]}  # the first root's, all of them
        early = {row.index for row in roots}
        moved = [move.describe() for move in moves if move.early in early]
        if moved:
            entry["moved_strides"] = moved
        causes.append(entry)
    return causes


def _finish(document: dict, result) -> str:
    """The passes' results after the rows, then the JSON text."""
    if result.lint is not None:
        from porting.verifier import lint

        findings = result.lint.findings
        document["findings"] = [finding.as_dict() for finding in findings]
        if lint.grouped(findings):
            document["finding_groups"] = [group.as_dict() for group in lint.group_findings(findings)]
    if result.numeric_report is not None:
        document["numeric"] = result.numeric
    return json.dumps(document, indent=1, sort_keys=False, default=_json_default) + "\n"


def _json_default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)
