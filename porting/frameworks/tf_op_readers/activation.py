"""Activations and softmax."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.tf_op_readers import reads
from porting.frameworks.tf_op_readers.common import nchw_axis

#: TF activation op -> the activation name both readers use.
ACTIVATIONS = {"Relu": "relu", "Relu6": "relu6", "Elu": "elu", "Selu": "selu", "Sigmoid": "sigmoid",
               "Tanh": "tanh", "LeakyRelu": "leaky_relu", "Softplus": "softrelu", "Softsign": "softsign"}


@reads(*ACTIVATIONS)
def activation(node, op, data) -> None:
    """Relu, Relu6, Elu, Selu, Sigmoid, Tanh, LeakyRelu, Softplus, Softsign -> act (and LeakyRelu's alpha)."""
    node.kind = Kind.ACT
    node.attrs["act"] = ACTIVATIONS[op.type]
    if op.type == "LeakyRelu":
        node.attrs["alpha"] = float(op.get_attr("alpha"))


@reads("Softmax", "LogSoftmax")
def softmax(node, op, data) -> None:
    """Softmax / LogSoftmax -> softmax over the last axis (as an NCHW axis)."""
    node.kind = Kind.SOFTMAX
    rank = op.outputs[0].shape.rank
    node.attrs["axis"] = nchw_axis(rank - 1, rank)
    node.attrs["log"] = op.type == "LogSoftmax"
