"""A convolution over the whole map (kernel = input size, VALID) ≡ Flatten + FullyConnected.

Why they compute the same thing: a VALID conv whose kernel covers the whole H x W input has one
output position, where ``out[o] = sum_{c,h,w} x[c,h,w] * k[o,c,h,w] (+ b[o])`` (kernel in MXNet's
OIHW layout): a dot product of the flattened input with each filter, i.e. a dense layer over
``flatten(x)`` in NCHW order with weight ``k.reshape(O, C*H*W)`` (TF's HWIO kernel:
``k.transpose(3, 2, 0, 1).reshape(O, -1)``). Canonical form: Flatten + dense. The conv side gets a
Flatten record marked ``source_layout='NCHW'`` (the order its kernel reads the map in, the one the
verifier's weight transfer uses), so the flatten_order lint still fires when the other side
flattens in another order (e.g. a transpose to NHWC before its Flatten).

Applies only where the other side has the dense form with the same input map and width.
"""
from __future__ import annotations

import math
from dataclasses import replace

from porting.core.equivalences.base import SIDES, equivalence, replace_record, squeeze_downstream
from porting.core.records import Kind, LayerRecord, Part


def is_whole_map_conv(r: LayerRecord) -> bool:
    return (r.kind == Kind.CONV and r.in_shape is not None and len(r.in_shape) == 4 and r.kernel is not None
            and tuple(r.kernel) == tuple(r.in_shape[2:]) and tuple(r.kernel) != (1, 1)
            and len(r.shape) == 4 and tuple(r.shape[2:]) == (1, 1) and not any(r.pads or ())
            and all(d == 1 for d in (r.dilation or (1, 1))))


def dense_map(records: list[LayerRecord], r: LayerRecord):
    """The 4-D map a dense layer reads flattened (directly, or through a Flatten / transpose); else None."""
    if r.kind != Kind.FC:
        return None
    if r.in_shape is not None and len(r.in_shape) == 4:
        return tuple(r.in_shape)
    by_name = {x.name: x for x in records}
    source = by_name.get(r.inputs[0]) if r.inputs else None
    if source is None or source.kind not in (Kind.FLATTEN, Kind.RESHAPE) or not source.in_shape:
        return None
    if len(source.in_shape) == 4 and source.in_shape[2:] != (1, 1):
        before = by_name.get(source.inputs[0]) if source.inputs else None
        if before is not None and before.op in ("transpose", "Transpose") and before.in_shape:
            return tuple(before.in_shape)  # the flatten_order lint judges the transposed order
        return tuple(source.in_shape)
    return None


def as_flatten_dense(records: list[LayerRecord], conv: LayerRecord) -> tuple[list[LayerRecord], LayerRecord]:
    n, c, h, w = conv.in_shape
    width = c * h * w
    flat_name = conv.name + "/flatten"
    flatten = LayerRecord(name=flat_name, kind=Kind.FLATTEN, op="Flatten", inputs=conv.inputs, shape=(n, width),
                          in_shape=conv.in_shape,
                          attrs={"source_layout": "NCHW", "spatial": True, "equivalence": "conv_whole_map"},
                          parts=(Part(Kind.FLATTEN, flat_name, "Flatten"),))
    parts = tuple(Part(Kind.FC, p.name, p.op) if p.kind == Kind.CONV else p for p in conv.parts)
    dense = replace(conv, kind=Kind.FC, inputs=(flat_name,), shape=(n, conv.shape[1]), in_shape=(n, width),
                    kernel=None, stride=None, dilation=None, pads=None, parts=parts,
                    attrs=dict(conv.attrs, num_hidden=conv.shape[1], equivalence="conv_whole_map"))
    records = replace_record(records, conv, flatten, dense)
    return squeeze_downstream(records, conv.name), dense


@equivalence("conv_whole_map")
def conv_whole_map(tf, mx):
    sides, notes = [tf, mx], []
    for a in (0, 1):
        b = 1 - a
        dense = [r for r in sides[b] if dense_map(sides[b], r) is not None]
        for conv in [r for r in sides[a] if is_whole_map_conv(r)]:
            match = next((d for d in dense if dense_map(sides[b], d) == tuple(conv.in_shape)
                          and d.shape[-1] == conv.shape[1]), None)
            if match is None:
                continue
            dense.remove(match)
            sides[a], _ = as_flatten_dense(sides[a], conv)
            kh, kw = conv.kernel
            notes.append(f"{SIDES[a]} {conv.name}: {kh}x{kw} VALID conv over the whole {kh}x{kw} map taken as "
                         f"Flatten (NCHW) + dense {math.prod(conv.in_shape[1:])}->{conv.shape[1]}, the form of "
                         f"{SIDES[b]} {match.name}")
    return sides[0], sides[1], notes
