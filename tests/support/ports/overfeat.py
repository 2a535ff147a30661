"""slim's ``overfeat`` (the "accurate"-like fast model) ported to MXNet by hand, at 231x231.

Written as an MXNet user writes an AlexNet-style classifier, not mirrored from slim:
``conv1..conv5`` with biases and separate ``relu`` nodes, ``Flatten`` + ``FullyConnected`` for
slim's conv head (``fc6`` is a 6x6 VALID conv over pool5's 6x6 map, ``fc7``/``fc8`` 1x1 convs),
``Dropout`` with MXNet's drop probability, and ``SoftmaxOutput`` at the end.

What the port has to get right at 231 (the only size where fc6 sees a 6x6 map: 231 -> 56 -> 28 ->
24 -> 12 -> 6):

* conv1 (11x11/4) and conv2 (5x5) are VALID: pad 0; conv3..5 are SAME 3x3/1: pad 1 (symmetric);
* the 2x2/2 max pools are VALID on even maps: MXNet's default 'valid' convention, pad 0;
* fc6's weights (6, 6, 1024, 3072) become a (3072, 1024*6*6) FullyConnected over the NCHW
  ``Flatten`` of pool5: ``w.transpose(3, 2, 0, 1).reshape(3072, -1)`` (channel-major);
* every conv and fc6/fc7 end in ReLU (slim's default activation), fc8 is linear;
* slim's keep_prob 0.5 is MXNet's p 0.5 (the same number for once).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from porting import compat
from tests.support.ports import common

mx = compat.import_mx()

SLIM = "tf_slim.nets.overfeat:overfeat"
ARG_SCOPE = "tf_slim.nets.overfeat:overfeat_arg_scope"
SIZE = 231
CLASSES = 10
SLIM_KWARGS: dict = {}
HEADS: tuple[str, ...] = ()

tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

_SCOPE = "overfeat"
DROPOUT_P = 0.5  # slim's keep_prob 0.5


@dataclass(frozen=True)
class _Choices:
    """How each construct is written; the defaults are the correct port, a mutant changes one."""

    conv1_pad: int = 0  # slim's conv1 is VALID
    fc6_relu: bool = True
    nhwc_flatten: bool = False  # transpose pool5 to NHWC before Flatten (fc6's weights are channel-major)
    dropout_p: float = DROPOUT_P


def _conv_relu(data, name, num_filter, kernel, stride=(1, 1), pad=(0, 0)):
    net = mx.sym.Convolution(data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad, name=name)
    return mx.sym.Activation(net, act_type="relu", name=f"relu{name[4:]}")


def _build(num_classes: int, c: _Choices):
    data = mx.sym.Variable("data")  # 3 x 231 x 231
    net = _conv_relu(data, "conv1", 64, (11, 11), stride=(4, 4), pad=(c.conv1_pad,) * 2)  # 64 x 56 x 56
    net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool1")  # 64 x 28 x 28
    net = _conv_relu(net, "conv2", 256, (5, 5))  # 256 x 24 x 24
    net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool2")  # 256 x 12 x 12
    net = _conv_relu(net, "conv3", 512, (3, 3), pad=(1, 1))
    net = _conv_relu(net, "conv4", 1024, (3, 3), pad=(1, 1))
    net = _conv_relu(net, "conv5", 1024, (3, 3), pad=(1, 1))  # 1024 x 12 x 12
    net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool5")  # 1024 x 6 x 6
    if c.nhwc_flatten:
        net = mx.sym.transpose(net, axes=(0, 2, 3, 1), name="to_nhwc")
    net = mx.sym.Flatten(net, name="flatten")  # 36864
    net = mx.sym.FullyConnected(net, num_hidden=3072, name="fc6")
    if c.fc6_relu:
        net = mx.sym.Activation(net, act_type="relu", name="relu6")
    net = mx.sym.Dropout(net, p=c.dropout_p, name="drop6")
    net = mx.sym.FullyConnected(net, num_hidden=4096, name="fc7")
    net = mx.sym.Activation(net, act_type="relu", name="relu7")
    net = mx.sym.Dropout(net, p=c.dropout_p, name="drop7")
    net = mx.sym.FullyConnected(net, num_hidden=num_classes, name="fc8")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 231, 231), output ``softmax`` (label ``softmax_label``)."""
    return _build(num_classes, _Choices())


def weights_from_tf(tf_values):
    """slim's variables -> (arg_params, aux_params) of this port (numpy arrays; no aux state)."""
    arg_params = {}
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        arg_params[f"{name}_weight"] = common.conv_weight(tf_values[f"{_SCOPE}/{name}/weights"])
        arg_params[f"{name}_bias"] = tf_values[f"{_SCOPE}/{name}/biases"]
    arg_params["fc6_weight"] = common.conv_head_to_fc(tf_values[f"{_SCOPE}/fc6/weights"])
    for name in ("fc7", "fc8"):
        arg_params[f"{name}_weight"] = common.dense_from_1x1(tf_values[f"{_SCOPE}/{name}/weights"])
    for name in ("fc6", "fc7", "fc8"):
        arg_params[f"{name}_bias"] = tf_values[f"{_SCOPE}/{name}/biases"]
    return arg_params, {}


def _mutant(**change):
    choices = replace(_Choices(), **change)
    return lambda num_classes=CLASSES: _build(num_classes, choices)


MUTANTS = {
    "conv1_pad": (_mutant(conv1_pad=5),
                  "conv1 pads 5 (k//2, 'SAME-like') where slim's conv1 is VALID; pool5 is still 6x6 (58 -> 29 -> 25 "
                  "-> 12 -> 6) but every window moves"),
    "fc6_no_relu": (_mutant(fc6_relu=False), "no ReLU after fc6 (FullyConnected is linear; slim's conv has ReLU)"),
    "nhwc_flatten": (_mutant(nhwc_flatten=True),
                     "pool5 transposed to NHWC before Flatten while fc6's weights are laid out for NCHW (C, H, W)"),
}
TRAINING_ONLY: dict = {}
#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first):
#: a row whose TF layer is this scope or under it names the root.
MUTANT_ROOTS = {
    "conv1_pad": "overfeat/conv1",
    "fc6_no_relu": "overfeat/fc6",
    "nhwc_flatten": "overfeat/fc6",
}
