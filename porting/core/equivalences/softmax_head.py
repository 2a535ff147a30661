"""A softmax at the end of one side where the other side ends at its logits: the same classifier.

Why: softmax is monotonic, so the predicted classes (and their order) are the logits' own; slim's
builders return the logits (the softmax sits in the end points), an MXNet port ends in a
``SoftmaxOutput`` that is the identity on the logits' ranking and only matters for the training
loss. The lint's ``output_kind`` check still reports the difference (as ``info``), reading the
graphs as they are.

Applies only to softmaxes nothing reads (the network's outputs), and only where the two sides end
in a different number of them; equal numbers pair with each other and keep their axis check.
"""
from __future__ import annotations

from porting.core.equivalences.base import SIDES, consumers, drop, equivalence
from porting.core.records import Kind


@equivalence("softmax_head")
def softmax_head(tf, mx):
    sides, notes = [tf, mx], []
    found = [[r for r in side if r.kind == Kind.SOFTMAX and not consumers(side, r.name)] for side in sides]
    if len(found[0]) == len(found[1]):
        return tf, mx, notes
    for a in (0, 1):
        for r in found[a]:
            current = next(x for x in sides[a] if x.name == r.name)
            sides[a] = drop(sides[a], current)
            notes.append(f"{SIDES[a]} {r.name}: {r.op} at the output, where the other side ends at its logits "
                         "(the same ranking of classes): compared at the logits")
    return sides[0], sides[1], notes
