"""A layer split in two on one side: a separable conv (depthwise k×k, then a 1×1) against one full k×k conv.

The matcher pairs layers one to one, so the full conv pairs with one half (usually the 1×1, of the
same output shape) and the other half is left on its side: the report then compares a 1×1 with a
k×k ("kernel (1, 1) vs (7, 7)", windows from another input) and never the pads, which only the
depthwise half has. :func:`rejoin` finds the pattern after matching and re-pairs the full conv with
the half that holds the window (kernel, stride, pads); the other half becomes a row of its own that
the comparison attributes to it. The two forms do not compute the same functions (a full conv has
k·k·C_in·C_out free weights, a separable one k·k·C_in·M + C_in·M·C_out), so this is a defect —
described as such, with the pads compared where they are.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from porting.core.match import Pair
from porting.core.records import Kind, LayerRecord

BY_SPLIT = "split"


@dataclass(frozen=True)
class Split:
    """One side computes ``whole``; the other splits it into ``window`` (depthwise) then ``pointwise`` (1×1)."""

    split_side: str  # "TF" or "MXNet": the side with two layers
    whole: LayerRecord
    window: LayerRecord
    pointwise: LayerRecord

    def as_one(self) -> LayerRecord:
        """The split side seen as one layer: the window's geometry (and folded pad) with the pointwise
        output and what is folded after it (bias, batch norm, activation)."""
        after = tuple(part for part in self.pointwise.parts if part.kind in (Kind.BIAS, Kind.BN, Kind.ACT))
        attrs = {**self.window.attrs, **{key: value for key, value in self.pointwise.attrs.items() if "." in key}}
        return replace(self.window, kind=Kind.CONV, shape=tuple(self.pointwise.shape), attrs=attrs,
                       parts=self.window.parts + after)

    def describe(self) -> str:
        whole_side = "MXNet" if self.split_side == "TF" else "TF"
        kernel = "x".join(map(str, self.window.kernel or ()))
        stride = "x".join(map(str, self.window.stride or ()))
        return (f"layer split in two: {self.split_side} computes a separable conv ({self.window.name}: depthwise "
                f"{kernel}/{stride}, then {self.pointwise.name}: 1x1), {whole_side} one full {kernel}/{stride} conv "
                f"({self.whole.name}): other weights, another function")


def _is_pointwise(record: LayerRecord | None) -> bool:
    return record is not None and record.kind == Kind.CONV and tuple(record.kernel or ()) == (1, 1) \
        and all(s == 1 for s in record.stride or (1, 1))


def _full_over(window: LayerRecord, whole: LayerRecord) -> bool:
    return whole.kind == Kind.CONV and tuple(whole.kernel or ()) == tuple(window.kernel or ()) != (1, 1) \
        and tuple(whole.stride or ()) == tuple(window.stride or ())


def rejoin(pairs: list[Pair]) -> tuple[list[Pair], dict[str, Split]]:
    """The pairs with each split layer re-paired (see the module docstring), and the splits found, keyed by
    the name of the pointwise half (now a pair of its own with one side)."""
    one_sided_tf = {pair.tf.name: position for position, pair in enumerate(pairs) if pair.mx is None and pair.tf}
    one_sided_mx = {pair.mx.name: position for position, pair in enumerate(pairs) if pair.tf is None and pair.mx}
    pairs = list(pairs)
    splits: dict[str, Split] = {}
    for position, pair in enumerate(list(pairs)):
        if pair.tf is None or pair.mx is None:
            continue
        for side, pointwise, whole, lonely in (("TF", pair.tf, pair.mx, one_sided_tf),
                                                ("MXNet", pair.mx, pair.tf, one_sided_mx)):
            if not _is_pointwise(pointwise) or _is_pointwise(whole) or len(pointwise.inputs) != 1:
                continue
            window_at = lonely.get(pointwise.inputs[0])
            if window_at is None:
                continue
            window = pairs[window_at].tf if side == "TF" else pairs[window_at].mx
            if window.kind != Kind.DWCONV or not _full_over(window, whole):
                continue
            split = Split(side, whole, window, pointwise)
            pairs[window_at] = Pair(window if side == "TF" else whole, whole if side == "TF" else window,
                                    BY_SPLIT, split.describe())
            pairs[position] = Pair(pointwise, None) if side == "TF" else Pair(None, pointwise)
            splits[pointwise.name] = split
            break
    return pairs, splits
