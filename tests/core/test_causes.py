"""porting.core.causes on hand-made records: a layer is judged on its own input."""
from __future__ import annotations

from porting.core.causes import own_geometry_holds, tf_rule_on
from porting.core.records import Kind, LayerRecord, Part


def pool(in_hw, out_hw, pads, padding="SAME", stride=1, kernel=3, explicit=False):
    parts = (Part(Kind.PAD, "pad", "Pad"),) if explicit else ()
    return LayerRecord("p", Kind.POOL_MAX, "MaxPool", ("x",), (1, 8, *out_hw), (1, 8, *in_hw), (kernel, kernel),
                       (stride, stride), (1, 1), pads, attrs={"padding": padding}, parts=parts + (
                           Part(Kind.POOL_MAX, "p", "MaxPool"),))


def test_tf_rule_on_another_input():
    tf = pool((8, 8), (4, 4), (0, 1, 0, 1), stride=2)
    assert tf_rule_on(tf, (1, 8, 9, 9)) == ((5, 5), (1, 1, 1, 1))  # SAME at 9: pads (1, 1)
    valid = pool((8, 8), (3, 3), (0, 0, 0, 0), padding="VALID", stride=2)
    assert tf_rule_on(valid, (1, 8, 9, 9)) == ((4, 4), (0, 0, 0, 0))
    padded = pool((8, 8), (4, 4), (1, 1, 1, 1), padding="VALID", stride=2, explicit=True)
    assert tf_rule_on(padded, (1, 8, 9, 9)) == ((5, 5), (1, 1, 1, 1))  # explicit pads, then VALID


def test_a_stride_1_pool_after_a_wrong_layer_holds_its_own_geometry():
    tf = pool((8, 8), (8, 8), (1, 1, 1, 1))
    assert own_geometry_holds(tf, pool((9, 9), (9, 9), (1, 1, 1, 1)))  # what SAME gives on 9x9
    assert not own_geometry_holds(tf, pool((9, 9), (7, 7), (0, 0, 0, 0)))  # unpadded: its own defect
    assert not own_geometry_holds(tf, pool((9, 9), (9, 9), (2, 0, 2, 0)))  # 9x9 out, windows shifted


def test_a_stride_2_pool_judged_on_its_input():
    tf = pool((8, 8), (4, 4), (0, 1, 0, 1), stride=2)
    assert own_geometry_holds(tf, pool((9, 9), (5, 5), (1, 1, 1, 1), stride=2))
    assert not own_geometry_holds(tf, pool((9, 9), (4, 4), (0, 0, 0, 0), stride=2))  # floors where TF pads
