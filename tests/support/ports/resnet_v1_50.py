"""ResNet-50 v1 (slim's ``resnet_v1_50``) written the way an MXNet user writes it.

Caffe names (``conv1``/``bn_conv1``, ``res2a_branch2a``/``bn2a_branch2a``, ``res2a_branch1``, ...):
slim's block1..block4 are stages 2..5, units a, b, c...; each residual shortcut is created AFTER its
branch (slim creates it first); global average ``Pooling`` + ``Flatten`` + ``FullyConnected`` where
slim has ``reduce_mean`` and a 1x1 ``logits`` conv; ``SoftmaxOutput`` at the end.

What slim computes, and how it is written here exactly:
* ``resnet_arg_scope``: batch norm with a learned gamma (scale=True), eps 1e-5, decay 0.997
  -> ``BatchNorm(fix_gamma=False, eps=1e-5, momentum=0.997)``; convs followed by a batch norm have
  no bias; the logits conv has one.
* ``conv2d_same`` for strided convs (conv1 7x7/2, the 3x3/2): explicit symmetric pads (k-1)//2,
  then VALID -> ``pad=k//2``, exact for odd k.
* ``pool1``: max_pool2d 3x3/2 SAME (arg scope). At 32 x 32 its pads are (0, 1), asymmetric:
  ``pad=0`` with ``pooling_convention='full'`` covers the extra bottom/right cell exactly.
* The stride of a stage sits in its LAST unit (block1..3; block4 has none), on the 3x3 conv;
  that unit's shortcut is slim's ``subsample``: a 1x1/2 max pool.
"""
from __future__ import annotations

import numpy as np

from tests.support.ports import common

mx = common.mx

SLIM = "tf_slim.nets.resnet_v1:resnet_v1_50"
ARG_SCOPE = "tf_slim.nets.resnet_v1:resnet_arg_scope"
SIZE = 64  # 32 after conv1, 16 after pool1, 8, 4, 2, 2
CLASSES = 10
SLIM_KWARGS = {}
tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

#: (stage, units, bottleneck depth, stride of the stage's last unit)
STAGES = ((2, 3, 64, 2), (3, 4, 128, 2), (4, 6, 256, 2), (5, 3, 512, 1))
UNITS = "abcdef"


def _bn(net, name, fix_gamma=False, eps=1e-5):
    return mx.sym.BatchNorm(net, fix_gamma=fix_gamma, eps=eps, momentum=0.997, name=name)


def _unit(net, stage, unit, depth, stride, project, bn, stride_on_1x1):
    name = f"{stage}{UNITS[unit]}"
    stride_a, stride_b = ((stride, stride), (1, 1)) if stride_on_1x1 else ((1, 1), (stride, stride))
    branch = mx.sym.Convolution(net, num_filter=depth, kernel=(1, 1), stride=stride_a, no_bias=True,
                                name=f"res{name}_branch2a")
    branch = mx.sym.Activation(_bn(branch, f"bn{name}_branch2a", **bn), act_type="relu",
                               name=f"res{name}_branch2a_relu")
    branch = mx.sym.Convolution(branch, num_filter=depth, kernel=(3, 3), stride=stride_b, pad=(1, 1),
                                no_bias=True, name=f"res{name}_branch2b")
    branch = mx.sym.Activation(_bn(branch, f"bn{name}_branch2b", **bn), act_type="relu",
                               name=f"res{name}_branch2b_relu")
    branch = mx.sym.Convolution(branch, num_filter=4 * depth, kernel=(1, 1), no_bias=True,
                                name=f"res{name}_branch2c")
    branch = _bn(branch, f"bn{name}_branch2c", **bn)
    if project:
        shortcut = mx.sym.Convolution(net, num_filter=4 * depth, kernel=(1, 1), stride=(stride, stride),
                                      no_bias=True, name=f"res{name}_branch1")
        shortcut = _bn(shortcut, f"bn{name}_branch1", **bn)
    elif stride > 1:
        shortcut = mx.sym.Pooling(net, pool_type="max", kernel=(1, 1), stride=(stride, stride),
                                  name=f"res{name}_branch1_subsample")
    else:
        shortcut = net
    return mx.sym.Activation(branch + shortcut, act_type="relu", name=f"res{name}_relu")


def _network(num_classes, pool1_pad=0, fix_gamma=False, stride_on_1x1=False, stride_first=False, eps=1e-5):
    bn = {"fix_gamma": fix_gamma, "eps": eps}
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data, num_filter=64, kernel=(7, 7), stride=(2, 2), pad=(3, 3), no_bias=True,
                             name="conv1")
    net = mx.sym.Activation(_bn(net, "bn_conv1", **bn), act_type="relu", name="conv1_relu")
    convention = "full" if pool1_pad == 0 else "valid"
    net = mx.sym.Pooling(net, pool_type="max", kernel=(3, 3), stride=(2, 2), pad=(pool1_pad, pool1_pad),
                         pooling_convention=convention, name="pool1")
    for stage, units, depth, stride in STAGES:
        for unit in range(units):
            at = 0 if stride_first else units - 1
            net = _unit(net, stage, unit, depth, stride if unit == at else 1, unit == 0, bn, stride_on_1x1)
    net = mx.sym.Pooling(net, pool_type="avg", kernel=(1, 1), global_pool=True, name="pool5")
    net = mx.sym.FullyConnected(mx.sym.Flatten(net, name="flatten"), num_hidden=num_classes, name="fc1000")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 64, 64) or larger, output ``softmax``."""
    return _network(num_classes)


def weights_from_tf(tf_values: dict):
    """slim's variables -> (arg_params, aux_params) of ``build``."""
    arg, aux = {}, {}

    def conv_bn(scope, conv, bn):
        arg[f"{conv}_weight"] = common.conv_weight(tf_values[f"{scope}/weights"])
        bn_arg, bn_aux = common.batch_norm(tf_values, scope, bn)
        arg.update(bn_arg)
        aux.update(bn_aux)

    conv_bn("resnet_v1_50/conv1", "conv1", "bn_conv1")
    for block, (stage, units, _, _) in enumerate(STAGES, start=1):
        for unit in range(units):
            scope = f"resnet_v1_50/block{block}/unit_{unit + 1}/bottleneck_v1"
            name = f"{stage}{UNITS[unit]}"
            for slim_conv, branch in (("conv1", "branch2a"), ("conv2", "branch2b"), ("conv3", "branch2c")):
                conv_bn(f"{scope}/{slim_conv}", f"res{name}_{branch}", f"bn{name}_{branch}")
            if unit == 0:
                conv_bn(f"{scope}/shortcut", f"res{name}_branch1", f"bn{name}_branch1")
    w = tf_values["resnet_v1_50/logits/weights"]
    arg["fc1000_weight"] = np.ascontiguousarray(w.reshape(w.shape[2], w.shape[3]).T)
    arg["fc1000_bias"] = tf_values["resnet_v1_50/logits/biases"]
    return arg, aux


# -- mutants: one real defect each --

def mutant_pool1_symmetric(num_classes: int = CLASSES):
    """pool1 with pad=1 (symmetric) where slim's SAME pads (0, 1): same 16x16, windows shifted."""
    return _network(num_classes, pool1_pad=1)


def mutant_stride_on_1x1(num_classes: int = CLASSES):
    """The stride on the bottleneck's first 1x1 (original Caffe ResNet) instead of slim's 3x3."""
    return _network(num_classes, stride_on_1x1=True)


def mutant_fix_gamma(num_classes: int = CLASSES):
    """BatchNorm left at MXNet's fix_gamma=True: gamma forced to 1 where slim learns it (scale=True)."""
    return _network(num_classes, fix_gamma=True)


def mutant_stride_first_unit(num_classes: int = CLASSES):
    """Each stage downsamples in its first unit (MXNet model zoo) instead of slim's last unit."""
    return _network(num_classes, stride_first=True)


def mutant_bn_eps(num_classes: int = CLASSES):
    """Every BatchNorm at MXNet's default eps=2e-5 where slim's resnet_arg_scope has 1e-5: one systematic
    defect on all 53 batch norms. Not in ``MUTANTS``: its logits move by less than the corpus's
    visibility bar (eps is tiny next to variances near 1); the lint names it, and its report must
    stay short (``tests/verifier/test_attribution.py``)."""
    return _network(num_classes, eps=2e-5)


MUTANTS = {
    "pool1_symmetric": (mutant_pool1_symmetric, "pool1 3x3/2 pads (1, 1) where slim's SAME pads (0, 1)"),
    "stride_on_1x1": (mutant_stride_on_1x1, "stride 2 on the bottleneck's 1x1 conv instead of its 3x3"),
    "fix_gamma": (mutant_fix_gamma, "BatchNorm fix_gamma=True where slim learns gamma (scale=True)"),
    "stride_first_unit": (mutant_stride_first_unit, "stages downsample in their first unit, slim in its last"),
}

#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first): the
#: first layer it touches.
MUTANT_ROOTS = {"pool1_symmetric": "resnet_v1_50/pool1",
                "stride_on_1x1": "resnet_v1_50/block1/unit_3/bottleneck_v1/conv1",
                "fix_gamma": "resnet_v1_50/conv1",
                "stride_first_unit": "resnet_v1_50/block1/unit_1/bottleneck_v1"}  # its shortcut and its conv2
