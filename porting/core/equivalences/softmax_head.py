"""A softmax at the end of one side where the other side ends at its logits: the same classifier.

Why: softmax is monotonic, so the predicted classes (and their order) are the logits' own; slim's
builders return the logits (the softmax sits in the end points), an MXNet port ends in a
``SoftmaxOutput`` that is the identity on the logits' ranking and only matters for the training
loss. The lint's ``output_kind`` check still reports the difference (as ``info``), reading the
graphs as they are.

Applies only to softmaxes at an output (nothing reads them but reshapes that end there too, as
slim's ResNets reshape their predictions back to N x K x 1 x 1), and only where the two sides end in
a different number of them; equal numbers pair with each other and keep their axis check.
"""
from __future__ import annotations

from porting.core.equivalences.base import SIDES, consumers, drop, equivalence
from porting.core.records import Kind


def _output_tail(side, record) -> list | None:
    """The reshapes after ``record`` up to the output (``[]`` when nothing reads it), or None."""
    tail, current = [], record
    while True:
        readers = consumers(side, current.name)
        if not readers:
            return tail
        if len(readers) != 1 or readers[0].kind not in (Kind.RESHAPE, Kind.FLATTEN):
            return None
        current = readers[0]
        tail.append(current)


@equivalence("softmax_head")
def softmax_head(tf, mx):
    sides, notes = [tf, mx], []
    found = [[(r, tail) for r in side if r.kind == Kind.SOFTMAX
              for tail in [_output_tail(side, r)] if tail is not None] for side in sides]
    if len(found[0]) == len(found[1]):
        # Softmaxes at both ends pair; reshapes after them on one side only change no value's order.
        if sorted(len(t) for _, t in found[0]) == sorted(len(t) for _, t in found[1]):
            return tf, mx, notes
        for a in (0, 1):
            for r, tail in found[a]:
                for dropped in reversed(tail):
                    current = next(x for x in sides[a] if x.name == dropped.name)
                    sides[a] = drop(sides[a], current)
                    notes.append(f"{SIDES[a]} {dropped.name}: {dropped.op} of the output softmax "
                                 f"{'x'.join(map(str, dropped.in_shape or ()))} -> {'x'.join(map(str, dropped.shape))}"
                                 " keeps the probabilities as they are: dropped")
        return sides[0], sides[1], notes
    for a in (0, 1):
        for r, tail in found[a]:
            for dropped in [*reversed(tail), r]:
                current = next(x for x in sides[a] if x.name == dropped.name)
                sides[a] = drop(sides[a], current)
            notes.append(f"{SIDES[a]} {r.name}: {r.op} at the output, where the other side ends at its logits "
                         "(the same ranking of classes): compared at the logits")
    return sides[0], sides[1], notes
