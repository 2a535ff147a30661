"""Element-wise ops: sums (residual adds, biases) and products (residual scales)."""
from __future__ import annotations

import numpy as np

from porting.core.records import Kind
from porting.frameworks.tf_graph_facts import const_value
from porting.frameworks.tf_op_readers import reads


@reads("AddV2", "Add", "AddN")
def add(node, op, data) -> None:
    """AddV2 / Add / AddN -> add of two data tensors, or bias when one operand is a constant or variable."""
    node.kind = Kind.ADD if len(node.inputs) >= 2 else Kind.BIAS


@reads("Mul")
def multiply(node, op, data) -> None:
    """Mul -> mul of two data tensors, or scale by a constant (its value when it is a scalar)."""
    if len(node.inputs) >= 2:
        node.kind = Kind.MUL
        return
    other = [t for t in op.inputs if t.op not in data]
    value = const_value(other[0]) if other else None
    node.kind = Kind.SCALE
    node.attrs["scale"] = float(value) if value is not None and np.size(value) == 1 else None


@reads("RealDiv", "Div")
def divide(node, op, data) -> None:
    """RealDiv / Div by a constant -> scale by its inverse (its value when it is a scalar); other quotients stay.

    Only ``x / c``: ``c / x`` is no scale, and a quotient of two data tensors is not either.
    """
    if len(node.inputs) != 1 or op.inputs[0].op not in data:
        return
    value = const_value(op.inputs[1])
    node.kind = Kind.SCALE
    node.attrs["scale"] = 1.0 / float(value) if value is not None and np.size(value) == 1 and value != 0 else None

