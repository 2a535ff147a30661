"""porting.core.diff on tiny hand-made record pairs: shifted windows, channels, concat order, missing layers."""
from __future__ import annotations

from porting.core.diff import Status, compare_pairs, summarize, verdict_line
from porting.core.match import BY_NAME, Pair
from porting.core.records import Kind

from tests.core.test_match import conv, rec


def test_diff_detects_shifted_windows_at_equal_shapes():
    """8 -> 4 with a 3x3/2 SAME conv: TF pads (0, 1); pad=1 gives 4 too, from other cells."""
    tf = conv("c", (1, 4, 4, 4), ["x"], (1, 3, 8, 8), stride=(2, 2), pads=(0, 1, 0, 1))
    mx_record = conv("c", (1, 4, 4, 4), ["x"], (1, 3, 8, 8), stride=(2, 2), pads=(1, 1, 1, 1))
    row = compare_pairs([Pair(tf, mx_record, BY_NAME)])[0]
    assert row.status == Status.ATTR_MISMATCH
    (defect,) = row.defects
    assert defect.field == "pads" and "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)" in defect.fix
    # The same pads are fine: MXNet's floor rule ignores a pad no window reaches.
    unreached = conv("c", (1, 4, 4, 4), ["x"], (1, 3, 8, 8), stride=(2, 2), pads=(0, 2, 0, 2))
    assert compare_pairs([Pair(tf, unreached, BY_NAME)])[0].status == Status.MATCH


def test_diff_channels_concat_order_and_missing_layer():
    a = conv("a", (1, 4, 8, 8), ["x"], (1, 3, 8, 8))
    b = conv("b", (1, 6, 8, 8), ["x"], (1, 3, 8, 8))
    b_wide = conv("b", (1, 7, 8, 8), ["x"], (1, 3, 8, 8))
    cat_tf = rec("cat", Kind.CONCAT, (1, 10, 8, 8), ["a", "b"])
    cat_mx = rec("cat", Kind.CONCAT, (1, 10, 8, 8), ["b", "a"])
    rows = compare_pairs([Pair(a, a, BY_NAME), Pair(b, b_wide, BY_NAME), Pair(cat_tf, cat_mx, BY_NAME),
                          Pair(rec("extra", Kind.POOL_MAX, (1, 10, 4, 4), ["cat"]), None)])
    assert [row.status for row in rows] == [Status.MATCH, Status.SHAPE_MISMATCH, Status.ATTR_MISMATCH,
                                            Status.ONLY_TF]
    assert rows[1].defects[0].field == "channels" and rows[1].defects[0].fix == "num_filter=6"
    assert rows[2].defects[0].field == "inputs" and "different order" in rows[2].note
    assert rows[3].defects[0].field == "missing_layer"
    summary = summarize(rows)
    assert summary["rows"] == 4 and summary["verdict"] == "mismatch"
    assert verdict_line(rows) == ("FAILED | 1 shape mismatch, 1 attribute mismatch, 1 only in TF "
                                  "(1/4 rows match)")
    assert verdict_line(rows[:1]) == "PASSED | 1/1 layers match"
