"""Pooling: MaxPool, AvgPool (windows from ``porting.padding``) and Mean (global pooling)."""
from __future__ import annotations

import numpy as np

from porting import compat
from porting.frameworks import mx_ops
from porting.autoport.registry import NotTranslatable, translates
from porting.autoport.translators.conv import check_nhwc, spatial_pair
from porting.padding import plan

mx = compat.import_mx()

#: NHWC axis → NCHW axis.
NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _pool(ctx, op, kind: str):
    check_nhwc(op)
    kernel = spatial_pair(op.get_attr("ksize"), "ksize")
    stride = spatial_pair(op.get_attr("strides"), "strides")
    padding = op.get_attr("padding").decode()
    layer_plan = plan(kind, ctx.spatial(op.inputs[0]), kernel, stride, padding)
    return mx_ops.pool2d(ctx.input(op), layer_plan, ctx.name(op))


@translates("MaxPool")
def max_pool(ctx, op):
    """`Pooling(max)`; asymmetric SAME via `pooling_convention='full'` or a -inf pad (`porting.padding`)."""
    return _pool(ctx, op, "max")


@translates("AvgPool")
def avg_pool(ctx, op):
    """`Pooling(avg, count_include_pad=False)`; asymmetric SAME via 'full' or the masked average."""
    return _pool(ctx, op, "avg")


def nchw_axes(axes, rank: int) -> tuple[int, ...]:
    """TF axes of an NHWC tensor → the same axes of MXNet's NCHW tensor (other ranks unchanged)."""
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in np.atleast_1d(axes)]
    return tuple(sorted(NCHW_AXIS[a] for a in axes)) if rank == 4 else tuple(sorted(axes))


@translates("Mean")
def mean(ctx, op):
    """`mean` over the same axes in NCHW (global average pooling: axes (1,2) → (2,3))."""
    axes = ctx.const(op.inputs[1])
    if axes is None:
        raise NotTranslatable("the reduction axes are not constant")
    rank = len(ctx.shape(op.inputs[0]))
    keepdims = bool(op.get_attr("keep_dims"))
    mx_axes = nchw_axes(axes, rank)
    data = ctx.input(op)
    if rank == 4 and not keepdims and 1 not in mx_axes and not {2, 3} <= set(mx_axes):
        # The kept axes would come out in NCHW order, TF keeps them in NHWC order.
        raise NotTranslatable(f"mean over NHWC axes {list(np.atleast_1d(axes))} without keepdims keeps "
                              "channels before a spatial axis; no layout-exact MXNet form")
    return mx.sym.mean(data, axis=mx_axes, keepdims=keepdims, name=ctx.name(op))
