"""Reshapes, squeezes and flattens that do not change the data are dropped.

Why: flattening or squeezing an (N, C, 1, 1) map to (N, C), or reshaping a tensor to its own shape,
keeps every value in the same order (there is one spatial position, so NCHW and NHWC orders agree);
the next layer reads the same numbers. slim squeezes its logits after the last conv, an MXNet port
usually has nothing there (or a Flatten of an N x C x 1 x 1 map where slim has none).

Applies only where the two sides have a different number of such identities (an equal number is
left alone: they pair with each other).
"""
from __future__ import annotations

from porting.core.equivalences.base import SIDES, drop, equivalence, squeeze_shape
from porting.core.records import Kind, LayerRecord


def is_identity(r: LayerRecord) -> bool:
    if r.kind not in (Kind.FLATTEN, Kind.RESHAPE) or r.in_shape is None or len(r.inputs) != 1:
        return False
    return tuple(r.shape) in (tuple(r.in_shape), tuple(squeeze_shape(tuple(r.in_shape))))


@equivalence("identity_reshape")
def identity_reshape(tf, mx):
    sides, notes = [tf, mx], []
    found = [[r for r in side if is_identity(r)] for side in sides]
    if len(found[0]) == len(found[1]):
        return tf, mx, notes
    for a in (0, 1):
        for r in found[a]:
            current = next(x for x in sides[a] if x.name == r.name)
            sides[a] = drop(sides[a], current)
            notes.append(f"{SIDES[a]} {r.name}: {r.op} {'x'.join(map(str, r.in_shape))} -> "
                         f"{'x'.join(map(str, r.shape))} keeps the data as it is: dropped")
    return sides[0], sides[1], notes
