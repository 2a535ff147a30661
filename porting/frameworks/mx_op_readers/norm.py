"""Normalization: batch norm and local response normalization."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_flag, as_float, parse
from porting.frameworks.mx_op_readers import reads


@reads("BatchNorm")
def batch_norm(node, attrs) -> None:
    """BatchNorm -> bn: eps, momentum, fix_gamma (scale = not fix_gamma), use_global_stats, axis."""
    node.kind = Kind.BN
    node.attrs.update(eps=as_float(attrs.get("eps"), 1e-3), momentum=as_float(attrs.get("momentum"), 0.9),
                      fix_gamma=as_flag(attrs.get("fix_gamma"), True),
                      use_global_stats=as_flag(attrs.get("use_global_stats"), False),
                      axis=int(parse(attrs.get("axis", "1"))))
    node.attrs["scale"] = not node.attrs["fix_gamma"]


@reads("LRN")
def local_response_norm(node, attrs) -> None:
    """LRN -> lrn: nsize, alpha, beta, knorm."""
    node.kind = Kind.LRN
    node.attrs.update(nsize=int(parse(attrs["nsize"])), alpha=as_float(attrs.get("alpha"), 1e-4),
                      beta=as_float(attrs.get("beta"), 0.75), knorm=as_float(attrs.get("knorm"), 2.0))
