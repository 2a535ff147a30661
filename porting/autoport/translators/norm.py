"""Normalization: fused batch norm (inference) and local response normalization."""
from __future__ import annotations

import numpy as np

from porting import compat
from porting.autoport.registry import NotTranslatable, translates
from porting.autoport.translate import AUX
from porting.autoport.translators.conv import check_nhwc
from porting.core.graph_walk import collapse_scope

mx = compat.import_mx()

#: MXNet's BatchNorm momentum when the training-mode decay is unknown (MXNet's default).
DEFAULT_MOMENTUM = 0.9


@translates("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def fused_batch_norm(ctx, op):
    """`BatchNorm` with TF's eps, moving stats as aux; `fix_gamma` when gamma is the constant 1 (scale=False)."""
    check_nhwc(op)
    if op.get_attr("is_training"):
        raise NotTranslatable("batch norm in training mode (batch statistics): build the graph with "
                              "is_training=False so the moving statistics are used")
    name = ctx.name(op)
    gamma_value = ctx.const(op.inputs[1])
    fix_gamma = gamma_value is not None and bool(np.all(gamma_value == 1.0))
    gamma = ctx.variable(f"{name}_gamma", op.inputs[1])
    beta = ctx.variable(f"{name}_beta", op.inputs[2])
    moving_mean = ctx.variable(f"{name}_moving_mean", op.inputs[3], kind=AUX)
    moving_var = ctx.variable(f"{name}_moving_var", op.inputs[4], kind=AUX)
    decay = ctx.hints.get("bn_decay", {}).get(collapse_scope(name))
    if decay is None:
        decay = DEFAULT_MOMENTUM
        if "bn_decay" in ctx.hints:
            ctx.notes.append(f"{name}: batch-norm decay unknown, MXNet momentum {DEFAULT_MOMENTUM}")
    # use_global_stats=False as in the hand port: MXNet picks batch or moving statistics at run
    # time (is_train), so inference uses the moving statistics and training behaves like slim's.
    return mx.sym.BatchNorm(ctx.input(op), gamma=gamma, beta=beta, moving_mean=moving_mean,
                            moving_var=moving_var, eps=float(op.get_attr("epsilon")), momentum=float(decay),
                            fix_gamma=fix_gamma, use_global_stats=False, name=name)


@translates("LRN")
def lrn(ctx, op):
    """`LRN` with nsize=2r+1, alpha=alpha·nsize, knorm=bias (PITFALLS #9)."""
    radius = int(op.get_attr("depth_radius"))
    nsize = 2 * radius + 1
    return mx.sym.LRN(ctx.input(op), nsize=nsize, alpha=float(op.get_attr("alpha")) * nsize,
                      beta=float(op.get_attr("beta")), knorm=float(op.get_attr("bias")), name=ctx.name(op))
