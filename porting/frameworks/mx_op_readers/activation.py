"""Activations and softmax."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_flag, as_float, parse
from porting.frameworks.mx_op_readers import reads


@reads("Activation")
def activation(node, attrs) -> None:
    """Activation -> act named by act_type."""
    node.kind = Kind.ACT
    node.attrs["act"] = attrs.get("act_type", "relu")


@reads("relu", "sigmoid", "tanh")
def named_activation(node, attrs) -> None:
    """relu / sigmoid / tanh -> act named by the op."""
    node.kind = Kind.ACT
    node.attrs["act"] = node.op


@reads("LeakyReLU")
def leaky_relu(node, attrs) -> None:
    """LeakyReLU -> act ('leaky' is leaky_relu, other act_types keep their name) with its slope."""
    node.kind = Kind.ACT
    node.attrs["act"] = {"leaky": "leaky_relu"}.get(attrs.get("act_type", "leaky"), attrs.get("act_type"))
    node.attrs["alpha"] = as_float(attrs.get("slope"), 0.25)


@reads("clip")
def clip(node, attrs) -> None:
    """clip -> act: relu6 for clip(0, 6), else 'clip(low,high)'."""
    node.kind = Kind.ACT
    low, high = as_float(attrs.get("a_min"), None), as_float(attrs.get("a_max"), None)
    node.attrs["act"] = "relu6" if (low, high) == (0.0, 6.0) else f"clip({low},{high})"


@reads("softmax", "SoftmaxOutput", "SoftmaxActivation", "log_softmax", "Softmax")
def softmax(node, attrs) -> None:
    """softmax / log_softmax / Softmax (axis attribute), SoftmaxOutput / SoftmaxActivation (axis 1) -> softmax."""
    node.kind = Kind.SOFTMAX
    if node.op == "SoftmaxOutput":
        node.attrs["axis"] = 1
        node.attrs["multi_output"] = as_flag(attrs.get("multi_output"), False)
    elif node.op == "SoftmaxActivation":
        node.attrs["axis"] = 1
    else:
        axis = int(parse(attrs.get("axis", "-1")))
        node.attrs["axis"] = axis + len(node.shape) if axis < 0 else axis
    node.attrs["log"] = node.op == "log_softmax"
