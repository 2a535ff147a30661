"""The MXNet Inception-ResNet-v2 port (mx_impl/inception_resnet_v2.py) against slim's facts.

Shapes come from ``infer_shape`` over every internal output (cheap); the golden op and
variable tables under tests/golden were measured with slim itself.
"""
from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from porting import compat
from porting.core.naming import tf_to_mx

mx = compat.import_mx()

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402  (after the numpy shim)

GOLDEN = Path(__file__).parents[1] / "golden"
SCOPE = "InceptionResnetV2"
BATCH_299 = (1, 3, 299, 299)

# IRV2.md, converted to NCHW without the batch axis: default | align_feature_maps=True.
END_POINTS_DEFAULT = {
    "Conv2d_1a_3x3": (32, 149, 149), "Conv2d_2a_3x3": (32, 147, 147),
    "Conv2d_2b_3x3": (64, 147, 147), "MaxPool_3a_3x3": (64, 73, 73),
    "Conv2d_3b_1x1": (80, 73, 73), "Conv2d_4a_3x3": (192, 71, 71),
    "MaxPool_5a_3x3": (192, 35, 35), "Mixed_5b": (320, 35, 35), "Mixed_6a": (1088, 17, 17),
    "PreAuxLogits": (1088, 17, 17), "Mixed_7a": (2080, 8, 8), "Conv2d_7b_1x1": (1536, 8, 8),
    "global_pool": (1536, 1, 1), "PreLogitsFlatten": (1536,), "AuxLogits": (1001,),
    "Logits": (1001,), "Predictions": (1001,),
}
END_POINTS_ALIGNED = {
    "Conv2d_1a_3x3": (32, 150, 150), "Conv2d_2a_3x3": (32, 150, 150),
    "Conv2d_2b_3x3": (64, 150, 150), "MaxPool_3a_3x3": (64, 75, 75),
    "Conv2d_3b_1x1": (80, 75, 75), "Conv2d_4a_3x3": (192, 75, 75),
    "MaxPool_5a_3x3": (192, 38, 38), "Mixed_5b": (320, 38, 38), "Mixed_6a": (1088, 19, 19),
    "PreAuxLogits": (1088, 19, 19), "Mixed_7a": (2080, 10, 10), "Conv2d_7b_1x1": (1536, 10, 10),
    "global_pool": (1536, 1, 1), "PreLogitsFlatten": (1536,), "AuxLogits": (1001,),
    "Logits": (1001,), "Predictions": (1001,),
}
# output_stride=8 (up to PreAuxLogits): stride-1 Mixed_6a, dilated block17s.
END_POINTS_OS8 = {**{k: END_POINTS_DEFAULT[k] for k in irv2.BASE_END_POINTS[:8]},
                  "Mixed_6a": (1088, 33, 33), "PreAuxLogits": (1088, 33, 33)}

# Layers where slim's align_feature_maps=True SAME pads (0, 1): 150 -> 75 and 38 -> 19.
ASYMMETRIC_ALIGNED = {
    f"{SCOPE}/MaxPool_3a_3x3", f"{SCOPE}/Mixed_6a/Branch_0/Conv2d_1a_3x3",
    f"{SCOPE}/Mixed_6a/Branch_1/Conv2d_1a_3x3", f"{SCOPE}/Mixed_6a/Branch_2/MaxPool_1a_3x3",
}


# ------------------------------------------------------------------ helpers

def _nodes(sym) -> list[dict]:
    return json.loads(sym.tojson())["nodes"]


def _ops(sym, op: str) -> dict[str, dict]:
    return {node["name"]: node for node in _nodes(sym) if node["op"] == op}


def _tuple(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"-?\d+", text))


def _internal_shapes(sym, data_shape=BATCH_299) -> dict[str, tuple[int, ...]]:
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=data_shape)
    return dict(zip(internals.list_outputs(), out_shapes))


def _param_shapes(sym, data_shape=BATCH_299):
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    args = dict(zip(sym.list_arguments(), arg_shapes))
    args.pop("data")
    return args, dict(zip(sym.list_auxiliary_states(), aux_shapes))


def _end_point_shapes(data_shape=BATCH_299, **kwargs) -> dict[str, tuple[int, ...]]:
    """infer_shape of every end point symbol, batch axis dropped."""
    ends = irv2.get_end_points(**kwargs)
    group = mx.sym.Group(list(ends.values()))
    _, out_shapes, _ = group.infer_shape(data=data_shape)
    return {name: tuple(shape[1:]) for name, shape in zip(ends, out_shapes)}


def _tf_variables() -> list[dict]:
    with (GOLDEN / "irv2_slim_variables.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _golden_ops(variant: str) -> list[dict]:
    lines = (GOLDEN / f"irv2_slim_ops_{variant}.txt").read_text().splitlines()[2:]
    rows = []
    for line in lines:
        match = re.match(r"(\S+)\s+(\S+)\s+(\[.*?\])\s+(\[.*?\])\s+(\S+)\s+(\[.*?\])", line)
        assert match, line
        name, op_type, kernel, stride, padding, out = match.groups()
        rows.append(dict(layer=f"{SCOPE}/{name.rsplit('/', 1)[0]}", type=op_type,
                         kernel=_tuple(kernel), stride=_tuple(stride), padding=padding,
                         out=_tuple(out)))
    return rows


def _tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's SAME (before, after), written out here independently of porting.padding."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _mx_shape_of_tf(shape: tuple[int, ...]) -> tuple[int, ...]:
    """HWIO -> OIHW for conv weights, (in, out) -> (out, in) for FC, vectors unchanged."""
    if len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    if len(shape) == 2:
        return (shape[1], shape[0])
    return shape


@pytest.fixture(scope="module")
def full_aux():
    return irv2.build(1001)  # slim's default: AuxLogits on, full repeats


@pytest.fixture(scope="module")
def full_aligned():
    return irv2.get_symbol(1001, create_aux_logits=True, align_feature_maps=True)


# ---------------------------------------------------------------- end points

@pytest.mark.parametrize("kwargs, expected", [
    (dict(create_aux_logits=True), END_POINTS_DEFAULT),
    (dict(create_aux_logits=True, align_feature_maps=True), END_POINTS_ALIGNED),
    (dict(output_stride=8, final_endpoint="PreAuxLogits"), END_POINTS_OS8),
], ids=["default", "align_feature_maps", "output_stride_8"])
def test_end_point_shapes(kwargs, expected):
    assert _end_point_shapes(**kwargs) == expected
    # the sizes the builder tracked as Python ints (which chose every pad) agree
    assert irv2.end_point_shapes(**kwargs) == expected


def test_reduced_variant_keeps_end_point_shapes_and_has_fewer_params(full_aux):
    reduced = irv2.build_reduced(1001)
    assert _end_point_shapes(create_aux_logits=True, repeats=irv2.REDUCED_REPEATS) == END_POINTS_DEFAULT
    _, out_shapes, _ = reduced.infer_shape(data=BATCH_299)
    assert out_shapes == [(1, 1001)] * 3
    count = lambda sym: sum(math.prod(s) for s in _param_shapes(sym)[0].values())  # noqa: E731
    assert count(reduced) < count(full_aux) / 2


def test_build_contract(full_aux):
    assert full_aux.list_arguments()[0] == "data"
    assert full_aux.list_outputs() == [f"{SCOPE}/Logits/Logits_output",
                                       f"{SCOPE}/Logits/Predictions_output",
                                       f"{SCOPE}/AuxLogits/Logits_output"]
    _, out_shapes, _ = full_aux.infer_shape(data=(2, 3, 299, 299))
    assert out_shapes == [(2, 1001)] * 3
    plain = irv2.get_symbol(10)
    assert len(plain.list_outputs()) == 2 and not any("AuxLogits" in a for a in plain.list_arguments())


def test_final_endpoint_and_argument_errors():
    sym = irv2.get_symbol(final_endpoint="Mixed_5b")
    assert sym.list_outputs() == [f"{SCOPE}/Mixed_5b/concat_output"]
    with pytest.raises(ValueError, match="Available: Conv2d_1a_3x3"):
        irv2.get_symbol(final_endpoint="Mixed_8z")
    with pytest.raises(ValueError, match="PreAuxLogits"):
        irv2.get_symbol(output_stride=8)
    with pytest.raises(ValueError, match="output_stride"):
        irv2.get_symbol(output_stride=32)
    with pytest.raises(ValueError, match="image_size"):
        irv2.get_symbol(image_size=(299,))
    with pytest.raises(ValueError, match="AuxLogits"):
        irv2.get_symbol(final_endpoint="AuxLogits")
    features = irv2.get_symbol(0)
    assert features.infer_shape(data=BATCH_299)[1] == [(1, 1536, 1, 1)]


def test_end_point_names_and_global_pool_option():
    assert tuple(irv2.get_end_points(create_aux_logits=True)) == irv2.END_POINTS
    assert "AuxLogits" not in irv2.get_end_points()
    pooled = irv2.get_symbol(final_endpoint="global_pool", global_pool=True, image_size=(331, 299))
    node = _ops(pooled, "Pooling")[f"{SCOPE}/Logits/AvgPool_1a_8x8"]
    assert node["attrs"]["global_pool"] == "True"
    assert pooled.infer_shape(data=(1, 3, 331, 299))[1] == [(1, 1536, 1, 1)]


# ------------------------------------------------------------ every layer vs slim

@pytest.mark.parametrize("variant", ["default", "align_feature_maps"])
def test_every_conv_and_pool_matches_the_slim_op_table(variant, full_aux, full_aligned):
    """Kernel, stride, output shape and exact TF padding of all 253 conv/pool ops, by name."""
    sym = full_aux if variant == "default" else full_aligned
    shapes = _internal_shapes(sym)
    nodes = _nodes(sym)
    by_name = {node["name"]: node for node in nodes}
    rows = _golden_ops(variant)
    assert len(rows) == 253
    asymmetric = set()
    for row in rows:
        layer = row["layer"]
        node = by_name.get(layer)
        assert node is not None, f"{layer}: no MXNet layer of that name"
        attrs = node["attrs"]
        expected_op = {"Conv2D": ("Convolution", None), "MaxPool": ("Pooling", "max"),
                       "AvgPool": ("Pooling", "avg")}[row["type"]]
        assert (node["op"], attrs.get("pool_type")) == expected_op, layer
        assert _tuple(attrs["kernel"]) == row["kernel"], layer
        assert _tuple(attrs["stride"]) == row["stride"], layer
        out = row["out"]
        assert shapes[f"{layer}_output"] == (out[0], out[3], out[1], out[2]), layer
        # the real input: skip an explicit pad op the plan inserted
        source = nodes[node["inputs"][0][0]]
        pad_op = source if source["op"] == "Pad" else None
        if pad_op is not None:
            assert pad_op["name"] == f"{layer}/pad"
            source = nodes[pad_op["inputs"][0][0]]
        in_shape = shapes[f"{source['name']}_output"] if source["op"] != "null" else BATCH_299
        mx_pad = _tuple(attrs.get("pad", "(0, 0)"))
        convention = attrs.get("pooling_convention", "valid")
        if row["padding"] == "VALID":
            assert pad_op is None and mx_pad == (0, 0) and convention == "valid", layer
            continue
        pads = [_tf_same_pads(size, k, s)
                for size, k, s in zip(in_shape[2:], row["kernel"], row["stride"])]
        if all(before == after for before, after in pads):
            assert pad_op is None and convention == "valid", layer
            assert mx_pad == tuple(before for before, _ in pads), layer
        else:
            asymmetric.add(layer)
            if pad_op is not None:
                width = tuple(v for pair in pads for v in pair)
                assert _tuple(pad_op["attrs"]["pad_width"]) == (0, 0, 0, 0) + width, layer
                assert mx_pad == (0, 0), layer
                fill = float(pad_op["attrs"].get("constant_value", "0"))
                assert fill == (-math.inf if row["type"] == "MaxPool" else 0.0), layer
            else:
                assert node["op"] == "Pooling" and convention == "full", layer
                assert mx_pad == tuple(before for before, _ in pads), layer
        if row["type"] == "AvgPool":  # TF never counts padded cells
            assert attrs["count_include_pad"] == "False", layer
    assert asymmetric == (ASYMMETRIC_ALIGNED if variant == "align_feature_maps" else set())
    # and nothing beyond slim's ops
    mx_layers = {node["name"] for node in nodes if node["op"] in ("Convolution", "Pooling")}
    assert mx_layers == {row["layer"] for row in rows}
    extra_pads = {node["name"] for node in nodes if node["op"] == "Pad"}
    assert extra_pads == {f"{name}/pad" for name in asymmetric if "Conv2d" in name.rsplit("/", 1)[1]}


def test_output_stride_8_uses_stride_1_mixed_6a_and_dilated_block17():
    sym = irv2.get_symbol(output_stride=8, final_endpoint="PreAuxLogits")
    convs = _ops(sym, "Convolution")
    for name, node in convs.items():
        dilate = _tuple(node["attrs"].get("dilate", "(1, 1)"))
        assert dilate == ((2, 2) if "/Repeat_1/" in name else (1, 1)), name
    assert _tuple(convs[f"{SCOPE}/Mixed_6a/Branch_0/Conv2d_1a_3x3"]["attrs"]["stride"]) == (1, 1)
    # dilated 1x7 SAME: pad (0, 6) keeps 33 x 33
    conv = convs[f"{SCOPE}/Repeat_1/block17_1/Branch_1/Conv2d_0b_1x7"]["attrs"]
    assert _tuple(conv["pad"]) == (0, 6)


# ------------------------------------------------------------ parameters

def test_parameter_counts(full_aux):
    for sym, trainable, moving in ((full_aux, 59_182_258, 62_336),
                                   (irv2.get_symbol(1001), 55_814_729, 60_544)):
        args, aux = _param_shapes(sym)
        # gammas exist in MXNet but are fixed to 1 (fix_gamma=True): slim has none
        counted = {k: v for k, v in args.items() if not k.endswith("_gamma")}
        assert sum(math.prod(s) for s in counted.values()) == trainable
        assert sum(math.prod(s) for s in aux.values()) == moving
        assert all(k.endswith(("_moving_mean", "_moving_var")) for k in aux)


def test_every_tf_variable_maps_to_one_mx_param(full_aux):
    """The 1:1 join: TF variable -> porting.core.naming -> MXNet arg/aux of the transformed shape."""
    args, aux = _param_shapes(full_aux)
    params = {"arg": args, "aux": aux}
    matched = {"arg": set(), "aux": set()}
    rows = _tf_variables()
    assert len(rows) == 908
    for row in rows:
        mx_name, kind = tf_to_mx(row["name"])
        assert mx_name in params[kind], f"{row['name']}: no MXNet {kind} param {mx_name}"
        assert mx_name not in matched[kind], f"{mx_name}: two TF sources"
        tf_shape = tuple(int(v) for v in row["shape"].split("x"))
        assert params[kind][mx_name] == _mx_shape_of_tf(tf_shape), row["name"]
        matched[kind].add(mx_name)
    assert set(aux) == matched["aux"]
    unmatched = set(args) - matched["arg"]
    # exactly the fixed gammas of all 206 batch norms (204 trunk + 2 AuxLogits)
    assert all(name.endswith("/BatchNorm_gamma") for name in unmatched)
    assert len(unmatched) == 206 == len(_ops(full_aux, "BatchNorm"))


# ------------------------------------------------------------ hyperparameters

def test_batch_norm_attributes(full_aux):
    norms = _ops(full_aux, "BatchNorm")
    assert len(norms) == 206
    for name, node in norms.items():
        attrs = node["attrs"]
        assert name.endswith("/BatchNorm"), name
        assert attrs["fix_gamma"] == "True" and attrs["use_global_stats"] == "False", name
        assert float(attrs["eps"]) == 0.001 and float(attrs["momentum"]) == 0.9997, name


def test_biases_only_in_up_projections_and_fc(full_aux):
    convs = _ops(full_aux, "Convolution")
    with_bias = {name for name, node in convs.items() if node["attrs"].get("no_bias") != "True"}
    assert len(with_bias) == 40
    pattern = re.compile(rf"{SCOPE}/(Repeat(_1|_2)?/block(35|17|8)_\d+|Block8)/Conv2d_1x1$")
    assert all(pattern.match(name) for name in with_bias)
    fcs = _ops(full_aux, "FullyConnected")
    assert set(fcs) == {f"{SCOPE}/Logits/Logits", f"{SCOPE}/AuxLogits/Logits"}
    assert all(node["attrs"].get("no_bias", "False") == "False" for node in fcs.values())
    # conv -> BatchNorm -> Relu everywhere else
    norms = _ops(full_aux, "BatchNorm")
    relus = {n["name"] for n in _nodes(full_aux) if n["op"] == "Activation"}
    for name in set(convs) - with_bias:
        assert f"{name}/BatchNorm" in norms and f"{name}/Relu" in relus, name


def test_residual_scales_and_activations(full_aux):
    muls = _ops(full_aux, "_mul_scalar")
    adds = _ops(full_aux, "elemwise_add")
    relus = {n["name"] for n in _nodes(full_aux) if n["op"] == "Activation"}
    expected = {"block35": 0.17, "block17": 0.10, "block8": 0.20}
    assert len(muls) == 40
    for name, node in muls.items():
        block = name.rsplit("/", 1)[0]
        kind = block.rsplit("/", 1)[1]
        scale = 1.0 if kind == "Block8" else expected[kind.split("_")[0]]
        assert float(node["attrs"]["scalar"]) == pytest.approx(scale), name
        assert f"{block}/add" in adds, name
        assert (f"{block}/Relu" in relus) == (kind != "Block8"), name


def test_dropout_softmax_and_pools(full_aux):
    (dropout,) = _ops(full_aux, "Dropout").values()
    assert dropout["name"] == f"{SCOPE}/Logits/Dropout"
    assert float(dropout["attrs"]["p"]) == pytest.approx(0.2)
    softmax = _ops(full_aux, "softmax")[f"{SCOPE}/Logits/Predictions"]
    assert int(softmax["attrs"]["axis"]) == 1
    pools = _ops(full_aux, "Pooling")
    branch_3 = pools[f"{SCOPE}/Mixed_5b/Branch_3/AvgPool_0a_3x3"]["attrs"]
    assert branch_3["count_include_pad"] == "False" and _tuple(branch_3["pad"]) == (1, 1)


def test_training_head():
    k, smoothing = 5, 0.1
    sym = irv2.get_symbol(k, create_aux_logits=True, for_training=True,
                          label_smoothing=smoothing, repeats=irv2.REDUCED_REPEATS)
    assert irv2.LABEL_NAME in sym.list_arguments()
    heads = _ops(sym, "SoftmaxOutput")
    main = heads[f"{SCOPE}/Logits/Predictions"]["attrs"]
    aux = heads[f"{SCOPE}/AuxLogits/Predictions"]["attrs"]
    assert float(main["smooth_alpha"]) == pytest.approx(smoothing * (k - 1) / k)
    assert float(aux["smooth_alpha"]) == pytest.approx(smoothing * (k - 1) / k)
    assert float(aux["grad_scale"]) == pytest.approx(0.4)
    assert float(main.get("grad_scale", "1")) == 1.0
    _, out_shapes, _ = sym.infer_shape(data=BATCH_299, softmax_label=(1,))
    assert out_shapes == [(1, k), (1, k)]
    assert irv2.get_symbol(k, for_training=True).list_outputs() == [f"{SCOPE}/Logits/Predictions_output"]
    with pytest.raises(ValueError, match="for_training"):
        irv2.get_symbol(k, label_smoothing=0.1)


# ------------------------------------------------------------ running it

def _random_params(sym, data_shape, seed=0):
    rng = np.random.default_rng(seed)
    args, aux = _param_shapes(sym, data_shape)
    arg_params = {}
    for name, shape in args.items():
        if name == irv2.LABEL_NAME:
            continue
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        scale = 1.0 / math.sqrt(fan_in) if len(shape) > 1 else 0.1
        arg_params[name] = mx.nd.array(rng.normal(0.0, scale, shape).astype(np.float32))
    aux_params = {name: mx.nd.array((rng.uniform(0.5, 1.5, shape) if name.endswith("_var")
                                     else rng.normal(0.0, 0.1, shape)).astype(np.float32))
                  for name, shape in aux.items()}
    return arg_params, aux_params


@pytest.mark.parametrize("kwargs, size", [
    (dict(create_aux_logits=True), 139),  # smallest default-padding size with a 7x7 aux input
    (dict(align_feature_maps=True), 75),  # explicit pad ops and 'full' pools at 38 -> 19, 10 -> 5
], ids=["default_139", "aligned_75"])
def test_forward_small_input_is_finite(kwargs, size):
    sym = irv2.get_symbol(7, repeats=irv2.REDUCED_REPEATS, image_size=size, **kwargs)
    data_shape = (1, 3, size, size)
    arg_params, aux_params = _random_params(sym, data_shape)
    arg_params["data"] = mx.nd.array(np.random.default_rng(1).uniform(-1, 1, data_shape))
    executor = sym.bind(mx.cpu(), args=arg_params, aux_states=aux_params, grad_req="null")
    outputs = [out.asnumpy() for out in executor.forward(is_train=False)]
    assert [o.shape for o in outputs] == [(1, 7)] * len(sym.list_outputs())
    assert all(np.isfinite(o).all() for o in outputs)
    np.testing.assert_allclose(outputs[1].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(outputs[1], np.exp(outputs[0]) / np.exp(outputs[0]).sum(), rtol=1e-4)


def test_names_with_slashes_survive_checkpoint_round_trip(tmp_path):
    sym = irv2.get_symbol(final_endpoint="Mixed_5b", image_size=75)
    arg_params, aux_params = _random_params(sym, (1, 3, 75, 75))
    prefix = str(tmp_path / "irv2")
    mx.model.save_checkpoint(prefix, 0, sym, arg_params, aux_params)
    loaded_sym, loaded_args, loaded_aux = mx.model.load_checkpoint(prefix, 0)
    assert loaded_sym.tojson() == sym.tojson()
    assert set(loaded_args) == set(arg_params) and set(loaded_aux) == set(aux_params)
    name = f"{SCOPE}/Mixed_5b/Branch_1/Conv2d_0b_5x5/BatchNorm_moving_var"
    np.testing.assert_array_equal(loaded_aux[name].asnumpy(), aux_params[name].asnumpy())
    mx.nd.save(str(tmp_path / "plain.nd"), arg_params)
    assert set(mx.nd.load(str(tmp_path / "plain.nd"))) == set(arg_params)
