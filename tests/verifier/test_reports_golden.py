"""Golden reports of our own pair: reports/inception_resnet_v2.{md,json}.

The committed files are what ``python -m porting.compare inception_resnet_v2
--format markdown|json --out reports/inception_resnet_v2.<ext>`` writes; this
test renders the session's ``irv2_result`` (the same comparison) and compares
it byte for byte.

To regenerate after an intended change to the network, the verifier or the
renderers, run::

    PORTING_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/verifier/test_reports_golden.py

which rewrites both files (atomically) before comparing; review the diff and
commit it. The reports hold no timings and no absolute paths, so they only
change when the comparison does.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from porting.core.diff import Status
from porting.util import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = {"markdown": ROOT / "reports" / "inception_resnet_v2.md",
          "json": ROOT / "reports" / "inception_resnet_v2.json"}
UPDATE = os.environ.get("PORTING_UPDATE_GOLDEN") == "1"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(GOLDEN))
def test_golden_report_is_current(fmt, irv2_result):
    text = irv2_result.report(fmt)
    path = GOLDEN[fmt]
    if UPDATE:
        atomic_write_text(path, text, parents=True)
    assert path.is_file(), f"{path} is missing: run with PORTING_UPDATE_GOLDEN=1 to create it"
    golden = path.read_text()
    if text != golden:
        diff = "".join(list(difflib.unified_diff(golden.splitlines(True), text.splitlines(True),
                                                 str(path), "regenerated"))[:80])
        pytest.fail(f"{path.name} is out of date (PORTING_UPDATE_GOLDEN=1 regenerates it):\n{diff}")


def _markdown_rows(text: str) -> list[list[str]]:
    table = text.split("\n## ", 1)[0]  # later sections (lint findings) have their own tables
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_golden_reports_agree_and_add_up():
    """Invariants of the committed files: counts add up, both formats hold the same rows."""
    document = json.loads(GOLDEN["json"].read_text())
    markdown = GOLDEN["markdown"].read_text()
    summary = document["summary"]
    assert document["verdict"] == "match"
    assert sum(summary[status.value] for status in Status) == summary["rows"] == len(document["rows"])
    assert all(row["status"] == "match" for row in document["rows"])
    assert document["verdict_line"] == f"PASSED | {summary['rows']}/{summary['rows']} layers match"
    assert f"**{document['verdict_line']}**" in markdown
    *rows, total = _markdown_rows(markdown)
    assert len(rows) == summary["rows"]
    for cells, row in zip(rows, document["rows"]):
        assert cells[0] == str(row["index"])
        assert cells[1] == row["tf"]["name"] and cells[4] == row["mx"]["name"]
        assert cells[7] == f"{row['params']:,}" and cells[9] == row["status"]
    # The totals row and the cost block add up the per-layer columns; the frameworks agree.
    cost = document["cost"]
    assert total[1] == "total" and total[7] == f"{cost['tf']['params']:,}"
    assert cost["tf"] == cost["mx"] and cost["agree"] and cost["disagree_rows"] == []
    assert sum(row["params"] for row in document["rows"]) == cost["tf"]["params"]
    assert sum(row["macs"] for row in document["rows"]) == cost["tf"]["macs"]
    assert cost["framework_params"] == {"tf": cost["tf"]["params"], "mx": cost["tf"]["params"]}
    assert cost["line"] in markdown
    assert all(end_point["status"] == "match" for end_point in document["end_points"])
    for text in (markdown, GOLDEN["json"].read_text()):
        assert str(ROOT) not in text and "/tmp/" not in text  # no machine-specific paths
        assert "timings" not in text
