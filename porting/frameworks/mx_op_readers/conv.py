"""Convolutions (a depthwise convolution is a Convolution with one group per input channel)."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_flag, parse
from porting.frameworks.mx_op_readers import reads
from porting.frameworks.mx_op_readers.common import read_window


@reads("Convolution")
def convolution(node, attrs) -> None:
    """Convolution -> conv, or dwconv when num_group equals the input channels: window, bias, layout."""
    node.kind = Kind.CONV
    read_window(node, attrs)
    groups = int(parse(attrs.get("num_group", "1")))
    if groups > 1 and node.in_shape is not None and groups == node.in_shape[1]:
        node.kind = Kind.DWCONV
        node.attrs["multiplier"] = int(parse(attrs["num_filter"])) // groups
    node.attrs.update(num_group=groups, has_bias=not as_flag(attrs.get("no_bias"), False),
                      layout=attrs.get("layout", "None"))
