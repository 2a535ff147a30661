"""A global mean over H and W is an average pool over the whole map followed by a flatten.

Why: averaging every cell of each channel is what one average-pooling window covering the whole
unpadded map computes (N x C x 1 x 1), and flattening that keeps the data as it is (one spatial
position). Keras' ``GlobalAveragePooling2D`` is ``reduce_mean(x, [1, 2])`` giving N x C; slim and
MXNet ports write ``avg_pool2d`` / ``Pooling(global_pool=True)`` and a flatten. Canonical form:
the mean, as one record named after the flatten (whose output, N x C, is the mean's), so both
sides pair at the same tensor and numeric parity compares them.

Applies only where one side has such a mean and the other side, reading a map of the same shape,
has the pool and its flatten instead; sides that write the same form keep it.
"""
from __future__ import annotations

from dataclasses import replace

from porting.core.equivalences.base import SIDES, consumers, drop, equivalence
from porting.core.records import Kind, LayerRecord


def _is_global_mean(r: LayerRecord) -> bool:
    return (r.kind == Kind.MEAN and r.attrs.get("axis") == (2, 3) and not r.attrs.get("keepdims")
            and r.in_shape is not None and len(r.in_shape) == 4 and len(r.shape) == 2)


def _whole_map_pool(r: LayerRecord) -> bool:
    if r.kind != Kind.POOL_AVG or r.in_shape is None or len(r.in_shape) != 4 or tuple(r.shape[2:]) != (1, 1):
        return False
    if r.attrs.get("global_pool"):
        return True
    return tuple(r.kernel or ()) == tuple(r.in_shape[2:]) and not any(r.pads or ())


def _pool_and_flatten(side: list[LayerRecord]) -> list[tuple[LayerRecord, LayerRecord]]:
    """(pool, flatten) pairs: a whole-map average pool whose one reader flattens it to N x C."""
    found = []
    for r in side:
        if not _whole_map_pool(r):
            continue
        readers = consumers(side, r.name)
        if len(readers) == 1 and readers[0].kind in (Kind.FLATTEN, Kind.RESHAPE) \
                and tuple(readers[0].shape) == tuple(r.shape[:2]):
            found.append((r, readers[0]))
    return found


@equivalence("global_mean")
def global_mean(tf, mx):
    sides, notes = [tf, mx], []
    means = [[r for r in side if _is_global_mean(r)] for side in sides]
    for a in (0, 1):
        wanted = [tuple(r.in_shape) for r in means[1 - a]]
        for pool, flatten in _pool_and_flatten(sides[a]):
            if tuple(pool.in_shape) not in wanted or any(tuple(r.in_shape) == tuple(pool.in_shape)
                                                         for r in means[a]):
                continue
            wanted.remove(tuple(pool.in_shape))
            merged = replace(flatten, kind=Kind.MEAN, op=f"{pool.op}+{flatten.op}", inputs=pool.inputs,
                             in_shape=pool.in_shape, kernel=None, stride=None, dilation=None, pads=None,
                             attrs={**flatten.attrs, "axis": (2, 3), "keepdims": False},
                             parts=tuple(pool.parts) + tuple(flatten.parts))
            side = [merged if r is flatten else r for r in sides[a]]
            sides[a] = drop(side, next(r for r in side if r is pool))
            notes.append(f"{SIDES[a]} {pool.name} + {flatten.name}: average pool over the whole "
                         f"{'x'.join(map(str, pool.in_shape[2:]))} map, then flatten = the global mean over H, W "
                         "on the other side: taken as one mean")
    return sides[0], sides[1], notes
