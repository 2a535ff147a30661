"""Weights across equivalent forms: a TF conv over the whole map (or 1x1 on a 1x1 map) and MXNet's Flatten + dense.

Each layout transform runs through the real ops on small arrays: TF's ``conv2d`` + ``bias_add``
against MXNet's ``Flatten`` + ``FullyConnected`` with the transformed weight, both ways, and a
transposed (NHWC) flatten with the same weight must differ (the flatten order is checked, not
assumed). Then a tiny network with a slim conv head against an MXNet dense head: ``--numeric``
passes, a transposed flatten fails at the dense layer, and ``convert`` goes TF -> MXNet -> TF bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest

from porting import compat
from porting.core import layouts

#: (kernel height, kernel width, input channels, outputs): non-square, so a swapped H/W fails.
GEOMETRIES = [(3, 2, 4, 5), (1, 1, 6, 3), (2, 3, 1, 2)]


def _tf_conv(x_nhwc: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """TF's VALID conv2d + bias_add, (N, 1, 1, O) -> (N, O)."""
    tf = compat.import_tf()
    graph = tf.Graph()
    with graph.as_default():
        out = tf.nn.bias_add(tf.nn.conv2d(tf.constant(x_nhwc), tf.constant(kernel), strides=1, padding="VALID"),
                             tf.constant(bias))
    with tf.compat.v1.Session(graph=graph) as session:
        value = session.run(out)
    assert value.shape[1:3] == (1, 1)  # the kernel covers the whole map: one output position
    return value.reshape(value.shape[0], -1)


def _mx_dense(x_nchw: np.ndarray, weight: np.ndarray, bias: np.ndarray, nhwc_first: bool = False) -> np.ndarray:
    """MXNet's Flatten + FullyConnected (optionally after a transpose to NHWC)."""
    mx = compat.import_mx()
    data = mx.sym.Variable("data")
    if nhwc_first:
        data = mx.sym.transpose(data, axes=(0, 2, 3, 1))
    net = mx.sym.FullyConnected(mx.sym.Flatten(data), num_hidden=weight.shape[0], name="fc")
    executor = net.bind(mx.cpu(), args={"data": mx.nd.array(x_nchw), "fc_weight": mx.nd.array(weight),
                                        "fc_bias": mx.nd.array(bias)}, grad_req="null")
    return executor.forward(is_train=False)[0].asnumpy()


def _arrays(geometry, seed=0):
    kh, kw, channels, out = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, kh, kw, channels)).astype(np.float32)  # NHWC, the map the kernel covers
    kernel = rng.standard_normal((kh, kw, channels, out)).astype(np.float32)
    bias = rng.standard_normal(out).astype(np.float32)
    return x, kernel, bias


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_dense_of_flatten_equals_conv_over_the_whole_map(geometry):
    x, kernel, bias = _arrays(geometry)
    weight = layouts.conv_to_dense(kernel)
    assert weight.shape == (geometry[3], geometry[0] * geometry[1] * geometry[2])
    assert layouts.shape_to_mx("conv_to_dense", kernel.shape) == weight.shape
    reference = _tf_conv(x, kernel, bias)
    np.testing.assert_allclose(_mx_dense(layouts.nhwc_to_nchw(x), weight, bias), reference, rtol=1e-5, atol=1e-5)
    back = layouts.conv_from_dense(weight, *geometry[:3])
    assert back.tobytes() == kernel.tobytes() and back.shape == kernel.shape  # a permutation: exact


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_conv_from_dense_equals_the_dense_layer(geometry):
    """MXNet -> TF: a FullyConnected weight, laid back as a conv kernel, gives TF's conv the same outputs."""
    x, _, bias = _arrays(geometry, seed=1)
    kh, kw, channels, out = geometry
    weight = np.random.default_rng(2).standard_normal((out, channels * kh * kw)).astype(np.float32)
    reference = _mx_dense(layouts.nhwc_to_nchw(x), weight, bias)
    np.testing.assert_allclose(_tf_conv(x, layouts.conv_from_dense(weight, kh, kw, channels), bias), reference,
                               rtol=1e-5, atol=1e-5)
    assert layouts.conv_to_dense(layouts.conv_from_dense(weight, kh, kw, channels)).tobytes() == weight.tobytes()


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_conv_over_the_whole_map_equals_dense_of_an_nhwc_flatten(geometry):
    """The other way round: TF flattens (NHWC) and multiplies, MXNet convolves the whole map."""
    tf, mx = compat.import_tf(), compat.import_mx()
    x, _, bias = _arrays(geometry, seed=3)
    kh, kw, channels, out = geometry
    dense = np.random.default_rng(4).standard_normal((kh * kw * channels, out)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        flat = tf.reshape(tf.constant(x), (x.shape[0], -1))  # slim.flatten of NHWC: (h, w, c) order
        logits = tf.nn.bias_add(tf.matmul(flat, tf.constant(dense)), tf.constant(bias))
    with tf.compat.v1.Session(graph=graph) as session:
        reference = session.run(logits)
    kernel = layouts.dense_to_conv(dense, kh, kw, channels)
    assert kernel.shape == layouts.shape_to_mx("dense_to_conv", dense.shape, height=kh, width=kw, channels=channels)
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(kh, kw), num_filter=out, name="conv")
    executor = net.bind(mx.cpu(), args={"data": mx.nd.array(layouts.nhwc_to_nchw(x)), "conv_weight": mx.nd.array(kernel),
                                        "conv_bias": mx.nd.array(bias)}, grad_req="null")
    actual = executor.forward(is_train=False)[0].asnumpy()
    assert actual.shape == (x.shape[0], out, 1, 1)
    np.testing.assert_allclose(actual.reshape(x.shape[0], out), reference, rtol=1e-5, atol=1e-5)
    assert layouts.conv_from_dense_mx(kernel, kh, kw, channels).tobytes() == dense.tobytes()


def test_an_nhwc_flatten_with_the_same_weight_differs():
    """The weight is laid out for MXNet's NCHW flatten: a transposed (NHWC) flatten reads permuted features."""
    x, kernel, bias = _arrays(GEOMETRIES[0])
    reference = _tf_conv(x, kernel, bias)
    wrong = _mx_dense(layouts.nhwc_to_nchw(x), layouts.conv_to_dense(kernel), bias, nhwc_first=True)
    assert np.abs(wrong - reference).max() > 0.5


def test_layout_errors_name_the_geometry():
    kernel = np.zeros((3, 2, 4, 5), np.float32)
    with pytest.raises(layouts.LayoutError, match="height 3, expected 2"):
        layouts.conv_to_dense(kernel, height=2)
    with pytest.raises(layouts.LayoutError, match="24 columns"):
        layouts.conv_from_dense(np.zeros((5, 24), np.float32), 3, 3, 4)
    with pytest.raises(layouts.LayoutError, match="4-D"):
        layouts.conv_to_dense(np.zeros((24, 5), np.float32))
    with pytest.raises(layouts.LayoutError, match="3x3x4 map"):
        layouts.shape_to_mx("dense_to_conv", (24, 5), height=3, width=3, channels=4)


# ------------------------------------------------------------------ a tiny network, both heads

SIZE, CLASSES = 12, 3


def tf_conv_head(images, num_classes):
    """slim's head: 3x3 conv, 2x2 pool -> 6x6x4, a 6x6 VALID conv (fc), a 1x1 conv (logits), squeezed."""
    tf = compat.import_tf()
    slim = compat.import_slim()
    with tf.compat.v1.variable_scope("Tiny"):
        net = slim.conv2d(images, 4, 3, scope="conv1")
        net = slim.max_pool2d(net, 2, scope="pool1")
        net = slim.conv2d(net, 8, 6, padding="VALID", scope="fc6")
        net = slim.conv2d(net, num_classes, 1, activation_fn=None, scope="fc7")
        logits = tf.squeeze(net, [1, 2], name="fc7/squeezed")
    return logits, {"Logits": logits}


def _mx_head(num_classes, nhwc_flatten=False):
    mx = compat.import_mx()
    net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv1")
    net = mx.sym.Pooling(mx.sym.Activation(net, act_type="relu"), pool_type="max", kernel=(2, 2), stride=(2, 2))
    if nhwc_flatten:
        net = mx.sym.transpose(net, axes=(0, 2, 3, 1))
    net = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.Flatten(net), num_hidden=8, name="fc6"), act_type="relu")
    net = mx.sym.FullyConnected(net, num_hidden=num_classes, name="fc7")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def mx_dense_head(num_classes):
    return _mx_head(num_classes)


def mx_dense_head_nhwc(num_classes):
    return _mx_head(num_classes, nhwc_flatten=True)


@pytest.fixture(scope="module")
def tiny():
    from porting.verifier.api import verify

    return verify(tf=tf_conv_head, mx=mx_dense_head, size=SIZE, classes=CLASSES, numeric=True, lint=False)


def test_numeric_passes_across_the_two_heads(tiny):
    report = tiny.numeric_report
    assert report, report.summary()
    counts = report.transfer.counts()
    assert counts.get("conv_to_dense") == 2  # fc6 (6x6 over the whole map) and fc7 (1x1 on 1x1)
    compared = {layer.tf: layer.mx for layer in report.layers}
    assert compared["Tiny/fc6"] == "fc6" and compared["Tiny/fc7"] == "fc7"  # (N, 8, 1, 1) vs (N, 8); logits
    assert "softmax" not in compared.values()  # MXNet's SoftmaxOutput is compared at its input, TF's logits


def test_numeric_parity_pairs_across_forms_by_itself(tiny):
    """Without a pairing given, numeric parity pairs as verify() does (the equivalences first)."""
    from porting.verifier import parity

    report = parity.numeric_parity(tiny.tf_graph, tiny.mx_graph, seed=2)
    assert report, report.error or report.first_divergence
    assert report.transfer.counts().get("conv_to_dense") == 2


def test_numeric_fails_at_the_dense_layer_after_an_nhwc_flatten(tiny):
    from porting.verifier.api import verify

    result = verify(tf_graph=tiny.tf_graph, mx=mx_dense_head_nhwc, size=SIZE, classes=CLASSES, numeric=True,
                    lint=False)
    report = result.numeric_report
    assert report.error is None and not report
    assert (report.first_divergence.tf, report.first_divergence.mx) == ("Tiny/fc6", "fc6")
    assert all(layer.result for layer in report.layers if layer.tf in ("Tiny/conv1", "Tiny/pool1"))


def test_weights_round_trip_across_the_two_heads(tiny):
    """TF -> MXNet -> TF is exact, and the dense weights are the kernels' NCHW-flatten layout."""
    from porting.verifier import weights

    plan = weights.plan_transfer(tiny.tf_graph, tiny.mx_graph)  # pairs with the equivalences by default
    values = weights.seeded_values(plan, seed=5)
    arg_params, aux_params, report = weights.transfer(plan, values)
    assert report.ok
    kernel = values["Tiny/fc6/weights"]
    assert arg_params["fc6_weight"].tobytes() == kernel.transpose(3, 2, 0, 1).reshape(8, -1).tobytes()
    one_by_one = values["Tiny/fc7/weights"]  # (1, 1, 8, classes)
    assert arg_params["fc7_weight"].tobytes() == np.ascontiguousarray(one_by_one[0, 0].T).tobytes()
    back, back_report = weights.reverse_transfer(plan, arg_params, aux_params)
    assert back_report.ok and set(back) == set(values)
    for name, value in values.items():
        assert back[name].shape == value.shape and back[name].tobytes() == value.tobytes(), name


def tf_dense_head(images, num_classes):
    """The other way round: slim.flatten (NHWC) + fully_connected layers."""
    tf = compat.import_tf()
    slim = compat.import_slim()
    with tf.compat.v1.variable_scope("Dense"):
        net = slim.conv2d(images, 4, 3, scope="conv1")
        net = slim.max_pool2d(net, 2, scope="pool1")
        net = slim.fully_connected(slim.flatten(net), 8, scope="fc6")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="fc7")
    return logits, {"Logits": logits}


def mx_conv_head(num_classes):
    """slim's form on the MXNet side: a conv over the whole 6x6 map and a 1x1 conv, then a Flatten."""
    mx = compat.import_mx()
    net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv1")
    net = mx.sym.Pooling(mx.sym.Activation(net, act_type="relu"), pool_type="max", kernel=(2, 2), stride=(2, 2))
    net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=8, kernel=(6, 6), name="fc6"), act_type="relu")
    net = mx.sym.Convolution(net, num_filter=num_classes, kernel=(1, 1), name="fc7")
    return mx.sym.Flatten(net)


def test_dense_head_against_a_conv_head_numeric_and_round_trip():
    from porting.verifier import weights
    from porting.verifier.api import verify

    result = verify(tf=tf_dense_head, mx=mx_conv_head, size=SIZE, classes=CLASSES, numeric=True, lint=False)
    report = result.numeric_report
    assert report, report.error or report.first_divergence
    assert report.transfer.counts().get("dense_to_conv") == 2
    plan = weights.plan_transfer(result.tf_graph, result.mx_graph)
    values = weights.seeded_values(plan, seed=6)
    arg_params, aux_params, _ = weights.transfer(plan, values)
    back, back_report = weights.reverse_transfer(plan, arg_params, aux_params)
    assert back_report.ok
    for name, value in values.items():
        assert back[name].tobytes() == value.tobytes(), name


def tf_conv_head_with_predictions(images, num_classes):
    """``tf_conv_head`` with slim's ``Predictions`` softmax in the graph (as the ResNets and Inceptions have)."""
    tf = compat.import_tf()
    logits, end_points = tf_conv_head(images, num_classes)
    end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
    return logits, end_points


def test_softmax_output_faces_tfs_softmax_with_no_label():
    """Both sides end in a softmax: MXNet's SoftmaxOutput runs without a label (inference never reads it)."""
    from porting.verifier.api import verify

    result = verify(tf=tf_conv_head_with_predictions, mx=mx_dense_head, size=SIZE, classes=CLASSES, numeric=True,
                    lint=False)
    report = result.numeric_report
    assert report, report.error or report.first_divergence
    softmaxes = [layer for layer in report.layers if layer.mx == "softmax"]
    assert len(softmaxes) == 1 and softmaxes[0].kind.value == "softmax"
