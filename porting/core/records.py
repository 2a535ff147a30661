"""Framework-neutral layer records: what both sides of a port are reduced to.

``tf_reader`` and ``mx_reader`` turn a graph into a list of ``LayerRecord`` in a
canonical topological order; everything after that (matching, diffing, lint,
reports) sees only records. Shapes are NCHW (TF's NHWC is converted once, in
``tf_reader``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What a layer computes, independent of the framework's op name."""

    INPUT = "input"
    CONV = "conv"
    DWCONV = "dwconv"
    POOL_MAX = "pool_max"
    POOL_AVG = "pool_avg"
    CONCAT = "concat"
    ADD = "add"
    SCALE = "scale"  # multiply by a constant (residual scaling)
    MUL = "mul"  # elementwise product of two tensors
    BN = "bn"
    ACT = "act"
    FC = "fc"
    BIAS = "bias"
    DROPOUT = "dropout"
    FLATTEN = "flatten"
    RESHAPE = "reshape"
    PAD = "pad"
    MEAN = "mean"
    SOFTMAX = "softmax"
    LRN = "lrn"
    OTHER = "other"


#: Kinds whose window geometry (kernel, stride, pads) is compared.
WINDOWED = frozenset({Kind.CONV, Kind.DWCONV, Kind.POOL_MAX, Kind.POOL_AVG})


@dataclass(frozen=True)
class Part:
    """One framework op folded into a record (e.g. the batch norm of a conv)."""

    kind: Kind  # Kind.PAD, Kind.CONV, Kind.BIAS, Kind.BN, Kind.ACT, ...
    name: str
    op: str

    def __post_init__(self):
        if not isinstance(self.kind, Kind):
            object.__setattr__(self, "kind", Kind(self.kind))


@dataclass(frozen=True)
class LayerRecord:
    """One layer as declared by its source: conv (+ bias) (+ batch norm) (+ activation), etc.

    Attributes:
        name: the layer's scope on its side (the join key when names agree).
        kind: a ``Kind`` member (a plain string such as ``"conv"`` is converted).
        op: the framework op type of the head op (``Conv2D``, ``Convolution``...).
        inputs: names of the records that feed this one, in argument order.
        shape: output shape, NCHW for 4-D tensors.
        in_shape: shape of the first input, NCHW.
        kernel, stride, dilation: per spatial axis (H, W), for windowed kinds.
        pads: (top, bottom, left, right) as the layer applies them, including a
            folded explicit pad op; for MXNet 'full' pooling the implicit extra
            rows are added to bottom/right.
        attrs: semantics that matter (bn eps/momentum/scale/center, activation,
            has_bias, count_include_pad, pad_value, dropout keep_prob, axis...).
        parts: the ops folded into this record, head first.
    """

    name: str
    kind: Kind
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    in_shape: tuple[int, ...] | None = None
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    dilation: tuple[int, ...] | None = None
    pads: tuple[int, int, int, int] | None = None
    attrs: dict = field(default_factory=dict, compare=False, hash=False)
    parts: tuple[Part, ...] = ()

    def __post_init__(self):
        if not isinstance(self.kind, Kind):  # frozen: set through object, once, at construction
            object.__setattr__(self, "kind", Kind(self.kind))

    @property
    def channels(self) -> int | None:
        return self.shape[1] if len(self.shape) >= 2 else None

    def part(self, kind: Kind) -> Part | None:
        for part in self.parts:
            if part.kind == kind:
                return part
        return None

    def part_kinds(self) -> tuple[Kind, ...]:
        return tuple(part.kind for part in self.parts)

    def geometry(self) -> str:
        """Short kernel/stride/pad description, e.g. '3x3/2 pads (0,1,0,1)'."""
        if self.kernel is None:
            return ""
        text = "x".join(map(str, self.kernel))
        if self.stride and any(s != 1 for s in self.stride):
            text += "/" + "x".join(map(str, self.stride))
        if self.dilation and any(d != 1 for d in self.dilation):
            text += " dil " + "x".join(map(str, self.dilation))
        if self.pads and any(self.pads):
            text += " pads (" + ",".join(map(str, self.pads)) + ")"
        return text


def nhwc_to_nchw(shape) -> tuple[int, ...]:
    """The one place TF's NHWC shapes become NCHW (other ranks pass through)."""
    shape = tuple(-1 if dim is None else int(dim) for dim in shape)
    if len(shape) == 4:
        n, h, w, c = shape
        return (n, c, h, w)
    return shape


def format_shape(shape) -> str:
    """'1x32x149x149' (NCHW), or '--' when there is none."""
    if not shape:
        return "--"
    return "x".join(str(dim) for dim in shape)


def window_before_and_used_after(record: LayerRecord) -> tuple[tuple[int, int], ...] | None:
    """Per axis: (pad before, cells the last window reaches past the input end).

    Two windowed layers read the same input cells iff kernel, stride, dilation,
    output size and this value agree. Nominal pads that no window reaches (as in
    MXNet's floor rule) do not change the result, so they are not compared.
    """
    if record.kernel is None or record.pads is None or record.in_shape is None:
        return None
    result = []
    for axis in range(2):
        size = record.in_shape[2 + axis]
        out = record.shape[2 + axis]
        before = record.pads[2 * axis]
        span = (record.kernel[axis] - 1) * (record.dilation or (1, 1))[axis] + 1
        used_after = (out - 1) * record.stride[axis] + span - size - before
        result.append((before, used_after))
    return tuple(result)
