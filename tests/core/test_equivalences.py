"""The registry of equivalences (porting.core.equivalences), rule by rule on hand-built records."""
from __future__ import annotations

import numpy as np
import pytest

from porting.core import equivalences
from porting.core.equivalences import base, normalise
from porting.core.records import Kind, LayerRecord


def rec(name, kind, inputs, shape, in_shape=None, **kw):
    return LayerRecord(name=name, kind=kind, op=kw.pop("op", str(kind)), inputs=tuple(inputs), shape=shape,
                       in_shape=in_shape, **kw)


def conv(name, inputs, shape, in_shape, kernel, stride=(1, 1), pads=(0, 0, 0, 0)):
    return rec(name, Kind.CONV, inputs, shape, in_shape, kernel=kernel, stride=stride, dilation=(1, 1), pads=pads)


def tf_head():
    """slim's head: 7x7 VALID conv fc6, dropout, 1x1 conv fc8, squeeze."""
    return [rec("pool5", Kind.POOL_MAX, ["x"], (1, 8, 7, 7), (1, 8, 14, 14), kernel=(2, 2), stride=(2, 2),
                pads=(0, 0, 0, 0)),
            conv("fc6", ["pool5"], (1, 16, 1, 1), (1, 8, 7, 7), (7, 7)),
            rec("dropout6", Kind.DROPOUT, ["fc6"], (1, 16, 1, 1), attrs={"keep_prob": 0.5}),
            conv("fc8", ["dropout6"], (1, 4, 1, 1), (1, 16, 1, 1), (1, 1)),
            rec("squeezed", Kind.FLATTEN, ["fc8"], (1, 4), (1, 4, 1, 1), op="Squeeze",
                attrs={"source_layout": "NHWC", "spatial": False})]


def mx_head(dropout=True):
    records = [rec("pool5", Kind.POOL_MAX, ["x"], (1, 8, 7, 7), (1, 8, 14, 14), kernel=(2, 2), stride=(2, 2),
                   pads=(0, 0, 0, 0)),
               rec("flatten", Kind.FLATTEN, ["pool5"], (1, 392), (1, 8, 7, 7),
                   attrs={"source_layout": "NCHW", "spatial": True}),
               rec("fc6", Kind.FC, ["flatten"], (1, 16), (1, 392)),
               rec("drop6", Kind.DROPOUT, ["fc6"], (1, 16), (1, 16), attrs={"p": 0.5}),
               rec("fc8", Kind.FC, ["drop6"], (1, 4), (1, 16))]
    if not dropout:
        records = base.drop(records, records[3])
    return records


def by_name(records):
    return {r.name: r for r in records}


def test_registry_order_and_duplicates():
    assert set(equivalences.ORDER) == set(equivalences.EQUIVALENCES)
    with pytest.raises(ValueError, match="registered twice"):
        base.equivalence("conv_whole_map")(lambda tf, mx: (tf, mx, []))


def test_conv_whole_map_becomes_flatten_dense_with_nchw_layout():
    tf, mx, notes = normalise(tf_head(), mx_head(), rules={"conv_whole_map"})
    tf = by_name(tf)
    assert tf["fc6/flatten"].kind == Kind.FLATTEN and tf["fc6/flatten"].attrs["source_layout"] == "NCHW"
    assert tf["fc6/flatten"].shape == (1, 392) and tf["fc6/flatten"].inputs == ("pool5",)
    assert tf["fc6"].kind == Kind.FC and tf["fc6"].shape == (1, 16) and tf["fc6"].inputs == ("fc6/flatten",)
    assert tf["dropout6"].shape == (1, 16)  # the elementwise layer after it reads the vector
    assert notes == ["TF fc6: 7x7 VALID conv over the whole 7x7 map taken as Flatten (NCHW) + dense 392->16, "
                     "the form of MX fc6"]


def test_conv_whole_map_needs_the_dense_form_on_the_other_side():
    tf, mx, notes = normalise(tf_head(), tf_head(), rules={"conv_whole_map"})
    assert notes == [] and tf == tf_head()
    wrong_width = mx_head()
    wrong_width[2] = rec("fc6", Kind.FC, ["flatten"], (1, 15), (1, 392))
    assert normalise(tf_head(), wrong_width, rules={"conv_whole_map"})[2] == []


def test_conv_1x1_on_1x1_map_becomes_dense():
    tf, mx, notes = normalise(tf_head(), mx_head(), rules={"conv_whole_map", "conv_1x1_dense"})
    fc8 = by_name(tf)["fc8"]
    assert fc8.kind == Kind.FC and fc8.shape == (1, 4) and fc8.in_shape == (1, 16) and fc8.kernel is None
    assert notes[1] == "TF fc8: 1x1 conv on a 1x1 map taken as dense 16->4, the form of MX fc8"


def test_identity_squeeze_dropped_and_consumers_rewired():
    tail = [rec("out", Kind.ACT, ["squeezed"], (1, 4), (1, 4))]
    tf, mx, notes = normalise(tf_head() + tail, mx_head(), rules={"identity_reshape"})
    assert "squeezed" not in by_name(tf) and by_name(tf)["out"].inputs == ("fc8",)
    assert notes == ["TF squeezed: Squeeze 1x4x1x1 -> 1x4 keeps the data as it is: dropped"]
    # a spatial flatten is not an identity; the same number on both sides is left alone
    assert normalise(tf_head(), tf_head(), rules={"identity_reshape"})[2] == []


def test_whole_head_normalises_to_the_dense_form():
    tf, mx, notes = normalise(tf_head(), mx_head())
    assert [(r.kind, r.shape) for r in tf] == [(r.kind, r.shape) for r in mx]
    assert len(notes) == 3


def test_dropout_absent_on_one_side_only():
    tf, mx, notes = normalise(tf_head(), mx_head(dropout=False))
    assert Kind.DROPOUT not in {r.kind for r in tf}
    assert by_name(tf)["fc8"].inputs == ("fc6",)
    assert "TF dropout6: dropout with no counterpart on MX (the identity at inference): dropped" in notes
    # present on both sides: both kept, so the dropout lint still compares the rates
    tf, mx, _ = normalise(tf_head(), mx_head())
    assert "dropout6" in by_name(tf) and "drop6" in by_name(mx)


def test_dropout_always_is_not_an_identity():
    mx = mx_head()
    mx[3] = rec("drop6", Kind.DROPOUT, ["fc6"], (1, 16), (1, 16), attrs={"p": 0.5, "mode": "always"})
    tf = [r for r in tf_head() if r.kind != Kind.DROPOUT]
    assert not any("drop6" in note for note in normalise(tf, mx, rules={"dropout_absent"})[2])


def pool(name, stride, kind=Kind.POOL_AVG):
    return rec(name, kind, ["x"], (1, 8, 1, 1), (1, 8, 8, 8), kernel=(8, 8), stride=stride, pads=(0, 0, 0, 0))


def test_single_window_pool_ignores_stride():
    tf, mx, notes = normalise([pool("p", (2, 2))], [pool("q", (1, 1))], rules={"single_window_pool"})
    assert tf[0].stride == (1, 1) and mx[0].stride == (1, 1)
    assert notes == ["TF p: single-window pool, stride 2x2 changes nothing: taken as stride 1x1"]
    # equal strides: left as written; another kind: not the same computation
    assert normalise([pool("p", (2, 2))], [pool("q", (2, 2))], rules={"single_window_pool"})[0][0].stride == (2, 2)
    assert normalise([pool("p", (2, 2))], [pool("q", (1, 1), Kind.POOL_MAX)], rules={"single_window_pool"})[2] == []


def test_nested_concat_flattened_in_order():
    def cat(name, inputs):
        return rec(name, Kind.CONCAT, inputs, (1, 8, 4, 4), attrs={"axis": 1})
    tf = [cat("inner", ["b", "c"]), cat("outer", ["a", "inner", "d"])]
    mx = [cat("flat", ["a", "b", "c", "d"])]
    tf2, mx2, notes = normalise(tf, mx, rules={"nested_concat"})
    assert [r.name for r in tf2] == ["outer"] and tf2[0].inputs == ("a", "b", "c", "d")
    assert notes == ["TF outer: concat of the concat inner taken as one flat concat"]
    assert normalise(tf, tf, rules={"nested_concat"})[2] == []  # both nested: left alone


def test_numeric_conv_over_whole_map_equals_flatten_dense():
    """conv_whole_map / conv_1x1_dense: the same weights give the same outputs (numpy, both layouts)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 7, 8))  # NHWC
    k = rng.standard_normal((7, 7, 8, 16))  # HWIO
    conv = np.einsum("nhwc,hwco->no", x, k)  # the single output position of the VALID conv
    dense_weight = k.transpose(3, 2, 0, 1).reshape(16, -1)  # HWIO -> OIHW -> (O, C*H*W)
    flat = x.transpose(0, 3, 1, 2).reshape(2, -1)  # MXNet Flatten of the NCHW map
    np.testing.assert_allclose(flat @ dense_weight.T, conv, rtol=1e-10)
    wrong = x.reshape(2, -1)  # an NHWC flatten with the same weight: what the flatten_order lint catches
    assert not np.allclose(wrong @ dense_weight.T, conv)
    k1 = rng.standard_normal((1, 1, 16, 4))
    np.testing.assert_allclose(np.einsum("nhwc,hwco->no", conv[:, None, None, :], k1),
                               conv @ k1.reshape(16, 4), rtol=1e-10)


def test_softmax_head_is_compared_at_the_logits():
    """A SoftmaxOutput ending one side where the other ends at its logits: dropped, with a note."""
    tf = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16))]
    mx = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16)), rec("softmax", Kind.SOFTMAX, ["fc"], (1, 4), (1, 4),
                                                          op="SoftmaxOutput")]
    new_tf, new_mx, notes = normalise(tf, mx, rules={"softmax_head"})
    assert [r.name for r in new_mx] == ["fc"] and new_tf == tf
    assert len(notes) == 1 and "MX softmax: SoftmaxOutput at the output" in notes[0]


def test_softmax_head_leaves_softmaxes_that_pair_or_are_read():
    both = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16)), rec("sm", Kind.SOFTMAX, ["fc"], (1, 4), (1, 4))]
    assert normalise(both, both, rules={"softmax_head"})[2] == []  # one at each end: they pair
    read = both + [rec("after", Kind.ACT, ["sm"], (1, 4), (1, 4))]
    tf = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16)), rec("after", Kind.ACT, ["fc"], (1, 4), (1, 4))]
    new_tf, new_mx, notes = normalise(tf, read, rules={"softmax_head"})
    assert notes == [] and new_mx == read  # a softmax something reads is part of the computation


def test_softmax_head_takes_the_reshapes_after_it():
    """slim's ResNets reshape their predictions back to N x K x 1 x 1: still an output softmax."""
    tf = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16)), rec("sm", Kind.SOFTMAX, ["fc"], (1, 4), (1, 4)),
          rec("back", Kind.RESHAPE, ["sm"], (1, 4, 1, 1), (1, 4))]
    mx = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16))]
    new_tf, new_mx, notes = normalise(tf, mx, rules={"softmax_head"})
    assert [r.name for r in new_tf] == ["fc"] and new_mx == mx and len(notes) == 1


def test_reshapes_after_output_softmaxes_on_one_side_only_are_dropped():
    tf = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16)), rec("sm", Kind.SOFTMAX, ["fc"], (1, 4), (1, 4)),
          rec("back", Kind.RESHAPE, ["sm"], (1, 4, 1, 1), (1, 4))]
    mx = [rec("fc", Kind.FC, ["x"], (1, 4), (1, 16)), rec("softmax", Kind.SOFTMAX, ["fc"], (1, 4), (1, 4))]
    new_tf, new_mx, notes = normalise(tf, mx, rules={"softmax_head"})
    assert [r.name for r in new_tf] == ["fc", "sm"] and new_mx == mx and len(notes) == 1
