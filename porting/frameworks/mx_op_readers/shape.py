"""Shape ops: concat, flatten/reshape, pad, mean, transpose."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_flag, as_float, as_tuple, parse
from porting.frameworks.mx_op_readers import reads


@reads("Concat", "concat")
def concat(node, attrs) -> None:
    """Concat -> concat along dim."""
    node.kind = Kind.CONCAT
    node.attrs["axis"] = int(parse(attrs.get("dim", "1")))


def _flatten_layout(node) -> None:
    if node.in_shape is not None and len(node.in_shape) == 4:
        node.attrs["source_layout"] = "NCHW"
        node.attrs["spatial"] = node.in_shape[2] * node.in_shape[3] > 1


@reads("Flatten", "flatten")
def flatten(node, attrs) -> None:
    """Flatten -> flatten of an NCHW tensor."""
    node.kind = Kind.FLATTEN
    _flatten_layout(node)


@reads("Reshape", "reshape")
def reshape(node, attrs) -> None:
    """Reshape -> flatten (to rank 2) or reshape."""
    node.kind = Kind.FLATTEN if len(node.shape) == 2 else Kind.RESHAPE
    _flatten_layout(node)


@reads("Pad", "pad")
def pad(node, attrs) -> None:
    """Pad -> pad: the spatial part of pad_width, constant value, mode."""
    node.kind = Kind.PAD
    width = as_tuple(attrs.get("pad_width"), (0,) * 8, 8)
    if len(width) == 8:
        node.pads = tuple(width[4:8])
    node.attrs.update(pad_value=as_float(attrs.get("constant_value"), 0.0), mode=attrs.get("mode", "constant"))


@reads("mean")
def mean(node, attrs) -> None:
    """mean -> mean over axes, keepdims."""
    node.kind = Kind.MEAN
    axis = parse(attrs.get("axis", "None"))
    node.attrs["axis"] = tuple(sorted(axis if isinstance(axis, tuple) else (axis,))) if axis is not None else None
    node.attrs["keepdims"] = as_flag(attrs.get("keepdims"), False)


@reads("transpose", "Transpose")
def transpose(node, attrs) -> None:
    """transpose -> other, keeping its axes (mx_reader folds transpose(0, 2, 3, 1) + flatten)."""
    node.attrs["axes"] = as_tuple(attrs.get("axes"), (), 4)
