"""records: the layer record, its kind enum and the NHWC -> NCHW rule."""
from __future__ import annotations

import pytest

from porting.core.records import Kind, LayerRecord, Part, format_shape, nhwc_to_nchw, window_before_and_used_after


def test_kind_is_a_kind_member_even_when_given_as_text():
    record = LayerRecord(name="c", kind="conv", op="Conv2D", inputs=(), shape=(1, 4, 8, 8),
                         parts=(Part("bn", "c/BatchNorm", "FusedBatchNormV3"),))
    assert record.kind is Kind.CONV
    assert record.parts[0].kind is Kind.BN
    assert record.part(Kind.BN).name == "c/BatchNorm"
    assert record.part_kinds() == (Kind.BN,)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        LayerRecord(name="c", kind="convolution", op="Conv2D", inputs=(), shape=())


def test_geometry_and_channels():
    record = LayerRecord(name="c", kind=Kind.CONV, op="Conv2D", inputs=(), shape=(1, 4, 4, 4), kernel=(3, 3),
                         stride=(2, 2), dilation=(1, 1), pads=(0, 1, 0, 1))
    assert record.geometry() == "3x3/2x2 pads (0,1,0,1)"
    assert record.channels == 4
    assert LayerRecord(name="a", kind=Kind.ADD, op="AddV2", inputs=(), shape=(1, 4)).geometry() == ""


def test_nhwc_to_nchw_and_format_shape():
    assert nhwc_to_nchw([1, 8, 6, 3]) == (1, 3, 8, 6)
    assert nhwc_to_nchw([None, 10]) == (-1, 10)
    assert format_shape((1, 3, 8, 8)) == "1x3x8x8" and format_shape(()) == "--"


def test_window_before_and_used_after():
    """8 -> 4 by 3x3/2: pad 0 before, the last window reaches 1 cell past the end."""
    record = LayerRecord(name="c", kind=Kind.CONV, op="Conv2D", inputs=(), shape=(1, 4, 4, 4), in_shape=(1, 3, 8, 8),
                         kernel=(3, 3), stride=(2, 2), dilation=(1, 1), pads=(0, 1, 0, 1))
    assert window_before_and_used_after(record) == ((0, 1), (0, 1))
