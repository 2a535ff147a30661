"""Weight transfer from the layer pairing: layouts per layer kind, fills, and every problem named."""
from __future__ import annotations

import numpy as np
import pytest

from porting import compat
from porting.verifier import weights
from porting.verifier.weights import WeightTransferError

SIZE = 12
CLASSES = 5


def _slim():
    return compat.import_slim()


def _mx():
    return compat.import_mx()


def tf_net(images, num_classes, is_training=False, scale=False, conv_bias=False):
    """conv+BN+relu -> (depthwise x2)+BN+relu -> conv with bias -> flatten (6x6x4) -> dense."""
    slim = _slim()
    params = {"is_training": is_training, "scale": scale, "decay": 0.9}
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], normalizer_fn=slim.batch_norm,
                        normalizer_params=params):
        net = slim.conv2d(images, 6, 3, stride=2, scope="Stem")  # 12 -> 6, pads (0, 1)
        net = slim.separable_conv2d(net, None, 3, depth_multiplier=2, scope="Depthwise")  # 12 channels
        net = slim.conv2d(net, 4, 1, normalizer_fn=None, activation_fn=None, scope="Proj")
        if conv_bias:
            net = slim.conv2d(net, 4, 1, normalizer_fn=None, scope="Extra")
        net = slim.flatten(net, scope="Flatten")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
    return logits, {"Logits": logits}


def mx_net(num_classes, *, names=True, fix_gamma=True, stem_bias=False, extra_layer=False, hidden=None,
           extra_bias=True):
    """The MXNet port of :func:`tf_net`; ``names=False`` leaves every name to MXNet (convolution0...)."""
    mx = _mx()

    def n(name):
        return {"name": name} if names else {}

    net = mx.sym.Variable("data")
    net = mx.sym.pad(net, mode="constant", pad_width=(0, 0, 0, 0, 0, 1, 0, 1), **n("Stem/pad"))
    net = mx.sym.Convolution(net, num_filter=6, kernel=(3, 3), stride=(2, 2), no_bias=not stem_bias, **n("Stem"))
    net = mx.sym.BatchNorm(net, eps=1e-3, fix_gamma=fix_gamma, **n("Stem/BatchNorm"))
    net = mx.sym.Activation(net, act_type="relu", **n("Stem/Relu"))
    net = mx.sym.Convolution(net, num_filter=12, num_group=6, kernel=(3, 3), pad=(1, 1), no_bias=True,
                             **n("Depthwise"))
    net = mx.sym.BatchNorm(net, eps=1e-3, fix_gamma=fix_gamma, **n("Depthwise/BatchNorm"))
    net = mx.sym.Activation(net, act_type="relu", **n("Depthwise/Relu"))
    net = mx.sym.Convolution(net, num_filter=4, kernel=(1, 1), **n("Proj"))
    if extra_layer:
        net = mx.sym.Convolution(net, num_filter=4, kernel=(1, 1), no_bias=not extra_bias, **n("Extra"))
        net = mx.sym.Activation(net, act_type="relu", **n("Extra/Relu"))
    net = mx.sym.flatten(net, **n("Flatten"))
    return mx.sym.FullyConnected(net, num_hidden=hidden or num_classes, **n("Logits"))


def _verify(tf_fn=tf_net, mx_fn=mx_net, **kwargs):
    from porting.verifier.api import verify

    return verify(tf=tf_fn, mx=mx_fn, size=SIZE, classes=CLASSES, is_training=False, lint=False, **kwargs)


def _plan(result):
    return weights.plan_transfer(result.tf_graph, result.mx_graph, result.pairs)


@pytest.fixture(scope="module")
def named():
    return _verify()


def test_plan_maps_every_parameter_with_its_layout(named):
    plan = _plan(named)
    assert not plan.problems and not plan.warnings
    by_mx = plan.by_mx_name()
    assert set(by_mx) == set(weights.mx_parameters(named.mx_graph))
    assert by_mx["Stem_weight"].transform == "hwio_to_oihw" and by_mx["Stem_weight"].tf_name == "Stem/weights"
    depthwise = by_mx["Depthwise_weight"]
    assert depthwise.transform == "depthwise_to_mx" and dict(depthwise.transform_args) == {"multiplier": 2}
    assert depthwise.tf_name == "Depthwise/depthwise_weights"
    dense = by_mx["Logits_weight"]
    assert dense.transform == "flatten_dense_to_mx"
    assert dict(dense.transform_args) == {"height": 6, "width": 6, "channels": 4}
    assert by_mx["Stem/BatchNorm_moving_var"].mx_kind == weights.AUX
    assert by_mx["Stem/BatchNorm_moving_var"].tf_name == "Stem/BatchNorm/moving_variance"
    gamma = by_mx["Stem/BatchNorm_gamma"]  # slim scale=False: a constant 1 in TF's graph
    assert gamma.source == weights.SOURCE_CONSTANT and "no scale" in gamma.note
    assert set(plan.tf_names()) == set(plan.tf_variables)


def test_transfer_values_and_parity(named):
    from porting.verifier import parity

    plan = _plan(named)
    values = weights.seeded_values(plan, seed=4)
    arg_params, aux_params, report = weights.transfer(plan, values)
    assert report.ok and len(report.set) == len(plan.mappings)
    np.testing.assert_array_equal(arg_params["Stem_weight"], values["Stem/weights"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(arg_params["Stem/BatchNorm_gamma"], np.ones(6, np.float32))
    np.testing.assert_array_equal(aux_params["Depthwise/BatchNorm_moving_mean"],
                                  values["Depthwise/BatchNorm/moving_mean"])
    assert set(aux_params) == set(named.mx_graph.aux_shapes)
    report = parity.numeric_parity(named.tf_graph, named.mx_graph, named.pairs, tf_values=values)
    assert report, report.summary()


def test_seeded_values_exercise_everything(named):
    plan = _plan(named)
    values = weights.seeded_values(plan, seed=0)
    assert set(values) == set(plan.tf_variables)
    variance = values["Stem/BatchNorm/moving_variance"]
    assert variance.min() >= 0.5 and variance.max() <= 1.5 and variance.std() > 0.05
    assert np.abs(values["Stem/BatchNorm/moving_mean"]).max() > 0
    assert np.abs(values["Stem/BatchNorm/beta"]).max() > 0 and np.abs(values["Proj/biases"]).max() > 0
    weight = values["Logits/weights"]  # He: std sqrt(2 / fan_in)
    assert weight.std() == pytest.approx(np.sqrt(2.0 / weight.shape[0]), rel=0.1)
    again = weights.seeded_values(plan, seed=0)
    assert all(np.array_equal(values[name], again[name]) for name in values)
    other = weights.seeded_values(plan, seed=1)
    assert not np.array_equal(values["Stem/weights"], other["Stem/weights"])


def test_values_from_a_live_session(named):
    tf = compat.import_tf()
    plan = _plan(named)
    values = weights.seeded_values(plan, seed=2)
    with tf.compat.v1.Session(graph=named.tf_graph.graph) as session:
        weights.assign_values(session, named.tf_graph.graph, values)
        read = weights.values_from_session(session, named.tf_graph, plan)
    assert set(read) == set(values)
    assert all(np.array_equal(read[name], values[name]) for name in values)


def test_automatic_mxnet_names_transfer_through_the_pairing():
    from porting.verifier import parity

    mx = compat.import_mx()

    def automatic(k):  # a fresh name counter: other tests' unnamed symbols must not shift convolution0
        with mx.name.NameManager():
            return mx_net(k, names=False)

    result = _verify(mx_fn=automatic)
    plan = _plan(result)
    assert not plan.problems
    by_mx = plan.by_mx_name()
    assert by_mx["convolution0_weight"].tf_name == "Stem/weights"
    assert by_mx["fullyconnected0_weight"].transform == "flatten_dense_to_mx"
    assert by_mx["batchnorm1_moving_var"].tf_name == "Depthwise/BatchNorm/moving_variance"
    report = parity.numeric_parity(result.tf_graph, result.mx_graph, result.pairs, seed=1)
    assert report, report.summary()


def test_zero_bias_where_mxnet_has_one_and_tf_has_none():
    result = _verify(mx_fn=lambda k: mx_net(k, stem_bias=True))
    plan = _plan(result)
    bias = plan.by_mx_name()["Stem_bias"]
    assert bias.source == weights.SOURCE_FILL and "no bias" in bias.note
    arg_params, _, report = weights.transfer(plan, weights.seeded_values(plan))
    np.testing.assert_array_equal(arg_params["Stem_bias"], np.zeros(6, np.float32))
    assert report.counts()["fill:bias"] == 1


def test_learned_gamma_transfers_and_fix_gamma_true_is_warned():
    from porting.verifier import parity

    scaled = lambda images, k, is_training=False: tf_net(images, k, is_training, scale=True)  # noqa: E731
    good = _verify(tf_fn=scaled, mx_fn=lambda k: mx_net(k, fix_gamma=False))
    plan = _plan(good)
    assert plan.by_mx_name()["Stem/BatchNorm_gamma"].tf_name == "Stem/BatchNorm/gamma" and not plan.warnings
    assert parity.numeric_parity(good.tf_graph, good.mx_graph, good.pairs)
    bad = _verify(tf_fn=scaled)
    assert any("fix_gamma=True" in warning and "Stem" in warning for warning in _plan(bad).warnings)


def test_missing_parameters_are_named_and_fail_unless_allowed():
    result = _verify(mx_fn=lambda k: mx_net(k, extra_layer=True))
    plan = _plan(result)
    missing = {p.name for p in plan.problems if p.kind == "missing"}
    assert missing == {"Extra_weight", "Extra_bias"}
    assert all("Extra" in (p.layer or "") for p in plan.problems)
    values = weights.seeded_values(plan)
    with pytest.raises(WeightTransferError) as caught:
        weights.transfer(plan, values)
    assert "Extra_weight" in str(caught.value) and "Extra_bias" in str(caught.value)
    assert {p.name for p in caught.value.report.problems} == missing
    arg_params, _, report = weights.transfer(plan, values, allow_missing=["Extra*"])
    assert report.ok and {p.name for p in report.allowed} == missing
    assert "Extra_weight" not in arg_params  # allowed to stay unset means absent, never a silent default


def test_unexpected_tf_variables_are_named_and_fail_unless_allowed():
    with_bias = lambda images, k, is_training=False: tf_net(images, k, is_training, conv_bias=True)  # noqa: E731
    result = _verify(tf_fn=with_bias, mx_fn=lambda k: mx_net(k, extra_layer=True, extra_bias=False))
    plan = _plan(result)
    assert [(p.kind, p.name) for p in plan.problems] == [("unexpected", "Extra/biases")]
    assert "no bias parameter" in plan.problems[0].reason
    with pytest.raises(WeightTransferError, match="Extra/biases"):
        weights.transfer(plan, weights.seeded_values(plan))
    _, _, report = weights.transfer(plan, weights.seeded_values(plan), allow_unexpected=["Extra/biases"])
    assert report.ok


def test_shape_mismatches_are_named_with_both_shapes():
    result = _verify(mx_fn=lambda k: mx_net(k, hidden=7))
    plan = _plan(result)
    mismatched = {p.name: p for p in plan.problems if p.kind == "mismatched"}
    assert set(mismatched) == {"Logits_weight", "Logits_bias"}
    weight = mismatched["Logits_weight"]
    assert weight.tf_name == "Logits/weights" and weight.tf_shape == (144, 5) and weight.mx_shape == (7, 144)
    with pytest.raises(WeightTransferError, match="144x5"):
        weights.transfer(plan, weights.seeded_values(plan))
    _, _, report = weights.transfer(plan, weights.seeded_values(plan), allow_missing=["Logits*"])
    assert report.ok and len(report.allowed) == 2


def test_values_that_lack_a_variable_or_disagree_in_shape(named):
    plan = _plan(named)
    values = weights.seeded_values(plan)
    del values["Proj/biases"]
    values["Stem/weights"] = np.zeros((3, 3, 3, 7), np.float32)
    values["global_step"] = np.int64(3)
    with pytest.raises(WeightTransferError) as caught:
        weights.transfer(plan, values)
    kinds = {(p.kind, p.name) for p in caught.value.report.problems}
    assert kinds == {("missing", "Proj_bias"), ("mismatched", "Stem_weight")}
    assert caught.value.report.ignored == ["global_step"]


def test_patterns_match_trailing_scope_parts():
    assert weights.matches("InceptionResnetV2/AuxLogits/Logits_weight", ["AuxLogits/*"])
    assert weights.matches("AuxLogits/Conv2d_1b_1x1/weights", ["AuxLogits/*"])
    assert not weights.matches("InceptionResnetV2/Logits/Logits_weight", ["AuxLogits/*"])
    assert weights.matches("a/b_bias", ["*_bias"]) and not weights.matches("a/b_bias", [])


def test_reverse_transfer_inverts_and_reports_what_tf_cannot_hold():
    result = _verify(mx_fn=lambda k: mx_net(k, stem_bias=True, fix_gamma=False))
    plan = _plan(result)
    values = weights.seeded_values(plan, seed=5)
    arg_params, aux_params, _ = weights.transfer(plan, values)
    back, report = weights.reverse_transfer(plan, arg_params, aux_params)
    assert report.ok and set(back) == set(values)
    assert all(back[name].tobytes() == values[name].tobytes() for name in values)  # bit for bit
    arg_params = dict(arg_params)
    arg_params["Stem_bias"] = np.full(6, 0.5, np.float32)  # fine-tuned in MXNet: TF has no bias here
    arg_params["Stem/BatchNorm_gamma"] = np.full(6, 2.0, np.float32)  # fix_gamma=False applies it
    with pytest.raises(WeightTransferError) as caught:
        weights.reverse_transfer(plan, arg_params, aux_params)
    lost = {p.name for p in caught.value.report.problems if p.kind == "lost"}
    assert lost == {"Stem_bias", "Stem/BatchNorm_gamma"}


def test_reverse_transfer_with_fix_gamma_true_ignores_gamma(named):
    plan = _plan(named)
    arg_params, aux_params, _ = weights.transfer(plan, weights.seeded_values(plan))
    arg_params["Stem/BatchNorm_gamma"] = np.full(6, 3.0, np.float32)  # MXNet never reads it
    _, report = weights.reverse_transfer(plan, {f"arg:{k}": v for k, v in arg_params.items()},
                                         {f"aux:{k}": v for k, v in aux_params.items()})
    assert report.ok and any("fix_gamma=True" in warning for warning in report.warnings)


def test_checkpoints_name_based_and_object_based_read_the_same(named, tmp_path):
    tf = compat.import_tf()
    plan = _plan(named)
    values = weights.seeded_values(plan, seed=7)
    prefix = weights.write_tf_checkpoint(named.tf_graph, values, tmp_path / "saver" / "model.ckpt")
    assert (tmp_path / "saver" / "model.ckpt.index").is_file()
    by_saver = weights.CheckpointValues(prefix)
    assert set(by_saver) == set(values)
    assert all(by_saver[name].tobytes() == values[name].tobytes() for name in values)
    # TF2's object-based tf.train.Checkpoint: keys are object paths, names come from full_name
    variables = {f"v{index}": tf.Variable(value, name=name) for index, (name, value) in enumerate(values.items())}
    written = tf.train.Checkpoint(**variables).write(str(tmp_path / "object" / "ckpt"))
    by_object = weights.CheckpointValues(written)
    assert set(by_object) == set(values)  # save_counter and the object graph are bookkeeping
    assert all(np.array_equal(by_object[name], values[name]) for name in values)
    assert weights.CheckpointValues(tmp_path / "saver").prefix.endswith("model.ckpt")  # a directory works too
    with pytest.raises(FileNotFoundError, match="nowhere"):
        weights.CheckpointValues(tmp_path / "nowhere" / "model.ckpt")
