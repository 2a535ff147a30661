"""Compare paired layer records: one ``LayerDiff`` row per layer, with the evidence.

Every layer is compared, not only the end points: an internal layer whose
shape is wrong but whose error a later layer undoes is a mismatch here.

Each aspect of a pair is one check function (shape, kernel, stride, dilation,
window geometry, scale, inputs), run in the order :data:`CHECKS` declares; a check
adds defects and notes to the pair's :class:`Findings`. A layer on one side only,
and a batch norm or activation folded into a layer on one side only, are rows of
their own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from porting.core.causes import attribute_causes
from porting.core.graph_walk import collapse_scope
from porting.core.match import Pair
from porting.padding import PaddingError, plan
from porting.core.splits import BY_SPLIT
from porting.core.splits import rejoin as rejoin_splits
from porting.core.records import WINDOWED, Kind, LayerRecord, format_shape, window_before_and_used_after


class Status(StrEnum):
    MATCH = "match"
    SHAPE_MISMATCH = "shape_mismatch"
    ATTR_MISMATCH = "attr_mismatch"
    ONLY_TF = "only_tf"
    ONLY_MX = "only_mx"


#: Severity order: the first that applies is a row's status.
STATUS_ORDER = (Status.SHAPE_MISMATCH, Status.ATTR_MISMATCH, Status.ONLY_TF, Status.ONLY_MX, Status.MATCH)

#: Parts of a folded record that are layers in their own right when one side lacks them.
_LAYER_PARTS = {Kind.BN: "batch norm", Kind.ACT: "activation"}


@dataclass(frozen=True)
class Side:
    """One side of a row, as shown in reports."""

    name: str
    op: str
    shape: tuple[int, ...]
    kind: Kind | str = ""  # "" when unknown
    geometry: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "shape": list(self.shape), "kind": self.kind,
                "geometry": self.geometry}


@dataclass(frozen=True)
class Defect:
    """One concrete difference, with the arithmetic and the fix, for bug reports."""

    field: str  # 'shape', 'pads', 'kernel', 'stride', 'dilation', 'inputs', 'extra_layer', 'missing_layer'
    tf: str
    mx: str
    explanation: str
    fix: str = ""


@dataclass(frozen=True)
class LayerDiff:
    """One row of the report."""

    index: int
    tf: Side | None
    mx: Side | None
    status: Status
    note: str = ""
    matched_by: str | None = None
    defects: tuple[Defect, ...] = ()
    #: The index of the root-cause row this row's difference follows from (``attribute_causes``);
    #: None for a root cause, or a row that matches.
    cause: int | None = None
    #: For a root cause: the indexes of the rows downstream whose differences it explains.
    explains: tuple[int, ...] = ()

    @property
    def layer(self) -> str:
        return self.tf.name if self.tf else self.mx.name if self.mx else "?"


def _side(record: LayerRecord | None, name: str | None = None, op: str | None = None) -> Side | None:
    if record is None:
        return None
    return Side(name or record.name, op or record.op, tuple(record.shape), record.kind, record.geometry())


def _spatial(shape) -> str:
    return "x".join(map(str, shape[2:4])) if shape and len(shape) == 4 else format_shape(shape)


def _padding_fix(tf: LayerRecord) -> str:
    """The MXNet arguments that reproduce the TF layer, from porting.padding."""
    padding = tf.attrs.get("padding")
    if tf.kind not in WINDOWED or padding not in ("SAME", "VALID") or tf.in_shape is None or len(tf.in_shape) != 4:
        if tf.pads is not None and tf.kind in WINDOWED:
            top, bottom, left, right = tf.pads
            return (f"pad explicitly with mx.sym.pad(pad_width=(0, 0, 0, 0, {top}, {bottom}, {left}, {right})) "
                    f"and use pad=(0, 0) on the layer")
        return ""
    op = {Kind.CONV: "conv", Kind.DWCONV: "conv", Kind.POOL_MAX: "max", Kind.POOL_AVG: "avg"}[tf.kind]
    size = tuple(tf.in_shape[2:4])
    if tf.part(Kind.PAD) is not None:  # TF padded explicitly before this layer
        top, bottom, left, right = tf.pads
        return (f"pad explicitly with mx.sym.pad(pad_width=(0, 0, 0, 0, {top}, {bottom}, {left}, {right})) "
                f"and use pad=(0, 0) on the layer")
    try:
        recipe = plan(op, size, tf.kernel, tf.stride, padding, tf.dilation or (1, 1))
    except PaddingError as error:
        return f"(no exact MXNet form: {error})"
    return recipe.describe().replace("\n", "; ")


def _channels_fix(tf: LayerRecord) -> str:
    """The MXNet argument that gives the TF layer's output width."""
    channels = tf.shape[1]
    if tf.kind in (Kind.CONV, Kind.DWCONV):
        return f"num_filter={channels}"
    if tf.kind == Kind.FC:
        return f"num_hidden={channels}"
    if tf.kind == Kind.CONCAT:
        return f"concatenate the same inputs as TF ({channels} channels in all)"
    return ""


def _padding_arithmetic(tf: LayerRecord, mx: LayerRecord) -> str:
    padding = tf.attrs.get("padding", "explicit")
    tf_text = (f"TF {padding} at {_spatial(tf.in_shape)}, kernel {'x'.join(map(str, tf.kernel or ()))}, "
               f"stride {'x'.join(map(str, tf.stride or ()))}: pads (top,bottom,left,right) "
               f"{tf.pads} → {_spatial(tf.shape)}")
    mx_text = (f"MXNet pads {mx.pads}"
               + (f" ({mx.attrs.get('pooling_convention')} convention)" if mx.attrs.get('pooling_convention') else "")
               + f" → {_spatial(mx.shape)}")
    return f"{tf_text}; {mx_text}"


def _resolve(inputs, skip: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Follow inputs through records that exist on one side only (an inserted layer)."""
    resolved = []
    for name in inputs:
        seen = set()
        while name in skip and len(skip[name]) == 1 and name not in seen:
            seen.add(name)
            name = skip[name][0]
        resolved.append(name)
    return tuple(resolved)


# ------------------------------------------------------------------ per-aspect checks

@dataclass(frozen=True)
class Pairing:
    """What the input check needs to know about the other pairs."""

    tf_to_mx: dict[str, str] = field(default_factory=dict)  # paired TF record -> its MXNet record
    only_tf: dict[str, tuple[str, ...]] = field(default_factory=dict)  # TF-only record -> its inputs
    only_mx: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, pairs: list[Pair]) -> "Pairing":
        return cls({p.tf.name: p.mx.name for p in pairs if p.tf is not None and p.mx is not None},
                   {p.tf.name: p.tf.inputs for p in pairs if p.mx is None and p.tf is not None},
                   {p.mx.name: p.mx.inputs for p in pairs if p.tf is None and p.mx is not None})


@dataclass
class Findings:
    """What the checks found for one pair: the row's status, notes and defects so far."""

    status: Status = Status.MATCH
    notes: list[str] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)

    def add(self, defect: Defect, note: str) -> None:
        """An attribute difference: the row is an attribute mismatch unless its shape already differs."""
        self.defects.append(defect)
        self.notes.append(note)
        if self.status == Status.MATCH:
            self.status = Status.ATTR_MISMATCH


def check_shape(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, found: Findings) -> None:
    """Output shapes differ: a channel count (wrong width) or a spatial size (with the pad arithmetic)."""
    if tuple(tf.shape) == tuple(mx.shape):
        return
    found.status = Status.SHAPE_MISMATCH
    explanation = f"TF output {format_shape(tf.shape)}, MXNet {format_shape(mx.shape)}"
    if len(tf.shape) == len(mx.shape) >= 2 and tf.shape[2:] == mx.shape[2:]:
        # Only the width differs (a wrong filter count, a missing concat input).
        explanation += f": {mx.shape[1]} channels instead of {tf.shape[1]}"
        found.defects.append(Defect("channels", str(tf.shape[1]), str(mx.shape[1]), explanation, _channels_fix(tf)))
    else:
        if tf.kind in WINDOWED and mx.kind in WINDOWED and tf.pads is not None:
            explanation += f" ({_padding_arithmetic(tf, mx)})"
        if tf.in_shape and mx.in_shape and tuple(tf.in_shape[2:]) != tuple(mx.in_shape[2:]):
            explanation += (f"; its input already differs (TF {_spatial(tf.in_shape)}, "
                            f"MXNet {_spatial(mx.in_shape)}): an earlier layer is wrong")
        found.defects.append(Defect("shape", format_shape(tf.shape), format_shape(mx.shape), explanation,
                                    _padding_fix(tf) if tf.kind in WINDOWED else ""))
    found.notes.append(explanation)


#: Window attributes compared per layer, and MXNet's name for each.
_WINDOW_ARGS = {"kernel": "kernel", "stride": "stride", "dilation": "dilate"}


def _window_fix(label: str, tf: LayerRecord) -> str:
    """TF's value of a window attribute as an MXNet argument, with the pads that go with it.

    The pads of a window depend on its kernel, stride and dilation, so the fix of any of them
    is the whole recipe from ``porting.padding`` (e.g. ``kernel=(1, 7)`` with ``pad=(0, 3)``).
    """
    wanted = f"{_WINDOW_ARGS[label]}={tuple(getattr(tf, label))!r}"
    recipe = _padding_fix(tf)
    return recipe if wanted in recipe else "; ".join(part for part in (wanted, recipe) if part)


def _window_attribute_check(label: str):
    def check(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, found: Findings) -> None:
        if tf.kind not in WINDOWED or mx.kind not in WINDOWED:
            return
        a, b = getattr(tf, label), getattr(mx, label)
        if a is not None and b is not None and tuple(a) != tuple(b):
            explanation = f"{label} TF {a}, MXNet {b}"
            if len(a) == 2 and tuple(a) == tuple(reversed(b)):
                explanation += " (height and width swapped)"
            found.add(Defect(label, str(a), str(b), explanation, _window_fix(label, tf)),
                      f"{label} TF {a} vs MXNet {b}")

    check.__name__ = check.__qualname__ = f"check_{label}"
    check.__doc__ = f"Windowed layers whose {label} differs; the fix gives TF's {label} with its pads."
    return check


check_kernel = _window_attribute_check("kernel")
check_stride = _window_attribute_check("stride")
check_dilation = _window_attribute_check("dilation")


def check_window_geometry(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, found: Findings) -> None:
    """Equal output shapes from different input cells: an input that differs, or windows shifted by the pads.

    Windows of another kernel, stride or dilation read other cells whatever the pads: that
    defect, found before this check (:data:`CHECKS`), is the cause and its fix carries the
    pads, so no second ``pads`` defect is added for it.
    """
    if tf.kind not in WINDOWED or mx.kind not in WINDOWED or tuple(tf.shape) != tuple(mx.shape):
        return
    tf_window = window_before_and_used_after(tf)
    mx_window = window_before_and_used_after(mx)
    shifted = bool(tf_window and mx_window and tf_window != mx_window)
    window_defect = any(defect.field in _WINDOW_ARGS for defect in found.defects)
    same_input = shifted and tuple(tf.in_shape[2:4]) == tuple(mx.in_shape[2:4])
    if shifted and not same_input:
        # An earlier layer's error that this one's output shape hides.
        explanation = (f"same output shape from a different input: TF reads {_spatial(tf.in_shape)}, "
                       f"MXNet {_spatial(mx.in_shape)} ({_padding_arithmetic(tf, mx)})")
        found.add(Defect("input_shape", _spatial(tf.in_shape), _spatial(mx.in_shape), explanation,
                         "fix the earlier layer whose output differs"),
                  f"input TF {_spatial(tf.in_shape)} vs MXNet {_spatial(mx.in_shape)}: same output from different cells")
    if shifted and (same_input or tf.pads != mx.pads) and not window_defect:
        axes = " and ".join(axis for axis, a, b in zip(("height", "width"), tf_window, mx_window) if a != b)
        explanation = (f"same output shape, but the windows are shifted along the {axes}: "
                       f"{_padding_arithmetic(tf, mx)}; every output value is computed from different input cells")
        found.add(Defect("pads", str(tf.pads), str(mx.pads), explanation, _padding_fix(tf)),
                  f"pads TF {tf.pads} vs MXNet {mx.pads}: windows shifted")


def check_scale(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, found: Findings) -> None:
    """Two constant scales (residual scaling) by different factors."""
    if tf.kind != Kind.SCALE or mx.kind != Kind.SCALE:
        return
    a, b = tf.attrs.get("scale"), mx.attrs.get("scale")
    if a is not None and b is not None and abs(a - b) > 1e-6 * max(1.0, abs(a)):
        found.add(Defect("scale", f"{a:g}", f"{b:g}", f"scale TF {a:g}, MXNet {b:g}", f"multiply by {a:g}"),
                  f"scale TF {a:g} vs MXNet {b:g}")


_POOL_NAMES = {Kind.POOL_MAX: "max pool", Kind.POOL_AVG: "average pool"}


def _activation(record: LayerRecord) -> str | None:
    """The activation a record applies (its own, or a folded one), e.g. 'relu', 'relu6'."""
    if record.kind == Kind.ACT:
        return record.attrs.get("act")
    return record.attrs.get("act.act") if record.part(Kind.ACT) is not None else None


def check_operation(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, found: Findings) -> None:
    """One op substituted for another at the same place: a max pool for an average pool, relu6 for relu.

    The layers pair (same place, same geometry), so the substitution is one attribute row, not a
    layer missing on one side and an extra one on the other. An activation present on one side
    only is a row of its own (``one_sided_part_rows``), not this.
    """
    if {tf.kind, mx.kind} == set(_POOL_NAMES):
        want, got = _POOL_NAMES[tf.kind], _POOL_NAMES[mx.kind]
        found.add(Defect("operation", want, got, f"TF computes a {want}, MXNet a {got}: every window is reduced "
                                                 f"another way",
                         f"pool_type='{'max' if tf.kind == Kind.POOL_MAX else 'avg'}'"),
                  f"operation TF {want} vs MXNet {got}")
        return
    tf_act, mx_act = _activation(tf), _activation(mx)
    if tf_act and mx_act and tf_act != mx_act:
        fix = ("mx.sym.clip(..., a_min=0, a_max=6)" if tf_act == "relu6" else f"act_type='{tf_act}'")
        found.add(Defect("activation", tf_act, mx_act, f"TF applies {tf_act}, MXNet {mx_act}", fix),
                  f"activation TF {tf_act} vs MXNet {mx_act}")


def check_inputs(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, found: Findings) -> None:
    """Inputs in another order (concat: permuted channels) or other inputs, through one-sided layers."""
    tf_inputs = tuple(pairing.tf_to_mx.get(name, f"<{name}>") for name in _resolve(tf.inputs, pairing.only_tf))
    mx_inputs = _resolve(mx.inputs, pairing.only_mx)
    if tf_inputs == mx_inputs:
        return
    if sorted(tf_inputs) == sorted(mx_inputs):
        if tf.kind in (Kind.CONCAT, Kind.OTHER, Kind.MUL) or mx.kind == Kind.CONCAT:
            explanation = (f"inputs in a different order: TF {list(tf_inputs)}, MXNet {list(mx_inputs)}"
                           + (" (the output channels are permuted)" if tf.kind == Kind.CONCAT else ""))
            found.add(Defect("inputs", str(list(tf_inputs)), str(list(mx_inputs)), explanation,
                             f"pass the inputs in TF's order: {list(tf_inputs)}"),
                      "concat inputs in a different order" if tf.kind == Kind.CONCAT else explanation)
    elif found.status == Status.MATCH and not any(name.startswith("<") for name in tf_inputs):
        explanation = f"inputs differ: TF reads {list(tf_inputs)}, MXNet reads {list(mx_inputs)}"
        found.add(Defect("inputs", str(list(tf_inputs)), str(list(mx_inputs)), explanation,
                         "connect the layer to the same inputs as TF"), explanation)


#: The checks of a pair, in the order their notes appear in a row.
CHECKS = (check_shape, check_kernel, check_stride, check_dilation, check_window_geometry, check_scale,
          check_operation, check_inputs)


def only_tf_row(tf: LayerRecord) -> dict:
    """The row of a TF layer no MXNet layer corresponds to."""
    return dict(tf=_side(tf), mx=None, status=Status.ONLY_TF, note="no MXNet layer corresponds to this TF layer",
                defects=(Defect("missing_layer", f"{tf.op} {format_shape(tf.shape)}", "--",
                                f"TF layer {tf.name} ({tf.kind}) has no counterpart in the MXNet symbol",
                                _padding_fix(tf)),))


def only_mx_row(mx: LayerRecord) -> dict:
    """The row of an MXNet layer no TF layer corresponds to."""
    return dict(tf=None, mx=_side(mx), status=Status.ONLY_MX, note="no TF layer corresponds to this MXNet layer",
                defects=(Defect("extra_layer", "--", f"{mx.op} {format_shape(mx.shape)}",
                                f"MXNet layer {mx.name} ({mx.kind}) has no counterpart in the TF graph",
                                "remove it, or add the layer to the TF reference if it belongs there"),))


def one_sided_part_rows(tf: LayerRecord, mx: LayerRecord) -> list[dict]:
    """Rows for a batch norm or activation folded into the layer on one side only: a layer of its own."""
    rows = []
    for part_kind, label in _LAYER_PARTS.items():
        tf_part, mx_part = tf.part(part_kind), mx.part(part_kind)
        if tf_part is not None and mx_part is None:
            rows.append(dict(tf=Side(collapse_scope(tf_part.name), tf_part.op, tuple(tf.shape), part_kind), mx=None,
                             status=Status.ONLY_TF,
                             note=f"TF applies a {label} after {tf.name}; the MXNet layer {mx.name} has none",
                             defects=(Defect("missing_layer", tf_part.op, "--",
                                             f"the MXNet port lacks the {label} that TF applies after {tf.name}",
                                             f"add a {label} after {mx.name}"),)))
        elif mx_part is not None and tf_part is None:
            rows.append(dict(tf=None, mx=Side(mx_part.name, mx_part.op, tuple(mx.shape), part_kind),
                             status=Status.ONLY_MX,
                             note=f"MXNet applies a {label} after {mx.name}; the TF layer {tf.name} has none",
                             defects=(Defect("extra_layer", "--", mx_part.op,
                                             f"the MXNet port adds a {label} that TF does not have after {tf.name}",
                                             f"remove {mx_part.name}"),)))
    return rows


def split_defect(split) -> Defect:
    """The defect of a layer split in two on one side (``porting.core.splits``), with its fix."""
    forms = ("separable (2 layers)", "one full conv")
    kernel = "x".join(map(str, split.window.kernel or ()))
    if split.split_side == "TF":
        return Defect("split", forms[0], forms[1], split.describe(),
                      f"write {split.whole.name} as a depthwise {kernel} conv (num_group = channels) then a 1x1 conv")
    return Defect("split", forms[1], forms[0], split.describe(),
                  f"replace {split.window.name} + {split.pointwise.name} by one {kernel} conv")


def check_pair(tf: LayerRecord, mx: LayerRecord, pairing: Pairing, note: str = "") -> Findings:
    """Run :data:`CHECKS` in order on one pair; ``note`` (the matcher's) comes last."""
    found = Findings()
    for check in CHECKS:
        check(tf, mx, pairing, found)
    if note:
        found.notes.append(note)
    return found


def compare_pairs(pairs: list[Pair]) -> list[LayerDiff]:
    """Turn pairs into report rows; a pair may add rows for layers folded on one side only.

    Rows whose difference only follows from an earlier row's carry that row as their ``cause``
    (``porting.core.causes``).
    """
    pairs, splits = rejoin_splits(pairs)
    split_of_window = {split.window.name: split for split in splits.values()}
    pairing = Pairing.of(pairs)
    rows: list[LayerDiff] = []
    records: dict[int, tuple] = {}
    split_rows: dict[str, int] = {}  # window half -> its row
    preset: dict[int, int] = {}  # row -> the row its difference belongs to

    def add(**kwargs) -> None:
        rows.append(LayerDiff(index=len(rows), **kwargs))

    for pair in pairs:
        tf, mx = pair.tf, pair.mx
        records[len(rows)] = (tf, mx)
        half = splits.get((tf or mx).name) if tf is None or mx is None else None
        if half is not None:  # the pointwise half of a split layer: part of its window half's row
            if half.window.name in split_rows:
                preset[len(rows)] = split_rows[half.window.name]
            row = only_tf_row(tf) if mx is None else only_mx_row(mx)
            row["note"] = (f"the 1x1 half of a separable conv; the other side computes both halves in one layer, "
                           f"{half.whole.name}")
            add(**row)
            continue
        if mx is None:
            add(**only_tf_row(tf))
            continue
        if tf is None:
            add(**only_mx_row(mx))
            continue
        split = split_of_window.get(tf.name if pair.matched_by == BY_SPLIT else None) or \
            split_of_window.get(mx.name if pair.matched_by == BY_SPLIT else None)
        if split is not None:
            split_rows[split.window.name] = len(rows)
            tf, mx = (split.as_one(), mx) if split.split_side == "TF" else (tf, split.as_one())
        found = check_pair(tf, mx, pairing, pair.note)
        if split is not None:
            found.add(split_defect(split), "")
            found.notes.pop()  # the matcher's note (``pair.note``) already says it
        add(tf=_side(tf), mx=_side(mx), status=found.status, note="; ".join(found.notes),
            matched_by=pair.matched_by, defects=tuple(found.defects))
        for row in one_sided_part_rows(tf, mx):
            add(**row)
    return attribute_causes(rows, records, preset)


def summarize(rows: list[LayerDiff]) -> dict:
    """Counts per status, and the verdict."""
    counts = {status.value: 0 for status in Status}
    for row in rows:
        counts[row.status.value] += 1
    return {"rows": len(rows), **counts,
            "verdict": "match" if counts[Status.MATCH.value] == len(rows) else "mismatch"}


def verdict_line(rows: list[LayerDiff]) -> str:
    """'PASSED | 496/496 layers match' or 'FAILED | 3 shape mismatches, 1 only in TF'."""
    summary = summarize(rows)
    if summary["verdict"] == "match":
        return f"PASSED | {summary['match']}/{summary['rows']} layers match"
    labels = ((Status.SHAPE_MISMATCH, "shape mismatch", "shape mismatches"),
              (Status.ATTR_MISMATCH, "attribute mismatch", "attribute mismatches"),
              (Status.ONLY_MX, "only in MXNet", "only in MXNet"),
              (Status.ONLY_TF, "only in TF", "only in TF"))
    parts = [f"{summary[status.value]} {one if summary[status.value] == 1 else many}"
             for status, one, many in labels if summary[status.value]]
    return f"FAILED | {', '.join(parts)} ({summary['match']}/{summary['rows']} rows match)"
