"""Dense layers: MatMul and the bias that follows a conv or a matmul."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.tf_op_readers import reads


@reads("MatMul")
def matmul(node, op, data) -> None:
    """MatMul -> fc: whether the kernel is read transposed, and its shape."""
    node.kind = Kind.FC
    node.attrs.update(transpose_b=bool(op.get_attr("transpose_b")),
                      weight_shape=tuple(op.inputs[1].shape.as_list()), has_bias=False)


@reads("BiasAdd")
def bias_add(node, op, data) -> None:
    """BiasAdd -> bias (folded into the conv or fc it follows)."""
    node.kind = Kind.BIAS
