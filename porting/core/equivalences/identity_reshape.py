"""Reshapes, squeezes and flattens that do not change the data are dropped.

Why: flattening or squeezing an (N, C, 1, 1) map to (N, C), or reshaping a tensor to its own shape,
keeps every value in the same order (there is one spatial position, so NCHW and NHWC orders agree);
the next layer reads the same numbers. slim squeezes its logits after the last conv, an MXNet port
usually has nothing there (or a Flatten of an N x C x 1 x 1 map where slim has none).

Applies only to an identity the other side has no reshape-like layer for at the same place (the
kind of the layer it reads and of the layers reading it): one with a counterpart pairs with it and
stays (our own pair flattens before its logits on both sides).
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
    # Every reshape-like layer's place on each side: an identity whose place the other side also
    # has (identity or not: an upstream defect may have made the other one reshape real data)
    # pairs with it and stays; one without a counterpart is dropped.
    places = [[str(_place(side, r)) for r in side if r.kind in (Kind.FLATTEN, Kind.RESHAPE)] for side in sides]
    dropping = [[], []]
    for a in (0, 1):
        available = list(places[1 - a])
        for r in sides[a]:
            if not is_identity(r):
                continue
            place = str(_place(sides[a], r))
            if place in available:
                available.remove(place)
            else:
                dropping[a].append(r)
    for a in (0, 1):
        for r in dropping[a]:
            current = next(x for x in sides[a] if x.name == r.name)
            sides[a] = drop(sides[a], current)
            notes.append(f"{SIDES[a]} {r.name}: {r.op} {'x'.join(map(str, r.in_shape))} -> "
                         f"{'x'.join(map(str, r.shape))} keeps the data as it is: dropped")
    return sides[0], sides[1], notes
