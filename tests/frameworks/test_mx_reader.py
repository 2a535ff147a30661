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


def test_convolution_and_depthwise_convolution():
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=6, no_bias=True, name="conv")
    depthwise = mx.sym.Convolution(conv, kernel=(3, 3), pad=(1, 1), num_filter=12, num_group=6, name="dw")
    records = _records(depthwise)
    assert records["conv"].kind == Kind.CONV and records["conv"].pads == (1, 1, 1, 1)
    assert records["conv"].stride == (2, 2) and records["conv"].attrs["has_bias"] is False
    assert records["dw"].kind == Kind.DWCONV and records["dw"].attrs["multiplier"] == 2
    assert records["dw"].attrs["num_group"] == 6 and records["dw"].attrs["has_bias"] is True


def test_pooling_full_convention_counts_the_extra_cells_and_global_pool_covers_the_input():
    data = mx.sym.var("data")
    full = mx.sym.Pooling(data, kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full", name="full")
    pooled = mx.sym.Pooling(full, kernel=(1, 1), pool_type="avg", global_pool=True, name="global")
    records = _records(pooled)
    assert records["full"].kind == Kind.POOL_MAX and records["full"].shape == (1, 3, 4, 4)
    assert records["full"].pads == (0, 1, 0, 1)  # 8 -> 4 by 3/2 'full' reads one cell past the end
    assert records["global"].kind == Kind.POOL_AVG and records["global"].kernel == (4, 4)
    assert records["global"].attrs["global_pool"] is True and records["global"].attrs["count_include_pad"] is True


def test_batch_norm_and_activations_fold_into_the_convolution():
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data, kernel=(1, 1), num_filter=4, no_bias=True, name="c")
    bn = mx.sym.BatchNorm(conv, eps=0.001, momentum=0.9997, fix_gamma=True, name="c/BatchNorm")
    act = mx.sym.clip(bn, a_min=0.0, a_max=6.0, name="c/relu6")
    conv2 = mx.sym.Convolution(act, kernel=(1, 1), num_filter=4, no_bias=True, name="d")
    leaky = mx.sym.LeakyReLU(conv2, act_type="leaky", slope=0.1, name="d/leaky")
    records = _records(leaky)
    c, d = records["c"], records["d"]
    assert c.part_kinds() == (Kind.CONV, Kind.BN, Kind.ACT)
    assert c.attrs["bn.eps"] == 0.001 and c.attrs["bn.momentum"] == 0.9997 and c.attrs["bn.scale"] is False
    assert c.attrs["act.act"] == "relu6"
    assert d.attrs["act.act"] == "leaky_relu" and d.attrs["act.alpha"] == 0.1


def test_explicit_pad_folds_into_the_convolution_after_it():
    data = mx.sym.var("data")
    padded = mx.sym.pad(data, mode="constant", pad_width=(0, 0, 0, 0, 0, 1, 0, 1), name="c/pad")
    records = _records(mx.sym.Convolution(padded, kernel=(3, 3), stride=(2, 2), num_filter=2, name="c"))
    assert records["c"].part_kinds() == (Kind.PAD, Kind.CONV)
    assert records["c"].pads == (0, 1, 0, 1) and records["c"].in_shape == (1, 3, 8, 8)


def test_explicit_pads_keep_height_and_width_apart_on_a_non_square_input():
    """8x9 padded (0, 1) on the even height and (1, 1) on the odd width: a 3x3/2 SAME stem in TF."""
    padded = mx.sym.pad(mx.sym.var("data"), mode="constant", pad_width=(0, 0, 0, 0, 0, 1, 1, 1), name="c/pad")
    records = _records(mx.sym.Convolution(padded, kernel=(3, 3), stride=(2, 2), num_filter=2, name="c"),
                       shape=(1, 3, 8, 9))
    assert records["c"].pads == (0, 1, 1, 1) and records["c"].shape == (1, 2, 4, 5)
    assert records["c"].in_shape == (1, 3, 8, 9)


def test_concat_scale_dropout_dense_and_softmax():
    data = mx.sym.var("data")
    a = mx.sym.Convolution(data, kernel=(1, 1), num_filter=2, name="a")
    b = mx.sym.Convolution(data, kernel=(1, 1), num_filter=3, name="b")
    cat = mx.sym.concat(b, a, dim=1, name="cat")
    scaled = mx.sym._internal._mul_scalar(cat, scalar=0.17, name="scale")
    dropped = mx.sym.Dropout(scaled, p=0.2, name="drop")
    logits = mx.sym.FullyConnected(dropped, num_hidden=7, name="fc")
    records = _records(mx.sym.softmax(logits, name="prob"))
    assert records["cat"].kind == Kind.CONCAT and records["cat"].inputs == ("b", "a") and records["cat"].attrs["axis"] == 1
    assert records["scale"].kind == Kind.SCALE and records["scale"].attrs["scale"] == 0.17
    assert records["drop"].kind == Kind.DROPOUT and records["drop"].attrs["keep_prob"] == 0.8
    assert records["fc"].kind == Kind.FC and records["fc"].attrs["num_hidden"] == 7 and records["fc"].attrs["flatten"]
    assert records["prob"].kind == Kind.SOFTMAX and records["prob"].attrs["axis"] == 1


def test_pass_through_ops_are_invisible():
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data, kernel=(1, 1), num_filter=2, name="c")
    records = _records(mx.sym.Activation(mx.sym.BlockGrad(conv, name="stop"), act_type="relu", name="act"))
    assert "stop" not in records
    assert records["c"].part_kinds() == (Kind.CONV, Kind.ACT)


def test_learnable_parameters_skip_fixed_gammas_and_frozen_arguments():
    from porting.frameworks import mx_reader

    data = mx.sym.var("data")
    frozen = mx.sym.var("frozen_weight", lr_mult=0.0)
    conv = mx.sym.Convolution(data, weight=frozen, kernel=(1, 1), num_filter=2, no_bias=True, name="frozen")
    bn = mx.sym.BatchNorm(conv, fix_gamma=True, name="bn")
    learned = mx.sym.Convolution(bn, kernel=(1, 1), num_filter=2, name="learned")
    graph = records_from_symbol(learned, (1, 3, 8, 8))
    # beta (2) + learned weight (2*2) + learned bias (2); not the frozen weight, the fixed gamma, the moving stats.
    assert mx_reader.learnable_parameter_count(graph) == 8
