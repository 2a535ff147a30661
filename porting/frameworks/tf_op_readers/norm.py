"""Normalization: fused batch norm and local response normalization."""
from __future__ import annotations

import numpy as np

from porting.core.records import Kind
from porting.frameworks import tf_variables
from porting.frameworks.tf_graph_facts import bn_decay, const_value
from porting.frameworks.tf_op_readers import reads


@reads("FusedBatchNormV3", "FusedBatchNorm", "FusedBatchNormV2")
def batch_norm(node, op, data) -> None:
    """FusedBatchNorm* -> bn: eps, training mode, scale/center (constant gamma 1 / beta 0), decay, moving stats."""
    node.kind = Kind.BN
    # A frozen graph's learned gamma and beta are constants too (tf_variables.mark_frozen): only
    # a constant that never was a variable says the layer has no scale or no center.
    gamma = None if tf_variables.reads_variable(op.inputs[1]) else const_value(op.inputs[1])
    beta = None if tf_variables.reads_variable(op.inputs[2]) else const_value(op.inputs[2])
    node.attrs.update(eps=float(op.get_attr("epsilon")), is_training=bool(op.get_attr("is_training")),
                      scale=not (gamma is not None and np.all(gamma == 1)),
                      center=not (beta is not None and np.all(beta == 0)),
                      momentum=bn_decay(op))
    node.attrs["has_moving_stats"] = (tf_variables.reads_variable(op.inputs[3])
                                      or node.attrs["momentum"] is not None)


@reads("LRN")
def local_response_norm(node, op, data) -> None:
    """LRN -> lrn: depth radius, bias, alpha, beta."""
    node.kind = Kind.LRN
    node.attrs.update(depth_radius=int(op.get_attr("depth_radius")), bias=float(op.get_attr("bias")),
                      alpha=float(op.get_attr("alpha")), beta=float(op.get_attr("beta")))
