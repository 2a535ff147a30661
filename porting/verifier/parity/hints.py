"""What the shape of a numeric error suggests about its cause, for the first divergent layer."""
from __future__ import annotations

import math

import numpy as np

from porting.core.records import Kind
from porting.core.tolerances import ParityResult


def per_channel_affine(tf_value: np.ndarray, mx_value: np.ndarray) -> float | None:
    """max |a_c - 1| when MXNet = a_c * TF + b_c per channel explains the error (ReLU zeros left out)."""
    if tf_value.ndim != 4 or tf_value.shape[2] * tf_value.shape[3] * tf_value.shape[0] < 4:
        return None
    x = np.moveaxis(tf_value, 1, 0).reshape(tf_value.shape[1], -1).astype(np.float64)
    y = np.moveaxis(mx_value, 1, 0).reshape(mx_value.shape[1], -1).astype(np.float64)
    error = np.abs(y - x).max()
    worst_residual, worst_scale = 0.0, 0.0
    for xc, yc in zip(x, y):
        keep = (xc != 0) & (yc != 0)  # a ReLU clips where the two affine maps have different signs
        if keep.sum() < 3 or np.ptp(xc[keep]) == 0:
            continue
        design = np.stack([xc[keep], np.ones(int(keep.sum()))], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, yc[keep], rcond=None)
        worst_residual = max(worst_residual, float(np.abs(yc[keep] - a * xc[keep] - b).max()))
        worst_scale = max(worst_scale, abs(float(a) - 1.0))
    if error == 0 or worst_scale == 0 or worst_residual > 0.05 * error:
        return None
    return worst_scale


#: The usual suspects per layer kind, when the error has no telling shape.
_BY_KIND = {
    Kind.DWCONV: "depthwise convolution: weight layout (PITFALLS.md #8a) or pads",
    Kind.BN: "batch norm: eps (PITFALLS.md #5) or gamma / fix_gamma (#5a)",
    Kind.FC: "dense layer: weight layout; after a spatial flatten the rows need the NHWC -> NCHW reorder "
             "(PITFALLS.md #7)",
    Kind.POOL_AVG: "average pooling: padding or count_include_pad (PITFALLS.md #2, #3)",
    Kind.POOL_MAX: "max pooling: pads or the pad value (PITFALLS.md #2, #4)",
    Kind.LRN: "LRN parameters (PITFALLS.md #9)",
    Kind.SOFTMAX: "softmax axis (PITFALLS.md #11)",
}


def hint(pair, result: ParityResult, tf_value: np.ndarray, mx_value: np.ndarray) -> str:
    """What the shape of the error suggests, for the first divergent layer."""
    kind = pair.tf.kind
    if not math.isfinite(result.max_abs):
        return "non-finite values on one side" if result.nan else result.note
    if tf_value.ndim == 4 and tf_value.shape[1] == 3 and np.array_equal(tf_value[:, ::-1], mx_value):
        return "MXNet's input is TF's with the channels reversed: BGR on one side, RGB on the other (PITFALLS.md #12a)"
    if kind == Kind.INPUT:
        return "the two sides were given different inputs (preprocessing, channel order)"
    if result.border_only:
        if kind == Kind.POOL_AVG:
            return ("only border cells diverge: the average counts padded cells on one side "
                    "(count_include_pad, PITFALLS.md #3)")
        return "only border cells diverge: padding differs (values or pads) at the edges of the map"
    if kind in (Kind.CONV, Kind.DWCONV, Kind.BN):
        scale = per_channel_affine(tf_value, mx_value)
        if scale is not None:
            return (f"MXNet's output is TF's times a per-channel scale (off by up to {scale:.2g}) plus a shift: "
                    "the batch norm's parameters differ (eps PITFALLS.md #5, gamma / fix_gamma #5a, "
                    "moving statistics #5d)")
        if kind != Kind.BN:
            return ("not a per-channel scale: the convolution itself differs: window alignment (pads, "
                    "PITFALLS.md #1), weight layout (#8, #8a) or its inputs")
    return _BY_KIND.get(kind, f"{kind} layer: its inputs agree, its output does not")
