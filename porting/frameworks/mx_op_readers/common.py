"""Window geometry shared by the MXNet convolution and pooling readers."""
from __future__ import annotations

from porting.frameworks.mx_attrs import as_tuple


def read_window(node, attrs: dict, pooling: bool = False, global_pool: bool = False) -> None:
    """Kernel, stride, dilation and (top, bottom, left, right) pads of a Convolution or Pooling node.

    A global pool's window is its whole input. For pooling, MXNet's 'full' convention
    reaches past the symmetric pad: those cells are added to the bottom/right pads.
    """
    in_shape = node.in_shape
    node.kernel = as_tuple(attrs.get("kernel"), (1, 1))
    node.stride = as_tuple(attrs.get("stride"), (1, 1))
    node.dilation = as_tuple(attrs.get("dilate"), (1, 1))
    pad = as_tuple(attrs.get("pad"), (0, 0))
    if pooling and global_pool and in_shape is not None:
        node.kernel = tuple(in_shape[2:4])
        node.stride = (1, 1)
        pad = (0, 0)
    pads = [pad[0], pad[0], pad[1], pad[1]]
    if pooling and in_shape is not None and len(node.shape) == 4:
        for axis in range(2):
            span = (node.kernel[axis] - 1) * node.dilation[axis] + 1
            needed = (node.shape[2 + axis] - 1) * node.stride[axis] + span
            extra = needed - (in_shape[2 + axis] + 2 * pad[axis])
            if extra > 0:
                pads[2 * axis + 1] += extra
    node.pads = tuple(pads)
