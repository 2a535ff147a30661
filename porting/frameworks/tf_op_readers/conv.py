"""Convolutions: Conv2D and depthwise convolutions."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.tf_op_readers import reads
from porting.frameworks.tf_op_readers.common import spatial_pair, window_pads


@reads("Conv2D", "DepthwiseConv2dNative")
def convolution(node, op, data) -> None:
    """Conv2D / DepthwiseConv2dNative -> conv / dwconv: kernel, stride, dilation, pads, weight shape."""
    filt = op.inputs[1].shape.as_list()
    node.kind = Kind.CONV if op.type == "Conv2D" else Kind.DWCONV
    node.kernel = (int(filt[0]), int(filt[1]))
    node.stride = spatial_pair(op.get_attr("strides"))
    node.dilation = spatial_pair(op.get_attr("dilations"))
    node.pads = window_pads(op, node.in_shape, node.kernel, node.stride, node.dilation)
    node.attrs.update(padding=op.get_attr("padding").decode(), data_format=op.get_attr("data_format").decode(),
                      weight_shape=tuple(int(v) for v in filt), has_bias=False)
    if op.type == "DepthwiseConv2dNative":
        node.attrs["multiplier"] = int(filt[3])
