"""The ``global_mean`` equivalence (porting/core/equivalences/global_mean.py) on hand-built records.

Keras' GlobalAveragePooling2D is a mean over H and W (N x C); slim and MXNet ports write a
whole-map average pool (N x C x 1 x 1) and a flatten. The numeric proof (a Keras file against an
MXNet port with Pooling(global_pool=True) + Flatten) is in tests/frameworks/test_keras_reading.py.
"""
from __future__ import annotations

from porting.core.equivalences import normalise
from porting.core.records import Kind, LayerRecord


def rec(name, kind, inputs, shape, in_shape=None, **kw):
    return LayerRecord(name=name, kind=kind, op=kw.pop("op", str(kind)), inputs=tuple(inputs), shape=shape,
                       in_shape=in_shape, **kw)


def mean_side():
    return [rec("avg_pool/Mean", Kind.MEAN, ["relu"], (1, 8), (1, 8, 5, 5), attrs={"axis": (2, 3), "keepdims": False}),
            rec("logits", Kind.FC, ["avg_pool/Mean"], (1, 3), (1, 8))]


def pool_side(kernel=(5, 5), pads=(0, 0, 0, 0), global_pool=False):
    return [rec("pool", Kind.POOL_AVG, ["relu"], (1, 8, 1, 1), (1, 8, 5, 5), kernel=kernel, stride=(1, 1),
                pads=pads, attrs={"global_pool": global_pool}),
            rec("flatten", Kind.FLATTEN, ["pool"], (1, 8), (1, 8, 1, 1)),
            rec("logits", Kind.FC, ["flatten"], (1, 3), (1, 8))]


def test_pool_and_flatten_become_one_mean_named_after_the_flatten():
    tf, mx, notes = normalise(mean_side(), pool_side(), rules=["global_mean"])
    assert tf == mean_side()
    assert [(r.name, r.kind, r.shape, r.in_shape, r.inputs) for r in mx] == [
        ("flatten", Kind.MEAN, (1, 8), (1, 8, 5, 5), ("relu",)), ("logits", Kind.FC, (1, 3), (1, 8), ("flatten",))]
    assert [part for part in mx[0].attrs.items() if part[0] in ("axis", "keepdims")] == [("axis", (2, 3)),
                                                                                         ("keepdims", False)]
    assert len(notes) == 1 and "MX pool + flatten" in notes[0] and "5x5 map" in notes[0]


def test_the_rule_works_both_ways_and_with_a_global_pool():
    mx, tf, notes = normalise(pool_side(kernel=(1, 1), global_pool=True), mean_side(), rules=["global_mean"])
    assert [r.kind for r in mx] == [Kind.MEAN, Kind.FC] and notes[0].startswith("TF pool + flatten")


def test_sides_in_the_same_form_or_a_padded_pool_stay_as_written():
    for tf, mx in ((pool_side(), pool_side()), (mean_side(), mean_side()),
                   (mean_side(), pool_side(pads=(1, 1, 1, 1))), (mean_side(), pool_side(kernel=(3, 3)))):
        assert normalise(tf, mx, rules=["global_mean"]) == (tf, mx, [])
