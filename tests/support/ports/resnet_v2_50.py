"""ResNet-50 v2 (slim's ``resnet_v2_50``, pre-activation) written the way an MXNet user writes it.

Names of MXNet's symbol model zoo (``example/image-classification/symbols/resnet.py``): ``conv0``,
``stage1_unit1_bn1`` / ``_relu1`` / ``_conv1`` ... ``_conv3``, ``stage1_unit1_sc``, ``bn1``/``relu1``
for slim's postnorm, ``fc1``; each shortcut is created AFTER its branch (slim creates it first);
global average ``Pooling`` + ``Flatten`` + ``FullyConnected`` where slim has ``reduce_mean`` and a
1x1 ``logits`` conv; ``SoftmaxOutput`` at the end.

What slim computes, and how it is written here exactly:
* Root: ``conv1`` 7x7/2 via ``conv2d_same`` (pads (3, 3), then VALID -> ``pad=(3, 3)``) with a bias
  and neither batch norm nor ReLU; ``pool1`` max 3x3/2 SAME, pads (0, 1) at 32 x 32 ->
  ``pad=0, pooling_convention='full'``.
* Unit: ``preact`` = BN + ReLU of the unit's input (MXNet's ``bn1``/``relu1``); slim's ``conv1``
  and ``conv2`` carry a batch norm + ReLU (MXNet's ``bn2``/``bn3``), ``conv3`` has a bias and
  neither. A projection shortcut (first unit of a stage) is a 1x1 conv with a bias on ``preact``;
  an identity shortcut reads the unit's raw input (subsampled by a 1x1/2 max pool in the strided
  unit). The stride of a stage sits in its LAST unit, on the 3x3 (``conv2d_same``: ``pad=1``).
* ``postnorm``: BN + ReLU after the last stage. Batch norms: scale=True, eps 1e-5, decay 0.997
  -> ``fix_gamma=False, eps=1e-5, momentum=0.997``.
"""
from __future__ import annotations

import numpy as np

from tests.support.ports import common

mx = common.mx

SLIM = "tf_slim.nets.resnet_v2:resnet_v2_50"
ARG_SCOPE = "tf_slim.nets.resnet_v2:resnet_arg_scope"
SIZE = 64  # 32 after conv0, 16 after pool0, 8, 4, 2, 2
CLASSES = 10
SLIM_KWARGS = {}
tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

#: (units, bottleneck depth, stride of the stage's last unit), stages 1..4 = slim's block1..4
STAGES = ((3, 64, 2), (4, 128, 2), (6, 256, 2), (3, 512, 1))


def _bn_relu(net, name, relu_name, fix_gamma=False):
    net = mx.sym.BatchNorm(net, fix_gamma=fix_gamma, eps=1e-5, momentum=0.997, name=name)
    return mx.sym.Activation(net, act_type="relu", name=relu_name)


def _unit(data, prefix, depth, stride, project, fix_gamma, shortcut_from_data):
    act1 = _bn_relu(data, f"{prefix}_bn1", f"{prefix}_relu1", fix_gamma)
    net = mx.sym.Convolution(act1, num_filter=depth, kernel=(1, 1), no_bias=True, name=f"{prefix}_conv1")
    net = _bn_relu(net, f"{prefix}_bn2", f"{prefix}_relu2", fix_gamma)
    net = mx.sym.Convolution(net, num_filter=depth, kernel=(3, 3), stride=(stride, stride), pad=(1, 1),
                             no_bias=True, name=f"{prefix}_conv2")
    net = _bn_relu(net, f"{prefix}_bn3", f"{prefix}_relu3", fix_gamma)
    net = mx.sym.Convolution(net, num_filter=4 * depth, kernel=(1, 1), name=f"{prefix}_conv3")
    if project:
        source = data if shortcut_from_data else act1
        shortcut = mx.sym.Convolution(source, num_filter=4 * depth, kernel=(1, 1), stride=(stride, stride),
                                      name=f"{prefix}_sc")
    elif stride > 1:
        shortcut = mx.sym.Pooling(data, pool_type="max", kernel=(1, 1), stride=(stride, stride),
                                  name=f"{prefix}_sc_subsample")
    else:
        shortcut = data
    return mx.sym.elemwise_add(net, shortcut, name=f"{prefix}_plus")


def _network(num_classes, pool0_pad=0, fix_gamma=False, postnorm=True, shortcut_from_data=False):
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data, num_filter=64, kernel=(7, 7), stride=(2, 2), pad=(3, 3), name="conv0")
    convention = "full" if pool0_pad == 0 else "valid"
    net = mx.sym.Pooling(net, pool_type="max", kernel=(3, 3), stride=(2, 2), pad=(pool0_pad, pool0_pad),
                         pooling_convention=convention, name="pool0")
    for stage, (units, depth, stride) in enumerate(STAGES, start=1):
        for unit in range(units):
            net = _unit(net, f"stage{stage}_unit{unit + 1}", depth, stride if unit == units - 1 else 1,
                        unit == 0, fix_gamma, shortcut_from_data)
    if postnorm:
        net = _bn_relu(net, "bn1", "relu1", fix_gamma)
    net = mx.sym.Pooling(net, pool_type="avg", kernel=(7, 7), global_pool=True, name="pool1")
    net = mx.sym.FullyConnected(mx.sym.Flatten(net, name="flatten0"), num_hidden=num_classes, name="fc1")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 64, 64) or larger, output ``softmax``."""
    return _network(num_classes)


def weights_from_tf(tf_values: dict):
    """slim's variables -> (arg_params, aux_params) of ``build``."""
    arg, aux = {}, {}

    def bn(scope, name):
        bn_arg, bn_aux = common.batch_norm(tf_values, scope, name)
        arg.update(bn_arg)
        aux.update(bn_aux)

    def conv(scope, name, bias):
        arg[f"{name}_weight"] = common.conv_weight(tf_values[f"{scope}/weights"])
        if bias:
            arg[f"{name}_bias"] = tf_values[f"{scope}/biases"]

    conv("resnet_v2_50/conv1", "conv0", bias=True)
    for stage, (units, _, _) in enumerate(STAGES, start=1):
        for unit in range(units):
            scope = f"resnet_v2_50/block{stage}/unit_{unit + 1}/bottleneck_v2"
            prefix = f"stage{stage}_unit{unit + 1}"
            bn(f"{scope}/preact", f"{prefix}_bn1")
            conv(f"{scope}/conv1", f"{prefix}_conv1", bias=False)
            bn(f"{scope}/conv1", f"{prefix}_bn2")
            conv(f"{scope}/conv2", f"{prefix}_conv2", bias=False)
            bn(f"{scope}/conv2", f"{prefix}_bn3")
            conv(f"{scope}/conv3", f"{prefix}_conv3", bias=True)
            if unit == 0:
                conv(f"{scope}/shortcut", f"{prefix}_sc", bias=True)
    bn("resnet_v2_50/postnorm", "bn1")
    w = tf_values["resnet_v2_50/logits/weights"]
    arg["fc1_weight"] = np.ascontiguousarray(w.reshape(w.shape[2], w.shape[3]).T)
    arg["fc1_bias"] = tf_values["resnet_v2_50/logits/biases"]
    return arg, aux


# -- mutants: one real defect each --

def mutant_pool0_symmetric(num_classes: int = CLASSES):
    """pool1 with pad=1 (symmetric) where slim's SAME pads (0, 1): same 16x16, windows shifted."""
    return _network(num_classes, pool0_pad=1)


def mutant_fix_gamma(num_classes: int = CLASSES):
    """BatchNorm left at MXNet's fix_gamma=True: gamma forced to 1 where slim learns it (scale=True)."""
    return _network(num_classes, fix_gamma=True)


def mutant_no_postnorm(num_classes: int = CLASSES):
    """The final BN + ReLU (slim's postnorm) forgotten: its parameters are simply not read."""
    return _network(num_classes, postnorm=False)


def mutant_shortcut_from_data(num_classes: int = CLASSES):
    """Projection shortcuts read the unit's raw input instead of the pre-activation (BN + ReLU)."""
    return _network(num_classes, shortcut_from_data=True)


MUTANTS = {
    "pool1_symmetric": (mutant_pool0_symmetric, "pool1 3x3/2 pads (1, 1) where slim's SAME pads (0, 1)"),
    "fix_gamma": (mutant_fix_gamma, "BatchNorm fix_gamma=True where slim learns gamma (scale=True)"),
    "no_postnorm": (mutant_no_postnorm, "no BN + ReLU (slim's postnorm) after the last stage"),
    "shortcut_from_data": (mutant_shortcut_from_data, "projection shortcuts read the raw input, not preact"),
}

#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first): the
#: first layer it touches.
MUTANT_ROOTS = {"pool1_symmetric": "resnet_v2_50/pool1",
                "fix_gamma": "resnet_v2_50/block1/unit_1/bottleneck_v2/preact",
                "no_postnorm": "resnet_v2_50/postnorm",
                "shortcut_from_data": "resnet_v2_50/block1/unit_1/bottleneck_v2/shortcut"}
