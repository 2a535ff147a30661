"""mx_attrs: the one parser of MXNet symbol attribute strings."""
from __future__ import annotations

import json

from porting.frameworks.mx_attrs import as_flag, as_float, as_tuple, attrs_of, parse, symbol_graph


def test_parse_literals_flags_and_text():
    assert parse("(3, 3)") == (3, 3)
    assert parse("1e-05") == 1e-05
    assert parse("True") is True and parse("true") is True and parse("FALSE") is False
    assert parse("None") is None and parse("none") is None
    assert parse(" valid ") == "valid"
    assert parse(3) == 3  # already parsed values pass


def test_as_tuple():
    assert as_tuple("(3, 1)", (1, 1)) == (3, 1)
    assert as_tuple("2", (1, 1)) == (2, 2)
    assert as_tuple("3", (0,) * 8, 8) == (3,) * 8
    assert as_tuple(None, (1, 1)) == (1, 1)
    assert as_tuple("()", (1, 1)) == (1, 1)


def test_as_flag():
    for text in ("True", "true", "1", " TRUE "):
        assert as_flag(text) is True
    for text in ("False", "false", "0"):
        assert as_flag(text) is False
    assert as_flag(None, True) is True
    assert as_flag("None", True) is True
    assert as_flag(False, True) is False


def test_as_float():
    assert as_float("0.9") == 0.9
    assert as_float(None, 1e-3) == 1e-3
    assert as_float("valid", 2.0) == 2.0


def test_attrs_of_reads_current_and_old_json():
    assert attrs_of({"op": "Convolution", "attrs": {"kernel": "(3, 3)"}}) == {"kernel": "(3, 3)"}
    assert attrs_of({"op": "Convolution", "param": {"kernel": "(3, 3)"}}) == {"kernel": "(3, 3)"}
    assert attrs_of({"op": "null", "attr": {"__lr_mult__": "0"}}) == {"__lr_mult__": "0"}
    assert attrs_of({"op": "null"}) == {} and attrs_of(None) == {}


def test_symbol_graph_from_json_text():
    text = json.dumps({"nodes": [{"op": "null", "name": "data", "inputs": []}], "heads": [[0, 0, 0]]})
    assert symbol_graph(text)["nodes"][0]["name"] == "data"
