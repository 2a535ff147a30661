"""A scale stored as a weight ≡ a constant scale; a scale by 1 ≡ no scale.

Why they compute the same thing: ``x * s`` is the same whether ``s`` is a constant in the graph
(slim's residual ``scale * up``) or a one-element parameter the product broadcasts (a converter's
``broadcast_mul`` by an initialiser), as long as the stored value is ``s``; and ``x * 1.0`` is
``x`` (tf2onnx drops the last block's scale of 1.0). When the MXNet side carries its weights the
reader reads the stored value into the record and the diff compares it with slim's scale like any
two constants (a different value stays a defect). Without weights the value cannot be read: the
pair is accepted as "equivalent if the numbers agree", marked ``needs_numbers`` (a warning without
``--numeric``).

The scale by 1 is dropped only where the other side has no scale at the same place (the kind of
the layer it reads and of the layers reading it); a scale by any other value is never dropped.
"""
from __future__ import annotations

from dataclasses import replace

from porting.core.equivalences.base import SIDES, consumers, drop, equivalence
from porting.core.records import Kind, LayerRecord


def _place(side: list[LayerRecord], r: LayerRecord) -> tuple:
    source = next((x.kind for x in side if r.inputs and x.name == r.inputs[0]), None)
    return source, tuple(sorted(x.kind for x in consumers(side, r.name)))


def _is_unit(r: LayerRecord) -> bool:
    scale = r.attrs.get("scale")
    return r.kind == Kind.SCALE and scale is not None and float(scale) == 1.0 and len(r.inputs) == 1


@equivalence("scale_weights")
def scale_weights(tf, mx):
    sides, notes = [tf, mx], []
    # Scales by 1 beyond the number of scales the other side has at the same place: the identity, dropped.
    for a in (0, 1):
        excess: dict[tuple, int] = {}
        for r in sides[a]:
            if r.kind == Kind.SCALE:
                excess[_place(sides[a], r)] = excess.get(_place(sides[a], r), 0) + 1
        for r in sides[1 - a]:
            if r.kind == Kind.SCALE:
                place = _place(sides[1 - a], r)
                excess[place] = excess.get(place, 0) - 1
        for r in [r for r in sides[a] if _is_unit(r)]:
            place = _place(sides[a], r)
            if excess.get(place, 0) <= 0:
                continue
            excess[place] -= 1
            sides[a] = drop(sides[a], next(x for x in sides[a] if x.name == r.name))
            notes.append(f"{SIDES[a]} {r.name}: scale by 1 keeps the data as it is: dropped")
    # A scale stored as a parameter whose value was not read (no weights): the numbers decide.
    for a in (0, 1):
        if not any(r.kind == Kind.SCALE and r.attrs.get("scale") is not None for r in sides[1 - a]):
            continue
        updated = []
        for r in sides[a]:
            if r.kind == Kind.SCALE and r.attrs.get("scale") is None and r.attrs.get("weight_param"):
                r = replace(r, attrs=dict(r.attrs, equivalence="scale_weights", needs_numbers=True))
                notes.append(f"{SIDES[a]} {r.name}: scale stored as the parameter {r.attrs['weight_param']}, "
                             "its value not read without weights (equivalent if the numbers agree)")
            elif r.kind == Kind.SCALE and r.attrs.get("scale_source"):
                notes.append(f"{SIDES[a]} {r.name}: scale {r.attrs['scale']:g} read from the "
                             f"{r.attrs['scale_source']} (compared with the other side's like a constant)")
            updated.append(r)
        sides[a] = updated
    return sides[0], sides[1], notes
