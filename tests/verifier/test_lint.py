"""porting.verifier.lint: one deliberately wrong port per check, and its correct twin.

Every test builds a tiny TF network (a few slim layers on an 8x8 or 16x16
input) and a tiny MXNet symbol, runs ``verify()`` (which runs the lint), and
looks at the findings of one check: the wrong port must trigger it with the
right severity, the correct twin must not. ``WRONG_PORTS`` holds one wrong port per
check (built once per module by the ``wrong_port`` fixture), and a test parametrized over
the registry proves every registered check fires on its own. Our own pair comes from the
shared session fixture ``irv2_reduced_result``.
"""
from __future__ import annotations

import json

import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.verifier import lint  # noqa: E402  (after the shims)
from porting.cli.compare import main  # noqa: E402
from porting.verifier.api import verify  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

def findings(result, check: str) -> list[lint.Finding]:
    return [finding for finding in result.findings if finding.check == check]


def severities(result, check: str) -> list[str]:
    return [str(finding.severity) for finding in findings(result, check)]


def run(tf_fn, mx_fn, size: int = 8, classes: int = 4, **kwargs):
    return verify(tf=tf_fn, mx=mx_fn, size=size, classes=classes, **kwargs)


@pytest.fixture(scope="module")
def wrong_port(tmp_path_factory):
    """``wrong_port(check)``: the comparison of ``WRONG_PORTS[check]``, built once per module."""
    built = {}

    def get(check: str):
        if check not in built:
            built[check] = WRONG_PORTS[check](tmp_path_factory.mktemp(check))
        return built[check]

    return get


# ---------------------------------------------------------------- tiny builders

def tf_conv(*, eps=1e-3, decay=0.9997, scale=False, center=True, activation=tf.nn.relu, rate=1,
            normalize=True):
    """slim.conv2d 4x3x3 SAME ('conv'), with batch norm unless normalize=False (then with a bias)."""

    def build(images, num_classes, is_training=True):
        params = dict(decay=decay, epsilon=eps, scale=scale, center=center, is_training=is_training)
        net = slim.conv2d(images, 4, 3, rate=rate, activation_fn=activation,
                          normalizer_fn=slim.batch_norm if normalize else None,
                          normalizer_params=params if normalize else None, scope="conv")
        return net, {"conv": net}

    return build


def mx_conv(*, eps=1e-3, momentum=0.9997, fix_gamma=True, act="relu", dilate=1, no_bias=True, bias=None,
            beta=None, normalize=True, use_global_stats=False, axis=1):
    """The MXNet twin of ``tf_conv``; every argument is one way to get the port wrong."""

    def build(num_classes):
        extra = {"bias": bias} if bias is not None else {}
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(dilate, dilate),
                                 dilate=(dilate, dilate), no_bias=no_bias, name="conv", **extra)
        if normalize:
            extra = {"beta": beta} if beta is not None else {}
            net = mx.sym.BatchNorm(net, eps=eps, momentum=momentum, fix_gamma=fix_gamma, axis=axis,
                                   use_global_stats=use_global_stats, name="conv/BatchNorm", **extra)
        if act == "relu":
            net = mx.sym.Activation(net, act_type="relu", name="conv/Relu")
        elif act == "relu6":
            net = mx.sym.clip(net, a_min=0, a_max=6, name="conv/Relu6")
        return net

    return build


def tf_head(*, keep_prob=0.8, predictions=False):
    """Global mean -> dropout -> logits (FC); ``predictions`` adds a softmax end point."""

    def build(images, num_classes, is_training=True):
        net = tf.reduce_mean(images, [1, 2], name="global_pool")
        net = slim.dropout(net, keep_prob, is_training=is_training, scope="Dropout")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
        end_points = {"Logits": logits}
        if predictions:
            end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
        return logits, end_points

    return build


def mx_head(*, p=0.2, mode="training", classes=None, outputs=("logits",)):
    """The MXNet twin of ``tf_head``; ``outputs`` orders the Group ('logits', 'softmax')."""

    def build(num_classes):
        net = mx.sym.mean(mx.sym.Variable("data"), axis=(2, 3), name="global_pool")
        net = mx.sym.Dropout(net, p=p, mode=mode, name="Dropout")
        logits = mx.sym.FullyConnected(net, num_hidden=classes or num_classes, name="Logits")
        heads = {"logits": logits, "softmax": mx.sym.softmax(logits, axis=1, name="Predictions")}
        return heads[outputs[0]] if len(outputs) == 1 else mx.sym.Group([heads[name] for name in outputs])

    return build


def tf_pool(kind: str, kernel, stride, padding):
    def build(images, num_classes, is_training=True):
        layer = slim.max_pool2d if kind == "max" else slim.avg_pool2d
        net = layer(images, kernel, stride=stride, padding=padding, scope="pool")
        return net, {"pool": net}

    return build


def mx_pool(kind: str, kernel, stride, pad=(0, 0), *, pre_pad=None, pad_value=0.0, **kwargs):
    def build(num_classes):
        net = mx.sym.Variable("data")
        if pre_pad is not None:
            net = mx.sym.pad(net, mode="constant", constant_value=pad_value, pad_width=(0, 0, 0, 0, *pre_pad),
                             name="pool/pad")
        return mx.sym.Pooling(net, kernel=kernel, stride=stride, pad=pad, pool_type=kind, name="pool", **kwargs)

    return build


# ------------------------------------------------------------------------ dropout

def test_dropout_keep_prob_as_p_is_an_error_and_the_drop_probability_is_clean(wrong_port):
    wrong = wrong_port("dropout")
    (finding,) = findings(wrong, "dropout")
    assert finding.severity == lint.Severity.ERROR
    assert (finding.tf, finding.mx) == ("keep_prob 0.8", "p 0.8")
    assert "p=0.2" in finding.fix and not wrong  # an error fails the comparison
    assert findings(run(tf_head(keep_prob=0.8), mx_head(p=0.2)), "dropout") == []


def test_dropout_other_rate_is_a_warning_and_mode_always_an_error():
    assert severities(run(tf_head(keep_prob=0.8), mx_head(p=0.3)), "dropout") == ["warning"]
    assert severities(run(tf_head(keep_prob=0.8), mx_head(p=0.2, mode="always")), "dropout") == ["error"]


def test_dropout_in_an_inference_graph_is_reported_as_not_visible():
    result = run(tf_head(keep_prob=0.8), mx_head(p=0.8), is_training=False)
    (finding,) = findings(result, "dropout")
    assert finding.severity == lint.Severity.INFO and "not visible" in finding.tf


# --------------------------------------------------------------------- batch norm

def test_bn_eps(wrong_port):
    wrong = wrong_port("bn_eps")
    (finding,) = findings(wrong, "bn_eps")
    assert finding.severity == lint.Severity.ERROR and "eps=0.001" in finding.fix
    assert findings(run(tf_conv(eps=1e-3), mx_conv(eps=1e-3)), "bn_eps") == []


def test_bn_momentum_is_a_training_warning(wrong_port):
    wrong = wrong_port("bn_momentum")
    (finding,) = findings(wrong, "bn_momentum")
    assert finding.severity == lint.Severity.WARNING and (finding.tf, finding.mx) == ("decay 0.9997", "momentum 0.9")
    assert findings(run(tf_conv(decay=0.9997), mx_conv(momentum=0.9997)), "bn_momentum") == []


def test_bn_decay_is_not_visible_in_an_inference_graph():
    result = run(tf_conv(decay=0.9997), mx_conv(momentum=0.9), is_training=False)
    assert severities(result, "bn_momentum") == ["info"]


@pytest.mark.parametrize("scale, fix_gamma, expected", [(False, False, ["info"]), (True, True, ["error"]),
                                                        (False, True, []), (True, False, [])])
def test_bn_gamma_follows_scale(scale, fix_gamma, expected):
    """A learned gamma where slim has none is equal at inference while it holds 1 (issue 15: info)."""
    result = run(tf_conv(scale=scale), mx_conv(fix_gamma=fix_gamma))
    assert severities(result, "bn_gamma") == expected


def test_bn_beta_without_tf_center_must_be_frozen(wrong_port):
    wrong = wrong_port("bn_beta")
    assert severities(wrong, "bn_beta") == ["warning"]
    frozen = mx.sym.Variable("conv/BatchNorm_beta", lr_mult=0, wd_mult=0, init=mx.init.Zero())
    assert findings(run(tf_conv(center=False), mx_conv(beta=frozen)), "bn_beta") == []
    assert severities(run(tf_conv(center=True), mx_conv(beta=frozen)), "bn_beta") == ["warning"]


def tf_batch_stats_only(images, num_classes, is_training=True):
    """A batch norm without moving statistics: it normalizes with the batch's, even at inference."""
    net = slim.conv2d(images, 4, 3, activation_fn=None, scope="conv")
    net, _, _ = tf.compat.v1.nn.fused_batch_norm(net, tf.ones([4]), tf.zeros([4]), epsilon=1e-3,
                                                 is_training=True, name="conv/BatchNorm")
    return tf.nn.relu(net, name="conv/Relu"), {}


def test_bn_moving_stats(wrong_port):
    (finding,) = findings(wrong_port("bn_moving_stats"), "bn_moving_stats")
    assert finding.severity == lint.Severity.ERROR
    assert findings(run(tf_conv(), mx_conv()), "bn_moving_stats") == []
    assert severities(run(tf_conv(), mx_conv(use_global_stats=True)), "bn_moving_stats") == ["warning"]


def test_batch_norm_missing_on_one_side_or_wrong_axis(wrong_port):
    assert severities(wrong_port("batch_norm"), "batch_norm") == ["error"]
    assert severities(run(tf_conv(normalize=False), mx_conv(normalize=False, no_bias=False)), "batch_norm") == []
    assert severities(run(tf_conv(), mx_conv(axis=3)), "batch_norm") == ["error"]


# ------------------------------------------------------------------ conv and fc

def test_conv_bias_on_the_mx_side_only(wrong_port):
    wrong = wrong_port("conv_bias")
    (finding,) = findings(wrong, "conv_bias")
    # A batch norm follows: it subtracts the mean, so the bias is harmless (issue 15: info; without a
    # batch norm it is an error, see test_lint_consequence.py).
    assert finding.severity == lint.Severity.INFO and "no_bias=True" in finding.fix
    frozen = mx.sym.Variable("conv_bias", lr_mult=0, init=mx.init.Zero())
    assert severities(run(tf_conv(), mx_conv(no_bias=False, bias=frozen)), "conv_bias") == ["info"]
    assert findings(run(tf_conv(), mx_conv(no_bias=True)), "conv_bias") == []


def test_conv_bias_on_the_tf_side_only():
    wrong = run(tf_conv(normalize=False), mx_conv(normalize=False, no_bias=True))
    assert severities(wrong, "conv_bias") == ["error"]
    assert findings(run(tf_conv(normalize=False), mx_conv(normalize=False, no_bias=False)), "conv_bias") == []


def test_activation_slim_implicit_relu_and_relu6(wrong_port):
    (finding,) = findings(wrong_port("activation"), "activation")
    assert finding.severity == lint.Severity.ERROR and "activation_fn=tf.nn.relu" in finding.message
    assert severities(run(tf_conv(activation=None), mx_conv(act="relu")), "activation") == ["error"]
    (finding,) = findings(run(tf_conv(activation=tf.nn.relu6), mx_conv(act="relu")), "activation")
    assert "clip" in finding.fix
    assert findings(run(tf_conv(activation=tf.nn.relu6), mx_conv(act="relu6")), "activation") == []
    assert findings(run(tf_conv(), mx_conv(act="relu")), "activation") == []


def test_dilation(wrong_port):
    assert severities(wrong_port("dilation"), "dilation") == ["error"]
    assert findings(run(tf_conv(rate=2), mx_conv(dilate=2)), "dilation") == []


# ------------------------------------------------------------------------ pooling

def test_avg_pool_over_padding_must_not_count_pads(wrong_port):
    tf_fn = tf_pool("avg", 3, 1, "SAME")
    (finding,) = findings(wrong_port("avg_pool_padding"), "avg_pool_padding")
    assert finding.severity == lint.Severity.ERROR and "count_include_pad=False" in finding.fix
    explicit = mx_pool("avg", (3, 3), (1, 1), pre_pad=(1, 1, 1, 1), count_include_pad=False)
    assert severities(run(tf_fn, explicit), "avg_pool_padding") == ["error"]  # zeros of a pad op are data
    correct = mx_pool("avg", (3, 3), (1, 1), (1, 1), count_include_pad=False)
    assert findings(run(tf_fn, correct), "avg_pool_padding") == []


def test_max_pool_explicit_pad_must_be_minus_inf(wrong_port):
    tf_fn = tf_pool("max", 3, 2, "SAME")  # 8 -> 4, TF pads (0, 1)
    assert severities(wrong_port("max_pool_padding"), "max_pool_padding") == ["error"]
    correct = mx_pool("max", (3, 3), (2, 2), pre_pad=(0, 1, 0, 1), pad_value=float("-inf"))
    assert findings(run(tf_fn, correct), "max_pool_padding") == []


def test_pooling_convention_against_tf_output_size(wrong_port):
    tf_fn = tf_pool("max", 3, 2, "SAME")  # 8 -> 4
    (finding,) = findings(wrong_port("pooling_convention"), "pooling_convention")
    assert finding.severity == lint.Severity.ERROR and "pooling_convention='full'" in finding.fix
    correct = mx_pool("max", (3, 3), (2, 2), pooling_convention="full")
    assert findings(run(tf_fn, correct), "pooling_convention") == []


def test_global_pool_vs_a_kernel_over_the_whole_map(wrong_port):
    whole_map = tf_pool("avg", 8, 2, "VALID")
    (finding,) = findings(run(whole_map, mx_pool("avg", (1, 1), (1, 1), global_pool=True)), "global_pool")
    assert finding.severity == lint.Severity.INFO
    assert severities(wrong_port("global_pool"), "global_pool") == ["error"]
    assert findings(run(whole_map, mx_pool("avg", (8, 8), (2, 2))), "global_pool") == []


# ---------------------------------------------------------- LRN, concat, softmax

def tf_lrn(images, num_classes, is_training=True):
    net = slim.conv2d(images, 8, 1, activation_fn=None, normalizer_fn=None, scope="conv")
    net = tf.nn.lrn(net, depth_radius=2, bias=1.0, alpha=1e-4, beta=0.75, name="norm")
    return net, {}


def mx_lrn(alpha):
    def build(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=8, kernel=(1, 1), name="conv")
        return mx.sym.LRN(net, nsize=5, alpha=alpha, beta=0.75, knorm=1.0, name="norm")

    return build


def test_lrn_parameter_mapping(wrong_port):
    (finding,) = findings(wrong_port("lrn"), "lrn")
    assert finding.severity == lint.Severity.ERROR and "unscaled" in finding.message and "alpha=0.0005" in finding.fix
    assert findings(run(tf_lrn, mx_lrn(5e-4)), "lrn") == []


def tf_concat(images, num_classes, is_training=True):
    a = slim.conv2d(images, 4, 1, scope="a")
    b = slim.conv2d(images, 4, 1, scope="b")
    return tf.concat([a, b], 3, name="concat"), {}


def mx_concat(dim):
    def build(num_classes):
        data = mx.sym.Variable("data")
        a = mx.sym.relu(mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), name="a"), name="a/Relu")
        b = mx.sym.relu(mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), name="b"), name="b/Relu")
        return mx.sym.concat(a, b, dim=dim, name="concat")

    return build


def test_concat_axis(wrong_port):
    assert severities(wrong_port("concat_axis"), "concat_axis") == ["error"]
    assert findings(run(tf_concat, mx_concat(1)), "concat_axis") == []


def tf_softmax(images, num_classes, is_training=True):
    net = slim.conv2d(images, 4, 1, activation_fn=None, normalizer_fn=None, scope="conv")
    return tf.nn.softmax(net, name="prob"), {}


def mx_softmax(kind):
    def build(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(1, 1), name="conv")
        if kind == "default":
            return mx.sym.softmax(net, name="prob")  # axis=-1: the width
        if kind == "output":
            return mx.sym.SoftmaxOutput(net, name="prob")  # flattens C*H*W
        return mx.sym.softmax(net, axis=1, name="prob")

    return build


def test_softmax_axis_on_feature_maps(wrong_port):
    assert severities(wrong_port("softmax_axis"), "softmax_axis") == ["error"]
    assert severities(run(tf_softmax, mx_softmax("output")), "softmax_axis") == ["error"]
    assert findings(run(tf_softmax, mx_softmax("channels")), "softmax_axis") == []


def tf_flatten_dense(images, num_classes, is_training=True):
    net = slim.conv2d(images, 4, 3, stride=4, normalizer_fn=None, scope="conv")  # 2 x 2 x 4
    net = slim.flatten(net, scope="flatten")
    return slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits"), {}


def mx_flatten_dense(transpose):
    def build(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), stride=(4, 4),
                                 pad=(1, 1), name="conv")
        net = mx.sym.Activation(net, act_type="relu", name="conv/Relu")
        if transpose:
            net = mx.sym.transpose(net, axes=(0, 2, 3, 1), name="to_nhwc")
        net = mx.sym.flatten(net, name="flatten")
        return mx.sym.FullyConnected(net, num_hidden=num_classes, name="Logits")

    return build


def test_flatten_order_before_a_dense_layer(wrong_port):
    (finding,) = findings(wrong_port("flatten_order"), "flatten_order")
    assert finding.severity == lint.Severity.ERROR and "transpose" in finding.fix
    assert findings(run(tf_flatten_dense, mx_flatten_dense(True)), "flatten_order") == []


# --------------------------------------------------------------------------- head

def test_num_classes_1001_vs_1000(wrong_port):
    (finding,) = findings(wrong_port("num_classes"), "num_classes")
    assert finding.severity == lint.Severity.ERROR and "background" in finding.message
    assert findings(run(tf_head(), mx_head(), classes=10), "num_classes") == []
    assert severities(run(tf_head(), mx_head(), classes=1001), "num_classes") == ["info"]


def test_logits_vs_softmax_output(wrong_port):
    wrong = wrong_port("output_kind")
    (finding,) = findings(wrong, "output_kind")
    assert finding.severity == lint.Severity.INFO and (finding.tf, finding.mx.split(" (")[0]) == (
        "logits", "softmax probabilities")  # issue 15: a softmax head vs logits is never a failure
    assert findings(run(tf_head(predictions=True), mx_head(outputs=("logits", "softmax"))), "output_kind") == []


def tf_aux(images, num_classes, is_training=True):
    net = slim.conv2d(images, 4, 3, normalizer_fn=None, scope="conv")
    aux = slim.fully_connected(tf.reduce_mean(net, [1, 2]), num_classes, activation_fn=None,
                               scope="AuxLogits/Logits")
    logits = slim.fully_connected(tf.reduce_mean(images, [1, 2]), num_classes, activation_fn=None,
                                  scope="Logits")
    return logits, {"AuxLogits": aux, "Logits": logits}


def mx_aux(with_aux):
    def build(num_classes):
        data = mx.sym.Variable("data")
        logits = mx.sym.FullyConnected(mx.sym.mean(data, axis=(2, 3)), num_hidden=num_classes, name="Logits")
        if not with_aux:
            return logits
        net = mx.sym.Activation(mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv"),
                                act_type="relu", name="conv/Relu")
        aux = mx.sym.FullyConnected(mx.sym.mean(net, axis=(2, 3)), num_hidden=num_classes,
                                    name="AuxLogits/Logits")
        return mx.sym.Group([logits, aux])

    return build


def test_aux_head_on_one_side_only(wrong_port):
    (finding,) = findings(wrong_port("aux_head"), "aux_head")
    assert finding.severity == lint.Severity.WARNING
    assert findings(run(tf_aux, mx_aux(True)), "aux_head") == []


# ------------------------------------------------------------------ shape comments

TINY_TF_SOURCE = '''\
"""A tiny TF builder whose shape comments describe a 16 x 16 input."""
from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()

DEFAULT_IMAGE_SIZE = 16


def build(images, num_classes, is_training=True):
    net = slim.conv2d(images, 8, 3, stride=2, normalizer_fn=None, scope="Conv2d_1a_3x3")  # 8 x 8 x 8
    # 4 x 4 x 8
    net = slim.max_pool2d(net, 2, scope="MaxPool_2a_2x2")
    net = slim.conv2d(net, 16, [3, 3], normalizer_fn=None,
                      scope="Conv2d_3a_3x3")  # 4 x 4 x {channels}
    net = tf.reduce_mean(net, [1, 2], name="global_pool")  # 16
    logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")  # 10
    return logits, {{"Logits": logits}}
'''


#: The line with the wrong comment when ``channels=12``.
WRONG_LINE = '                      scope="Conv2d_3a_3x3")  # 4 x 4 x 12'


def tiny_mx(num_classes):
    net = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=8, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                               name="Conv2d_1a_3x3"), act_type="relu", name="Conv2d_1a_3x3/Relu")
    net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="MaxPool_2a_2x2")
    net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=16, kernel=(3, 3), pad=(1, 1), name="Conv2d_3a_3x3"),
                            act_type="relu", name="Conv2d_3a_3x3/Relu")
    net = mx.sym.mean(net, axis=(2, 3), name="global_pool")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="Logits")


def write_tiny_tf(tmp_path, channels: int, name: str = "tiny_tf.py", nominal: bool = True):
    text = TINY_TF_SOURCE.format(channels=channels)
    if not nominal:
        text = text.replace("DEFAULT_IMAGE_SIZE = 16\n", "")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shape_comment_that_contradicts_the_inferred_shape(tmp_path):
    path = write_tiny_tf(tmp_path, channels=12)
    wrong = verify(tf=f"{path}:build", mx=tiny_mx, size=16, classes=10)
    (finding,) = findings(wrong, "shape_comment")
    line = path.read_text().splitlines().index(WRONG_LINE) + 1
    assert (finding.severity, finding.line, finding.layer) == (lint.Severity.INFO, line, "Conv2d_3a_3x3")
    assert finding.file.endswith("tiny_tf.py") and "4 x 4 x 16" in finding.fix
    assert f"tiny_tf.py:{line}" in lint.bug_report(finding, wrong)
    assert "4 x 4 x 12" in lint.bug_report(finding, wrong)  # the offending source line is quoted

    correct = verify(tf=f"{write_tiny_tf(tmp_path, 16, 'tiny_ok.py')}:build", mx=tiny_mx, size=16, classes=10)
    assert findings(correct, "shape_comment") == []


def test_shape_comments_are_checked_only_at_the_nominal_size(tmp_path):
    path = write_tiny_tf(tmp_path, channels=12)
    assert findings(verify(tf=f"{path}:build", mx=tiny_mx, size=32, classes=10), "shape_comment") == []
    unknown = write_tiny_tf(tmp_path, channels=12, name="tiny_unknown.py", nominal=False)
    (finding,) = findings(verify(tf=f"{unknown}:build", mx=tiny_mx, size=16, classes=10), "shape_comment")
    assert finding.severity == lint.Severity.INFO and "not checked" in finding.message
    result = verify(tf=f"{unknown}:build", mx=tiny_mx, size=16, classes=10, lint=False)
    lint.apply(result, nominal_size=16)
    wrong_line = unknown.read_text().splitlines().index(WRONG_LINE) + 1
    assert [f.line for f in findings(result, "shape_comment")] == [wrong_line]


def test_shape_comments_of_a_file_edited_after_the_build_are_not_matched(tmp_path):
    path = write_tiny_tf(tmp_path, channels=12)
    result = verify(tf=f"{path}:build", mx=tiny_mx, size=16, classes=10, lint=False)
    path.write_text("# a new first line shifts every statement\n" + path.read_text())
    lint.apply(result)
    (finding,) = findings(result, "shape_comment")
    assert finding.line is None and "changed after the graph was built" in finding.message


def test_shape_comment_parser_attaches_comments_to_statements(tmp_path):
    path = write_tiny_tf(tmp_path, channels=16)
    comments = {c.line: (c.dims, c.start, c.end) for c in lint.shape_comments(str(path))}
    assert comments[12] == ((4, 4, 8), 13, 13)  # own line: the statement below
    assert comments[15] == ((4, 4, 16), 14, 15)  # trailing a multi-line call: the whole call
    assert comments[11] == ((8, 8, 8), 11, 11)


# -------------------------------------------------------------------- our own pair

def test_our_reduced_pair_is_lint_clean_except_justified_infos(irv2_reduced_result):
    result = irv2_reduced_result
    assert [f for f in result.findings if f.severity != lint.Severity.INFO] == []
    # The only info: slim's 1001-class head with background class 0 (the port keeps it on purpose).
    assert [(f.check, f.layer) for f in result.findings] == [("num_classes", "InceptionResnetV2/Logits/Logits")]
    text = result.report("text")
    assert "Lint findings: lint PASSED | 0 errors, 0 warnings, 1 info" in text
    assert "## Lint findings" in result.report("markdown")


def test_our_reduced_pair_broken_by_hand_is_caught(irv2_reduced_result):
    """Re-lint our own pair with two layers changed the way a port goes wrong."""
    from dataclasses import replace

    from porting.core.match import Pair

    result = irv2_reduced_result
    broken = []
    for pair in result.pairs:
        mx_record = pair.mx
        if mx_record is not None and mx_record.kind == "dropout":
            mx_record = replace(mx_record, attrs={**mx_record.attrs, "p": 0.8})
        if mx_record is not None and mx_record.name.endswith("Conv2d_1a_3x3") and "bn.eps" in mx_record.attrs:
            mx_record = replace(mx_record, attrs={**mx_record.attrs, "bn.eps": 1e-5})
        broken.append(Pair(pair.tf, mx_record, pair.matched_by, pair.note))
    twin = type(result)(title=result.title, rows=result.rows, end_points=result.end_points, tf_graph=result.tf_graph,
                        mx_graph=result.mx_graph, pairs=broken)
    found = {(f.check, str(f.severity)) for f in lint.run(twin, lint.Options(shape_comments=False))}
    assert {("dropout", "error"), ("bn_eps", "error")} <= found


# ------------------------------------------------------------ reports and the CLI

CLI_BUILDERS = '''\
from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()


def tf_net(images, num_classes, is_training=True):
    net = tf.reduce_mean(images, [1, 2], name="global_pool")
    net = slim.dropout(net, 0.8, is_training=is_training, scope="Dropout")
    return slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits"), {}


def _mx(num_classes, p):
    net = mx.sym.mean(mx.sym.Variable("data"), axis=(2, 3), name="global_pool")
    net = mx.sym.Dropout(net, p=p, name="Dropout")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="Logits")


def mx_good(num_classes):
    return _mx(num_classes, 0.2)


def mx_bad(num_classes):
    return _mx(num_classes, 0.8)
'''


@pytest.fixture
def cli_file(tmp_path):
    path = tmp_path / "builders.py"
    path.write_text(CLI_BUILDERS)
    return path


def cli(path, mx_name, *extra):
    return ["--tf", f"{path}:tf_net", "--mx", f"{path}:{mx_name}", "--size", "8", "--classes", "4", *extra]


def test_json_findings_schema(cli_file, capsys):
    assert main(cli(cli_file, "mx_bad", "--format", "json")) == 1
    document = json.loads(capsys.readouterr().out)
    (finding,) = document["findings"]
    assert set(finding) == {"layer", "check", "severity", "tf", "mx", "message", "fix"}
    assert (finding["check"], finding["severity"], finding["layer"]) == ("dropout", "error", "Dropout")
    assert main(cli(cli_file, "mx_good", "--format", "json")) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []  # present, empty: the lint ran


def test_lint_only_exit_codes_and_output(cli_file, capsys):
    assert main(cli(cli_file, "mx_good", "--lint-only")) == 0
    out = capsys.readouterr().out
    assert out.startswith("porting lint:") and "lint PASSED | 0 errors" in out and "layers match" not in out
    assert main(cli(cli_file, "mx_bad", "--lint-only")) == 1
    out = capsys.readouterr().out
    assert "lint FAILED | 1 error" in out and "dropout" in out
    assert main(cli(cli_file, "mx_bad", "--lint-only", "--format", "json")) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "fail" and document["summary"]["error"] == 1
    assert main(cli(cli_file, "mx_good", "--lint-only", "--no-lint")) == 2


def test_bug_reports_for_findings(cli_file, tmp_path, capsys):
    reports = tmp_path / "reports"
    assert main(cli(cli_file, "mx_bad", "--bug-reports", str(reports))) == 1
    (path,) = sorted(reports.glob("finding_*.md"))
    text = path.read_text()
    assert "dropout" in path.name and text.startswith("# Port lint error: dropout at Dropout")
    assert "p=0.2" in text and "| setting | keep_prob 0.8 | p 0.8 |" in text
    only = tmp_path / "lint_only"
    assert main(cli(cli_file, "mx_bad", "--lint-only", "--bug-reports", str(only))) == 1
    assert [p.name for p in only.glob("*.md")] == [path.name]


def test_markdown_and_text_reports_show_the_findings(cli_file, capsys):
    main(cli(cli_file, "mx_bad", "--format", "markdown"))
    markdown = capsys.readouterr().out
    assert "## Lint findings" in markdown and "| error" in markdown and "FAILED" in markdown
    main(cli(cli_file, "mx_bad"))
    text = capsys.readouterr().out
    assert "Lint findings: lint FAILED | 1 error" in text and "1 lint error" in text


# ------------------------------------------------------------------------ registry

def test_registry_is_one_function_per_check_and_rejects_duplicates():
    assert set(lint.PAIR_CHECKS) | set(lint.NETWORK_CHECKS) == set(lint.CHECKS)
    assert not set(lint.PAIR_CHECKS) & set(lint.NETWORK_CHECKS)
    table = lint.checks_markdown()
    assert all(f"`{name}`" in table for name in lint.CHECKS)
    with pytest.raises(ValueError, match="registered twice"):
        lint.pair_check("dropout", "again")(lambda pair, context: [])
    with pytest.raises(ValueError, match="unknown lint checks"):
        lint.run(type("R", (), {"pairs": []})(), checks=["no_such_check"])


#: One deliberately wrong port per registered check: check -> fn(folder) -> its comparison.
WRONG_PORTS = {
    "dropout": lambda folder: run(tf_head(keep_prob=0.8), mx_head(p=0.8)),
    "batch_norm": lambda folder: run(tf_conv(), mx_conv(normalize=False)),
    "bn_eps": lambda folder: run(tf_conv(eps=1e-3), mx_conv(eps=1e-5)),
    "bn_momentum": lambda folder: run(tf_conv(decay=0.9997), mx_conv(momentum=0.9)),
    "bn_gamma": lambda folder: run(tf_conv(scale=False), mx_conv(fix_gamma=False)),
    "bn_beta": lambda folder: run(tf_conv(center=False), mx_conv()),
    "bn_moving_stats": lambda folder: run(tf_batch_stats_only, mx_conv()),
    "conv_bias": lambda folder: run(tf_conv(), mx_conv(no_bias=False)),
    "activation": lambda folder: run(tf_conv(), mx_conv(act=None)),
    "dilation": lambda folder: run(tf_conv(rate=2), mx_conv(dilate=1)),
    "avg_pool_padding": lambda folder: run(tf_pool("avg", 3, 1, "SAME"), mx_pool("avg", (3, 3), (1, 1), (1, 1))),
    "max_pool_padding": lambda folder: run(tf_pool("max", 3, 2, "SAME"),
                                           mx_pool("max", (3, 3), (2, 2), pre_pad=(0, 1, 0, 1), pad_value=0.0)),
    "pooling_convention": lambda folder: run(tf_pool("max", 3, 2, "SAME"), mx_pool("max", (3, 3), (2, 2))),
    "global_pool": lambda folder: run(tf_pool("avg", 3, 2, "VALID"),
                                      mx_pool("avg", (1, 1), (1, 1), global_pool=True)),
    "lrn": lambda folder: run(tf_lrn, mx_lrn(1e-4)),
    "concat_axis": lambda folder: run(tf_concat, mx_concat(2)),
    "softmax_axis": lambda folder: run(tf_softmax, mx_softmax("default")),
    "flatten_order": lambda folder: run(tf_flatten_dense, mx_flatten_dense(False)),
    "num_classes": lambda folder: run(tf_head(), mx_head(classes=1000), classes=1001),
    "output_kind": lambda folder: run(tf_head(predictions=True), mx_head(outputs=("softmax", "logits"))),
    "aux_head": lambda folder: run(tf_aux, mx_aux(False)),
    "shape_comment": lambda folder: verify(tf=f"{write_tiny_tf(folder, channels=12)}:build", mx=tiny_mx, size=16,
                                           classes=10),
}


@pytest.mark.parametrize("check", list(lint.CHECKS))
def test_every_check_fires_on_its_wrong_port(check, wrong_port):
    """Every registered check has a wrong port in this module, and the check fires on it."""
    assert check in WRONG_PORTS, f"lint check {check!r} has no wrong port: add one to WRONG_PORTS"
    fired = {finding.check for finding in wrong_port(check).findings}
    assert check in fired, f"{check!r} did not fire on its wrong port (fired: {sorted(fired)})"


def test_wrong_ports_name_only_registered_checks():
    assert sorted(set(WRONG_PORTS) - set(lint.CHECKS)) == []
