"""Shape ops: concat, pad, reshape/squeeze, mean."""
from __future__ import annotations

import numpy as np

from porting.core.records import Kind
from porting.frameworks.tf_graph_facts import const_value
from porting.frameworks.tf_op_readers import reads
from porting.frameworks.tf_op_readers.common import nchw_axis


@reads("ConcatV2", "Concat")
def concat(node, op, data) -> None:
    """ConcatV2 / Concat -> concat along an axis (as an NCHW axis)."""
    node.kind = Kind.CONCAT
    axis = const_value(op.inputs[-1] if op.type == "ConcatV2" else op.inputs[0])
    rank = op.outputs[0].shape.rank
    node.attrs["axis"] = nchw_axis(int(axis), rank) if axis is not None else None


@reads("Pad", "PadV2", "MirrorPad")
def pad(node, op, data) -> None:
    """Pad / PadV2 / MirrorPad -> pad: spatial pads, fill value, mode."""
    node.kind = Kind.PAD
    paddings = const_value(op.inputs[1])
    if paddings is not None and paddings.shape == (4, 2):
        node.pads = (int(paddings[1][0]), int(paddings[1][1]), int(paddings[2][0]), int(paddings[2][1]))
    value = const_value(op.inputs[2]) if op.type == "PadV2" else np.float32(0)
    node.attrs["pad_value"] = float(value) if value is not None else None
    node.attrs["mode"] = op.get_attr("mode").decode().lower() if op.type == "MirrorPad" else "constant"


@reads("Reshape", "Squeeze")
def reshape(node, op, data) -> None:
    """Reshape / Squeeze -> flatten (to rank 2) or reshape; a flatten of NHWC remembers its layout."""
    node.kind = Kind.FLATTEN if len(node.shape) == 2 else Kind.RESHAPE
    if node.in_shape is not None and len(node.in_shape) == 4:
        node.attrs["source_layout"] = "NHWC"
        node.attrs["spatial"] = node.in_shape[2] * node.in_shape[3] > 1


@reads("Mean")
def mean(node, op, data) -> None:
    """Mean -> mean over axes (as NCHW axes), keepdims."""
    axes = const_value(op.inputs[1])
    rank = op.inputs[0].shape.rank
    node.kind = Kind.MEAN
    node.attrs["axis"] = (tuple(sorted(nchw_axis(int(a), rank) for a in np.atleast_1d(axes)))
                          if axes is not None else None)
    node.attrs["keepdims"] = bool(op.get_attr("keep_dims"))
