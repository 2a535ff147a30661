"""The MXNet side of tests/support/tiny_tf.py (``--mx tests/support/tiny_mx.py:build``).

``build`` computes what tiny_tf.build computes; ``broken`` and the others each carry one defect.
"""
from __future__ import annotations

from porting import compat

mx = compat.import_mx()


def _net(num_classes, conv_pad_op=True, pool_kernel=4):
    data = mx.sym.Variable("data")
    net = data
    if conv_pad_op:  # TF pads (0, 1): an explicit pad op, then pad 0
        net = mx.sym.pad(net, mode="constant", pad_width=(0, 0, 0, 0, 0, 1, 0, 1), name="Tiny/Conv2d_1a_3x3/pad")
    net = mx.sym.Convolution(net, kernel=(3, 3), stride=(2, 2), pad=(0, 0) if conv_pad_op else (1, 1),
                             num_filter=8, name="Tiny/Conv2d_1a_3x3")
    net = mx.sym.Activation(net, act_type="relu", name="Tiny/Conv2d_1a_3x3/Relu")
    net = mx.sym.Pooling(net, kernel=(pool_kernel, pool_kernel), stride=(1, 1), pool_type="max",
                         name="Tiny/MaxPool_2a_4x4")
    net = mx.sym.flatten(net, name="Tiny/Flatten")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="Tiny/Logits")


def build(num_classes):
    return _net(num_classes)


def broken(num_classes):
    """pad=1 instead of the (0, 1) pad op (same 4x4, shifted windows); a 3x3 pool (2x2, not 1x1)."""
    return _net(num_classes, conv_pad_op=False, pool_kernel=3)


def raises(num_classes):
    raise RuntimeError("boom in the MX builder")


def wrong_type(num_classes):
    return [mx.sym.Variable("data")]


def no_data(num_classes):
    return mx.sym.FullyConnected(mx.sym.Variable("x"), num_hidden=num_classes, name="fc")

def detached(num_classes):
    """The logits read a variable 'x', not 'data' (data only feeds a second output)."""
    logits = mx.sym.FullyConnected(mx.sym.Variable("x"), num_hidden=num_classes, name="fc")
    return mx.sym.Group([logits, mx.sym.flatten(mx.sym.Variable("data"), name="side")])


def kernel_too_big(num_classes):
    """A 9x9 kernel on the 8x8 input: shape inference fails (and MXNet prints on stdout)."""
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(9, 9), num_filter=4, name="conv")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="fc")
