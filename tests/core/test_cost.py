"""porting.core.cost: parameter and multiply-add counts from layer records.

Unit tests build records by hand (both sides' conventions: TF's ``weight_shape`` and
folded bias part, MXNet's ``num_group`` / ``has_bias`` / ``fix_gamma``). The network
tests use the session's full comparison (``irv2_result``: 299x299, AuxLogits) and check
the totals against the parameter counts measured with slim (../shared/IRV2.md), and a
few layers' multiply-adds against arithmetic written out here.
"""
from __future__ import annotations

import json

import pytest

from porting.core.cost import (LayerCost, conv_macs, conv_weights, cost_columns, human, layer_cost, layer_costs,
                          totals)
from porting.core.records import Kind, LayerRecord, Part

# Inception-ResNet-v2, 1001 classes (../shared/IRV2.md).
IRV2_PARAMS = 59_182_258
IRV2_PARAMS_NO_AUX = 55_814_729
IRV2_AUX_HEAD = 3_367_529
IRV2_MOVING = 62_336
IRV2_MOVING_NO_AUX = 60_544
IRV2_CONV_WEIGHTS_NO_AUX = 54_200_160
IRV2_BIASES_NO_AUX = 45_760
IRV2_BETAS_NO_AUX = 30_272
IRV2_FC_NO_AUX = 1_538_537
#: Forward multiply-adds per image at 299x299 with the AuxLogits head, summed without
#: porting.core.cost from slim's own tables (../shared/irv2_slim_ops_default.txt gives each
#: of the 246 Conv2D ops' NHWC output, ../shared/irv2_slim_variables.tsv its weights'
#: k_h x k_w x in_c x out_c): sum of out_h*out_w*out_c*k_h*k_w*in_c = 13,160,197,216, plus
#: the two fully connected layers 1536*1001 + 768*1001. The papers' era quotes ~13.2 G.
IRV2_MACS_299 = 13_160_197_216 + 1536 * 1001 + 768 * 1001
assert IRV2_MACS_299 == 13_162_503_520


def _conv(name="c", shape=(1, 32, 149, 149), in_shape=(1, 3, 299, 299), kernel=(3, 3), attrs=None, parts=None):
    parts = parts if parts is not None else (Part(Kind.CONV, name, "Conv2D"),)
    return LayerRecord(name=name, kind=Kind.CONV, op="Conv2D", inputs=("x",), shape=shape, in_shape=in_shape,
                       kernel=kernel, stride=(2, 2), dilation=(1, 1), attrs=dict(attrs or {}), parts=parts)


TF_BN_PARTS = (Part(Kind.CONV, "c", "Conv2D"), Part(Kind.BN, "c/BatchNorm", "FusedBatchNormV3"),
               Part(Kind.ACT, "c/Relu", "Relu"))
MX_BN_PARTS = (Part(Kind.CONV, "c", "Convolution"), Part(Kind.BN, "c/BatchNorm", "BatchNorm"),
               Part(Kind.ACT, "c/Relu", "Activation"))


# --------------------------------------------------------------------------- units

def test_tf_conv_with_slim_batch_norm_counts_weights_and_beta():
    record = _conv(attrs={"weight_shape": (3, 3, 3, 32), "has_bias": False, "bn.center": True,
                          "bn.scale": False, "bn.has_moving_stats": True}, parts=TF_BN_PARTS)
    cost = layer_cost(record)
    assert (cost.weights, cost.bias, cost.bn, cost.moving) == (3 * 3 * 3 * 32, 0, 32, 64)
    assert cost.params == 864 + 32
    assert cost.macs == 149 * 149 * 32 * 3 * 3 * 3 == 19_181_664
    assert cost.out_elems == 32 * 149 * 149


def test_mx_conv_reads_the_same_from_kernel_and_in_channels():
    tf_record = _conv(attrs={"weight_shape": (3, 3, 3, 32), "bn.center": True, "bn.scale": False,
                             "bn.has_moving_stats": True}, parts=TF_BN_PARTS)
    mx_record = _conv(attrs={"num_group": 1, "has_bias": False, "bn.fix_gamma": True, "bn.scale": False},
                      parts=MX_BN_PARTS)
    for cost in (layer_cost(tf_record), layer_cost(mx_record)):
        # 3x3x3x32 weights + 32 betas (no gamma, no bias); mean + variance; 149*149 outputs x 32 x 3*3*3
        assert (cost.weights, cost.bias, cost.bn, cost.moving) == (864, 0, 32, 64)
        assert (cost.params, cost.macs) == (896, 19_181_664)


def test_gamma_counts_only_when_the_batch_norm_scales():
    scaled = _conv(attrs={"num_group": 1, "bn.fix_gamma": False}, parts=MX_BN_PARTS)
    assert layer_cost(scaled).bn == 2 * 32  # beta + gamma
    tf_scaled = _conv(attrs={"weight_shape": (3, 3, 3, 32), "bn.center": True, "bn.scale": True,
                             "bn.has_moving_stats": True}, parts=TF_BN_PARTS)
    assert layer_cost(tf_scaled).bn == 64
    uncentered = _conv(attrs={"weight_shape": (3, 3, 3, 32), "bn.center": False, "bn.scale": False,
                              "bn.has_moving_stats": True}, parts=TF_BN_PARTS)
    assert layer_cost(uncentered).bn == 0 and layer_cost(uncentered).moving == 64


def test_bias_from_a_folded_tf_part_or_the_mx_flag():
    tf_up = _conv(shape=(1, 320, 35, 35), in_shape=(1, 128, 35, 35), kernel=(1, 1),
                  attrs={"weight_shape": (1, 1, 128, 320), "has_bias": False},
                  parts=(Part(Kind.CONV, "c", "Conv2D"), Part(Kind.BIAS, "c/BiasAdd", "BiasAdd")))
    mx_up = _conv(shape=(1, 320, 35, 35), in_shape=(1, 128, 35, 35), kernel=(1, 1),
                  attrs={"num_group": 1, "has_bias": True})
    for record in (tf_up, mx_up):
        cost = layer_cost(record)
        assert (cost.weights, cost.bias, cost.bn, cost.moving) == (128 * 320, 320, 0, 0)
        assert cost.macs == 35 * 35 * 320 * 128


def test_grouped_and_depthwise_convs_divide_by_groups():
    grouped = _conv(shape=(1, 32, 10, 10), in_shape=(1, 16, 10, 10), attrs={"num_group": 4})
    assert conv_weights(grouped) == 3 * 3 * (16 // 4) * 32
    assert conv_macs(grouped) == 10 * 10 * 32 * 3 * 3 * 4
    tf_grouped = _conv(shape=(1, 32, 10, 10), in_shape=(1, 16, 10, 10), attrs={"weight_shape": (3, 3, 4, 32)})
    assert (conv_weights(tf_grouped), conv_macs(tf_grouped)) == (conv_weights(grouped), conv_macs(grouped))
    # TF depthwise filter (kh, kw, C, M): C*M outputs, each reads one input channel.
    tf_dw = LayerRecord("dw", Kind.DWCONV, "DepthwiseConv2dNative", ("x",), (1, 16, 10, 10), (1, 8, 10, 10),
                        (3, 3), (1, 1), (1, 1), attrs={"weight_shape": (3, 3, 8, 2), "multiplier": 2})
    mx_dw = LayerRecord("dw", Kind.DWCONV, "Convolution", ("x",), (1, 16, 10, 10), (1, 8, 10, 10),
                        (3, 3), (1, 1), (1, 1), attrs={"num_group": 8, "multiplier": 2})
    for record in (tf_dw, mx_dw):
        assert conv_weights(record) == 3 * 3 * 8 * 2
        assert conv_macs(record) == 10 * 10 * 16 * 3 * 3


def test_fully_connected_both_layouts_and_the_mx_flag():
    tf_fc = LayerRecord("fc", Kind.FC, "MatMul", ("x",), (1, 1001), (1, 1536),
                        attrs={"weight_shape": (1536, 1001), "transpose_b": False, "has_bias": False},
                        parts=(Part(Kind.FC, "fc", "MatMul"), Part(Kind.BIAS, "fc/BiasAdd", "BiasAdd")))
    tf_fc_t = LayerRecord("fc", Kind.FC, "MatMul", ("x",), (1, 1001), (1, 1536),
                          attrs={"weight_shape": (1001, 1536), "transpose_b": True},
                          parts=(Part(Kind.FC, "fc", "MatMul"), Part(Kind.BIAS, "fc/BiasAdd", "BiasAdd")))
    mx_fc = LayerRecord("fc", Kind.FC, "FullyConnected", ("x",), (1, 1001), (1, 1536),
                        attrs={"has_bias": True, "num_hidden": 1001})
    for record in (tf_fc, tf_fc_t, mx_fc):
        cost = layer_cost(record)
        assert (cost.weights, cost.bias, cost.macs) == (1536 * 1001, 1001, 1536 * 1001)
        assert cost.params == IRV2_FC_NO_AUX


def test_memory_bound_layers_have_no_macs_only_output_elements():
    for kind in (Kind.POOL_MAX, Kind.POOL_AVG, Kind.ADD, Kind.SCALE, Kind.CONCAT, Kind.ACT, Kind.SOFTMAX):
        record = LayerRecord("x", kind, "op", ("a",), (2, 320, 35, 35), (2, 320, 35, 35))
        cost = layer_cost(record)
        assert (cost.params, cost.moving, cost.macs, cost.out_elems) == (0, 0, 0, 320 * 35 * 35)


def test_counts_are_per_image_whatever_the_batch():
    one = _conv(attrs={"weight_shape": (3, 3, 3, 32)})
    eight = _conv(shape=(8, 32, 149, 149), in_shape=(8, 3, 299, 299), attrs={"weight_shape": (3, 3, 3, 32)})
    for record in (one, eight):
        cost = layer_cost(record)
        assert (cost.params, cost.macs, cost.out_elems) == (864, 149 * 149 * 32 * 3 * 3 * 3, 32 * 149 * 149)


def test_standalone_batch_norm_and_bias_records():
    bn = LayerRecord("bn", Kind.BN, "FusedBatchNormV3", ("x",), (1, 64, 7, 7), (1, 64, 7, 7),
                     attrs={"center": True, "scale": True, "has_moving_stats": True})
    assert (layer_cost(bn).bn, layer_cost(bn).moving) == (128, 128)
    mx_bn = LayerRecord("bn", Kind.BN, "BatchNorm", ("x",), (1, 64, 7, 7), (1, 64, 7, 7), attrs={"fix_gamma": True})
    assert (layer_cost(mx_bn).bn, layer_cost(mx_bn).moving) == (64, 128)
    bias = LayerRecord("b", Kind.BIAS, "BiasAdd", ("x",), (1, 64, 7, 7), (1, 64, 7, 7))
    assert layer_cost(bias).bias == 64
    constant_add = LayerRecord("b", Kind.BIAS, "AddV2", ("x",), (1, 64, 7, 7), (1, 64, 7, 7))
    assert layer_cost(constant_add).params == 0


def test_totals_sum_every_field():
    costs = [LayerCost("a", "conv", 10, 1, 2, 4, 100, 7), LayerCost("b", "fc", 20, 3, 0, 0, 20, 5)]
    total = totals(costs)
    assert (total.params, total.weights, total.bias, total.bn, total.moving, total.macs, total.out_elems,
            total.layers) == (36, 30, 4, 2, 4, 120, 12, 2)
    assert total.as_dict()["params"] == 36
    assert totals([_conv(attrs={"weight_shape": (3, 3, 3, 32)})]).weights == 864  # records are costed first


def test_human_counts():
    assert human(IRV2_PARAMS) == "59.18M"
    assert human(IRV2_MACS_299) == "13.16G"
    assert human(960) == "960"
    assert human(None) == "--"


# ------------------------------------------------------------------ the network

def _tf_flops(graph, op_types=("Conv2D", "DepthwiseConv2dNative", "MatMul")) -> int:
    """FLOPs per image that TF itself registers for a graph's conv and matmul ops (batch 1)."""
    from tensorflow.python.framework import ops as tf_ops

    return sum(tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value for op in graph.get_operations()
               if op.type in op_types)

def _by_name(result, side):
    records = result.tf_graph.records if side == "tf" else result.mx_graph.records
    return {record.name: record for record in records}


@pytest.mark.slow
def test_irv2_tf_totals_match_slim_parameter_counts(irv2_result):
    costs = layer_costs(result_records := irv2_result.tf_graph.records)
    assert len(costs) == len(result_records)
    total = totals(costs)
    print(f"\nInception-ResNet-v2 at 299 (TF records): {total.params:,} trainable parameters, "
          f"{total.moving:,} moving statistics, {total.macs:,} multiply-adds per image ({human(total.macs)})")
    assert total.params == IRV2_PARAMS
    assert total.moving == IRV2_MOVING
    trunk = totals([cost for cost in costs if "/AuxLogits/" not in cost.name])
    assert trunk.params == IRV2_PARAMS_NO_AUX
    assert total.params - trunk.params == IRV2_AUX_HEAD
    assert trunk.moving == IRV2_MOVING_NO_AUX
    # The breakdown IRV2.md gives: conv weights + FC, up-projection biases + FC bias, betas.
    assert trunk.weights == IRV2_CONV_WEIGHTS_NO_AUX + 1536 * 1001
    assert trunk.bias == IRV2_BIASES_NO_AUX + 1001
    assert trunk.bn == IRV2_BETAS_NO_AUX


@pytest.mark.slow
def test_irv2_multiply_adds_at_299(irv2_result):
    total = totals(irv2_result.tf_graph.records)
    assert total.macs == IRV2_MACS_299
    assert 12.5e9 < total.macs < 14.0e9  # the papers' era quotes ~13.2 G multiply-adds
    tf = _by_name(irv2_result, "tf")
    by_hand = {
        # out_h * out_w * out_c * k_h * k_w * in_c
        "InceptionResnetV2/Conv2d_1a_3x3": 149 * 149 * 32 * 3 * 3 * 3,  # 299 -> 149, stride 2 VALID
        "InceptionResnetV2/Conv2d_4a_3x3": 71 * 71 * 192 * 3 * 3 * 80,  # 73 -> 71 VALID
        "InceptionResnetV2/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7": 17 * 17 * 160 * 1 * 7 * 128,
        "InceptionResnetV2/Repeat_2/block8_1/Conv2d_1x1": 8 * 8 * 2080 * 1 * 1 * (192 + 256),  # up-projection
        "InceptionResnetV2/AuxLogits/Conv2d_2a_5x5": 1 * 1 * 768 * 5 * 5 * 128,
        "InceptionResnetV2/Logits/Logits": 1536 * 1001,
        "InceptionResnetV2/MaxPool_3a_3x3": 0,
    }
    assert by_hand["InceptionResnetV2/Conv2d_1a_3x3"] == 19_181_664
    assert by_hand["InceptionResnetV2/Conv2d_4a_3x3"] == 696_867_840
    for name, expected in by_hand.items():
        assert layer_cost(tf[name]).macs == expected, name
    # TF's own FLOP statistics of the same graph (2 per multiply-add), not porting.core.cost's.
    assert _tf_flops(irv2_result.tf_graph.graph) == 2 * IRV2_MACS_299


@pytest.mark.slow
def test_irv2_mx_port_costs_the_same_as_tf(irv2_result):
    tf_total, mx_total = totals(irv2_result.tf_graph.records), totals(irv2_result.mx_graph.records)
    # The MXNet symbol's records against slim's measured counts and the table-derived MACs.
    assert (mx_total.params, mx_total.moving, mx_total.macs) == (IRV2_PARAMS, IRV2_MOVING, IRV2_MACS_299)
    assert (tf_total.params, tf_total.moving, tf_total.macs) == (IRV2_PARAMS, IRV2_MOVING, IRV2_MACS_299)
    # MXNet's arguments also hold a fixed gamma per batch norm (fix_gamma=True), which is not trainable.
    gammas = [name for name in irv2_result.mx_graph.arg_shapes if name.endswith("_gamma")]
    assert len(gammas) == 204 + 2  # trunk + AuxLogits batch norms


@pytest.mark.slow
def test_cost_columns_align_with_the_report_rows(irv2_result):
    columns = cost_columns(irv2_result)
    assert len(columns.rows) == len(irv2_result.rows)
    assert columns.agree and columns.disagree == ()
    assert columns.tf.params == IRV2_PARAMS and columns.mx.params == IRV2_PARAMS
    assert sum(params for params, _ in columns.rows if params) == IRV2_PARAMS
    assert sum(macs for _, macs in columns.rows if macs) == IRV2_MACS_299
    first_conv = next(i for i, row in enumerate(irv2_result.rows)
                      if row.tf is not None and row.tf.name == "InceptionResnetV2/Conv2d_1a_3x3")
    assert columns.rows[first_conv] == (864 + 32, 19_181_664)
    data_row = next(i for i, row in enumerate(irv2_result.rows) if row.tf is not None and row.tf.kind == Kind.INPUT)
    assert columns.rows[data_row] == (0, 0)


# --------------------------------------------------------------------------- the report's columns

@pytest.mark.slow
def test_irv2_report_shows_cost_columns_totals_and_the_framework_counts(irv2_result):
    assert irv2_result.framework_params == {"tf": IRV2_PARAMS, "mx": IRV2_PARAMS}
    text = irv2_result.report("text")
    header = next(line for line in text.splitlines() if line.startswith("#"))
    assert "params" in header and "MACs" in header
    total = next(line for line in text.splitlines() if line.split()[:1] == ["total"])
    assert f"{IRV2_PARAMS:,}" in total and human(IRV2_MACS_299) in total
    assert (f"cost: {IRV2_PARAMS:,} trainable parameters, {IRV2_MOVING:,} moving statistics, "
            f"{human(IRV2_MACS_299)} multiply-adds per image (forward); TF trainable variables {IRV2_PARAMS:,}, "
            f"MXNet learnable arguments {IRV2_PARAMS:,}") in text
    conv = next(line for line in text.splitlines() if "InceptionResnetV2/Conv2d_1a_3x3 " in line)
    assert " 896 " in conv and human(19_181_664) in conv
    markdown = irv2_result.report("markdown")
    total_cells = next([cell.strip() for cell in line.split("|")] for line in markdown.splitlines()
                       if "| total " in line)
    assert f"{IRV2_PARAMS:,}" in total_cells and human(IRV2_MACS_299) in total_cells
    assert f"TF trainable variables {IRV2_PARAMS:,}" in markdown

    document = json.loads(irv2_result.report("json"))
    assert document["cost"]["tf"]["params"] == document["cost"]["mx"]["params"] == IRV2_PARAMS
    assert document["cost"]["tf"]["macs"] == IRV2_MACS_299 and document["cost"]["agree"] is True
    assert document["cost"]["framework_params"] == {"tf": IRV2_PARAMS, "mx": IRV2_PARAMS}
    assert sum(row["params"] or 0 for row in document["rows"]) == IRV2_PARAMS
    assert sum(row["macs"] or 0 for row in document["rows"]) == IRV2_MACS_299


def _tiny_pair(*, mx_bias: bool, fix_gamma: bool = True):
    """slim conv 3x3x3x4 + batch norm (no gamma), and an MX twin that may add a bias or a gamma."""
    from porting import compat

    tf, slim, mx = compat.import_tf(), compat.import_slim(), compat.import_mx()

    def tf_fn(images, num_classes, is_training=False):
        net = slim.conv2d(images, 4, 3, normalizer_fn=slim.batch_norm,
                          normalizer_params={"is_training": is_training, "epsilon": 1e-3}, scope="conv")
        return net, {"conv": net}

    def mx_fn(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1),
                                 no_bias=not mx_bias, name="conv")
        net = mx.sym.BatchNorm(net, eps=1e-3, momentum=0.9997, fix_gamma=fix_gamma, name="conv/BatchNorm")
        return mx.sym.Activation(net, act_type="relu", name="conv/Relu")

    return tf_fn, mx_fn


def test_an_extra_mx_bias_shows_in_the_row_the_totals_and_the_json():
    from porting.verifier.api import verify

    tf_fn, mx_fn = _tiny_pair(mx_bias=True)
    result = verify(tf=tf_fn, mx=mx_fn, size=8, classes=4, lint=False)
    weights_and_beta = 3 * 3 * 3 * 4 + 4
    assert result.framework_params == {"tf": weights_and_beta, "mx": weights_and_beta + 4}
    columns = cost_columns(result)
    assert not columns.agree and len(columns.disagree) == 1
    text = result.report("text")
    assert f"{weights_and_beta} (MX {weights_and_beta + 4})" in text
    assert [line.split()[:3] for line in text.splitlines() if line.split()[:1] == ["total"]] == \
        [["total", "TF", str(weights_and_beta)], ["total", "MX", str(weights_and_beta + 4)]]
    assert "cost differs: TF 112 parameters" in text and "MX 116 parameters" in text
    document = json.loads(result.report("json"))
    row = next(row for row in document["rows"] if row.get("mx_params") is not None)
    assert (row["params"], row["mx_params"]) == (weights_and_beta, weights_and_beta + 4)
    assert document["cost"]["disagree_rows"] == [row["index"]] and document["cost"]["agree"] is False


def test_learnable_arguments_skip_fixed_gammas_and_inputs_but_count_a_learned_gamma():
    from porting.verifier.api import verify

    tf_fn, fixed = _tiny_pair(mx_bias=False)
    result = verify(tf=tf_fn, mx=fixed, size=8, classes=4, lint=False)
    assert result.framework_params["mx"] == result.framework_params["tf"] == 3 * 3 * 3 * 4 + 4
    assert "conv/BatchNorm_gamma" in result.mx_graph.arg_shapes  # MXNet creates it even when fixed
    _, learned = _tiny_pair(mx_bias=False, fix_gamma=False)
    result = verify(tf=tf_fn, mx=learned, size=8, classes=4, lint=False)
    assert result.framework_params["mx"] == 3 * 3 * 3 * 4 + 4 + 4
    assert cost_columns(result).mx.params == result.framework_params["mx"]  # the cost model counts it too
