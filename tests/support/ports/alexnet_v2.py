"""AlexNet v2 (slim's ``alexnet_v2``, the "one weird trick" variant: no LRN) as an MXNet user writes it.

MXNet's automatic names (``convolution0``, ``pooling0``, ``fullyconnected0`` ..., built under a fresh
``NameManager`` so they do not depend on what was built before), a ``Flatten`` + ``FullyConnected``
head where slim uses convolutions (fc6 = 5x5 VALID conv over pool5's 5x5x256 map at 224, fc7/fc8
1x1 convs) and a ``SoftmaxOutput``.

Exactness at 224: conv1 11x11/4 VALID = ``pad=0`` (224 -> 54); slim's max pools are VALID
(``alexnet_v2_arg_scope``), MXNet's default 'valid' convention (54 -> 26, 26 -> 12, 12 -> 5);
the 5x5 and 3x3 SAME stride-1 convs pad (2, 2) and (1, 1), symmetric.
"""
from __future__ import annotations

import numpy as np

from tests.support.ports import common

mx = common.mx

SLIM = "tf_slim.nets.alexnet:alexnet_v2"
ARG_SCOPE = "tf_slim.nets.alexnet:alexnet_v2_arg_scope"
SIZE = 224  # fc6 is a 5x5 VALID conv: pool5 must be 5x5
CLASSES = 10
SLIM_KWARGS = dict(spatial_squeeze=True)
tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

#: slim scope -> the automatic name the port gets (creation order under a fresh NameManager).
CONVS = {"conv1": "convolution0", "conv2": "convolution1", "conv3": "convolution2",
         "conv4": "convolution3", "conv5": "convolution4"}
FCS = {"fc6": "fullyconnected0", "fc7": "fullyconnected1", "fc8": "fullyconnected2"}


def _network(num_classes, conv1_pad=0, conv2_pad=2, pool_convention="valid", flatten_nhwc=False):
    relu = dict(act_type="relu")
    pool = dict(pool_type="max", kernel=(3, 3), stride=(2, 2), pooling_convention=pool_convention)
    with mx.name.NameManager():
        net = mx.sym.Variable("data")
        net = mx.sym.Convolution(net, num_filter=64, kernel=(11, 11), stride=(4, 4),
                                 pad=(conv1_pad, conv1_pad))                               # 54 x 54 x 64
        net = mx.sym.Pooling(mx.sym.Activation(net, **relu), **pool)                        # 26
        net = mx.sym.Convolution(net, num_filter=192, kernel=(5, 5), pad=(conv2_pad, conv2_pad))
        net = mx.sym.Pooling(mx.sym.Activation(net, **relu), **pool)                        # 12
        net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=384, kernel=(3, 3), pad=(1, 1)), **relu)
        net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=384, kernel=(3, 3), pad=(1, 1)), **relu)
        net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=256, kernel=(3, 3), pad=(1, 1)), **relu)
        net = mx.sym.Pooling(net, **pool)                                                   # 5 x 5 x 256
        if flatten_nhwc:
            net = mx.sym.transpose(net, axes=(0, 2, 3, 1))
        net = mx.sym.Flatten(net)
        net = mx.sym.Dropout(mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=4096), **relu), p=0.5)
        net = mx.sym.Dropout(mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=4096), **relu), p=0.5)
        net = mx.sym.FullyConnected(net, num_hidden=num_classes)
        return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 224, 224), output ``softmax``."""
    return _network(num_classes)


def weights_from_tf(tf_values: dict):
    """slim's variables -> (arg_params, aux_params) of ``build``."""
    arg = {}
    for scope, name in CONVS.items():
        arg[f"{name}_weight"] = common.conv_weight(tf_values[f"alexnet_v2/{scope}/weights"])
        arg[f"{name}_bias"] = tf_values[f"alexnet_v2/{scope}/biases"]
    arg[f"{FCS['fc6']}_weight"] = common.conv_head_to_fc(tf_values["alexnet_v2/fc6/weights"])
    for scope in ("fc7", "fc8"):
        w = tf_values[f"alexnet_v2/{scope}/weights"]
        arg[f"{FCS[scope]}_weight"] = np.ascontiguousarray(w.reshape(w.shape[2], w.shape[3]).T)
    for scope, name in FCS.items():
        arg[f"{name}_bias"] = tf_values[f"alexnet_v2/{scope}/biases"]
    return arg, {}


# -- mutants: one real defect each --

def mutant_conv2_pad1(num_classes: int = CLASSES):
    """conv2 (5x5 SAME) written with pad=1, a 3x3's pad: 26 -> 24, pool5 still 5x5 (weights load)."""
    return _network(num_classes, conv2_pad=1)


def mutant_flatten_nhwc(num_classes: int = CLASSES):
    """pool5 transposed to NHWC before Flatten while fc6's weights are laid out for NCHW."""
    return _network(num_classes, flatten_nhwc=True)


def mutant_conv1_pad2(num_classes: int = CLASSES):
    """conv1 with pad=2 (the Caffe/Gluon AlexNet's conv1): 55 instead of 54, pool5 6x6, fc6 too wide."""
    return _network(num_classes, conv1_pad=2)


def mutant_pool_full(num_classes: int = CLASSES):
    """Pools with pooling_convention='full' (ceil): 54 -> 27 instead of slim's VALID 26, pool5 6x6."""
    return _network(num_classes, pool_convention="full")


MUTANTS = {
    "conv2_pad1": (mutant_conv2_pad1, "conv2 5x5 SAME ported with pad=1 instead of 2"),
    "flatten_nhwc": (mutant_flatten_nhwc, "fc6 flattens pool5 in NHWC order while its weights are laid out NCHW"),
    "conv1_pad2": (mutant_conv1_pad2, "conv1 11x11/4 VALID ported with pad=2 (shape: fc6 input 6x6x256)"),
    "pool_full": (mutant_pool_full, "max pools use pooling_convention='full' where slim's VALID floors (shape)"),
}

#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first).
MUTANT_ROOTS = {"conv2_pad1": "alexnet_v2/conv2", "flatten_nhwc": "alexnet_v2/fc6",
                "conv1_pad2": "alexnet_v2/conv1", "pool_full": "alexnet_v2/pool1"}
