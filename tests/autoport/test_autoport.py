"""Tests of porting.autoport: registry, unsupported-op report, translators, CLI, zoo subset, hand port.

The zoo subset (marked slow) translates real tf_slim networks at small sizes and
requires the full verification to pass: shapes, lint, numeric parity of every
layer and of the deployed symbol. ``bench/autoport_zoo.py`` runs every network.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.autoport import registry, zoo  # noqa: E402
from porting.cli.autoport import main  # noqa: E402
from porting.autoport.pipeline import autoport  # noqa: E402
from porting.autoport.translate import UnsupportedOps, nhwc_broadcast_to_nchw, translate_graph  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ TF builders

def every_family(images, num_classes, is_training=False):
    """A small network touching every translator family (see docs/supported_ops.md)."""
    end_points = {}
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": is_training, "scale": True, "decay": 0.99}):
        net = slim.conv2d(images, 8, 4, stride=2, scope="Conv_s2")  # even kernel: asymmetric SAME pads
        net = slim.separable_conv2d(net, 12, 3, depth_multiplier=2, scope="Sep")  # depthwise M=2 + pointwise
        net = slim.conv2d(net, 12, 3, rate=2, scope="Dilated")  # SpaceToBatchND -> conv -> BatchToSpaceND
        padded = tf.pad(net, [[0, 0], [1, 1], [1, 1], [0, 0]])
        net = slim.conv2d(padded, 16, 3, stride=2, padding="VALID", activation_fn=tf.nn.relu6,
                          normalizer_fn=None, scope="PadConv")  # explicit Pad + VALID conv, with bias
    end_points["PadConv"] = net
    a = slim.max_pool2d(net, 3, stride=2, padding="SAME", scope="MaxPool")
    b = slim.avg_pool2d(net, 3, stride=2, padding="SAME", scope="AvgPool")
    net = tf.concat([a, tf.nn.elu(b)], axis=3, name="concat")
    net = tf.nn.lrn(net, depth_radius=2, bias=1.5, alpha=1e-3, beta=0.75, name="LRN")
    net = net * 0.75 - 0.25
    net = tf.maximum(net, -1.0) / 2.0
    net = tf.nn.leaky_relu(net, alpha=0.1) + tf.sigmoid(net) * tf.tanh(net)
    net = tf.nn.softplus(net)
    end_points["Mixed"] = net
    pooled = tf.reduce_mean(net, [1, 2], keepdims=True, name="GlobalPool")
    flat = tf.reshape(pooled, [net.shape[0], -1], name="Flatten")
    flat = slim.dropout(flat, 0.7, is_training=is_training, scope="Dropout")
    logits = slim.fully_connected(flat, num_classes, activation_fn=None, scope="Logits")
    side = slim.conv2d(pooled, num_classes, 1, activation_fn=None, scope="Side")
    logits = logits + tf.squeeze(side, [1, 2])
    end_points["Logits"] = logits
    end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
    return logits, end_points


def untranslatable(images, num_classes):
    """Two unsupported op types, each used twice, and one supported op with unsupported attributes."""
    net = slim.conv2d(images, 4, 3, scope="Conv")
    net = tf.math.cumsum(net, axis=3) + tf.math.cumsum(net, axis=2)
    net = tf.sin(net) * tf.sin(net + 1.0)
    net = tf.pad(net, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    logits = tf.reduce_mean(slim.conv2d(net, num_classes, 1, activation_fn=None, scope="Logits"), [1, 2])
    return logits, {"Logits": logits}


def spatial_flatten_dense(images, num_classes):
    """A dense layer on an NHWC flatten of a 3x3 map (the (H, W, C) vs (C, H, W) order trap)."""
    net = slim.conv2d(images, 6, 3, stride=2, scope="Conv")
    flat = tf.reshape(net, [net.shape[0], -1], name="Flatten")
    logits = slim.fully_connected(flat, num_classes, activation_fn=None, scope="Logits")
    return logits, {"Logits": logits}


def _outputs(graph_images_logits_endpoints):
    _, _, logits, end_points, _ = graph_images_logits_endpoints
    return list(dict.fromkeys([logits] + [t for t in end_points.values() if isinstance(t, tf.Tensor)]))


# ------------------------------------------------------------------ registry

def test_duplicate_registration_is_an_error():
    registry.load_all()

    @registry.translates("AutoportTestOnlyOp")
    def first(ctx, op):
        """A throwaway translator."""

    try:
        with pytest.raises(registry.DuplicateTranslator, match="AutoportTestOnlyOp.*already translated"):
            @registry.translates("AutoportTestOnlyOp")
            def second(ctx, op):
                """Registers the same op type again."""
        with pytest.raises(registry.DuplicateTranslator, match="Conv2D"):
            registry.translates("Conv2D")(lambda ctx, op: None)
        assert registry.lookup("AutoportTestOnlyOp").function is first
    finally:
        registry.unregister("AutoportTestOnlyOp")
    assert registry.lookup("AutoportTestOnlyOp") is None
    with pytest.raises(ValueError):
        registry.translates()


def test_every_family_has_translators_and_each_op_one_entry():
    ops = registry.supported_ops()
    assert len({t.op_type for t in ops}) == len(ops)
    assert {t.family for t in ops} == set(registry.FAMILY_MODULES)
    for op_type in ("Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool", "FusedBatchNormV3", "Relu", "Relu6",
                    "MatMul", "BiasAdd", "ConcatV2", "AddV2", "Mul", "Pad", "Reshape", "Squeeze", "Mean",
                    "LRN", "Softmax", "Identity"):
        assert registry.lookup(op_type) is not None, op_type


def test_supported_ops_doc_is_generated_from_the_registry(capsys):
    assert main(["--list-ops"]) == 0
    generated = capsys.readouterr().out
    committed = (ROOT / "docs" / "supported_ops.md").read_text()
    assert committed == generated, ("docs/supported_ops.md is stale: regenerate it with "
                                    "`python -m porting.autoport --list-ops > docs/supported_ops.md`")
    assert generated == registry.render_markdown()


def test_nhwc_broadcast_layout_on_a_tiny_array():
    per_channel = np.array([1.0, 2.0, 3.0])
    assert nhwc_broadcast_to_nchw(per_channel).shape == (1, 3, 1, 1)
    assert nhwc_broadcast_to_nchw(per_channel)[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0]
    # (H, W, C) = (1, 2, 3): value[h, w, c] = 10*w + c lands at [0, c, h, w]
    hwc = np.arange(2)[None, :, None] * 10 + np.arange(3)[None, None, :]
    moved = nhwc_broadcast_to_nchw(hwc)
    assert moved.shape == (1, 3, 1, 2)
    assert moved[0, 2, 0, 1] == 12


# ------------------------------------------------------------------ unsupported ops

def test_unsupported_ops_are_listed_all_at_once():
    from porting.frameworks.tf_reader import build_graph

    built = build_graph(untranslatable, (9, 9), 3, 1, None)
    with pytest.raises(UnsupportedOps) as caught:
        translate_graph(built[0], built[1], _outputs(built))
    error = caught.value
    assert sorted(error.missing) == ["Cumsum", "Sin"]
    assert len(error.missing["Cumsum"]) == 2 and len(error.missing["Sin"]) == 2
    assert [(op, reason.split(":")[0]) for op, _, reason in error.problems] == [("MirrorPad", "MirrorPad mode SYMMETRIC")]
    assert error.count == 5
    text = str(error)
    assert "5 TF ops cannot be translated" in text
    assert "Cumsum x2: Cumsum, Cumsum_1" in text and "Sin x2: Sin, Sin_1" in text
    assert "MirrorPad at MirrorPad" in text


def test_cli_reports_unsupported_ops_and_exits_1(tmp_path, capsys):
    builder = tmp_path / "net.py"
    builder.write_text(textwrap.dedent('''
        from porting import compat
        tf = compat.import_tf()

        def build(images, num_classes):
            net = tf.math.cumsum(images, axis=3)
            logits = tf.reduce_mean(tf.sin(net), [1, 2])
            return logits, {"Logits": logits}
    '''))
    code = main(["--tf", f"{builder}:build", "--size", "8", "--classes", "3", "--out", str(tmp_path / "net")])
    assert code == 1
    err = capsys.readouterr().err
    assert "Cumsum x1" in err and "Sin x1" in err
    report = json.loads((tmp_path / "net-report.json").read_text())
    assert report["autoport"]["unsupported"]["missing"]["Cumsum"]["count"] == 1
    assert not (tmp_path / "net-symbol.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["--out", "x"], "give --slim-net NAME or --tf"),
    (["--slim-net", "resnet_v1_50"], "--out PREFIX is required"),
    (["--slim-net", "resnet_v9", "--out", "x"], "unknown network 'resnet_v9'. Available: alexnet_v2"),
    (["--slim-net", "alexnet_v2", "--out", "x", "--size", "0"], "--size must be"),
    (["--tf", "no/such/file.py:build", "--out", "x"], "does not exist"),
])
def test_cli_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------ a network using every family

@pytest.fixture(scope="module")
def every_family_result():
    return autoport(every_family, size=(21, 23), classes=5, name="every_family")


def test_every_family_translates_and_verifies(every_family_result):
    outcome = every_family_result
    assert outcome, outcome.verdict_line()
    counts = outcome.translation.op_counts
    for op_type in ("Conv2D", "DepthwiseConv2dNative", "SpaceToBatchND", "BatchToSpaceND", "Pad", "MaxPool",
                    "AvgPool", "FusedBatchNormV3", "LRN", "ConcatV2", "Mul", "Sub", "RealDiv", "Maximum",
                    "Relu6", "Elu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Mean", "Reshape", "Squeeze",
                    "MatMul", "BiasAdd", "Softmax", "Identity"):
        assert counts[op_type] >= 1, op_type
    numeric = outcome.compare.numeric
    assert numeric["passed"] and numeric["failed"] == 0 and numeric["max_abs"] < 1e-4
    assert outcome.cross_check["differ"] == [] and outcome.cross_check["equal"] == outcome.cross_check["compared"]
    assert all(check["passed"] for check in outcome.deployed)
    # Training-mode facts reached the symbol: dropout rate and batch-norm decay.
    assert outcome.hints["dropout"] == {"Dropout": 0.7}
    assert set(outcome.hints["bn_decay"].values()) == {0.99}
    assert outcome.training_compare, outcome.training_compare.verdict_line()
    nodes = {node["name"]: node for node in json.loads(outcome.translation.symbol.tojson())["nodes"]}
    assert float(nodes["Dropout"]["attrs"]["p"]) == pytest.approx(0.3)
    assert float(nodes["Conv_s2/BatchNorm"]["attrs"]["momentum"]) == pytest.approx(0.99)


def test_layers_are_named_after_tf_scopes(every_family_result):
    symbol = every_family_result.translation.symbol
    args = set(symbol.list_arguments())
    assert {"Conv_s2_weight", "Conv_s2/BatchNorm_gamma", "Sep_weight", "Dilated_weight", "PadConv_weight",
            "PadConv_bias", "Logits_weight", "Logits_bias"} <= args
    assert {"Conv_s2/BatchNorm_moving_mean", "Conv_s2/BatchNorm_moving_var"} <= set(symbol.list_auxiliary_states())
    nodes = {node["name"]: node for node in json.loads(symbol.tojson())["nodes"]}
    assert nodes["Conv_s2/pad"]["op"] == "Pad"  # 4x4/2 SAME on 21x23: pads (1, 2), an explicit pad op
    assert nodes["PadConv"]["attrs"]["pad"] == "(1, 1)"  # tf.pad folded into the VALID conv
    assert nodes["Dilated"]["attrs"]["dilate"] == "(2, 2)"
    assert nodes["AvgPool"]["attrs"]["count_include_pad"] == "False"
    assert nodes["LRN"]["attrs"]["nsize"] == "5"


def test_written_files_load_and_predict_like_tf(every_family_result, tmp_path):
    from porting.autoport.pipeline import write_outputs

    outcome = every_family_result
    paths = write_outputs(outcome, tmp_path / "nested" / "tiny")  # parents are created
    assert all(path.exists() for path in paths.values())
    assert {path.stat().st_mode & 0o777 for path in paths.values()} == {0o644}  # params too
    assert sorted(p.name for p in (tmp_path / "nested").iterdir()) == sorted(p.name for p in paths.values())
    assert "PASSED" in paths["report_md"].read_text().splitlines()[2]
    assert json.loads(paths["report_json"].read_text())["autoport"]["passed"] is True
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(tmp_path / "nested" / "tiny"), 0)
    module = mx.mod.Module(symbol, data_names=("data",), label_names=None, context=mx.cpu())
    module.bind(data_shapes=[("data", (1, 3, 21, 23))], for_training=False)
    module.set_params(arg_params, aux_params)
    module.forward(mx.io.DataBatch([mx.nd.array(outcome.images.transpose(0, 3, 1, 2))]), is_train=False)
    logits = module.get_outputs()[0].asnumpy()
    np.testing.assert_allclose(logits, outcome.tf_outputs[outcome.translation.heads[0].name], rtol=1e-4, atol=1e-4)


def test_translated_symbol_trains_with_the_hand_port_conventions(every_family_result):
    from porting.training import network, optimizer  # noqa: F401  (optimizer registers slimrmsprop)
    from porting.training.symbol_heads import LABEL_NAME, training_symbol

    outcome = every_family_result
    symbol = training_symbol(outcome.translation.symbol, bn_momentum=0.9)
    assert symbol.list_outputs() == ["add_1/softmax_output"]  # the Predictions softmax is dropped
    attrs = symbol.attr_dict()
    assert attrs["Logits_bias"]["__wd_mult__"] == "0.0" and "__wd_mult__" not in attrs.get("Logits_weight", {})
    rng = np.random.default_rng(0)
    data = mx.nd.array(rng.uniform(-1, 1, (8, 3, 21, 23)))
    label = mx.nd.array(np.arange(8) % 5)
    module = mx.mod.Module(symbol, data_names=("data",), label_names=(LABEL_NAME,), context=mx.cpu())
    module.bind(data_shapes=[("data", data.shape)], label_shapes=[(LABEL_NAME, label.shape)])
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in outcome.arg_params.items()},
                       aux_params={k: mx.nd.array(v) for k, v in outcome.aux_params.items()})
    module.init_optimizer(optimizer="slimrmsprop", optimizer_params={"learning_rate": 0.01, "wd": 4e-5})
    metric = network.make_metric(symbol, 5)
    batch = mx.io.DataBatch([data], [label])
    losses = []
    for _ in range(6):
        module.forward_backward(batch)
        module.update()
        metric.reset()
        module.forward(batch, is_train=False)
        module.update_metric(metric, [label])
        losses.append(network.metric_values(metric)["ce"])
    assert losses[-1] < losses[0], losses


def test_spatial_flatten_before_dense_is_exact_and_verified():
    """TF flattens NHWC: the port transposes to NHWC before its flatten, and the verifier
    sees transpose + flatten as one NHWC flatten, so shapes, lint and numbers all agree."""
    outcome = autoport(spatial_flatten_dense, size=(7, 7), classes=4, name="flatten", hints=False)
    assert outcome.compare.numeric["passed"], outcome.verdict_line()
    assert all(check["passed"] for check in outcome.deployed)
    assert outcome.translation.params["Logits_weight"].transform == "dense_to_mx"
    assert not [f for f in outcome.compare.findings if f.severity == "error"]
    assert outcome.compare.summary()["verdict"] == "match", outcome.compare.report(only_problems=True)
    flatten = [r for r in outcome.compare.mx_graph.records if r.kind == "flatten" and r.attrs.get("spatial")]
    assert flatten and flatten[0].attrs["source_layout"] == "NHWC"


def test_a_training_graph_that_fails_to_build_is_a_note_not_an_error():
    def inference_only(images, num_classes, is_training=False):
        if is_training:
            raise NotImplementedError("this builder has no training mode")
        return spatial_flatten_dense(images, num_classes)

    outcome = autoport(inference_only, size=(7, 7), classes=4, name="inference_only", numeric=False)
    assert outcome.training_compare is None and outcome.hints == {}
    assert "no training-mode graph" in outcome.translation.notes[0]


def test_checkpoint_weights(tmp_path):
    from porting.verifier import weights as weights_lib
    from porting.frameworks.tf_reader import read_graph

    tf_graph = read_graph(spatial_flatten_dense, (7, 7), 4, 1, False)
    values = {name: np.full(shape, 0.01 * (index + 1), np.float32)
              for index, (name, shape) in enumerate(weights_lib.tf_variables(tf_graph.graph).items())}
    prefix = weights_lib.write_tf_checkpoint(tf_graph, values, tmp_path / "ckpt" / "model")
    outcome = autoport(spatial_flatten_dense, size=(7, 7), classes=4, checkpoint=prefix, hints=False)
    assert outcome.weights.startswith("checkpoint")
    np.testing.assert_array_equal(outcome.arg_params["Conv_bias"], values["Conv/biases"])
    from porting.autoport.pipeline import CheckpointError

    partial = weights_lib.write_tf_checkpoint(tf_graph, {"Conv/biases": values["Conv/biases"]}, tmp_path / "p" / "m")
    with pytest.raises(CheckpointError, match="lacks 3 of the graph's 4 variables"):
        autoport(spatial_flatten_dense, size=(7, 7), classes=4, checkpoint=partial, hints=False)


# ------------------------------------------------------------------ zoo subset

ZOO_SUBSET = ["alexnet_v2", "resnet_v1_50", "inception_v2"]


def test_zoo_table():
    assert len(zoo.ZOO) >= 17 and not any(net.skip for net in zoo.ZOO.values())
    with pytest.raises(zoo.UnknownNet, match="Available: alexnet_v2"):
        zoo.get("lenet")
    for name in ZOO_SUBSET:
        assert name in zoo.ZOO


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_SUBSET)
def test_zoo_network_autoports_and_verifies(name):
    net = zoo.get(name)
    outcome = autoport(zoo.builder(net), size=net.test_size, classes=net.classes, name=name,
                       hints=name in ("alexnet_v2", "resnet_v1_50"))  # a training graph doubles the TF build time
    assert outcome, outcome.verdict_line()
    assert outcome.compare.numeric["failed"] == 0
    assert outcome.cross_check["differ"] == []


@pytest.fixture(scope="module")
def irv2_small():
    net = zoo.get("inception_resnet_v2_small")
    return autoport(zoo.builder(net), size=net.test_size, classes=net.classes, name=net.name, hints=False)


@pytest.mark.slow
def test_irv2_small_autoports_and_verifies(irv2_small):
    assert irv2_small, irv2_small.verdict_line()
    assert irv2_small.compare.numeric["failed"] == 0


@pytest.mark.slow
def test_irv2_autoport_agrees_with_the_hand_port_and_tf(irv2_small):
    """Same TF weights into both MXNet networks: the hand port's through porting.core.naming's rule."""
    from mx_impl import inception_resnet_v2 as hand
    from porting.core import layouts
    from porting.core import naming

    outcome = irv2_small
    symbol = hand.get_symbol(1001, create_aux_logits=True, repeats=hand.SMALL_REPEATS, image_size=(299, 299))
    arg_params, aux_params = {}, {}
    for tf_name, value in outcome.tf_values.items():
        mx_name, kind = naming.tf_to_mx(tf_name)
        value = (layouts.hwio_to_oihw(value) if value.ndim == 4 else
                 layouts.dense_to_mx(value) if value.ndim == 2 else value)
        (aux_params if kind == naming.AUX else arg_params)[mx_name] = value
    for name in symbol.list_arguments():  # slim's batch norm has no gamma: fix_gamma=True ignores it
        if name.endswith("_gamma"):
            arg_params.setdefault(name, np.ones(1, np.float32))
    # The translation names its parameters exactly like the hand port (the naming rule).
    hand_params = set(symbol.list_arguments()) - {"data"}
    assert set(outcome.arg_params) == hand_params
    assert set(outcome.aux_params) == set(symbol.list_auxiliary_states())
    for name, value in outcome.arg_params.items():
        if not name.endswith("_gamma"):
            np.testing.assert_array_equal(value, arg_params[name], err_msg=name)
    shapes = dict(zip(symbol.list_arguments(), symbol.infer_shape(data=(1, 3, 299, 299))[0]))
    args = {name: mx.nd.array(np.broadcast_to(arg_params[name], shapes[name])) for name in hand_params}
    args["data"] = mx.nd.array(outcome.images.transpose(0, 3, 1, 2))
    aux = {name: mx.nd.array(aux_params[name]) for name in symbol.list_auxiliary_states()}
    hand_outputs = symbol.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null").forward(is_train=False)
    hand_by_name = dict(zip(symbol.list_outputs(), (value.asnumpy() for value in hand_outputs)))
    assert set(hand_by_name) == set(outcome.mx_outputs)  # Logits, Predictions, AuxLogits, same names
    for name, hand_value in hand_by_name.items():
        tf_value, auto_value = outcome.tf_outputs[name], outcome.mx_outputs[name]
        scale = max(1.0, float(np.abs(tf_value).max()))
        assert np.abs(hand_value - tf_value).max() <= 1e-4 * scale, name
        assert np.abs(auto_value - tf_value).max() <= 1e-4 * scale, name
        assert np.abs(hand_value - auto_value).max() <= 1e-4 * scale, name


@pytest.mark.slow
def test_irv2_parameter_count_is_slims(irv2_small):
    """Frozen constants (slim's gamma = 1) are not parameters; the count is TF's trainable one."""
    trainable = sum(int(np.size(value)) for name, value in irv2_small.tf_values.items() if "moving_" not in name)
    assert irv2_small.parameters == trainable
    assert any(name.endswith("_gamma") for name in irv2_small.arg_params)  # present, but not counted
