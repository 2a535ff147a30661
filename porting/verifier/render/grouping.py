"""Grouping identical defects, so that a systematic defect reads as one line, not one per layer.

A port with one systematic defect (a batch-norm epsilon on every batch norm, the same pads on
every strided conv) has the same finding or the same row defect on dozens of layers. The
reports keep every layer (the per-layer table keeps one row per layer; JSON keeps every
finding) but the summaries, the lint section and the bug reports name each distinct defect
once, with its count and its layers.

* ``compact_layers``: a list of layer names as text, runs of names that differ in one number
  written as a range (``block35_1..block35_10/Conv2d_1x1``);
* ``row_groups``: the problem rows grouped by root cause (same status, ops and defects);
* ``defect_summary``: each distinct row defect once, with its count;
* ``cause_groups`` / ``root_cause_lines``: each root cause once, with the rows downstream that only
  inherit its difference (``porting.core.causes``).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import replace

from porting.core.diff import LayerDiff, Status

_NUMBER = re.compile(r"\d+")


def _template(name: str) -> tuple[str, tuple[int, ...]]:
    """The name with its numbers masked, and the numbers."""
    return _NUMBER.sub("#", name), tuple(int(n) for n in _NUMBER.findall(name))


def _next_in_run(previous: str, name: str) -> bool:
    """``name`` is ``previous`` with exactly one number increased by one (and nothing else changed)."""
    (mask_a, nums_a), (mask_b, nums_b) = _template(previous), _template(name)
    if mask_a != mask_b:
        return False
    changed = [i for i, (a, b) in enumerate(zip(nums_a, nums_b)) if a != b]
    return len(changed) == 1 and nums_b[changed[0]] == nums_a[changed[0]] + 1


def _range(first: str, last: str) -> str:
    """``first..last`` of a run, on the path component that differs: ``a/b_1..b_10/c``."""
    head, tail = first.split("/"), last.split("/")
    if len(head) == len(tail):
        differing = [i for i, (a, b) in enumerate(zip(head, tail)) if a != b]
        if len(differing) == 1:
            i = differing[0]
            return "/".join(head[:i] + [f"{head[i]}..{tail[i]}"] + head[i + 1:])
    return f"{first}..{last}"


def layer_runs(names) -> list[str]:
    """The names in order, each run of three or more names that count up by one in a single number
    written as one range; other names as they are."""
    names = list(names)
    parts, start = [], 0
    while start < len(names):
        end = start
        while end + 1 < len(names) and _next_in_run(names[end], names[end + 1]) and \
                (end == start or _same_slot(names[start], names[end], names[end + 1])):
            end += 1
        if end - start >= 2:
            parts.append(_range(names[start], names[end]))
        else:
            parts.extend(names[start:end + 1])
        start = end + 1
    return parts


def _same_slot(first: str, previous: str, name: str) -> bool:
    """The step ``previous`` -> ``name`` changes the same number as ``first`` -> ``previous``."""
    nums = [_template(n)[1] for n in (first, previous, name)]
    slot_a = [i for i, (a, b) in enumerate(zip(nums[0], nums[1])) if a != b]
    slot_b = [i for i, (a, b) in enumerate(zip(nums[1], nums[2])) if a != b]
    return slot_a == slot_b


def compact_layers(names, limit: int | None = None) -> str:
    """The layers as text: runs as ranges, joined by ', '; with ``limit``, at most that many parts
    (the first ones, '…', the last one)."""
    parts = layer_runs(names)
    if limit is not None and len(parts) > limit:
        parts = parts[:max(limit - 1, 1)] + [f"… ({len(parts) - limit} more) …"] + parts[-1:]
    return ", ".join(parts)


def _mask(text: str, names) -> str:
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = text.replace(name, "<layer>")
    return text


def row_key(row: LayerDiff) -> tuple:
    """What makes two problem rows the same root cause: status, ops, and every defect (field, both
    values, explanation and fix with the layers' names masked). A row without defects is its own group."""
    names = [side.name for side in (row.tf, row.mx) if side is not None]
    if not row.defects:
        return ("row", row.index)
    return (row.status, row.tf.op if row.tf else None, row.mx.op if row.mx else None,
            tuple((d.field, _mask(str(d.tf), names), _mask(str(d.mx), names), _mask(d.explanation, names),
                   _mask(d.fix, names)) for d in row.defects))


def row_groups(rows) -> list[list[LayerDiff]]:
    """The problem rows, grouped by ``row_key`` in the order of their first row."""
    groups: OrderedDict = OrderedDict()
    for row in rows:
        if row.status != Status.MATCH:
            groups.setdefault(row_key(row), []).append(row)
    return list(groups.values())


def defect_summary(rows) -> list[tuple[str, int, list[str]]]:
    """Each distinct defect of the problem rows once: ``(description, rows, layers)``, most frequent
    first (then in order of appearance); rows that only inherit a difference (``LayerDiff.cause``) are
    their root's, not defects of their own. The description is ``field TF vs MX`` ('pads (0, 1) vs (1, 1)')."""
    found: OrderedDict = OrderedDict()
    for row in rows:
        if row.status == Status.MATCH or row.cause is not None:  # an inherited row is its root's defect
            continue
        names = [side.name for side in (row.tf, row.mx) if side is not None]
        for defect in row.defects:
            key = (row.status.value, defect.field, _mask(str(defect.tf), names), _mask(str(defect.mx), names))
            found.setdefault(key, []).append(row.layer)
    ordered = sorted(found.items(), key=lambda item: -len(item[1]))
    return [(f"{field} {tf} vs {mx} ({status})", len(layers), layers)
            for (status, field, tf, mx), layers in ordered]


def defect_summary_lines(rows, limit: int | None = 4) -> list[str]:
    """The lines under the per-layer table: 'defects: N distinct', then each defect found on several
    rows once ('pads (0, 1) vs (1, 1) (attr_mismatch): 12 layers: a, b..c'), most frequent first, then
    how many defects are on one row each (their rows say them); none when no defect is on several rows."""
    summary = defect_summary(rows)
    if not any(count > 1 for _, count, _ in summary):
        return []
    lines = [f"defects: {len(summary)} distinct"]
    single = 0
    for description, count, layers in summary:
        if count == 1:
            single += 1
            continue
        lines.append(f"  {description}: {count} layers: {compact_layers(layers, limit)}")
    if single:
        lines.append(f"  {single} other defect{'' if single == 1 else 's'} on one layer each (see the rows above)")
    return lines


# ------------------------------------------------------------------ root causes

def _by_index(rows) -> dict[int, LayerDiff]:
    return {row.index: row for row in rows}


#: Defects that only say what another defect of the same row does to the output.
_CONSEQUENCES = frozenset({"shape", "channels", "input_shape"})


def _own_defects(row: LayerDiff) -> tuple:
    """The row's defects without those that only follow from another of its defects (a stride's shape)."""
    own = tuple(d for d in row.defects if d.field not in _CONSEQUENCES)
    return own or tuple(row.defects)


def cause_key(row: LayerDiff) -> tuple:
    """``row_key`` on the row's own defects: the same stride on layers of different sizes is one cause."""
    return row_key(replace(row, defects=_own_defects(row))) if row.defects else row_key(row)


def cause_groups(rows) -> list[list[LayerDiff]]:
    """One group per root cause: the root rows with identical own defects (``cause_key``) together, then
    every row they explain (``LayerDiff.explains``: rows that only inherit a difference from them), in row
    order."""
    by_index = _by_index(rows)
    roots: OrderedDict = OrderedDict()
    for row in rows:
        if row.status != Status.MATCH and row.cause is None:
            roots.setdefault(cause_key(row), []).append(row)
    groups = []
    for members in roots.values():
        explained = sorted({index for row in members for index in row.explains if index in by_index})
        groups.append(members + [by_index[index] for index in explained])
    return groups


def _defect_text(row: LayerDiff) -> str:
    """The row's defects in a few words: 'stride (1, 1) vs (2, 2)', 'missing layer', ..."""
    names = [side.name for side in (row.tf, row.mx) if side is not None]
    parts = []
    for defect in _own_defects(row):
        if defect.field in ("missing_layer", "extra_layer"):
            value = defect.tf if defect.field == "missing_layer" else defect.mx
            parts.append(f"{defect.field.replace('_', ' ')} {_mask(value, names)}")
        elif defect.field != "input_shape":
            parts.append(f"{defect.field} TF {defect.tf} vs MXNet {defect.mx}")
    return "; ".join(parts) or row.status.value


def root_cause_lines(rows, limit: int | None = 4) -> list[str]:
    """The lines that name each root cause once: 'root causes: K for N problem rows', then per cause its
    first row, its defect, how many root rows share it and how many rows downstream it explains; then
    each moved stride in words. None unless some row only inherits its difference (``LayerDiff.cause``)."""
    from porting.core.causes import moved_strides

    if not any(row.cause is not None for row in rows):
        return []
    groups = cause_groups(rows)
    problems = sum(1 for row in rows if row.status != Status.MATCH)
    lines = [f"root causes: {len(groups)} for {problems} problem rows (the other rows only inherit a difference)"]
    for group in groups:
        roots = [row for row in group if row.cause is None]
        first = roots[0]
        inherited = len(group) - len(roots)
        where = (f"#{first.index} {first.layer}" if len(roots) == 1 else
                 f"{len(roots)} layers (#{', #'.join(str(row.index) for row in roots[:3])}"
                 f"{', …' if len(roots) > 3 else ''}): {compact_layers([row.layer for row in roots], limit)}")
        lines.append(f"  {where}: {_defect_text(first)}; explains {inherited} row{'s' if inherited != 1 else ''} "
                     f"downstream")
    lines.extend(f"  {move.describe()}" for move in moved_strides(rows))
    return lines
