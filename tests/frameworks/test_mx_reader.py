"""mx_reader: how MXNet symbols become layer records (folds that make ports pair with TF)."""
from __future__ import annotations

import pytest

from porting import compat
from porting.frameworks.mx_reader import SymbolError, records_from_symbol
from porting.core.records import Kind

mx = compat.import_mx()


def _records(symbol, shape=(1, 3, 8, 8)):
    return {record.name: record for record in records_from_symbol(symbol, shape).records}


def test_transpose_to_nhwc_then_flatten_is_one_nhwc_flatten():
    data = mx.sym.var("data")
    nhwc = mx.sym.transpose(data, axes=(0, 2, 3, 1), name="to_nhwc")
    flat = mx.sym.reshape(nhwc, shape=(0, -1), name="Flatten")
    records = _records(mx.sym.FullyConnected(flat, num_hidden=4, name="Logits"))
    assert "to_nhwc" not in records
    assert records["Flatten"].attrs["source_layout"] == "NHWC"
    assert records["Flatten"].in_shape == (1, 3, 8, 8)
    assert records["Flatten"].inputs == ("data",)


def test_plain_flatten_stays_nchw_and_other_transposes_stay_layers():
    data = mx.sym.var("data")
    swapped = mx.sym.transpose(data, axes=(0, 1, 3, 2), name="swap_hw")
    records = _records(mx.sym.flatten(swapped, name="Flatten"))
    assert "swap_hw" in records and records["swap_hw"].kind == Kind.OTHER
    assert records["Flatten"].attrs["source_layout"] == "NCHW"


def test_product_with_a_constant_is_a_scale_and_of_two_tensors_a_mul():
    data = mx.sym.var("data")
    gain = mx.sym.var("gain", shape=(1, 3, 1, 1))
    scaled = mx.sym.broadcast_mul(data, gain, name="per_channel")
    records = _records(mx.sym.broadcast_mul(scaled, scaled, name="square"))
    assert records["per_channel"].kind == Kind.SCALE
    assert records["square"].kind == Kind.MUL


def test_masked_average_pool_is_one_average_pool_that_excludes_pads():
    from porting.frameworks import mx_ops

    pooled = mx_ops.tf_pool2d(mx.sym.var("data"), "avg", 8, 4, 1, "SAME", name="Pool")
    records = _records(pooled)
    assert [r.kind for r in records.values()] == [Kind.INPUT, Kind.POOL_AVG]
    assert records["Pool"].pads == (1, 2, 1, 2)
    assert records["Pool"].attrs["count_include_pad"] is False


def test_shape_inference_failure_names_the_input():
    bad = mx.sym.Convolution(mx.sym.var("data"), kernel=(9, 9), num_filter=2, name="too_big")
    with pytest.raises(SymbolError, match=r"shape inference failed for input \(1, 3, 8, 8\)"):
        records_from_symbol(bad, (1, 3, 8, 8))
