"""A concat of a concat ≡ one flat concat (along the same axis).

Why: ``concat([a, concat([b, c])]) == concat([a, b, c])`` along one axis: the inner concat's
channels land, in order, where it stood among the outer one's inputs. slim's Inception-v3
Mixed_7b/7c concatenate a branch that is itself a concat; ports write one flat concat. Canonical
form: flat (the inner concat, when nothing else reads it, is dropped and its inputs spliced in).
The input order is kept, so a permuted concat is still reported.

Applies only where the two sides have a different number of such nested concats.
"""
from __future__ import annotations

from dataclasses import replace

from porting.core.equivalences.base import SIDES, consumers, equivalence
from porting.core.records import Kind, LayerRecord


def _axis(r: LayerRecord):
    return r.attrs.get("axis", r.attrs.get("dim", 1))


def _nested(records: list[LayerRecord]) -> list[tuple[LayerRecord, LayerRecord]]:
    by_name = {r.name: r for r in records}
    found = []
    for outer in records:
        if outer.kind != Kind.CONCAT:
            continue
        for name in outer.inputs:
            inner = by_name.get(name)
            if (inner is not None and inner.kind == Kind.CONCAT and str(_axis(inner)) == str(_axis(outer))
                    and len(consumers(records, inner.name)) == 1 and outer.inputs.count(name) == 1):
                found.append((outer, inner))
    return found


@equivalence("nested_concat")
def nested_concat(tf, mx):
    sides, notes = [tf, mx], []
    if len(_nested(tf)) == len(_nested(mx)):
        return tf, mx, notes
    for a in (0, 1):
        while True:
            found = _nested(sides[a])
            if not found:
                break
            outer, inner = found[0]
            inputs = tuple(i for n in outer.inputs for i in (inner.inputs if n == inner.name else (n,)))
            flat = replace(outer, inputs=inputs, attrs=dict(outer.attrs))
            sides[a] = [flat if r is outer else r for r in sides[a] if r is not inner]
            notes.append(f"{SIDES[a]} {outer.name}: concat of the concat {inner.name} taken as one flat concat")
    return sides[0], sides[1], notes
