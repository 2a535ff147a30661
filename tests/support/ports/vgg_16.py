"""VGG-16 (slim's ``vgg_16``) written the way an MXNet user writes it.

Caffe/MXNet model-zoo names (``conv1_1`` ... ``conv5_3``, ``pool1`` ... ``pool5``, ``fc6`` ...
``fc8``), a ``Flatten`` + ``FullyConnected`` head where slim uses convolutions (fc6 = 7x7 VALID
conv over pool5's 7x7x512 map, fc7/fc8 = 1x1 convs, then a squeeze) and a ``SoftmaxOutput``.

Exactness: slim's 3x3 SAME stride-1 convs pad (1, 1), which is ``pad=(1, 1)``; its 2x2/2 max pools
are VALID, which is MXNet's default 'valid' convention. The head is exact only at 224 (pool5 7x7).
"""
from __future__ import annotations

import numpy as np

from tests.support.ports import common

mx = common.mx

SLIM = "tf_slim.nets.vgg:vgg_16"
ARG_SCOPE = "tf_slim.nets.vgg:vgg_arg_scope"
SIZE = 224  # fc6 is a 7x7 VALID conv: pool5 must be 7x7
CLASSES = 10
SLIM_KWARGS = dict(spatial_squeeze=True)
tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

#: (stage, convs, filters)
STAGES = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def _features(data, pool5_type="max"):
    net = data
    for stage, convs, filters in STAGES:
        for i in range(1, convs + 1):
            name = f"conv{stage}_{i}"
            net = mx.sym.Convolution(net, num_filter=filters, kernel=(3, 3), pad=(1, 1), name=name)
            net = mx.sym.Activation(net, act_type="relu", name=f"relu{stage}_{i}")
        pool_type = pool5_type if stage == 5 else "max"
        net = mx.sym.Pooling(net, pool_type=pool_type, kernel=(2, 2), stride=(2, 2), name=f"pool{stage}")
    return net  # 7 x 7 x 512 at 224


def _head(net, num_classes, fc6_relu=True):
    net = mx.sym.Flatten(net, name="flatten")
    net = mx.sym.FullyConnected(net, num_hidden=4096, name="fc6")
    if fc6_relu:
        net = mx.sym.Activation(net, act_type="relu", name="relu6")
    net = mx.sym.Dropout(net, p=0.5, name="drop6")
    net = mx.sym.FullyConnected(net, num_hidden=4096, name="fc7")
    net = mx.sym.Activation(net, act_type="relu", name="relu7")
    net = mx.sym.Dropout(net, p=0.5, name="drop7")
    net = mx.sym.FullyConnected(net, num_hidden=num_classes, name="fc8")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 224, 224), output ``softmax``."""
    data = mx.sym.Variable("data")
    return _head(_features(data), num_classes)


def weights_from_tf(tf_values: dict):
    """slim's variables -> (arg_params, aux_params) of ``build``."""
    arg = {}
    for stage, convs, _ in STAGES:
        for i in range(1, convs + 1):
            scope = f"vgg_16/conv{stage}/conv{stage}_{i}"
            arg[f"conv{stage}_{i}_weight"] = common.conv_weight(tf_values[f"{scope}/weights"])
            arg[f"conv{stage}_{i}_bias"] = tf_values[f"{scope}/biases"]
    arg["fc6_weight"] = common.conv_head_to_fc(tf_values["vgg_16/fc6/weights"])
    for fc in ("fc7", "fc8"):
        w = tf_values[f"vgg_16/{fc}/weights"]
        arg[f"{fc}_weight"] = np.ascontiguousarray(w.reshape(w.shape[2], w.shape[3]).T)
    for fc in ("fc6", "fc7", "fc8"):
        arg[f"{fc}_bias"] = tf_values[f"vgg_16/{fc}/biases"]
    return arg, {}


# -- mutants: one real defect each --

def mutant_flatten_nhwc(num_classes: int = CLASSES):
    """pool5 transposed to NHWC before Flatten (as if TF's flatten order had to be imitated)."""
    data = mx.sym.Variable("data")
    net = mx.sym.transpose(_features(data), axes=(0, 2, 3, 1), name="pool5_nhwc")
    return _head(net, num_classes)


def mutant_fc6_no_relu(num_classes: int = CLASSES):
    """The ReLU after fc6 forgotten (slim's conv fc6 has one from vgg_arg_scope)."""
    return _head(_features(mx.sym.Variable("data")), num_classes, fc6_relu=False)


def mutant_pool5_avg(num_classes: int = CLASSES):
    """pool5 an average pool instead of slim's max pool."""
    return _head(_features(mx.sym.Variable("data"), pool5_type="avg"), num_classes)


MUTANTS = {
    "flatten_nhwc": (mutant_flatten_nhwc, "fc6 flattens pool5 in NHWC order while its weights are laid out NCHW"),
    "fc6_no_relu": (mutant_fc6_no_relu, "no ReLU after fc6"),
    "pool5_avg": (mutant_pool5_avg, "pool5 is an average pool, slim's is a max pool"),
}

#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first).
MUTANT_ROOTS = {"flatten_nhwc": "vgg_16/fc6", "fc6_no_relu": "vgg_16/fc6", "pool5_avg": "vgg_16/pool5"}
