"""Element-wise ops: sums (residual adds) and products (residual scales)."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_float
from porting.frameworks.mx_op_readers import reads


@reads("elemwise_add", "_Plus", "_plus", "broadcast_add", "add_n", "ElementWiseSum", "_add")
def add(node, attrs) -> None:
    """elemwise_add, broadcast_add, add_n, ElementWiseSum, _plus... -> add; bias when the other operand is a parameter."""
    # One data input: the other operand is off the data path (a stored bias, as converters write
    # dense layers: gemm + broadcast_add), so it folds into the layer before it like TF's BiasAdd.
    node.kind = Kind.BIAS if len(node.inputs) == 1 else Kind.ADD


@reads("_mul_scalar", "_MulScalar")
def multiply_scalar(node, attrs) -> None:
    """_mul_scalar -> scale by its scalar."""
    node.kind = Kind.SCALE
    node.attrs["scale"] = as_float(attrs.get("scalar"), None)


@reads("elemwise_mul", "broadcast_mul", "_Mul", "_mul")
def multiply(node, attrs) -> None:
    """elemwise_mul / broadcast_mul -> mul of two data tensors, or scale when the other operand is a parameter."""
    # A product with a constant (a variable off the data path) is a scale, as in TF.
    node.kind = Kind.MUL if len(node.inputs) >= 2 else Kind.SCALE


@reads("broadcast_div", "elemwise_div", "_div", "_Div")
def divide(node, attrs) -> None:
    """broadcast_div / elemwise_div by a parameter -> scale by its inverse.

    A converter stores a temperature or a scale (MXNet's ONNX export writes a softmax as ``x / 1.0``
    first); a quotient of two data tensors stays as it is (the masked average pool's is folded by the reader).
    """
    if len(node.inputs) == 1:
        node.kind = Kind.SCALE
        node.attrs["inverse"] = True


@reads("_div_scalar", "_DivScalar")
def divide_scalar(node, attrs) -> None:
    """_div_scalar -> scale by the inverse of its scalar."""
    node.kind = Kind.SCALE
    scalar = as_float(attrs.get("scalar"), None)
    node.attrs["scale"] = 1.0 / scalar if scalar else None

