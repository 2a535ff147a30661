"""Facts read off a built ``tf.Graph`` that the TF reader and autoport share.

The data path (the float ops between the input placeholder and the outputs),
constant values, the layer scope an op belongs to, dropout scopes and slim's
batch-norm decay. Which variable a tensor reads is ``tf_variables``' business.
"""
from __future__ import annotations

import numpy as np

from porting import compat
from porting.core.graph_walk import collapse_scope, reachable
from porting.frameworks import tf_variables

tf = compat.import_tf()

#: Trailing op names that are not part of the layer scope ('Net/Conv2d_1a_3x3/Conv2D').
OP_SUFFIXES = frozenset({"Conv2D", "MaxPool", "AvgPool", "MatMul", "BiasAdd", "FusedBatchNormV3", "FusedBatchNorm",
                         "DepthwiseConv2dNative", "depthwise", "Squeeze", "Reshape", "Softmax", "LRN", "Pad"})
#: Ops whose scope is the scope of the weights they read.
_WEIGHTED_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
_BINARY = {"Sub": np.subtract, "Mul": np.multiply, "AddV2": np.add, "Add": np.add, "RealDiv": np.divide}


def is_float(tensor) -> bool:
    """Whether a tensor carries floating-point data (the data path never leaves floats)."""
    return tensor.dtype.base_dtype.is_floating


def data_ops(images, outputs) -> list:
    """Ops on a float path from the input placeholder to the outputs, in creation order."""

    def float_readers(op):
        return [reader for tensor in op.outputs if is_float(tensor) for reader in tensor.consumers()
                if any(is_float(o) for o in reader.outputs)]

    forward = reachable([images.op], float_readers)
    backward = reachable([t.op for t in outputs], lambda op: [t.op for t in op.inputs], within=forward)
    return [op for op in images.graph.get_operations() if op in backward]


def const_value(tensor):
    """The value of a tensor computed from constants only, or None."""
    value = tf.get_static_value(tensor)
    if value is not None:
        return np.asarray(value)
    op = tensor.op
    if op.type == "Identity" and op.inputs:
        return const_value(op.inputs[0])
    if op.type in _BINARY and len(op.inputs) == 2:
        a, b = const_value(op.inputs[0]), const_value(op.inputs[1])
        if a is None or b is None:
            return None
        return _BINARY[op.type](a, b)
    return None


def scope_of(op) -> str:
    """The layer scope of an op: the scope of the weights it reads, else its name less op suffixes."""
    if op.type in _WEIGHTED_OPS and len(op.inputs) > 1:
        weights = tf_variables.variable_scope(op.inputs[1])
        if weights:
            return weights
    parts = op.name.split("/")
    if len(parts) > 1 and (parts[-1] in OP_SUFFIXES or parts[-1].split("_")[0] in OP_SUFFIXES):
        parts = parts[:-1]
    return collapse_scope("/".join(parts))


def dropout_scope(op) -> str | None:
    """'Net/Logits/Dropout_1b' when an op sits inside a dropout's scope, else None."""
    parts = op.name.split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower().startswith("dropout"):
            return "/".join(parts[: index + 1])
    return None


def bn_decay(op) -> float | None:
    """slim's batch-norm decay, visible only in a training graph (moving-average updates)."""
    for reader in op.outputs[1].consumers():
        # moving_mean -= (moving_mean - batch_mean) * (1 - decay)
        for mul in reader.outputs[0].consumers() if reader.outputs else ():
            if mul.type != "Mul":
                continue
            for tensor in mul.inputs:
                if tensor.op is reader:
                    continue
                one_minus = const_value(tensor)
                if one_minus is not None and np.size(one_minus) == 1:
                    return float(round(1.0 - float(one_minus), 10))
    return None
