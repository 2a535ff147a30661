"""What every lint check shares: severities, the ``Finding`` record, options, the context, the registries.

Checks are small functions in two registries: ``PAIR_CHECKS`` (one call per matched pair:
``check(pair, context) -> list[Finding]``) and ``NETWORK_CHECKS`` (one call per comparison:
``check(context) -> list[Finding]``); ``@pair_check`` / ``@network_check`` register them,
and registering a name twice is an error. The helpers below read the parts of folded
records and MXNet variables the way every check family needs them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable

from porting.core.records import LayerRecord
from porting.frameworks import mx_attrs


class Severity(StrEnum):
    """How much a finding matters; ``error`` fails the comparison."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_ORDER = (Severity.ERROR, Severity.WARNING, Severity.INFO)
SEVERITY_MEANING = {
    Severity.ERROR: "the port is wrong: inference outputs differ, or a setting is inverted outright",
    Severity.WARNING: "only training differs",
    Severity.INFO: "nothing computed differs; worth knowing",
}


@dataclass(frozen=True)
class Finding:
    """One semantic difference (or noteworthy fact) about one layer.

    Attributes:
        layer: the TF layer's name (the MXNet one when TF has none).
        check: the check that found it (a key of ``CHECKS``).
        severity: a ``Severity``.
        tf, mx: the setting on each side, as short text ('keep_prob 0.8', 'p 0.8').
        message: why it matters, with the arithmetic.
        fix: what to change in the port, as concrete MXNet arguments.
        file, line: the source location, for findings about source text.
        mx_layer: the MXNet layer's name when it differs from ``layer``.
    """

    layer: str
    check: str
    severity: Severity
    tf: str
    mx: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None
    mx_layer: str | None = None

    def as_dict(self) -> dict:
        data = {"layer": self.layer, "check": self.check, "severity": str(self.severity), "tf": self.tf,
                "mx": self.mx, "message": self.message, "fix": self.fix}
        if self.file is not None:
            data["file"] = self.file
            data["line"] = self.line
        if self.mx_layer is not None:
            data["mx_layer"] = self.mx_layer
        return data

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


# ------------------------------------------------------------------------ context

@dataclass
class Options:
    """Settings of one lint run.

    Attributes:
        nominal_size: the input size (int or (H, W)) the TF source's shape
            comments describe; None: read it from the builder's module
            (``DEFAULT_IMAGE_SIZE`` or a function's ``default_image_size``, slim's
            convention) or from the registered model.
        shape_comments: check the TF source's shape comments at all.
        rel_tol: relative tolerance for float hyperparameters (TF stores eps in float32).
    """

    nominal_size: int | tuple[int, int] | None = None
    shape_comments: bool = True
    rel_tol: float = 1e-5


@dataclass
class Context:
    """What the checks may read: the comparison, lookups over both graphs, options."""

    result: object
    options: Options
    tf_by_name: dict = field(default_factory=dict)
    mx_by_name: dict = field(default_factory=dict)
    tf_consumers: dict = field(default_factory=dict)
    mx_consumers: dict = field(default_factory=dict)
    tf_to_mx: dict = field(default_factory=dict)  # TF record name -> MX record
    mx_to_tf: dict = field(default_factory=dict)
    mx_nodes: dict = field(default_factory=dict)  # MX node name -> JSON entry
    mx_entries: list = field(default_factory=list)
    not_visible: dict = field(default_factory=dict)  # check -> [layer names]

    @property
    def tf_graph(self):
        return getattr(self.result, "tf_graph", None)

    @property
    def mx_graph(self):
        return getattr(self.result, "mx_graph", None)

    @property
    def training(self) -> bool | None:
        """Whether the TF graph was built in training mode (None: the builder has no switch)."""
        return getattr(self.tf_graph, "is_training", None)

    def mx_entry(self, name: str) -> dict | None:
        return self.mx_nodes.get(name)

    def mx_input_entry(self, name: str, index: int) -> dict | None:
        """The JSON entry of input ``index`` of MX node ``name`` (its weight, bias, gamma...)."""
        entry = self.mx_nodes.get(name)
        if entry is None or len(entry.get("inputs", [])) <= index:
            return None
        return self.mx_entries[entry["inputs"][index][0]]

    def mark_not_visible(self, check: str, layer: str) -> None:
        self.not_visible.setdefault(check, []).append(layer)

    def close(self, a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=self.options.rel_tol, abs_tol=1e-12)


def build_context(result, options: Options) -> Context:
    """The lookups every check reads, built once per lint run."""
    context = Context(result, options)
    tf_graph, mx_graph = context.tf_graph, context.mx_graph
    for records, by_name, consumers in ((getattr(tf_graph, "records", []), context.tf_by_name, context.tf_consumers),
                                        (getattr(mx_graph, "records", []), context.mx_by_name, context.mx_consumers)):
        for record in records:
            by_name[record.name] = record
            for name in record.inputs:
                consumers.setdefault(name, []).append(record.name)
    for pair in getattr(result, "pairs", []) or []:
        if pair.tf is not None and pair.mx is not None:
            context.tf_to_mx[pair.tf.name] = pair.mx
            context.mx_to_tf[pair.mx.name] = pair.tf
    context.mx_entries = list(getattr(mx_graph, "nodes", []) or [])
    for entry in context.mx_entries:
        context.mx_nodes.setdefault(entry["name"], entry)
    return context


# ----------------------------------------------------------------------- registry

PairCheck = Callable[[object, Context], list]
NetworkCheck = Callable[[Context], list]

#: Every check: name -> one-line description (``checks_markdown()`` renders the README table from it).
CHECKS: dict[str, str] = {}
PAIR_CHECKS: dict[str, PairCheck] = {}
NETWORK_CHECKS: dict[str, NetworkCheck] = {}


def _register(table: dict, name: str, description: str):
    def decorate(function):
        if name in CHECKS:
            raise ValueError(f"lint check {name!r} is registered twice")
        CHECKS[name] = description
        table[name] = function
        function.check_name = name
        return function

    return decorate


def pair_check(name: str, description: str):
    """Register ``function(pair, context) -> list[Finding]``, called for every matched pair."""
    return _register(PAIR_CHECKS, name, description)


def network_check(name: str, description: str):
    """Register ``function(context) -> list[Finding]``, called once per comparison."""
    return _register(NETWORK_CHECKS, name, description)


# ------------------------------------------------------------------------ helpers

def make_finding(check: str, severity: Severity, tf_record: LayerRecord | None, mx_record: LayerRecord | None,
                 tf: str, mx: str, message: str, fix: str, **extra) -> Finding:
    """A finding about a pair: named after the TF layer, the MXNet name kept when it differs."""
    layer = tf_record.name if tf_record is not None else mx_record.name if mx_record is not None else "--"
    mx_layer = mx_record.name if mx_record is not None and mx_record.name != layer else None
    return Finding(layer, check, severity, tf, mx, message, fix, mx_layer=mx_layer, **extra)


def num(value) -> str:
    """A float the way a person writes it: 0.001, 0.9997, 1e-05."""
    if value is None:
        return "--"
    if isinstance(value, float):
        return f"{float(f'{value:.7g}'):g}"
    return str(value)


def part_attrs(record: LayerRecord, kind: str) -> dict | None:
    """The attributes of a record's part of ``kind`` (the record itself or a folded part), or None."""
    if record.kind == kind:
        return {key: value for key, value in record.attrs.items() if "." not in key}
    if record.part(kind) is None:
        return None
    prefix = f"{kind}."
    return {key[len(prefix):]: value for key, value in record.attrs.items() if key.startswith(prefix)}


def part_name(record: LayerRecord, kind: str) -> str | None:
    part = record.part(kind)
    return part.name if part is not None else None


def variable_frozen(entry: dict | None) -> bool:
    """Whether an MX variable is declared not trainable (lr_mult 0)."""
    if entry is None:
        return False
    attrs = mx_attrs.attrs_of(entry)
    return mx_attrs.as_float(attrs.get("__lr_mult__", attrs.get("lr_mult"))) == 0.0


def variable_zero_init(entry: dict | None) -> bool:
    """Whether an MX variable is declared zero-initialised."""
    return "zero" in str(mx_attrs.attrs_of(entry).get("__init__", "")).lower()
