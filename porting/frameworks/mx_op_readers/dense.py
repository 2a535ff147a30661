"""Dense layers and the dropout in front of them."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_flag, as_float, parse
from porting.frameworks.mx_op_readers import reads


@reads("FullyConnected")
def fully_connected(node, attrs) -> None:
    """FullyConnected -> fc: bias, flatten, num_hidden."""
    node.kind = Kind.FC
    node.attrs.update(has_bias=not as_flag(attrs.get("no_bias"), False), flatten=as_flag(attrs.get("flatten"), True),
                      num_hidden=int(parse(attrs["num_hidden"])))


@reads("_linalg_gemm2", "linalg_gemm2", "dot")
def matrix_product(node, attrs) -> None:
    """gemm2 / dot of the data by a stored matrix -> fc (the bias is a following add); of two data tensors: mul."""
    if len(node.inputs) != 1 or len(node.shape) != 2:
        node.kind = Kind.OTHER
        return
    node.kind = Kind.FC
    node.attrs.update(has_bias=False, flatten=True, num_hidden=int(node.shape[-1]),
                      transpose_b=as_flag(attrs.get("transpose_b"), False), matrix_product=True)


@reads("Dropout")
def dropout(node, attrs) -> None:
    """Dropout -> dropout: p, mode, and keep_prob = 1 - p as TF states it."""
    node.kind = Kind.DROPOUT
    node.attrs.update(p=as_float(attrs.get("p"), 0.5), mode=attrs.get("mode", "training"))
    node.attrs["keep_prob"] = round(1.0 - node.attrs["p"], 10)
