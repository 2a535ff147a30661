"""Weight transfer between a TF graph (or checkpoint) and an MXNet symbol, from the layer pairing.

Names are never guessed: for every layer pair the verifier matched (``porting.core.match``),
the TF values are found from the TF ops of the record (the conv or matmul weight input,
the BiasAdd's bias, the FusedBatchNorm's scale, offset, mean and variance inputs) and
the MXNet parameters from the MXNet node's inputs (``Convolution`` weight/bias,
``BatchNorm`` gamma/beta/moving_mean/moving_var, ``FullyConnected`` weight/bias). So a
port whose MXNet names are automatic (``convolution0_weight``) converts as well as ours.

Layouts come from ``porting.core.layouts`` (HWIO->OIHW, depthwise, dense, and the
flatten-order reorder when a dense layer reads a spatial NHWC flatten). Where TF has
no value by construction the MXNet value is defined, not defaulted, and reported:
``gamma = 1`` where slim's batch norm has no scale, a zero bias where MXNet has a bias
and TF has none.

Nothing is left silently at a default: a :class:`TransferPlan` lists every MXNet
parameter with no TF source (*missing*), every TF variable that no MXNet parameter takes
(*unexpected*) and every shape that disagrees after the layout transform (*mismatched*),
by name; :func:`transfer` and :func:`reverse_transfer` raise :class:`WeightTransferError`
unless each problem is allowed by a pattern (``allow_missing=['AuxLogits/*']``).

Reverse direction (MXNet -> TF, e.g. a model fine-tuned in MXNet going back): the
inverse transforms, checked so that a value TF cannot hold (a non-zero bias where TF
has none, a gamma that is not 1 where TF has no scale) is reported, not dropped. Every
transform is a permutation, so TF -> MXNet -> TF reproduces every tensor bit for bit.
"""
from __future__ import annotations

import fnmatch
import os
import zlib
from collections.abc import Iterable, Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from porting import compat  # noqa: F401  (shims first)
from porting.core import layouts
from porting.core.records import Kind, LayerRecord

ARG = "arg"
AUX = "aux"

#: Where a mapped MXNet value comes from.
SOURCE_VARIABLE = "variable"  # a TF variable
SOURCE_CONSTANT = "constant"  # a constant of the TF graph (slim's gamma = ones when scale=False)
SOURCE_FILL = "fill"  # TF has no such value by construction (zero bias, gamma = 1)

#: Parameter roles, in the order MXNet ops take them as inputs.
_MX_INPUT_ROLES = {
    "Convolution": ("weight", "bias"),
    "Deconvolution": ("weight", "bias"),
    "FullyConnected": ("weight", "bias"),
    "BatchNorm": ("gamma", "beta", "moving_mean", "moving_var"),
}
_TF_BN_ROLES = ("gamma", "beta", "moving_mean", "moving_var")  # FusedBatchNorm inputs 1..4
_VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable")
_READ_OPS = ("Identity", "ReadVariableOp", "Snapshot")
#: Checkpoint entries that are bookkeeping of the checkpoint format, never model values.
_CHECKPOINT_BOOKKEEPING = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter")


class WeightTransferError(Exception):
    """Parameters would be missing, left unused or shaped wrongly; ``report`` lists them all."""

    def __init__(self, message: str, report: "TransferReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Mapping:
    """One MXNet parameter and where its value comes from on the TF side.

    Attributes:
        mx_name, mx_kind, mx_shape: the MXNet parameter ('arg' or 'aux') and its shape.
        role: 'weight', 'bias', 'gamma', 'beta', 'moving_mean' or 'moving_var'.
        layer: the TF record of the pair; mx_layer: the MXNet record.
        layer_kind: the record kind (conv, dwconv, fc, bn...), for initialization.
        source: SOURCE_VARIABLE, SOURCE_CONSTANT or SOURCE_FILL.
        tf_name, tf_shape: the TF variable (no ':0') and its shape, for variables.
        tf_tensor: the tensor of the TF graph that reads the value (for sessions).
        transform: a name in ``layouts.TRANSFORMS``; transform_args its keywords.
        pre_transpose: TF's matmul reads the kernel transposed (``transpose_b``).
        constant: the value for constants and fills (float32 array).
        note: why a fill or a reorder applies.
    """

    mx_name: str
    mx_kind: str
    mx_shape: tuple[int, ...]
    role: str
    layer: str
    mx_layer: str
    layer_kind: str
    source: str
    tf_name: str | None = None
    tf_shape: tuple[int, ...] | None = None
    tf_tensor: str | None = None
    transform: str = "identity"
    transform_args: tuple[tuple[str, int], ...] = ()
    pre_transpose: bool = False
    constant: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)
    note: str = ""

    def to_mx(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if self.pre_transpose:
            value = value.T
        return layouts.to_mx(self.transform, value, **dict(self.transform_args))

    def from_mx(self, value: np.ndarray) -> np.ndarray:
        value = layouts.from_mx(self.transform, np.asarray(value), **dict(self.transform_args))
        return np.ascontiguousarray(value.T) if self.pre_transpose else value

    def mx_value(self, tf_values: MappingABC | None = None) -> np.ndarray:
        """The MXNet value: transformed TF variable, or the constant / fill."""
        if self.source == SOURCE_VARIABLE:
            return self.to_mx(tf_values[self.tf_name]).astype(np.float32, copy=False)
        return np.broadcast_to(self.constant, self.mx_shape).astype(np.float32)

    def describe(self) -> str:
        if self.source == SOURCE_VARIABLE:
            return f"{self.tf_name} --{self.transform}--> {self.mx_name}"
        return f"{self.mx_name} = {self.note}"


@dataclass(frozen=True)
class Problem:
    """One parameter that cannot be transferred as is, named on both sides where known."""

    kind: str  # 'missing', 'unexpected', 'mismatched', 'lost'
    name: str  # the parameter the problem is about (MXNet name for missing/lost, TF name for unexpected)
    reason: str
    layer: str | None = None
    tf_name: str | None = None
    mx_name: str | None = None
    tf_shape: tuple[int, ...] | None = None
    mx_shape: tuple[int, ...] | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.name, self.tf_name, self.mx_name, self.layer) if n)

    def as_dict(self) -> dict:
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in self.__dict__.items() if value is not None}

    def line(self) -> str:
        shapes = ""
        if self.tf_shape is not None or self.mx_shape is not None:
            shapes = (f" (TF {'x'.join(map(str, self.tf_shape)) if self.tf_shape else '--'}, "
                      f"MXNet {'x'.join(map(str, self.mx_shape)) if self.mx_shape else '--'})")
        return f"{self.kind}: {self.name}{shapes}: {self.reason}"


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a pattern matches the name or a trailing '/'-part of it.

    ``'AuxLogits/*'`` matches ``InceptionResnetV2/AuxLogits/Logits_weight``; patterns
    are shell-style (``fnmatch``), case-sensitive.
    """
    parts = name.split("/")
    candidates = ["/".join(parts[index:]) for index in range(len(parts))]
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates)


def _allowed(problem: Problem, patterns: Iterable[str]) -> bool:
    patterns = list(patterns)
    return bool(patterns) and any(matches(name, patterns) for name in problem.names())


@dataclass
class TransferReport:
    """What a transfer did and what it could not do."""

    direction: str  # 'tf->mx' or 'mx->tf'
    set: list[Mapping] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    allowed: list[Problem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # checkpoint entries that are no model variable
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict:
        by_transform: dict[str, int] = {}
        for mapping in self.set:
            key = mapping.transform if mapping.source == SOURCE_VARIABLE else f"{mapping.source}:{mapping.role}"
            by_transform[key] = by_transform.get(key, 0) + 1
        return by_transform

    def as_dict(self) -> dict:
        return {"direction": self.direction, "ok": self.ok, "set": len(self.set), "counts": self.counts(),
                "problems": [p.as_dict() for p in self.problems], "allowed": [p.as_dict() for p in self.allowed],
                "ignored": list(self.ignored), "warnings": list(self.warnings)}

    def summary_line(self) -> str:
        counts = ", ".join(f"{count} {key}" for key, count in sorted(self.counts().items()))
        kinds: dict[str, int] = {}
        for problem in self.problems:
            kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
        issues = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "no problems"
        target = "MXNet parameters" if self.direction == "tf->mx" else "TF variables"
        extra = f"; {len(self.allowed)} allowed" if self.allowed else ""
        extra += f"; {len(self.ignored)} checkpoint entries ignored (no model variable)" if self.ignored else ""
        return f"weights {self.direction}: {len(self.set)} {target} set ({counts or 'none'}); {issues}{extra}"

    def text(self) -> str:
        lines = [self.summary_line()]
        lines += [f"  {problem.line()}" for problem in self.problems]
        lines += [f"  allowed {problem.line()}" for problem in self.allowed]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.ignored:
            shown = ", ".join(self.ignored[:10]) + (", ..." if len(self.ignored) > 10 else "")
            lines.append(f"  ignored checkpoint entries: {shown}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.problems:
            raise WeightTransferError(
                f"{len(self.problems)} parameter problem{'s' if len(self.problems) != 1 else ''} "
                f"(pass allow patterns for the ones that may stay):\n{self.text()}", self)


@dataclass
class TransferPlan:
    """Every MXNet parameter's source, and what the pairing could not place."""

    mappings: list[Mapping]
    problems: list[Problem]  # structural: missing / unexpected / mismatched
    warnings: list[str]
    tf_variables: dict[str, tuple[int, ...]]  # every variable of the TF graph -> shape
    mx_params: dict[str, tuple[str, tuple[int, ...]]]  # every MXNet parameter -> (kind, shape)
    fix_gamma_layers: set[str] = field(default_factory=set)  # MXNet records whose BatchNorm ignores gamma

    def by_mx_name(self) -> dict[str, Mapping]:
        return {mapping.mx_name: mapping for mapping in self.mappings}

    def tf_names(self) -> list[str]:
        """TF variables some MXNet parameter takes, in mapping order, each once."""
        seen: dict[str, None] = {}
        for mapping in self.mappings:
            if mapping.source == SOURCE_VARIABLE:
                seen.setdefault(mapping.tf_name, None)
        return list(seen)

    def roles(self) -> dict[str, tuple[str, str, Mapping]]:
        """TF variable -> (role, layer kind, mapping) of its first use."""
        result = {}
        for mapping in self.mappings:
            if mapping.source == SOURCE_VARIABLE and mapping.tf_name not in result:
                result[mapping.tf_name] = (mapping.role, mapping.layer_kind, mapping)
        return result


# ------------------------------------------------------------------ TF side

def _shape(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def tf_variables(graph) -> dict[str, tuple[int, ...]]:
    """Every variable op of a TF graph -> its shape."""
    result = {}
    for op in graph.get_operations():
        if op.type in _VARIABLE_OPS:
            shape = op.get_attr("shape")
            dims = [dim.size for dim in shape.dim] if hasattr(shape, "dim") else list(shape)
            result[op.name] = _shape(dims)
    return result


def _trace_variable(tensor, steps: int = 6):
    """The variable op a tensor reads (through Identity / ReadVariableOp), or None."""
    op = tensor.op
    for _ in range(steps):
        if op.type in _VARIABLE_OPS:
            return op
        if op.type not in _READ_OPS or not op.inputs:
            return None
        op = op.inputs[0].op
    return None


@dataclass(frozen=True)
class _TfSource:
    source: str
    tf_name: str | None
    tf_shape: tuple[int, ...] | None
    tensor: str
    constant: np.ndarray | None = None
    pre_transpose: bool = False


def _tf_source(tensor) -> _TfSource:
    variable = _trace_variable(tensor)
    if variable is not None:
        shape = tensor.shape.as_list() if tensor.shape.rank is not None else None
        return _TfSource(SOURCE_VARIABLE, variable.name, _shape(shape) if shape else None, tensor.name)
    tf = compat.import_tf()
    value = tf.get_static_value(tensor)
    if value is not None:
        return _TfSource(SOURCE_CONSTANT, None, _shape(np.shape(value)), tensor.name,
                         np.asarray(value, dtype=np.float32))
    return _TfSource("unknown", None, None, tensor.name)


def _tf_roles(graph, record: LayerRecord) -> dict[str, _TfSource]:
    """role -> TF source, from the ops folded into a TF record."""
    roles: dict[str, _TfSource] = {}
    for part in record.parts:
        try:
            op = graph.get_operation_by_name(part.name)
        except (KeyError, ValueError):
            continue
        if part.kind in (Kind.CONV, Kind.DWCONV) and len(op.inputs) > 1:
            roles["weight"] = _tf_source(op.inputs[1])
        elif part.kind == Kind.FC and op.type == "MatMul" and len(op.inputs) > 1:
            source = _tf_source(op.inputs[1])
            if op.get_attr("transpose_b"):
                source = _TfSource(**{**source.__dict__, "pre_transpose": True})
            roles["weight"] = source
        elif part.kind == Kind.BIAS and len(op.inputs) > 1:
            if op.type == "BiasAdd":
                roles["bias"] = _tf_source(op.inputs[1])
            else:  # x + b with b a variable or constant
                for tensor in op.inputs:
                    source = _tf_source(tensor)
                    if source.source in (SOURCE_VARIABLE, SOURCE_CONSTANT):
                        roles["bias"] = source
                        break
        elif part.kind == Kind.BN and op.type.startswith("FusedBatchNorm") and len(op.inputs) >= 5:
            for role, tensor in zip(_TF_BN_ROLES, op.inputs[1:5]):
                roles[role] = _tf_source(tensor)
    return roles


def flat_geometry(records_by_name: dict[str, LayerRecord], record: LayerRecord, layout: str):
    """(H, W, C) when ``record``'s output is a spatial flatten in ``layout`` (through dropouts); else None.

    Only a flatten in ``layout`` (NHWC on TF, NCHW on MXNet) counts; an MXNet flatten
    of a transposed (NHWC) tensor is already in TF's order.
    """
    current = record
    for _ in range(8):
        if current.kind in (Kind.DROPOUT, Kind.ACT):
            if not current.inputs or current.inputs[0] not in records_by_name:
                return None
            current = records_by_name[current.inputs[0]]
            continue
        if current.kind in (Kind.FLATTEN, Kind.RESHAPE) and current.in_shape is not None \
                and len(current.in_shape) == 4 and len(current.shape) == 2:
            if not current.attrs.get("spatial") or current.attrs.get("source_layout") != layout:
                return None
            producer = records_by_name.get(current.inputs[0]) if current.inputs else None
            if layout == "NCHW" and producer is not None and producer.op in ("transpose", "Transpose"):
                return None
            _, channels, height, width = current.in_shape
            return height, width, channels
        return None
    return None


def _flatten_geometry(records_by_name: dict[str, LayerRecord], record: LayerRecord, layout: str):
    """(H, W, C) of the spatial flatten a dense layer reads, through dropouts; else None."""
    if not record.inputs or record.inputs[0] not in records_by_name:
        return None
    return flat_geometry(records_by_name, records_by_name[record.inputs[0]], layout)


# ------------------------------------------------------------------ MXNet side

def _mx_index(mx_graph) -> dict[str, dict]:
    return {entry["name"]: entry for entry in mx_graph.nodes if entry.get("op") != "null"}


def _mx_input_names(mx_graph) -> set[str]:
    """Arguments that are inputs, not parameters: 'data' and labels."""
    return {name for name in mx_graph.arg_shapes if name == "data" or name == "label" or name.endswith("_label")}


def mx_parameters(mx_graph) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every MXNet parameter of the symbol -> (kind, shape); inputs excluded."""
    inputs = _mx_input_names(mx_graph)
    params = {name: (ARG, _shape(shape)) for name, shape in mx_graph.arg_shapes.items() if name not in inputs}
    params.update({name: (AUX, _shape(shape)) for name, shape in mx_graph.aux_shapes.items()})
    return params


def _mx_roles(mx_graph, index: dict[str, dict], record: LayerRecord) -> dict[str, tuple[str, str]]:
    """role -> (MXNet parameter name, op) from the nodes folded into an MXNet record."""
    roles: dict[str, tuple[str, str]] = {}
    nodes = mx_graph.nodes
    for part in record.parts:
        entry = index.get(part.name)
        if entry is None or entry["op"] not in _MX_INPUT_ROLES:
            continue
        for role, (src, *_rest) in zip(_MX_INPUT_ROLES[entry["op"]], entry["inputs"][1:]):
            source = nodes[src]
            if source.get("op") == "null":
                roles[role] = (source["name"], entry["op"])
    return roles


def _fix_gamma(index: dict[str, dict], record: LayerRecord) -> bool:
    for part in record.parts:
        entry = index.get(part.name)
        if entry is not None and entry["op"] == "BatchNorm":
            attrs = entry.get("attrs", entry.get("param", {})) or {}
            return str(attrs.get("fix_gamma", "True")).strip().lower() in ("true", "1")
    return False


# ------------------------------------------------------------------ the plan

_FILLS = {"bias": (0.0, "0: TF has no bias here"), "gamma": (1.0, "1: TF's batch norm has no scale (gamma)")}


def plan_transfer(tf_graph, mx_graph, pairs=None) -> TransferPlan:
    """Map every MXNet parameter to its TF source, using the layer pairing.

    Args:
        tf_graph: a ``tf_reader.TfGraph`` (inference mode, so batch norms read their
            moving statistics).
        mx_graph: an ``mx_reader.MxGraph``.
        pairs: ``porting.core.match.match(tf_graph.records, mx_graph.records)``; computed
            when omitted.
    """
    from porting.core.match import match

    if pairs is None:
        pairs = match(tf_graph.records, mx_graph.records)
    graph = tf_graph.graph
    variables = tf_variables(graph)
    params = mx_parameters(mx_graph)
    index = _mx_index(mx_graph)
    tf_records = {record.name: record for record in tf_graph.records}
    mx_records = {record.name: record for record in mx_graph.records}
    mappings: list[Mapping] = []
    problems: list[Problem] = []
    warnings: list[str] = []
    used_tf: set[str] = set()
    placed_mx: set[str] = set()

    for pair in pairs:
        if pair.tf is None or pair.mx is None:
            continue
        tf_roles = _tf_roles(graph, pair.tf)
        mx_roles = _mx_roles(mx_graph, index, pair.mx)
        if not tf_roles and not mx_roles:
            continue
        for role, (mx_name, mx_op) in mx_roles.items():
            if mx_name not in params:
                continue
            mx_kind, mx_shape = params[mx_name]
            base = dict(mx_name=mx_name, mx_kind=mx_kind, mx_shape=mx_shape, role=role, layer=pair.tf.name,
                        mx_layer=pair.mx.name, layer_kind=pair.tf.kind)
            if mx_name in placed_mx:
                problems.append(Problem("mismatched", mx_name, f"takes values from two TF layers (also {pair.tf.name})",
                                        layer=pair.tf.name, mx_name=mx_name))
                continue
            source = tf_roles.get(role)
            if source is None or source.source == "unknown":
                if role in _FILLS and (source is None):
                    value, note = _FILLS[role]
                    mappings.append(Mapping(**base, source=SOURCE_FILL, constant=np.float32(value), note=note))
                    placed_mx.add(mx_name)
                else:
                    what = "no" if source is None else "an untraceable (neither variable nor constant)"
                    problems.append(Problem("missing", mx_name,
                                            f"the TF layer {pair.tf.name} has {what} {role} for MXNet's {mx_op}",
                                            layer=pair.tf.name, mx_name=mx_name, mx_shape=mx_shape))
                continue
            transform, args, note = "identity", (), ""
            if source.source == SOURCE_CONSTANT:
                note = f"{role} is a constant of the TF graph ({source.tensor})"
                if role == "gamma" and _neutral(role, source.constant):
                    note = "1: TF's batch norm has no scale (its gamma is a constant 1)"
            if role == "weight":
                transform, args, note = _weight_transform(pair, source, tf_records, mx_records)
            if role == "gamma" and _fix_gamma(index, pair.mx) and source.source == SOURCE_VARIABLE:
                warnings.append(f"{pair.tf.name}: TF learns a batch-norm gamma ({source.tf_name}) but MXNet's "
                                f"{pair.mx.name} has fix_gamma=True, which ignores it (PITFALLS.md #5a)")
            mapping = Mapping(**base, source=source.source, tf_name=source.tf_name, tf_shape=source.tf_shape,
                              tf_tensor=source.tensor, transform=transform, transform_args=args,
                              pre_transpose=source.pre_transpose, constant=source.constant, note=note)
            expected = _expected_shape(mapping, source)
            if expected is not None and tuple(expected) != tuple(mx_shape):
                problems.append(Problem("mismatched", mx_name,
                                        f"TF {source.tf_name or 'constant'} {_fmt(source.tf_shape)} becomes "
                                        f"{_fmt(expected)} by {transform}, MXNet expects {_fmt(mx_shape)}",
                                        layer=pair.tf.name, tf_name=source.tf_name, mx_name=mx_name,
                                        tf_shape=source.tf_shape, mx_shape=mx_shape))
                if source.source == SOURCE_VARIABLE:
                    used_tf.add(source.tf_name)
                placed_mx.add(mx_name)
                continue
            if source.source == SOURCE_CONSTANT and expected is None:
                problems.append(Problem("mismatched", mx_name, f"the TF constant for {role} has shape "
                                        f"{_fmt(source.tf_shape)}, MXNet expects {_fmt(mx_shape)}",
                                        layer=pair.tf.name, mx_name=mx_name, mx_shape=mx_shape))
                continue
            mappings.append(mapping)
            placed_mx.add(mx_name)
            if source.source == SOURCE_VARIABLE:
                used_tf.add(source.tf_name)
        for role, source in tf_roles.items():
            if role in mx_roles or source.source != SOURCE_VARIABLE:
                if role not in mx_roles and source.source == SOURCE_CONSTANT and not _neutral(role, source.constant):
                    warnings.append(f"{pair.tf.name}: TF applies a constant {role} that MXNet's {pair.mx.name} "
                                    "has no parameter for")
                continue
            problems.append(Problem("unexpected", source.tf_name,
                                    f"MXNet's {pair.mx.name} has no {role} parameter to take it",
                                    layer=pair.tf.name, tf_name=source.tf_name, tf_shape=source.tf_shape))
            used_tf.add(source.tf_name)

    for name, (kind, shape) in params.items():
        if name not in placed_mx and not any(p.mx_name == name for p in problems):
            owner = _mx_owner(mx_graph, index, name)
            reason = (f"the MXNet layer {owner} has no TF counterpart" if owner else "no paired layer reads it")
            problems.append(Problem("missing", name, reason, layer=owner, mx_name=name, mx_shape=shape))
    for name, shape in variables.items():
        if name not in used_tf:
            owner = _tf_owner(graph, tf_records, name)
            reason = (f"the TF layer {owner} has no MXNet counterpart" if owner and not _paired(pairs, owner)
                      else "no paired MXNet layer takes it")
            problems.append(Problem("unexpected", name, reason, layer=owner, tf_name=name, tf_shape=shape))
    fix_gamma_layers = {pair.mx.name for pair in pairs if pair.mx is not None and _fix_gamma(index, pair.mx)}
    return TransferPlan(mappings, problems, warnings, variables, params, fix_gamma_layers)


def _neutral(role: str, value) -> bool:
    if value is None:
        return False
    return bool(np.all(value == (1.0 if role in ("gamma", "moving_var") else 0.0)))


def _paired(pairs, tf_name: str) -> bool:
    return any(p.tf is not None and p.mx is not None and p.tf.name == tf_name for p in pairs)


def _tf_owner(graph, tf_records: dict, variable: str) -> str | None:
    """The TF record that reads a variable (through its read ops), or None."""
    op = graph.get_operation_by_name(variable)
    readers = list(op.outputs[0].consumers())
    seen = set()
    while readers:
        reader = readers.pop()
        if reader.name in seen:
            continue
        seen.add(reader.name)
        for record in tf_records.values():
            if any(part.name == reader.name for part in record.parts):
                return record.name
        if reader.type in _READ_OPS:
            readers.extend(reader.outputs[0].consumers())
    return None


def _mx_owner(mx_graph, index: dict, param: str) -> str | None:
    nodes = mx_graph.nodes
    position = next((i for i, entry in enumerate(nodes) if entry["name"] == param and entry["op"] == "null"), None)
    if position is None:
        return None
    for entry in index.values():
        if any(src == position for src, *_ in entry["inputs"]):
            for record in mx_graph.records:
                if any(part.name == entry["name"] for part in record.parts):
                    return record.name
            return entry["name"]
    return None


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) if shape else "--"


def _weight_transform(pair, source: _TfSource, tf_records, mx_records):
    """(transform name, keyword args, note) for a weight of a paired layer."""
    tf, mx = pair.tf, pair.mx
    if tf.kind == Kind.DWCONV:
        multiplier = int(source.tf_shape[3]) if source.tf_shape and len(source.tf_shape) == 4 else 1
        return "depthwise_to_mx", (("multiplier", multiplier),), ""
    if tf.kind == Kind.CONV:
        return "hwio_to_oihw", (), ""
    if tf.kind == Kind.FC:
        tf_flat = _flatten_geometry(tf_records, tf, "NHWC")
        mx_flat = _flatten_geometry(mx_records, mx, "NCHW")
        if tf_flat is not None and mx_flat is not None and tf_flat[0] * tf_flat[1] > 1:
            height, width, channels = tf_flat
            return ("flatten_dense_to_mx", (("height", height), ("width", width), ("channels", channels)),
                    f"reads an NHWC flatten of {height}x{width}x{channels}: rows reordered to NCHW (PITFALLS.md #7)")
        return "dense_to_mx", (), ""
    return "identity", (), ""


def _expected_shape(mapping: Mapping, source: _TfSource):
    if source.source == SOURCE_CONSTANT and mapping.role != "weight":
        value = source.constant
        if value.size == 1 or value.shape == tuple(mapping.mx_shape):
            return tuple(mapping.mx_shape)
        return None
    if source.tf_shape is None:
        return None
    shape = tuple(source.tf_shape)
    if mapping.pre_transpose:
        shape = shape[::-1]
    try:
        return layouts.shape_to_mx(mapping.transform, shape, **dict(mapping.transform_args))
    except layouts.LayoutError:
        return ("not " + mapping.transform,)


# ------------------------------------------------------------------ values

class CheckpointValues(MappingABC):
    """A TF checkpoint (slim/Saver name-based, or tf.train.Checkpoint object-based) as name -> array.

    Keys are TF variable names (``InceptionResnetV2/Conv2d_1a_3x3/weights``). For an
    object-based checkpoint the names come from the object graph's ``full_name``
    (the variable's name when it was saved). Values are read lazily.
    """

    def __init__(self, path: str | os.PathLike):
        tf = compat.import_tf()
        self.path = str(path)
        prefix = self.path
        if os.path.isdir(prefix):
            found = tf.train.latest_checkpoint(prefix)
            if found is None:
                raise FileNotFoundError(f"no TF checkpoint in directory {prefix}")
            prefix = found
        if not (os.path.exists(prefix + ".index") or os.path.exists(prefix)):
            raise FileNotFoundError(f"TF checkpoint {prefix!r} not found (expected {prefix}.index and data files)")
        try:
            self._reader = tf.train.load_checkpoint(prefix)
        except Exception as error:  # NotFoundError / DataLossError: say which file
            raise FileNotFoundError(f"cannot read TF checkpoint {prefix!r}: {error}") from error
        self.prefix = prefix
        shapes = self._reader.get_variable_to_shape_map()
        self._keys: dict[str, str] = {}
        if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes:
            from tensorflow.core.protobuf import trackable_object_graph_pb2

            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            graph.ParseFromString(self._reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
            for node in graph.nodes:
                for attribute in node.attributes:
                    if attribute.checkpoint_key in shapes:
                        name = attribute.full_name or attribute.checkpoint_key
                        self._keys[name] = attribute.checkpoint_key
        named = set(self._keys.values())
        for key in shapes:  # name-based (Saver, slim) entries, and object entries without a full name
            if key not in named and key not in self._keys:
                self._keys[key] = key
        self._keys = {name: key for name, key in self._keys.items()
                      if name not in _CHECKPOINT_BOOKKEEPING and key not in _CHECKPOINT_BOOKKEEPING}
        self._shapes = {name: _shape(shapes[key]) for name, key in self._keys.items()}

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def __getitem__(self, name: str) -> np.ndarray:
        value = np.asarray(self._reader.get_tensor(self._keys[name]))
        if value.dtype != np.float32 and np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        return value

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, name) -> bool:
        return name in self._keys


def _value_shape(values: MappingABC, name: str) -> tuple[int, ...]:
    if isinstance(values, CheckpointValues):
        return values.shape(name)
    return _shape(np.shape(values[name]))


def values_from_session(session, tf_graph, plan: TransferPlan) -> dict[str, np.ndarray]:
    """Current values of every TF variable the plan uses, read from a live session in one run."""
    fetches = {}
    for mapping in plan.mappings:
        if mapping.source == SOURCE_VARIABLE and mapping.tf_name not in fetches:
            fetches[mapping.tf_name] = tf_graph.graph.get_tensor_by_name(mapping.tf_tensor)
    return session.run(fetches) if fetches else {}


def assign_values(session, graph, values: MappingABC) -> None:
    """Set TF variables to values in one run (by feeding each variable's initializer).

    Variables not in the graph's variable collections get an assign op.
    """
    tf = compat.import_tf()
    by_name = {variable.op.name: variable
               for variable in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
               + graph.get_collection(tf.compat.v1.GraphKeys.LOCAL_VARIABLES)}
    ops, feed = [], {}
    for name in values:
        value = np.asarray(values[name])
        variable = by_name.get(name)
        if variable is not None and len(variable.initializer.inputs) > 1:
            ops.append(variable.initializer)
            feed[variable.initializer.inputs[1]] = value
            continue
        op = graph.get_operation_by_name(name)
        with graph.as_default():
            holder = tf.compat.v1.placeholder(op.get_attr("dtype"), value.shape, name=None)
            if op.type == "VarHandleOp":
                assign = tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=holder)
            else:
                assign = tf.compat.v1.assign(op.outputs[0], holder)
        ops.append(assign)
        feed[holder] = value
    if ops:
        session.run(ops, feed_dict=feed)


def seeded_values(plan: TransferPlan, seed: int = 0) -> dict[str, np.ndarray]:
    """Random values for every TF variable that exercise everything numeric parity checks.

    Conv/dense weights ~ He-uniform (std sqrt(2/fan_in)) so activations stay O(1) through depth;
    betas and biases ~ N(0, 0.1); gamma ~ U(0.5, 1.5); moving mean ~ N(0, 0.1); moving
    variance ~ U(0.5, 1.5). Each variable has its own stream seeded by (seed, name), so
    a value does not depend on which other variables exist.
    """
    roles = plan.roles()
    values = {}
    for name, shape in plan.tf_variables.items():
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])
        role, kind, mapping = roles.get(name, (None, None, None))
        if role == "weight":
            if mapping.pre_transpose:
                fan_in = int(shape[-1]) if len(shape) == 2 else 1
            elif kind == Kind.DWCONV:
                fan_in = int(np.prod(shape[:2]))
            else:
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            # He-uniform: U(-a, a) with a = sqrt(6 / fan_in), so std = sqrt(2 / fan_in) (twice as
            # fast to draw as a normal, which matters for 59M weights).
            value = rng.random(shape, dtype=np.float32)
            value -= np.float32(0.5)
            value *= np.float32(2.0 * np.sqrt(6.0 / max(fan_in, 1)))
            values[name] = value
        elif role in ("gamma", "moving_var"):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # beta, bias, moving_mean, and variables no parameter takes
            values[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
    return values


# ------------------------------------------------------------------ transfers

def _settle(report: TransferReport, problems: list[Problem], allow_missing, allow_unexpected) -> None:
    for problem in problems:
        patterns = allow_unexpected if problem.kind in ("unexpected", "lost") else allow_missing
        (report.allowed if _allowed(problem, patterns) else report.problems).append(problem)


def transfer(plan: TransferPlan, tf_values: MappingABC, *, allow_missing: Iterable[str] = (),
             allow_unexpected: Iterable[str] = (), strict: bool = True):
    """TF values -> MXNet ``(arg_params, aux_params, report)`` (numpy float32 arrays).

    Args:
        plan: from :func:`plan_transfer`.
        tf_values: TF variable name -> array (a dict, :class:`CheckpointValues`, or
            :func:`values_from_session`'s result). Entries that are no variable of
            the TF graph are listed as ``report.ignored``.
        allow_missing: patterns (see :func:`matches`) of MXNet parameters that may
            stay unset (also allows a shape mismatch on them).
        allow_unexpected: patterns of TF variables that may go unused.
        strict: raise :class:`WeightTransferError` when problems remain.

    Parameters that stay unset are absent from the returned dicts.
    """
    allow_missing, allow_unexpected = list(allow_missing), list(allow_unexpected)
    report = TransferReport("tf->mx", warnings=list(plan.warnings))
    problems = list(plan.problems)
    arg_params: dict[str, np.ndarray] = {}
    aux_params: dict[str, np.ndarray] = {}
    for mapping in plan.mappings:
        if mapping.source == SOURCE_VARIABLE:
            if mapping.tf_name not in tf_values:
                problems.append(Problem("missing", mapping.mx_name, f"the TF values have no {mapping.tf_name}",
                                        layer=mapping.layer, tf_name=mapping.tf_name, mx_name=mapping.mx_name,
                                        mx_shape=mapping.mx_shape))
                continue
            shape = _value_shape(tf_values, mapping.tf_name)
            if mapping.tf_shape is not None and shape != tuple(mapping.tf_shape):
                problems.append(Problem("mismatched", mapping.mx_name,
                                        f"the TF value of {mapping.tf_name} is {_fmt(shape)}, the graph's variable "
                                        f"{_fmt(mapping.tf_shape)}", layer=mapping.layer, tf_name=mapping.tf_name,
                                        mx_name=mapping.mx_name, tf_shape=shape, mx_shape=mapping.mx_shape))
                continue
        value = mapping.mx_value(tf_values)
        (aux_params if mapping.mx_kind == AUX else arg_params)[mapping.mx_name] = value
        report.set.append(mapping)
    report.ignored = sorted(name for name in tf_values if name not in plan.tf_variables)
    _settle(report, problems, allow_missing, allow_unexpected)
    if strict:
        report.raise_if_failed()
    return arg_params, aux_params, report


def reverse_transfer(plan: TransferPlan, arg_params: MappingABC, aux_params: MappingABC, *,
                     allow_missing: Iterable[str] = (), allow_unexpected: Iterable[str] = (),
                     strict: bool = True):
    """MXNet params -> ``(tf_values, report)``: the inverse layouts, by TF variable name.

    A value TF has no place for (a non-zero bias where TF has none, a gamma != 1 where
    TF's batch norm has no scale and MXNet's fix_gamma=False, a differing constant) is
    a *lost* problem; a TF variable no MXNet parameter provides is *missing*; an MXNet
    parameter the plan does not know is *unexpected*. Names given as ``arg:``/``aux:``
    (MXNet's saved form) are accepted.
    """
    allow_missing, allow_unexpected = list(allow_missing), list(allow_unexpected)
    mx_values = {}
    for source in (arg_params, aux_params):
        for name in source:
            value = source[name]
            value = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
            mx_values[name.split(":", 1)[1] if name.startswith(("arg:", "aux:")) else name] = value
    report = TransferReport("mx->tf", warnings=list(plan.warnings))
    problems: list[Problem] = [p for p in plan.problems if p.kind != "missing"]
    problems += [Problem("lost", p.name, f"MXNet parameter with no TF counterpart: {p.reason}", layer=p.layer,
                         mx_name=p.mx_name, mx_shape=p.mx_shape)
                 for p in plan.problems if p.kind == "missing" and p.mx_name in mx_values]
    tf_values: dict[str, np.ndarray] = {}
    known = set()
    for mapping in plan.mappings:
        known.add(mapping.mx_name)
        if mapping.mx_name not in mx_values:
            if mapping.source == SOURCE_VARIABLE:
                problems.append(Problem("missing", mapping.tf_name, f"the MXNet params have no {mapping.mx_name}",
                                        layer=mapping.layer, tf_name=mapping.tf_name, mx_name=mapping.mx_name,
                                        tf_shape=mapping.tf_shape))
            continue
        value = mx_values[mapping.mx_name]
        if tuple(value.shape) != tuple(mapping.mx_shape):
            problems.append(Problem("mismatched", mapping.tf_name or mapping.mx_name,
                                    f"MXNet value {_fmt(value.shape)}, the symbol expects {_fmt(mapping.mx_shape)}",
                                    layer=mapping.layer, tf_name=mapping.tf_name, mx_name=mapping.mx_name,
                                    tf_shape=mapping.tf_shape, mx_shape=tuple(value.shape)))
            continue
        if mapping.source == SOURCE_VARIABLE:
            tf_value = mapping.from_mx(value)
            if mapping.tf_name in tf_values and not np.array_equal(tf_values[mapping.tf_name], tf_value):
                problems.append(Problem("lost", mapping.mx_name, f"{mapping.tf_name} is shared in TF but the "
                                        "MXNet copies differ", layer=mapping.layer, tf_name=mapping.tf_name,
                                        mx_name=mapping.mx_name))
                continue
            tf_values[mapping.tf_name] = tf_value
            report.set.append(mapping)
            continue
        expected = mapping.mx_value()
        if np.array_equal(value, expected):
            continue
        if mapping.role == "gamma" and mapping.mx_layer in plan.fix_gamma_layers:
            report.warnings.append(f"{mapping.mx_name} is not 1, but fix_gamma=True makes MXNet ignore it; "
                                   "TF's batch norm has no scale, so nothing is lost")
        else:
            worst = float(np.max(np.abs(value.astype(np.float64) - expected)))
            problems.append(Problem("lost", mapping.mx_name,
                                    f"TF holds {mapping.note.split(':')[0] if mapping.note else 'a constant'} here "
                                    f"({mapping.source}); the MXNet value differs by up to {worst:.3g} and would be "
                                    "lost", layer=mapping.layer, mx_name=mapping.mx_name, mx_shape=mapping.mx_shape))
    for name in sorted(mx_values):
        if name not in known and name in plan.mx_params:
            continue  # a plan problem already names it
        if name not in known:
            problems.append(Problem("unexpected", name, "the MXNet params have it, the symbol does not",
                                    mx_name=name, mx_shape=_shape(mx_values[name].shape)))
    _settle(report, problems, allow_missing, allow_unexpected)
    if strict:
        report.raise_if_failed()
    return tf_values, report


def write_tf_checkpoint(tf_graph, values: MappingABC, path: str | os.PathLike) -> str:
    """Save values into a TF checkpoint with TF's own ``Saver``; returns the prefix written.

    Only the variables given are saved (a variable with no value is never written
    with its initializer's value). Keys are the TF variable names, as slim's.
    """
    tf = compat.import_tf()
    graph = tf_graph.graph
    by_name = {variable.op.name: variable
               for variable in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)}
    unknown = [name for name in values if name not in by_name]
    if unknown:
        raise WeightTransferError(f"{len(unknown)} values name no variable of the TF graph: {', '.join(unknown[:10])}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with graph.as_default():
        saver = tf.compat.v1.train.Saver({name: by_name[name] for name in values}, write_version=2,
                                         save_relative_paths=True)
    with tf.compat.v1.Session(graph=graph) as session:
        assign_values(session, graph, values)
        return saver.save(session, str(path), write_meta_graph=False)


__all__ = ["Mapping", "Problem", "TransferPlan", "TransferReport", "WeightTransferError", "CheckpointValues",
           "plan_transfer", "transfer", "reverse_transfer", "seeded_values", "assign_values",
           "values_from_session", "write_tf_checkpoint", "mx_parameters", "tf_variables", "matches"]
