"""Render a comparison: text (tabulate), Markdown and JSON of the same rows, and bug reports.

Rows are data (``diff.LayerDiff``); this module only renders them. Empty cells show ``--``.
Every per-layer table carries each layer's trainable parameters and forward multiply-adds
per image (``porting.core.cost``), with the totals of both sides and the parameter counts the
frameworks themselves report (TF trainable variables, MXNet learnable arguments).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from tabulate import tabulate

from porting.core.cost import CostColumns, cost_columns, human
from porting.core.diff import LayerDiff, Status, verdict_line
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
            *cost, row.status.value, row.note or "--"]


def _total_rows(columns: CostColumns) -> list[list]:
    """The totals under the table: one row, or one per side when they differ."""
    def row(label, totals):
        return ["", label, "", "", "", "", "", _params(totals.params), human(totals.macs), "", ""]

    if (columns.tf.params, columns.tf.macs) == (columns.mx.params, columns.mx.macs):
        return [row("total", columns.tf)]
    return [row("total TF", columns.tf), row("total MX", columns.mx)]


def _table(result, columns: CostColumns, only_problems: bool, width: int | None) -> list[list]:
    """The per-layer rows (all, or only the problems) with their cost cells, then the totals."""
    table = [_cells(row, width, _cost_cells(columns, position))
             for position, row in enumerate(result.rows) if not only_problems or row.status != Status.MATCH]
    return table + _total_rows(columns)


def cost_line(result, columns: CostColumns) -> str:
    """One line: both sides' totals and whether they equal the frameworks' own parameter counts."""
    tf, mx = columns.tf, columns.mx
    if (tf.params, tf.macs, tf.moving) == (mx.params, mx.macs, mx.moving):
        line = (f"cost: {tf.params:,} trainable parameters, {tf.moving:,} moving statistics, "
                f"{human(tf.macs)} multiply-adds per image (forward)")
    else:
        rows = ", ".join(str(result.rows[i].index) for i in columns.disagree) or "none"
        line = (f"cost differs: TF {tf.params:,} parameters / {human(tf.macs)} MACs, "
                f"MX {mx.params:,} parameters / {human(mx.macs)} MACs (rows {rows})")
    checks = []
    for side, label, counted in (("tf", "TF trainable variables", tf.params),
                                 ("mx", "MXNet learnable arguments", mx.params)):
        reported = result.framework_params.get(side)
        if reported is not None:
            checks.append(f"{label} {reported:,}" + ("" if reported == counted else
                                                        f" != {counted:,} counted from the layers"))
    return line + ("; " + ", ".join(checks) if checks else "")


def render_text(result, only_problems: bool = False, end_points: bool = False) -> str:
    """The per-layer table (or the end-point table) and the verdict line."""
    lines = [f"porting compare: {result.title}"]
    if end_points:
        table = [[e["name"], format_shape(e["tf"]), format_shape(e["mx"]), e["status"]] for e in result.end_points]
        lines.append(tabulate(table, headers=["end point", "TF (NCHW)", "MXNet", "status"], tablefmt="simple"))
    else:
        columns = cost_columns(result)
        lines.append(tabulate(_table(result, columns, only_problems, 60), headers=HEADERS, tablefmt="simple",
                              disable_numparse=True))
        lines.append(cost_line(result, columns))
    lines.extend(result.extra_text_sections())
    lines.append(result.verdict_line())
    return "\n".join(lines) + "\n"


def render_markdown(result, only_problems: bool = False, end_points: bool = False) -> str:
    """The same rows as a GitHub Markdown table."""
    lines = [f"# porting compare: {result.title}", "", f"**{result.verdict_line()}**", ""]
    if end_points:
        table = [[e["name"], format_shape(e["tf"]), format_shape(e["mx"]), e["status"]] for e in result.end_points]
        lines.append(tabulate(table, headers=["end point", "TF (NCHW)", "MXNet", "status"], tablefmt="github"))
    else:
        columns = cost_columns(result)
        table = [[str(c).replace("|", "\\|") for c in cells] for cells in _table(result, columns, only_problems, None)]
        lines.append(tabulate(table, headers=HEADERS, tablefmt="github", disable_numparse=True))
        lines.extend(["", cost_line(result, columns)])
    lines.extend(result.extra_markdown_sections())
    return "\n".join(lines) + "\n"


def row_json(row: LayerDiff) -> dict:
    data = {"index": row.index, "status": row.status.value,
            "tf": row.tf.as_dict() if row.tf else None, "mx": row.mx.as_dict() if row.mx else None,
            "note": row.note, "matched_by": row.matched_by,
            "defects": [defect.__dict__ for defect in row.defects]}
    data.update(row.extra)
    return data


def render_json(result, only_problems: bool = False) -> str:
    """``{"verdict", "summary", "rows": [...], "end_points", "findings", ...}``."""
    columns = cost_columns(result)
    rows = []
    for position, row in enumerate(result.rows):
        if only_problems and row.status == Status.MATCH:
            continue
        data = row_json(row)
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
    document.update(result.extra_json())
    return json.dumps(document, indent=1, sort_keys=False, default=_json_default) + "\n"


def _json_default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def atomic_write(path: Path | str, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)  # mkstemp makes it 0600; a report is meant to be read
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:120] or "layer"


def _snippet(row: LayerDiff, result) -> str:
    """A minimal script that rebuilds the single layer on both sides and prints their outputs."""
    tf_record = result.tf_record(row.tf.name) if row.tf else None
    mx_record = result.mx_record(row.mx.name) if row.mx else None
    if tf_record is None or mx_record is None or tf_record.kernel is None or tf_record.in_shape is None:
        return ""
    n, c, h, w = tf_record.in_shape
    padding = tf_record.attrs.get("padding", "VALID")
    kh, kw = tf_record.kernel
    sh, sw = tf_record.stride
    dh, dw = tf_record.dilation or (1, 1)
    mx_pad = mx_record.pads or (0, 0, 0, 0)
    if tf_record.kind == "conv":
        filters = tf_record.shape[1]
        tf_line = (f"y_tf = tf.nn.conv2d(x.transpose(0, 2, 3, 1), w, strides=[1, {sh}, {sw}, 1], "
                   f"padding={padding!r}, dilations=[1, {dh}, {dw}, 1])")
        mx_line = (f"y_mx = mx.nd.Convolution(mx.nd.pad(mx.nd.array(x), mode='constant', pad_width=(0, 0, 0, 0, "
                   f"{mx_pad[0]}, {mx_pad[1]}, {mx_pad[2]}, {mx_pad[3]})), weight=mx.nd.array(w.transpose(3, 2, 0, 1)), "
                   f"kernel=({kh}, {kw}), stride=({sh}, {sw}), dilate=({dh}, {dw}), num_filter={filters}, no_bias=True)")
        setup = f"w = rng.randn({kh}, {kw}, {c}, {filters}).astype('float32')"
    elif tf_record.kind in ("pool_max", "pool_avg"):
        pool = "max" if tf_record.kind == "pool_max" else "avg"
        setup = "w = None"
        tf_line = (f"y_tf = tf.nn.{pool}_pool2d(x.transpose(0, 2, 3, 1), ksize=[{kh}, {kw}], strides=[{sh}, {sw}], "
                   f"padding={padding!r})")
        convention = mx_record.attrs.get("pooling_convention", "valid")
        mx_line = (f"y_mx = mx.nd.Pooling(mx.nd.array(x), kernel=({kh}, {kw}), stride=({sh}, {sw}), "
                   f"pad=({mx_pad[0]}, {mx_pad[2]}), pool_type={pool!r}, pooling_convention={convention!r}"
                   + (f", count_include_pad={mx_record.attrs.get('count_include_pad')}" if pool == "avg" else "")
                   + ")")
    else:
        return ""
    return "\n".join([
        "```python",
        "import numpy as np",
        "from porting import compat",
        "tf = compat.import_tf(); mx = compat.import_mx()",
        "rng = np.random.RandomState(0)",
        f"x = rng.randn({n}, {c}, {h}, {w}).astype('float32')  # NCHW input of {row.tf.name}",
        setup,
        tf_line + ".numpy().transpose(0, 3, 1, 2)",
        "# MXNet: the layer as the port has it (pads, convention)",
        mx_line + ".asnumpy()",
        "print('TF', y_tf.shape, 'MXNet', y_mx.shape)",
        "if y_tf.shape == y_mx.shape: print('max abs diff', np.abs(y_tf - y_mx).max())",
        "```",
    ])


def bug_report(row: LayerDiff, result) -> str:
    """One Markdown bug report for one defective row."""
    layer = row.layer
    kinds = ", ".join(sorted({defect.field for defect in row.defects})) or row.status.value
    lines = [f"# Port defect: {row.status.value} at {layer}", "",
             f"Found by `porting compare` ({result.title}). Kind of defect: **{kinds}**.", "",
             "| | TF | MXNet |", "|---|---|---|",
             f"| layer | {row.tf.name if row.tf else '--'} | {row.mx.name if row.mx else '--'} |",
             f"| op | {row.tf.op if row.tf else '--'} | {row.mx.op if row.mx else '--'} |",
             f"| output (NCHW) | {format_shape(row.tf.shape) if row.tf else '--'} | "
             f"{format_shape(row.mx.shape) if row.mx else '--'} |",
             f"| kernel / stride / pads | {row.tf.geometry or '--' if row.tf else '--'} | "
             f"{row.mx.geometry or '--' if row.mx else '--'} |", ""]
    for defect in row.defects:
        lines += [f"## {defect.field}", "", f"- expected (TF): `{defect.tf}`", f"- actual (MXNet): `{defect.mx}`",
                  f"- why: {defect.explanation}"]
        if defect.fix:
            lines.append(f"- suggested fix: `{defect.fix}`")
        lines.append("")
    for key in ("numeric",):
        if key in row.extra and row.extra[key]:
            lines += ["## numeric parity", "", "```", json.dumps(row.extra[key], indent=1), "```", ""]
    snippet = _snippet(row, result)
    if snippet:
        lines += ["## Reproduce this layer alone", "", snippet, ""]
    return "\n".join(lines)


def write_bug_reports(result, directory: Path | str) -> list[Path]:
    """One file per defect (row or lint finding); returns the paths written."""
    directory = Path(directory)
    written = []
    for row in result.rows:
        if row.status == Status.MATCH:
            continue
        path = directory / f"{row.index:04d}_{row.status.value}_{_slug(row.layer)}.md"
        atomic_write(path, bug_report(row, result))
        written.append(path)
    for number, (name, text) in enumerate(result.extra_bug_reports()):
        path = directory / f"finding_{number:03d}_{_slug(name)}.md"
        atomic_write(path, text)
        written.append(path)
    return written


__all__ = ["render_text", "render_markdown", "render_json", "write_bug_reports", "bug_report",
           "atomic_write", "verdict_line"]
