"""The numeric-parity section of the text and Markdown reports, and its bug report."""
from __future__ import annotations

from tabulate import tabulate

from porting.core.tolerances import format_error


def render_section(result, fmt: str) -> str:
    """The numeric-parity section of a text or Markdown report ('' when the pass did not run)."""
    report = result.numeric_report
    if report is None:
        return ""
    summary = report.summary()
    lines = ["", "Numeric parity"] if fmt == "text" else ["", "## Numeric parity", ""]
    lines.append(f"weights: {report.weights}; input {report.input_text}; tolerance {report.tolerance_text()}")
    if report.error:
        lines.append(f"NOT RUN: {report.error}")
        return "\n".join(lines)
    if report.transfer is not None:
        lines.append(report.transfer.summary_line())
    lines.append(f"{len(report.layers) - summary['failed']}/{len(report.layers)} layers within tolerance; "
                 f"smallest tolerance that passes every layer: rtol = atol = {format_error(summary['min_tol'])}, "
                 f"or atol {format_error(summary['min_atol_range'])} x range at rtol {report.rtol:g}")
    worst = report.worst
    if worst is not None:
        lines.append(f"worst layer: {worst.result.line()}")
    first = report.first_divergence
    lines.append(f"first divergence: {first.result.line() if first else 'none'}")
    if first is not None and report.hint:
        lines.append(f"hint: {report.hint}")
    index = {(row.tf.name, row.mx.name): row.index for row in result.rows if row.tf and row.mx}
    table = []
    for layer in report.layers:
        r = layer.result
        status = "pass" if r else ("FIRST DIVERGENCE" if layer is first else "fail")
        table.append([index.get((layer.tf, layer.mx), "--"), layer.tf, format_error(r.max_abs),
                      format_error(r.max_rel), format_error(r.mean_abs), format_error(r.min_tol),
                      format_error(r.atol), status])
    headers = ["#", "layer", "max abs", "max rel", "mean abs", "min tol", "atol used", "numeric"]
    if fmt == "text":
        lines.append(tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True))
    else:
        lines.append("")
        lines.append(tabulate([[str(c).replace("|", "\\|") for c in row] for row in table], headers=headers,
                              tablefmt="github", disable_numparse=True))
    return "\n".join(lines)


def bug_report(result) -> str:
    """A Markdown bug report for the first divergent layer (the root cause), or ''."""
    report = result.numeric_report
    if report is None or report.passed:
        return ""
    lines = [f"# Numeric parity failure: {result.title}", ""]
    if report.error:
        lines += ["Numeric parity could not run.", "", "```", report.error, "```", ""]
        return "\n".join(lines)
    first = report.first_divergence
    r = first.result
    tf_record = result.tf_record(first.tf)
    mx_record = result.mx_record(first.mx)
    lines += [f"The first layer whose output differs is **{first.tf}** ({first.kind}); every layer before it "
              "agrees, so the defect is in this layer (later layers inherit its error).", "",
              "| | TF | MXNet |", "|---|---|---|",
              f"| layer | {first.tf} | {first.mx} |",
              f"| op | {tf_record.op if tf_record else '--'} | {mx_record.op if mx_record else '--'} |",
              f"| geometry | {tf_record.geometry() if tf_record else '--'} | "
              f"{mx_record.geometry() if mx_record else '--'} |",
              f"| value at worst element {list(r.worst)} (NCHW) | {r.worst_tf:.6g} | {r.worst_mx:.6g} |", "",
              f"- max abs error {format_error(r.max_abs)}, max rel error {format_error(r.max_rel)}, "
              f"mean abs error {format_error(r.mean_abs)}",
              f"- {r.failed} of {r.size} elements over tolerance (rtol {r.rtol:g}, atol {r.atol:.3g}); "
              f"smallest passing tolerance {format_error(r.min_tol)}",
              f"- weights: {report.weights}; input {report.input_text}"]
    if r.border_only:
        lines.append("- every failing element lies on the border of the feature map")
    if report.hint:
        lines.append(f"- likely cause: {report.hint}")
    lines += ["", "Reproduce: `python -m porting.compare --numeric --seed "
              f"{report.seed} --rtol {report.rtol:g}"
              + (f" --atol {report.atol:g}" if report.atol is not None else "") + "` on the same pair.", ""]
    return "\n".join(lines)
