"""porting.verifier.render.markdown on a hand-made comparison (no framework graph is built)."""
from __future__ import annotations

from porting.verifier.render import HEADERS, render_markdown

from tests.verifier import handmade


def _rows(text: str) -> list[list[str]]:
    table = text.split("\n## ", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def test_title_verdict_and_table_header():
    result = handmade.result()
    text = render_markdown(result)
    lines = text.splitlines()
    assert lines[0] == f"# porting compare: {handmade.TITLE}"
    assert lines[2] == f"**{result.verdict_line()}**"
    header = next(line for line in lines if line.startswith("| #"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == HEADERS
    assert lines[lines.index(header) + 1].startswith("|-----|")


def test_rows_match_the_result_with_dashes_and_escaped_pipes():
    result = handmade.result()
    *rows, total_tf, total_mx = _rows(render_markdown(result))
    assert [int(cells[0]) for cells in rows] == [row.index for row in result.rows]
    assert rows[2][1] == handmade.LONG  # Markdown never cuts names
    assert rows[2][-1] == "pads (1\\|1) differ"
    assert rows[3][4:9] == ["--"] * 5 and rows[4][1:4] == ["--"] * 3
    assert (total_tf[1], total_mx[1]) == ("total TF", "total MX")


def test_only_problems_and_end_points():
    rows = _rows(render_markdown(handmade.result(), only_problems=True))
    assert [cells[0] for cells in rows if cells[0]] == ["1", "2", "3", "4"]
    text = render_markdown(handmade.result(), end_points=True)
    assert "| end point" in text and "TF layer" not in text


def test_sections_of_the_passes():
    plain = render_markdown(handmade.result())
    assert "## Lint findings" not in plain and "## Numeric parity" not in plain
    text = render_markdown(handmade.result(lint_pass=True, numeric=True))
    assert text.index("## Lint findings") < text.index("## Numeric parity")
    assert "**lint FAILED | 1 error, 1 warning, 1 info**" in text
    assert "| error      | bn_eps" in text and "FIRST DIVERGENCE" in text
