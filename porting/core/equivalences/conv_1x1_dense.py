"""A 1x1 convolution on a 1x1 map ≡ a dense layer.

Why they compute the same thing: on a 1x1 map a 1x1 conv has one output position,
``out[o] = sum_c x[c] * k[o,c] (+ b[o])`` — exactly a dense layer over the C-vector with weight
``k.reshape(O, C)`` (TF's HWIO kernel: ``k.reshape(C, O).T``); stride and SAME/VALID padding
change nothing on a 1x1 map. Canonical form: the dense layer, its output (N, O); the elementwise
layers after it (dropout, activation) then read (N, O) as well.

Applies only where the other side has a dense layer of the same input and output width.
"""
from __future__ import annotations

from dataclasses import replace

from porting.core.equivalences.base import SIDES, equivalence, squeeze_downstream, squeeze_shape
from porting.core.records import Kind, LayerRecord, Part


def is_1x1_on_1x1(r: LayerRecord) -> bool:
    return (r.kind == Kind.CONV and r.kernel is not None and tuple(r.kernel) == (1, 1) and r.in_shape is not None
            and len(r.in_shape) == 4 and tuple(r.in_shape[2:]) == (1, 1) and len(r.shape) == 4
            and tuple(r.shape[2:]) == (1, 1) and r.attrs.get("num_group", 1) in (1, "1"))


def _width_in(r: LayerRecord):
    if r.in_shape is None:
        return None
    shape = squeeze_shape(tuple(r.in_shape))
    return shape[1] if len(shape) == 2 else None


@equivalence("conv_1x1_dense")
def conv_1x1_dense(tf, mx):
    sides, notes = [tf, mx], []
    for a in (0, 1):
        b = 1 - a
        dense = [r for r in sides[b] if r.kind == Kind.FC and _width_in(r) is not None]
        for conv in [r for r in sides[a] if is_1x1_on_1x1(r)]:
            match = next((d for d in dense if _width_in(d) == conv.in_shape[1] and d.shape[-1] == conv.shape[1]),
                         None)
            if match is None:
                continue
            dense.remove(match)
            parts = tuple(Part(Kind.FC, p.name, p.op) if p.kind == Kind.CONV else p for p in conv.parts)
            new = replace(conv, kind=Kind.FC, shape=squeeze_shape(conv.shape), in_shape=squeeze_shape(conv.in_shape),
                          kernel=None, stride=None, dilation=None, pads=None, parts=parts,
                          attrs=dict(conv.attrs, num_hidden=conv.shape[1], equivalence="conv_1x1_dense"))
            sides[a] = squeeze_downstream([new if r is conv else r for r in sides[a]], conv.name)
            notes.append(f"{SIDES[a]} {conv.name}: 1x1 conv on a 1x1 map taken as dense {conv.in_shape[1]}->"
                         f"{conv.shape[1]}, the form of {SIDES[b]} {match.name}")
    return sides[0], sides[1], notes
