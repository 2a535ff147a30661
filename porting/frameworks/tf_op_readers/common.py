"""Attribute helpers shared by the TF op reader families: NHWC attribute pairs, window pads, axes."""
from __future__ import annotations

from porting.padding import PaddingError, same_pads


def spatial_pair(values) -> tuple[int, int]:
    """(H, W) of an NHWC attribute such as ``strides=[1, 2, 2, 1]``."""
    return int(values[1]), int(values[2])


def window_pads(op, in_nchw, kernel, stride, dilation) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of a windowed op's SAME/VALID/EXPLICIT padding; None when unknown."""
    padding = op.get_attr("padding").decode()
    if padding == "VALID":
        return (0, 0, 0, 0)
    if padding == "EXPLICIT":
        explicit = list(op.get_attr("explicit_paddings"))
        return tuple(int(v) for v in explicit[2:6])
    try:
        top, bottom = same_pads(in_nchw[2], kernel[0], stride[0], dilation[0])
        left, right = same_pads(in_nchw[3], kernel[1], stride[1], dilation[1])
    except PaddingError:
        return None
    return (top, bottom, left, right)


def nchw_axis(axis: int, rank: int | None) -> int:
    """A TF axis of an NHWC tensor as the axis of the same tensor in NCHW (other ranks: made non-negative)."""
    if rank != 4:
        return axis if axis >= 0 or rank is None else axis + rank
    axis = axis + 4 if axis < 0 else axis
    return {0: 0, 1: 2, 2: 3, 3: 1}[axis]
