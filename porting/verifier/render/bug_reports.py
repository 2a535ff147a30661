"""Bug reports: one Markdown file per root cause, for the issue tracker.

A file per root cause (``grouping.cause_groups``: the root rows with identical defects and
the rows downstream that only inherit their difference; the evidence, the fix, a script that
rebuilds the layer alone on both sides, and, for a group of several rows, every layer it
touches), then one per group of identical error or warning
findings of the lint pass and one for the first layer numeric parity found divergent. A
group of one is written exactly as a single defect always was.
"""
from __future__ import annotations

import json
from pathlib import Path

from porting import util
from porting.core.diff import LayerDiff
from porting.core.records import format_shape
from porting.verifier.render.grouping import cause_groups, compact_layers


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
                   f"{mx_pad[0]}, {mx_pad[1]}, {mx_pad[2]}, {mx_pad[3]})), "
                   f"weight=mx.nd.array(w.transpose(3, 2, 0, 1)), "
                   f"kernel=({kh}, {kw}), stride=({sh}, {sw}), dilate=({dh}, {dw}), num_filter={filters}, "
                   "no_bias=True)")
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


def _numeric_evidence(row: LayerDiff, result) -> dict | None:
    report = result.numeric_report
    if report is None or row.tf is None or row.mx is None:
        return None
    return report.row_annotations().get((row.tf.name, row.mx.name))


def bug_report(row: LayerDiff, result) -> str:
    """One Markdown bug report for one defective row (with its numeric evidence when numeric parity ran)."""
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
    numeric = _numeric_evidence(row, result)
    if numeric:
        lines += ["## numeric parity", "", "```", json.dumps(numeric, indent=1), "```", ""]
    snippet = _snippet(row, result)
    if snippet:
        lines += ["## Reproduce this layer alone", "", snippet, ""]
    return "\n".join(lines)


def group_bug_report(rows: list[LayerDiff], result) -> str:
    """One Markdown bug report for one root cause: the root rows (identical defects) and the rows that only
    inherit their difference, every layer it touches, then the first row's evidence (a group of one is
    ``bug_report`` of its row)."""
    first = rows[0]
    if len(rows) == 1:
        return bug_report(first, result)
    from porting.core.causes import moved_strides

    body = bug_report(first, result).splitlines()
    roots = [row for row in rows if row.cause is None]
    inherited = len(rows) - len(roots)
    if inherited:
        intro = (f"One root cause touching {len(rows)} layers: {compact_layers([row.layer for row in roots])} "
                 f"({'the defect' if len(roots) == 1 else f'the same defect on {len(roots)} layers'}), and "
                 f"{inherited} layer{'s' if inherited != 1 else ''} downstream that only inherit its difference "
                 f"(fixing the root fixes them).")
        moves = [move.describe() for move in moved_strides(result.rows) if move.early in {r.index for r in roots}]
        intro += "".join(f" {move[0].upper()}{move[1:]}." for move in moves)
    else:
        intro = (f"One defect repeated on {len(rows)} layers: {compact_layers([row.layer for row in rows])}. "
                 f"The evidence below is the first one's ({first.layer}); the fix applies to each.")
    head = [f"# Port defect: {first.status.value} at {len(rows)} layers", "", intro, "",
            "## Layers", "", "| row | TF layer | MXNet layer | role |", "|---|---|---|---|"]
    head += [f"| {row.index} | {row.tf.name if row.tf else '--'} | {row.mx.name if row.mx else '--'} | "
             f"{'root' if row.cause is None else f'inherits from #{row.cause}'} |" for row in rows]
    return "\n".join(head + [""] + body[2:])


def pass_bug_reports(result):
    """``(name, Markdown)`` of the passes' defects: lint errors and warnings, then the numeric root cause."""
    from porting.verifier import lint, parity

    if result.lint is not None:
        yield from lint.bug_reports(result)
    text = parity.bug_report(result)
    if text:
        first = result.numeric_report.first_divergence
        yield (f"numeric_{first.tf}" if first else "numeric_parity"), text


def write_bug_reports(result, directory: Path | str) -> list[Path]:
    """One file per root cause (root rows with identical defects and the rows they explain, group of
    identical lint findings, numeric root cause); returns the paths written."""
    directory = Path(directory)
    written = []
    for rows in cause_groups(result.rows):
        first = rows[0]
        more = f"_and_{len(rows) - 1}_more" if len(rows) > 1 else ""
        path = directory / f"{first.index:04d}_{first.status.value}_{util.slug(first.layer)}{more}.md"
        util.atomic_write_text(path, group_bug_report(rows, result), durable=False, parents=True)
        written.append(path)
    for number, (name, text) in enumerate(pass_bug_reports(result)):
        path = directory / f"finding_{number:03d}_{util.slug(name)}.md"
        util.atomic_write_text(path, text, durable=False, parents=True)
        written.append(path)
    return written
