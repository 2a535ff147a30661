"""Pooling: MaxPool and AvgPool."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.tf_op_readers import reads
from porting.frameworks.tf_op_readers.common import spatial_pair, window_pads


@reads("MaxPool", "AvgPool")
def pool(node, op, data) -> None:
    """MaxPool / AvgPool -> pool_max / pool_avg: window, pads; TF's average never counts padded cells."""
    node.kind = Kind.POOL_MAX if op.type == "MaxPool" else Kind.POOL_AVG
    node.kernel = spatial_pair(op.get_attr("ksize"))
    node.stride = spatial_pair(op.get_attr("strides"))
    node.dilation = (1, 1)
    node.pads = window_pads(op, node.in_shape, node.kernel, node.stride, node.dilation)
    node.attrs.update(padding=op.get_attr("padding").decode(), data_format=op.get_attr("data_format").decode())
    if op.type == "AvgPool":
        node.attrs["count_include_pad"] = False  # TF never counts padded cells
    else:
        node.attrs["pad_value"] = float("-inf")
