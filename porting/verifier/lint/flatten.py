"""Lint check of the flatten order before a dense layer: NHWC (TF) vs NCHW (MXNet)."""
from __future__ import annotations

from porting.core.records import Kind, LayerRecord
from porting.frameworks import mx_attrs
from porting.verifier.lint.base import Context, Finding, Severity, make_finding, pair_check


def _mx_flattens_nhwc(context: Context, record: LayerRecord) -> bool:
    """An MX flatten whose input was transposed to NHWC first reads (H, W, C) like TF."""
    source = context.mx_by_name.get(record.inputs[0]) if record.inputs else None
    if source is None or source.op not in ("transpose", "Transpose"):
        return False
    axes = mx_attrs.attrs_of(context.mx_entry(source.attrs.get("output_node", source.name))).get("axes")
    try:
        return mx_attrs.as_tuple(axes, ()) == (0, 2, 3, 1)
    except (ValueError, TypeError):  # not a tuple of integers
        return False


@pair_check("flatten_order", "flatten order before a dense layer: NHWC (TF) vs NCHW (MXNet) when H*W > 1")
def check_flatten_order(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind in (Kind.FLATTEN, Kind.RESHAPE) and mx.kind in (Kind.FLATTEN, Kind.RESHAPE):
        tf_layout, mx_layout = tf.attrs.get("source_layout"), mx.attrs.get("source_layout")
        spatial = bool(tf.attrs.get("spatial")) or bool(mx.attrs.get("spatial"))
        if not spatial or tf_layout is None or mx_layout is None:
            return []
        if mx_layout == "NCHW" and _mx_flattens_nhwc(context, mx):
            mx_layout = "NHWC"
        if tf_layout == mx_layout:
            return []
        shape = tf.in_shape or mx.in_shape
    elif tf.kind == Kind.FC and mx.kind == Kind.FC:
        # MXNet's FullyConnected(flatten=True) flattens a 4-D input itself, in NCHW order.
        mx_in, source = mx.in_shape, context.tf_by_name.get(tf.inputs[0]) if tf.inputs else None
        if not (mx_in and len(mx_in) == 4 and mx_in[2] * mx_in[3] > 1 and source is not None
                and source.attrs.get("source_layout") == "NHWC" and source.attrs.get("spatial")
                and source.name not in context.tf_to_mx and mx.attrs.get("flatten", True)):
            return []
        shape = mx_in
    else:
        return []
    n, c, h, w = shape
    return [make_finding("flatten_order", Severity.ERROR, tf, mx, f"(H, W, C) = ({h}, {w}, {c}) order",
                         f"(C, H, W) = ({c}, {h}, {w}) order",
                         f"TF flattens NHWC, so feature i*{w * c}+j*{c}+k is (h=i, w=j, c=k); MXNet flattens NCHW. The "
                         "shapes agree, but the dense layer after it reads permuted features unless its weight is "
                         "reordered (12.3 max abs diff measured with a plain w.T).",
                         "mx.sym.transpose(x, axes=(0, 2, 3, 1)) before the Flatten, or convert the FC weight with "
                         f"w.reshape({h}, {w}, {c}, O).transpose(3, 2, 0, 1).reshape(O, -1)")]
