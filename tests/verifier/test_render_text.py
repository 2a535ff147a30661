"""porting.verifier.render.text on a hand-made comparison (no framework graph is built)."""
from __future__ import annotations

from porting.verifier.render import HEADERS, render_text

from tests.verifier import handmade


def _table(text: str) -> tuple[list[str], list[str]]:
    """The header line and the body lines of the per-layer table (up to the cost line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#  "))
    end = next(i for i, line in enumerate(lines) if line.startswith("cost"))
    return lines[start].split(), lines[start + 2:end]


def test_header_rows_totals_and_verdict():
    result = handmade.result()
    text = render_text(result)
    lines = text.splitlines()
    assert lines[0] == f"porting compare: {handmade.TITLE}"
    header, body = _table(text)
    assert " ".join(header) == " ".join(HEADERS)
    rows = [line for line in body if line[:1].isdigit()]
    assert [int(line.split()[0]) for line in rows] == [row.index for row in result.rows]
    totals = [line.split()[:2] for line in body if not line[:1].isdigit()]
    assert totals == [["total", "TF"], ["total", "MX"]]  # the sides' costs differ: one total each
    assert lines[-1] == result.verdict_line() and text.endswith("\n")


def test_empty_cells_show_dashes():
    _, body = _table(render_text(handmade.result()))
    only_tf = next(line for line in body if line.startswith("3 "))
    only_mx = next(line for line in body if line.startswith("4 "))
    assert only_tf.split()[4:9] == ["--"] * 5  # MX layer, op, output, params, MACs
    assert only_mx.split()[1:4] == ["--"] * 3 and only_mx.split()[-1] == "--"  # no TF side, no note


def test_summary_counts_add_up():
    result = handmade.result()
    summary = result.summary()
    assert sum(summary[key] for key in ("match", "shape_mismatch", "attr_mismatch", "only_tf", "only_mx")) == \
        summary["rows"] == len(result.rows)
    assert render_text(result).splitlines()[-1].startswith("FAILED | ") and f"(1/{len(result.rows)} rows match)" in \
        result.verdict_line()


def test_long_names_are_cut_from_the_left_and_problems_filter():
    result = handmade.result()
    text = render_text(result)
    assert handmade.LONG not in text and "…" + handmade.LONG[-59:] in text
    _, body = _table(render_text(result, only_problems=True))
    assert [line.split()[0] for line in body if line[:1].isdigit()] == ["1", "2", "3", "4"]


def test_end_point_view():
    text = render_text(handmade.result(), end_points=True)
    assert "end point" in text and "Conv_a" in text and "only_tf" in text and "TF layer" not in text


def test_sections_follow_the_passes_that_ran():
    plain = render_text(handmade.result(problems=False))
    assert "Lint findings" not in plain and "Numeric parity" not in plain
    assert plain.splitlines()[-1] == "PASSED | 1/1 layers match"
    full = render_text(handmade.result(lint_pass=True, numeric=True))
    lint_at, numeric_at = full.index("\nLint findings: lint FAILED | 1 error, 1 warning, 1 info"), \
        full.index("\nNumeric parity\n")
    assert lint_at < numeric_at
    assert "FIRST DIVERGENCE" in full and "hint: a hint" in full
    assert full.splitlines()[-1].endswith("; 1 lint error; numeric parity failed")
