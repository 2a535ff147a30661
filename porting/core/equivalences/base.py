"""The registry of equivalence rules and the record-list edits they share."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from porting.core.records import Kind, LayerRecord

#: name -> rule(tf_records, mx_records) -> (tf_records, mx_records, notes)
EQUIVALENCES: dict[str, Callable] = {}

Rewrite = tuple[list[LayerRecord], list[LayerRecord], list[str]]

SIDES = ("TF", "MX")


def equivalence(name: str):
    """Register a rule under ``name``; a name registered twice is an error."""
    def register(fn):
        if name in EQUIVALENCES:
            raise ValueError(f"equivalence {name!r} registered twice")
        EQUIVALENCES[name] = fn
        return fn
    return register


def consumers(records: list[LayerRecord], name: str) -> list[LayerRecord]:
    return [r for r in records if name in r.inputs]


def drop(records: list[LayerRecord], record: LayerRecord) -> list[LayerRecord]:
    """``records`` without ``record``; its consumers read its first input instead."""
    source = record.inputs[0] if record.inputs else None
    result = []
    for r in records:
        if r is record:
            continue
        if record.name in r.inputs:
            inputs = tuple(i for n in r.inputs for i in ((source,) if n == record.name and source else
                                                         () if n == record.name else (n,)))
            r = replace(r, inputs=inputs, attrs=dict(r.attrs))
        result.append(r)
    return result


def squeeze_shape(shape):
    """(N, C, 1, 1) -> (N, C); other shapes unchanged."""
    if shape is not None and len(shape) == 4 and shape[2] == 1 and shape[3] == 1:
        return tuple(shape[:2])
    return shape


#: Kinds that compute elementwise (or per channel): a 1x1 map read as a vector changes nothing.
ELEMENTWISE = frozenset({Kind.DROPOUT, Kind.ACT, Kind.BIAS, Kind.SCALE, Kind.BN})


def squeeze_downstream(records: list[LayerRecord], name: str) -> list[LayerRecord]:
    """The elementwise consumers of ``name`` (now a vector) read and give (N, C), not (N, C, 1, 1)."""
    by_name = {r.name: r for r in records}
    todo, done = [name], set()
    while todo:
        current = todo.pop()
        for r in consumers(records, current):
            if r.name in done or r.kind not in ELEMENTWISE or r.shape is None or len(r.shape) != 4:
                continue
            if r.shape[2:] != (1, 1):
                continue
            done.add(r.name)
            by_name[r.name] = replace(r, shape=squeeze_shape(r.shape), in_shape=squeeze_shape(r.in_shape),
                                      attrs=dict(r.attrs))
            todo.append(r.name)
    return [by_name[r.name] for r in records]


def replace_record(records: list[LayerRecord], old: LayerRecord, *new: LayerRecord) -> list[LayerRecord]:
    result = []
    for r in records:
        result.extend(new if r is old else (r,))
    return result
