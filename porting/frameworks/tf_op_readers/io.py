"""The network input."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.tf_op_readers import reads


@reads("Placeholder")
def placeholder(node, op, data) -> None:
    """Placeholder -> input."""
    node.kind = Kind.INPUT
