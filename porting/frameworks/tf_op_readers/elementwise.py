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
