"""porting.verifier.lint, issue 15 item 4: the classes check reads the logits; severity follows consequence.

The classes check must compare the logits layer on each side (the input of the softmax /
SoftmaxOutput, or the last dense or conv layer feeding it), not whatever the pairing put next
to TF's output (the feature vector of a Flatten + FullyConnected head). Severities: ``error``
only when inference outputs differ; harmless differences (a conv bias followed by a batch norm,
a learned gamma where slim has none, a softmax head vs logits) are ``info``; real errors stay.
Tiny TF/MX builders on an 8x8 input, plus one corpus port (``tests/support/ports/inception_v2``).
"""
from __future__ import annotations

import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.verifier import lint  # noqa: E402  (after the shims)
from porting.verifier.api import verify  # noqa: E402
from tests.support.ports import inception_v2  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FEATURES = 16  # the width of the feature vector, different from every class count below


def findings(result, check: str) -> list[lint.Finding]:
    return [finding for finding in result.findings if finding.check == check]


def severities(result, check: str) -> list[str]:
    return [str(finding.severity) for finding in findings(result, check)]


# ------------------------------------------------------------------ tiny builders

def tf_slim_head(images, num_classes, is_training=True):
    """slim's way: conv -> global pool -> 1x1 logits conv -> squeeze."""
    net = slim.conv2d(images, FEATURES, 3, normalizer_fn=None, scope="conv")  # 8 x 8 x 16
    net = slim.avg_pool2d(net, 8, padding="VALID", scope="pool")  # 1 x 1 x 16
    net = slim.conv2d(net, num_classes, 1, activation_fn=None, normalizer_fn=None, scope="logits")  # 1 x 1 x C
    logits = tf.squeeze(net, [1, 2], name="logits/squeezed")  # C
    return logits, {"Logits": logits}


def mx_dense_head(*, logits=None, output="softmax_output"):
    """An MXNet user's way: conv -> global pool -> Flatten -> FullyConnected (-> SoftmaxOutput)."""

    def build(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=FEATURES, kernel=(3, 3), pad=(1, 1),
                                 name="conv1")
        net = mx.sym.Activation(net, act_type="relu", name="relu1")
        net = mx.sym.Pooling(net, kernel=(8, 8), pool_type="avg", name="pool1")
        net = mx.sym.Flatten(net, name="flatten")  # 16
        net = mx.sym.FullyConnected(net, num_hidden=logits or num_classes, name="fc")
        if output == "softmax_output":
            return mx.sym.SoftmaxOutput(net, name="softmax")
        if output == "softmax":
            return mx.sym.softmax(net, axis=1, name="prob")
        return net

    return build


def tf_conv_bn(*, scale=False, eps=1e-3):
    def build(images, num_classes, is_training=True):
        params = dict(decay=0.9997, epsilon=eps, scale=scale, is_training=is_training)
        net = slim.conv2d(images, 4, 3, normalizer_fn=slim.batch_norm, normalizer_params=params, scope="conv")
        return net, {"conv": net}

    return build


def mx_conv_bn(*, no_bias=True, fix_gamma=True, eps=1e-3, normalize=True):
    def build(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=no_bias,
                                 name="conv")
        if normalize:
            net = mx.sym.BatchNorm(net, eps=eps, momentum=0.9997, fix_gamma=fix_gamma, name="conv/BatchNorm")
        return mx.sym.Activation(net, act_type="relu", name="conv/Relu")

    return build


def tf_conv_no_bias(images, num_classes, is_training=True):
    """A linear conv with neither bias nor batch norm."""
    net = slim.conv2d(images, 4, 3, activation_fn=None, normalizer_fn=None, biases_initializer=None, scope="conv")
    return net, {"conv": net}


def mx_conv_bias(num_classes):
    return mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=False,
                              name="conv")


def run(tf_fn, mx_fn, classes: int = 10, **kwargs):
    return verify(tf=tf_fn, mx=mx_fn, size=8, classes=classes, **kwargs)


# --------------------------------------------------------------- the classes check

@pytest.mark.parametrize("output", ["softmax_output", "softmax", "logits"])
def test_classes_check_reads_the_logits_behind_a_dense_head(output):
    """10 vs 10: nothing, whatever ends the head; the feature vector (16 wide) is never compared."""
    assert findings(run(tf_slim_head, mx_dense_head(output=output)), "num_classes") == []


@pytest.mark.parametrize("output", ["softmax_output", "logits"])
def test_a_port_with_11_logits_is_an_error_naming_10_vs_11(output):
    (finding,) = findings(run(tf_slim_head, mx_dense_head(logits=11, output=output)), "num_classes")
    assert finding.severity == lint.Severity.ERROR
    assert (finding.tf, finding.mx) == ("10 classes", "11 classes")
    assert finding.layer == "logits" and finding.mx_layer == "fc"
    assert "num_hidden=10" in finding.fix and str(FEATURES) not in finding.message


def test_classes_on_a_corpus_port_with_a_flatten_dense_head():
    """inception_v2's port (Flatten + FullyConnected + SoftmaxOutput): once read as 'TF 10, MXNet 1024'."""
    size, classes = inception_v2.SIZE, inception_v2.CLASSES
    right = verify(tf=inception_v2.tf_build, mx=inception_v2.build, size=size, classes=classes)
    assert findings(right, "num_classes") == []
    wrong = verify(tf_graph=right.tf_graph, mx=lambda num_classes: inception_v2.build(num_classes + 1),
                   classes=classes)
    (finding,) = findings(wrong, "num_classes")
    assert finding.severity == lint.Severity.ERROR and (finding.tf, finding.mx) == ("10 classes", "11 classes")


# ------------------------------------------------------------ severity = consequence

def test_conv_bias_before_a_batch_norm_is_info():
    (finding,) = findings(run(tf_conv_bn(), mx_conv_bn(no_bias=False)), "conv_bias")
    assert finding.severity == lint.Severity.INFO
    assert "subtracts the mean" in finding.message and "no_bias=True" in finding.fix


def test_conv_bias_without_a_batch_norm_stays_an_error():
    (finding,) = findings(run(tf_conv_no_bias, mx_conv_bias), "conv_bias")
    assert finding.severity == lint.Severity.ERROR


def test_learned_gamma_where_slim_has_none_is_info():
    (finding,) = findings(run(tf_conv_bn(scale=False), mx_conv_bn(fix_gamma=False)), "bn_gamma")
    assert finding.severity == lint.Severity.INFO
    assert "equal at inference while the gamma weights hold 1" in finding.message.lower()
    assert "--numeric" in finding.message


def test_gamma_ignored_where_slim_learns_one_stays_an_error():
    (finding,) = findings(run(tf_conv_bn(scale=True), mx_conv_bn(fix_gamma=True)), "bn_gamma")
    assert finding.severity == lint.Severity.ERROR


def test_numeric_settles_the_harmless_forms():
    """With weights (seeded, transferred from TF), the bias and the gamma give the same outputs as TF."""
    result = run(tf_conv_bn(), mx_conv_bn(no_bias=False, fix_gamma=False), numeric=True)
    assert result.lint.errors == 0
    assert result.numeric_report is not None and result.numeric_report.passed, result.numeric


@pytest.mark.parametrize("output", ["softmax_output", "softmax"])
def test_a_softmax_head_vs_logits_is_info_never_a_failure(output):
    result = run(tf_slim_head, mx_dense_head(output=output))
    (finding,) = findings(result, "output_kind")
    assert finding.severity == lint.Severity.INFO
    assert result.lint.errors == 0 and bool(result.lint)


def test_real_errors_stay_errors():
    assert severities(run(tf_conv_bn(eps=1e-3), mx_conv_bn(eps=1e-5)), "bn_eps") == ["error"]

    def tf_avg(images, num_classes, is_training=True):
        net = slim.avg_pool2d(images, 3, stride=1, padding="SAME", scope="pool")
        return net, {"pool": net}

    def mx_avg(num_classes):  # MXNet counts the padded cells by default; TF SAME does not
        return mx.sym.Pooling(mx.sym.Variable("data"), kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                              name="pool")

    assert "error" in severities(run(tf_avg, mx_avg), "avg_pool_padding")
