"""porting.core.match on tiny hand-made records: name keys, pairing by name, then by structure."""
from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("order", ["3x3 first", "1x1 first"])
def test_structural_pairing_prefers_the_same_kernel(order):
    """A TF 3x3 conv facing an MXNet 1x1 and an MXNet 3x3 of the same output shape pairs with the 3x3.

    The kernel is the only thing that tells the two MXNet convs apart (same kind, shape, stride,
    number of inputs), so a similarity that ignored it would pair by position alone: with the
    3x3 first, the TF conv would take the 1x1 and leave the 3x3 as an extra layer.
    """
    tf = [rec("images", Kind.INPUT, (1, 3, 8, 8)), conv("Net/Conv2d_0a_3x3", (1, 4, 8, 8), ["images"], (1, 3, 8, 8))]
    three = conv("convolution0", (1, 4, 8, 8), ["data"], (1, 3, 8, 8))
    one = conv("convolution1", (1, 4, 8, 8), ["convolution0"], (1, 4, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0))
    if order == "1x1 first":
        one = conv("convolution0", (1, 4, 8, 8), ["data"], (1, 3, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0))
        three = conv("convolution1", (1, 4, 8, 8), ["convolution0"], (1, 4, 8, 8))
    mx_records = [rec("data", Kind.INPUT, (1, 3, 8, 8))] + ([three, one] if order == "3x3 first" else [one, three])
    pairs = match(tf, mx_records)
    paired = next(pair for pair in pairs if pair.tf is not None and pair.tf.name == "Net/Conv2d_0a_3x3")
    assert (paired.mx.kernel, paired.mx.name, paired.matched_by) == ((3, 3), three.name, BY_STRUCTURE)
    assert "same kind, kernel, stride, output shape" in paired.note
    assert [pair.mx.name for pair in pairs if pair.tf is None] == [one.name]
    rows = compare_pairs(pairs)
    assert [row.status for row in rows if row.status != Status.MATCH] == [Status.ONLY_MX]
    assert next(row for row in rows if row.status == Status.ONLY_MX).mx.geometry == "1x1"


def residual_unit(prefix: str, shortcut_first: bool, shortcut_on_left: bool, names=None) -> list[LayerRecord]:
    """A ResNet projection unit as records: input, shortcut 1x1 (16), branch 1x1 (4) -> 3x3 (4) -> 1x1 (16), add."""
    names = names or {}
    n = lambda key: names.get(key, f"{prefix}{key}")  # noqa: E731
    image = rec(n("in"), Kind.INPUT, (1, 8, 8, 8))
    shortcut = conv(n("shortcut"), (1, 16, 8, 8), [n("in")], (1, 8, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0))
    branch = [conv(n("conv1"), (1, 4, 8, 8), [n("in")], (1, 8, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0)),
              conv(n("conv2"), (1, 4, 8, 8), [n("conv1")], (1, 4, 8, 8)),
              conv(n("conv3"), (1, 16, 8, 8), [n("conv2")], (1, 4, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0))]
    inputs = [n("shortcut"), n("conv3")] if shortcut_on_left else [n("conv3"), n("shortcut")]
    add = rec(n("add"), Kind.ADD, (1, 16, 8, 8), inputs)
    body = [shortcut] + branch if shortcut_first else branch + [shortcut]
    return [image] + body + [add]


@pytest.mark.parametrize("shortcut_first,shortcut_on_left", [(True, True), (False, False), (False, True),
                                                             (True, False)])
def test_a_shortcut_created_before_or_after_its_branch_pairs_the_same(shortcut_first, shortcut_on_left):
    """slim's order (shortcut first, ``shortcut + branch``) against every way a port may write it, names all differ."""
    tf = residual_unit("Unit/", True, True)
    mx_records = residual_unit("mx_", shortcut_first, shortcut_on_left)
    pairs = match(tf, mx_records)
    assert [(p.tf.name, p.mx.name) for p in pairs] == [(r.name, "mx_" + r.name[len("Unit/"):]) for r in tf]
    assert {p.matched_by for p in pairs[1:]} == {BY_STRUCTURE}
    assert [row.status for row in compare_pairs(pairs)] == [Status.MATCH] * len(tf)


def test_a_permuted_concat_pairs_its_branches_and_is_still_reported():
    tf = [rec("images", Kind.INPUT, (1, 3, 8, 8)),
          conv("Net/b0", (1, 4, 8, 8), ["images"], (1, 3, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0)),
          conv("Net/b1a", (1, 3, 8, 8), ["images"], (1, 3, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0)),
          conv("Net/b1b", (1, 6, 8, 8), ["Net/b1a"], (1, 3, 8, 8)),
          rec("Net/concat", Kind.CONCAT, (1, 10, 8, 8), ["Net/b0", "Net/b1b"])]
    mx_records = [rec("data", Kind.INPUT, (1, 3, 8, 8)),
                  conv("c0", (1, 3, 8, 8), ["data"], (1, 3, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0)),
                  conv("c1", (1, 6, 8, 8), ["c0"], (1, 3, 8, 8)),
                  conv("c2", (1, 4, 8, 8), ["data"], (1, 3, 8, 8), kernel=(1, 1), pads=(0, 0, 0, 0)),
                  rec("cat", Kind.CONCAT, (1, 10, 8, 8), ["c1", "c2"])]
    pairs = match(tf, mx_records)
    assert [(p.tf.name, p.mx.name) for p in pairs] == [
        ("images", "data"), ("Net/b0", "c2"), ("Net/b1a", "c0"), ("Net/b1b", "c1"), ("Net/concat", "cat")]
    rows = compare_pairs(pairs)
    assert [row.status for row in rows] == [Status.MATCH] * 4 + [Status.ATTR_MISMATCH]
    assert "permuted" in rows[-1].defects[0].explanation
