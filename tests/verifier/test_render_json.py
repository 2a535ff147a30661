"""porting.verifier.render.json_doc on a hand-made comparison: the schema and its invariants."""
from __future__ import annotations

import json

from porting.core.diff import Status
from porting.verifier.render import render_json

from tests.verifier import handmade

DOCUMENT_KEYS = ["title", "verdict", "summary", "verdict_line", "rows", "end_points", "cost"]
ROW_KEYS = {"index", "status", "tf", "mx", "note", "matched_by", "defects", "params", "macs"}
SIDE_KEYS = {"name", "op", "shape", "kind", "geometry"}


def test_schema_without_passes():
    result = handmade.result()
    document = json.loads(render_json(result))
    assert list(document) == DOCUMENT_KEYS
    assert document["title"] == handmade.TITLE and document["verdict"] == "mismatch"
    assert document["verdict_line"] == result.verdict_line()
    for row in document["rows"]:
        assert ROW_KEYS <= set(row) <= ROW_KEYS | {"mx_params", "mx_macs"}
        for side in ("tf", "mx"):
            assert row[side] is None or set(row[side]) == SIDE_KEYS
    assert document["rows"][3]["mx"] is None and document["rows"][4]["tf"] is None
    assert document["rows"][1]["defects"] == [{"field": "channels", "tf": "1x4x8x8", "mx": "1x5x8x8",
                                               "explanation": "MXNet has 5 channels instead of 4",
                                               "fix": "num_filter=4"}]
    assert document["end_points"] == handmade.END_POINTS


def test_counts_and_costs_add_up():
    document = json.loads(render_json(handmade.result()))
    summary = document["summary"]
    assert sum(summary[status.value] for status in Status) == summary["rows"] == len(document["rows"])
    cost = document["cost"]
    assert set(cost) == {"tf", "mx", "agree", "disagree_rows", "framework_params", "line"}
    assert sum(row["params"] or 0 for row in document["rows"]) == cost["tf"]["params"]
    assert cost["disagree_rows"] == [1] and not cost["agree"]
    assert (document["rows"][1]["mx_params"], document["rows"][1]["params"]) == (135, 108)


def test_only_problems():
    document = json.loads(render_json(handmade.result(), only_problems=True))
    assert [row["index"] for row in document["rows"]] == [1, 2, 3, 4]
    assert document["summary"]["rows"] == 5  # the summary still counts every row


def test_passes_add_their_keys():
    document = json.loads(render_json(handmade.result(lint_pass=True, numeric=True)))
    assert list(document) == DOCUMENT_KEYS + ["findings", "numeric"]
    assert [f["severity"] for f in document["findings"]] == ["error", "warning", "info"]
    assert set(document["findings"][1]) == {"layer", "check", "severity", "tf", "mx", "message", "fix", "mx_layer"}
    numeric = document["numeric"]
    assert numeric["passed"] is False and numeric["layers"] == 2 and numeric["failed"] == 1
    assert numeric["first_divergence"]["layer"] == "Net/b" and numeric["first_divergence"]["hint"] == "a hint"
    by_index = {row["index"]: row for row in document["rows"]}
    assert [index for index, row in by_index.items() if "numeric" in row] == [0, 1]
    assert by_index[1]["numeric"]["first_divergence"] and not by_index[0]["numeric"]["first_divergence"]
    assert list(by_index[1])[-5:] == ["numeric", "params", "macs", "mx_params", "mx_macs"]


def test_an_empty_lint_still_writes_its_key():
    result = handmade.result(problems=False)
    result.lint = handmade.lint.LintResult((), handmade.lint.Options())
    document = json.loads(render_json(result))
    assert document["findings"] == [] and document["verdict"] == "match" and "numeric" not in document
