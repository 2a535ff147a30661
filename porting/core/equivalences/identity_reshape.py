"""Reshapes, squeezes and flattens that do not change the data are dropped.

Why: flattening or squeezing an (N, C, 1, 1) map to (N, C), or reshaping a tensor to its own shape,
keeps every value in the same order (there is one spatial position, so NCHW and NHWC orders agree);
the next layer reads the same numbers. slim squeezes its logits after the last conv, an MXNet port
usually has nothing there (or a Flatten of an N x C x 1 x 1 map where slim has none).

Applies only where the two sides' identities differ: in number, or in where they sit (the kind of
the layer each one reads and of the layers that read it). Identical ones are left alone: they pair
with each other (our own pair flattens before its logits on both sides).
"""
from __future__ import annotations

from porting.core.equivalences.base import SIDES, consumers, drop, equivalence, squeeze_shape
from porting.core.records import Kind, LayerRecord


def is_identity(r: LayerRecord) -> bool:
    if r.kind not in (Kind.FLATTEN, Kind.RESHAPE) or r.in_shape is None or len(r.inputs) != 1:
        return False
    return tuple(r.shape) in (tuple(r.in_shape), tuple(squeeze_shape(tuple(r.in_shape))))


def _place(side: list[LayerRecord], r: LayerRecord) -> tuple:
    """Where an identity sits: the kind of the layer it reads and the kinds of the layers reading it."""
    source = next((x.kind for x in side if r.inputs and x.name == r.inputs[0]), None)
    return source, tuple(sorted(x.kind for x in consumers(side, r.name)))


@equivalence("identity_reshape")
def identity_reshape(tf, mx):
    sides, notes = [tf, mx], []
    found = [[r for r in side if is_identity(r)] for side in sides]
    places = [sorted(map(str, (_place(side, r) for r in side_found))) for side, side_found in zip(sides, found)]
    if places[0] == places[1]:
        return tf, mx, notes
    for a in (0, 1):
        for r in found[a]:
            current = next(x for x in sides[a] if x.name == r.name)
            sides[a] = drop(sides[a], current)
            notes.append(f"{SIDES[a]} {r.name}: {r.op} {'x'.join(map(str, r.in_shape))} -> "
                         f"{'x'.join(map(str, r.shape))} keeps the data as it is: dropped")
    return sides[0], sides[1], notes
