"""porting.core.match on tiny hand-made records: name keys, pairing by name, then by structure."""
from __future__ import annotations

from porting.core.diff import Status, compare_pairs, verdict_line
from porting.core.graph_walk import name_key
from porting.core.match import BY_NAME, BY_STRUCTURE, match
from porting.core.records import Kind, LayerRecord, Part


def rec(name, kind, shape, inputs=(), **kwargs) -> LayerRecord:
    parts = kwargs.pop("parts", (Part(kind, name, kind),))
    return LayerRecord(name=name, kind=kind, op=kwargs.pop("op", kind), inputs=tuple(inputs),
                       shape=tuple(shape), parts=parts, **kwargs)


def conv(name, shape, inputs, in_shape, kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), **kwargs):
    attrs = kwargs.pop("attrs", {"padding": "SAME"})
    return rec(name, Kind.CONV, shape, inputs, in_shape=in_shape, kernel=kernel, stride=stride,
               dilation=(1, 1), pads=pads, attrs=attrs, **kwargs)


def test_name_key_ignores_reentered_scopes_and_op_suffixes():
    assert name_key("Net/Net/Mixed_5b/concat") == name_key("Net/Mixed_5b/concat")
    assert name_key("Net/Conv2d_1a_3x3/Conv2D") == name_key("Net/Conv2d_1a_3x3") == "net/conv2d/1a/3x3"
    assert name_key("convolution12") != name_key("Net/Conv2d_1a_3x3")


def test_match_by_name_then_structure_with_an_extra_layer():
    tf = [rec("images", Kind.INPUT, (1, 3, 8, 8)),
          conv("Net/a", (1, 4, 8, 8), ["images"], (1, 3, 8, 8)),
          conv("Net/b", (1, 4, 8, 8), ["Net/a"], (1, 4, 8, 8))]
    mx_records = [rec("data", Kind.INPUT, (1, 3, 8, 8)),
                  conv("Net/a", (1, 4, 8, 8), ["data"], (1, 3, 8, 8)),
                  rec("batchnorm0", Kind.BN, (1, 4, 8, 8), ["Net/a"]),
                  conv("convolution1", (1, 4, 8, 8), ["batchnorm0"], (1, 4, 8, 8))]
    pairs = match(tf, mx_records)
    assert [(p.tf and p.tf.name, p.mx and p.mx.name, p.matched_by) for p in pairs] == [
        ("images", "data", "input"), ("Net/a", "Net/a", BY_NAME), (None, "batchnorm0", None),
        ("Net/b", "convolution1", BY_STRUCTURE)]
    rows = compare_pairs(pairs)
    # Net/b reads the extra batch norm, which is followed back to Net/a: no input defect.
    assert [row.status for row in rows] == [Status.MATCH, Status.MATCH, Status.ONLY_MX, Status.MATCH]
    assert verdict_line(rows) == "FAILED | 1 only in MXNet (3/4 rows match)"
