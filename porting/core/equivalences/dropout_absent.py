"""Dropout absent on one side ≡ dropout present: both are the identity at inference.

Why: dropout only acts in training; at inference (``is_training=False`` in slim, MXNet's
``mode='training'`` outside autograd training) it passes its input through unchanged. A port that
leaves it out computes the same logits. Training differs, which is why the rule applies only when
one side has no dropout at all: where both sides have dropouts they stay and pair, so the dropout
lint still compares their rates (and an MXNet ``mode='always'``, which is not an identity).
"""
from __future__ import annotations

from porting.core.equivalences.base import SIDES, drop, equivalence
from porting.core.records import Kind


@equivalence("dropout_absent")
def dropout_absent(tf, mx):
    sides, notes = [tf, mx], []
    found = [[r for r in side if r.kind == Kind.DROPOUT] for side in sides]
    for a in (0, 1):
        if found[1 - a] or not found[a]:
            continue
        if any(str(r.attrs.get("mode", "training")) == "always" for r in found[a]):
            continue  # not an identity at inference
        for r in found[a]:
            current = next(x for x in sides[a] if x.name == r.name)
            sides[a] = drop(sides[a], current)
            notes.append(f"{SIDES[a]} {r.name}: dropout with no counterpart on {SIDES[1 - a]} "
                         f"(the identity at inference): dropped")
    return sides[0], sides[1], notes
