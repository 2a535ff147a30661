"""A pooling with a single window ignores its stride.

Why: when the output is 1 along an axis there is one window there, placed at the first cell (after
the pad before); the stride only says where a second window would start, so any stride gives the
same output. (Pads that no window reaches are already ignored by the diff:
``records.window_before_and_used_after``.) Canonical form: stride 1 on such an axis.

Applies only to single-window pools whose strides differ between the two sides (pools of the same
kind, kernel and input shape), so pairs that agree keep their geometry as written.
"""
from __future__ import annotations

from dataclasses import replace

from porting.core.equivalences.base import SIDES, equivalence
from porting.core.records import Kind, LayerRecord

POOLS = (Kind.POOL_MAX, Kind.POOL_AVG)


def _key(r: LayerRecord):
    if (r.kind not in POOLS or r.stride is None or r.kernel is None or r.in_shape is None or len(r.shape) != 4
            or not any(r.shape[2 + axis] == 1 for axis in range(2))):
        return None
    return (r.kind, tuple(r.kernel), tuple(r.in_shape), tuple(r.shape))


def _canonical(r: LayerRecord) -> tuple[int, ...]:
    return tuple(1 if r.shape[2 + axis] == 1 else r.stride[axis] for axis in range(2))


@equivalence("single_window_pool")
def single_window_pool(tf, mx):
    sides, notes = [tf, mx], []
    strides = [{}, {}]
    for a in (0, 1):
        for r in sides[a]:
            key = _key(r)
            if key is not None:
                strides[a].setdefault(key, set()).add(tuple(r.stride))
    differ = {key for key in set(strides[0]) & set(strides[1]) if strides[0][key] != strides[1][key]}
    for a in (0, 1):
        result = []
        for r in sides[a]:
            if _key(r) in differ and tuple(r.stride) != _canonical(r):
                notes.append(f"{SIDES[a]} {r.name}: single-window pool, stride {'x'.join(map(str, r.stride))} "
                             f"changes nothing: taken as stride {'x'.join(map(str, _canonical(r)))}")
                r = replace(r, stride=_canonical(r), attrs=dict(r.attrs))
            result.append(r)
        sides[a] = result
    return sides[0], sides[1], notes
