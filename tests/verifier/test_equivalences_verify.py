"""The equivalences end to end: a slim conv head and an MXNet Flatten + FullyConnected head.

Numerically the same with the same weights (HWIO kernel -> transposed, reshaped FC weight), and
``verify()`` PASSES them with the equivalence notes in its report.
"""
from __future__ import annotations

import numpy as np
import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.verifier.api import verify  # noqa: E402  (after the shims)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIZE, CLASSES = 8, 4


def tf_build(images, num_classes, is_training=True):
    """slim's style: conv, an 8x8 VALID conv over the whole map (fc6), dropout, 1x1 conv logits, squeeze."""
    net = slim.conv2d(images, 6, [3, 3], scope="Net/conv1")
    net = slim.conv2d(net, 16, [SIZE, SIZE], padding="VALID", scope="Net/fc6")
    net = slim.dropout(net, 0.5, is_training=is_training, scope="Net/dropout6")
    net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, scope="Net/fc8")
    logits = tf.squeeze(net, [1, 2], name="Net/fc8/squeezed")
    return logits, {"Logits": logits}


def mx_build(num_classes, with_dropout=True):
    """The way MXNet users write it: Flatten + FullyConnected."""
    net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=6, kernel=(3, 3), pad=(1, 1), name="conv1")
    net = mx.sym.Activation(net, act_type="relu", name="conv1_relu")
    net = mx.sym.Flatten(net, name="flatten")
    net = mx.sym.FullyConnected(net, num_hidden=16, name="fc6")
    net = mx.sym.Activation(net, act_type="relu", name="fc6_relu")
    if with_dropout:
        net = mx.sym.Dropout(net, p=0.5, name="drop6")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="fc8")


def test_conv_head_and_dense_head_compute_the_same():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, SIZE, SIZE, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        placeholder = tf.compat.v1.placeholder(tf.float32, (2, SIZE, SIZE, 3))
        logits, _ = tf_build(placeholder, CLASSES, is_training=False)
        variables = tf.compat.v1.global_variables()
        with tf.compat.v1.Session(graph=graph) as session:
            for variable in variables:
                shape = variable.shape.as_list()
                session.run(variable.assign(rng.standard_normal(shape).astype(np.float32) * 0.1))
            values = {v.op.name: session.run(v) for v in variables}
            expected = session.run(logits, {placeholder: images})
    hwio = values["Net/fc6/weights"]
    args = {"conv1_weight": values["Net/conv1/weights"].transpose(3, 2, 0, 1), "conv1_bias": values["Net/conv1/biases"],
            "fc6_weight": hwio.transpose(3, 2, 0, 1).reshape(hwio.shape[3], -1), "fc6_bias": values["Net/fc6/biases"],
            "fc8_weight": values["Net/fc8/weights"].reshape(16, CLASSES).T, "fc8_bias": values["Net/fc8/biases"]}
    executor = mx_build(CLASSES).bind(mx.cpu(), {"data": mx.nd.array(images.transpose(0, 3, 1, 2)),
                                                 **{k: mx.nd.array(np.ascontiguousarray(v)) for k, v in args.items()}})
    got = executor.forward(is_train=False)[0].asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_verify_passes_the_two_heads_with_the_notes():
    result = verify(tf=tf_build, mx=mx_build, size=SIZE, classes=CLASSES)
    assert result, result.report()
    assert "TF Net/fc6: 8x8 VALID conv over the whole 8x8 map taken as Flatten (NCHW) + dense 384->16, the form " \
           "of MX fc6" in result.equivalences
    assert any(note.startswith("TF Net/fc8: 1x1 conv on a 1x1 map taken as dense 16->4") for note in result.equivalences)
    # the end point on the squeeze the equivalences dropped reads the layer that now carries its data
    assert [(e["name"], e["mx_layer"], e["status"]) for e in result.end_points] == [("Logits", "fc8", "match")]
    assert "equivalent forms taken as one" in result.report()
    assert "## Equivalent forms taken as one" in result.report("markdown")
    # dropout left out of the port: still the same network at inference
    without = verify(tf=tf_build, mx=lambda n: mx_build(n, with_dropout=False), size=SIZE, classes=CLASSES)
    assert without and any("Net/dropout6: dropout with no counterpart" in note for note in without.equivalences)


def test_a_transposed_flatten_is_still_caught():
    def nhwc(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=6, kernel=(3, 3), pad=(1, 1), name="conv1")
        net = mx.sym.Activation(net, act_type="relu", name="conv1_relu")
        net = mx.sym.Flatten(mx.sym.transpose(net, axes=(0, 2, 3, 1), name="nhwc"), name="flatten")
        net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=16, name="fc6"), act_type="relu", name="r6")
        return mx.sym.FullyConnected(mx.sym.Dropout(net, p=0.5, name="drop6"), num_hidden=num_classes, name="fc8")

    result = verify(tf=tf_build, mx=nhwc, size=SIZE, classes=CLASSES)
    assert not result
    assert any(f.check == "flatten_order" and f.severity == "error" for f in result.findings), result.report()
