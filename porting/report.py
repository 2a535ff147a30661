"""Render a comparison: text (tabulate), Markdown and JSON of the same rows, and bug reports.

Rows are data (``diff.LayerDiff``); this module only renders them. Empty cells show ``--``.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from tabulate import tabulate

from porting.diff import LayerDiff, Status, verdict_line
from porting.records import format_shape

HEADERS = ["#", "TF layer", "TF op", "TF output (NCHW)", "MX layer", "MX op", "MX output", "status", "note"]


def _cells(row: LayerDiff, width: int | None) -> list:
    def cut(text: str) -> str:
        if width is None or len(text) <= width:
            return text
        return "…" + text[-(width - 1):]

    return [row.index,
            cut(row.tf.name) if row.tf else "--", row.tf.op if row.tf else "--",
            format_shape(row.tf.shape) if row.tf else "--",
            cut(row.mx.name) if row.mx else "--", row.mx.op if row.mx else "--",
            format_shape(row.mx.shape) if row.mx else "--",
            row.status.value, row.note or "--"]


def select(rows: list[LayerDiff], only_problems: bool) -> list[LayerDiff]:
    return [row for row in rows if row.status != Status.MATCH] if only_problems else rows


def render_text(result, only_problems: bool = False, end_points: bool = False) -> str:
    """The per-layer table (or the end-point table) and the verdict line."""
    lines = [f"porting compare: {result.title}"]
    if end_points:
        table = [[e["name"], format_shape(e["tf"]), format_shape(e["mx"]), e["status"]] for e in result.end_points]
        lines.append(tabulate(table, headers=["end point", "TF (NCHW)", "MXNet", "status"], tablefmt="simple"))
    else:
        rows = select(result.rows, only_problems)
        lines.append(tabulate([_cells(row, 60) for row in rows], headers=HEADERS, tablefmt="simple",
                              disable_numparse=True))
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
        rows = select(result.rows, only_problems)
        table = [[str(c).replace("|", "\\|") for c in _cells(row, None)] for row in rows]
        lines.append(tabulate(table, headers=HEADERS, tablefmt="github", disable_numparse=True))
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
    document = {"title": result.title, "verdict": result.summary()["verdict"], "summary": result.summary(),
                "verdict_line": result.verdict_line(),
                "rows": [row_json(row) for row in select(result.rows, only_problems)],
                "end_points": result.end_points}
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
