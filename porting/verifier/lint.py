"""Semantic lint: the hyperparameters that decide the numbers, for every matched layer pair.

Two networks can agree on every shape and still compute different things: a
batch norm with another epsilon, a dropout with the keep probability where the
drop probability belongs, an average pool that counts padded cells. This pass
looks at every matched pair of layer records (``porting.core.match.Pair``) and at the
network as a whole, and reports each difference as a ``Finding`` with a
severity, an explanation and the fix (see ../shared/PITFALLS.md for the
semantics and the measured magnitudes).

Severities:
  * ``error``: inference outputs differ (or the port cannot load the TF weights).
    One exception, asked for by name: a dropout whose MXNet ``p`` is TF's
    ``keep_prob`` (the inverted convention) is an error although inference is
    the same; any other dropout-rate difference is a warning.
  * ``warning``: only training differs (momentum, dropout rate, frozen or
    trainable parameters, the auxiliary head).
  * ``info``: nothing computed differs, but something is worth knowing (a
    setting the graph does not show, a background class, a wrong shape comment).

Checks are small functions in two registries: ``PAIR_CHECKS`` (one call per
matched pair: ``check(pair, context) -> list[Finding]``) and
``NETWORK_CHECKS`` (one call per comparison: ``check(context) -> list[Finding]``).
``apply(result)`` runs them all, sets ``result.findings`` and registers the
findings table on ``result.section_renderers``; ``porting.compare.verify``
calls it.
"""
from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import math
import os
import re
import sys
import sysconfig
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Callable

from tabulate import tabulate

from porting.padding import mx_output_size
from porting.core.records import Kind, LayerRecord, format_shape


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

    def bug_report(self, result=None) -> str:
        """One Markdown bug report for this finding."""
        title = getattr(result, "title", "")
        lines = [f"# Port lint {self.severity}: {self.check} at {self.layer}", "",
                 f"Found by the lint pass of `porting compare`{f' ({title})' if title else ''}. "
                 f"Severity **{self.severity}**: {SEVERITY_MEANING[self.severity]}.", "",
                 "| | TF | MXNet |", "|---|---|---|",
                 f"| layer | {_md(self.layer)} | {_md(self.mx_layer or self.layer)} |",
                 f"| setting | {_md(self.tf)} | {_md(self.mx)} |", "",
                 "## Why", "", self.message, "", "## Fix", "", self.fix or "--", ""]
        if self.file is not None:
            lines += ["## Where", "", f"`{self.location}`", ""]
            source = _source_line(self.file, self.line)
            if source:
                lines += ["```python", source, "```", ""]
        return "\n".join(lines)


def _md(text) -> str:
    return str(text if text not in (None, "") else "--").replace("|", "\\|")


def _source_line(file: str, line: int | None) -> str:
    if line is None:
        return ""
    try:
        return Path(file).read_text().splitlines()[line - 1].rstrip()
    except (OSError, IndexError):
        return ""


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


def _build_context(result, options: Options) -> Context:
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


def _finding(check: str, severity: Severity, tf_record: LayerRecord | None, mx_record: LayerRecord | None,
             tf: str, mx: str, message: str, fix: str, **extra) -> Finding:
    layer = tf_record.name if tf_record is not None else mx_record.name if mx_record is not None else "--"
    mx_layer = mx_record.name if mx_record is not None and mx_record.name != layer else None
    return Finding(layer, check, severity, tf, mx, message, fix, mx_layer=mx_layer, **extra)


def _g(value) -> str:
    """A float the way a person writes it: 0.001, 0.9997, 1e-05."""
    if value is None:
        return "--"
    if isinstance(value, float):
        return f"{float(f'{value:.7g}'):g}"
    return str(value)


# ----------------------------------------------------------- folded-part helpers

def _part_attrs(record: LayerRecord, kind: str) -> dict | None:
    """The attributes of a record's part of ``kind`` (the record itself or a folded part), or None."""
    if record.kind == kind:
        return {key: value for key, value in record.attrs.items() if "." not in key}
    if record.part(kind) is None:
        return None
    prefix = f"{kind}."
    return {key[len(prefix):]: value for key, value in record.attrs.items() if key.startswith(prefix)}


def _part_name(record: LayerRecord, kind: str) -> str | None:
    part = record.part(kind)
    return part.name if part is not None else None


def _flag(value) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _variable_frozen(entry: dict | None) -> bool:
    """Whether an MX variable is declared not trainable (lr_mult 0)."""
    if entry is None:
        return False
    attrs = entry.get("attrs", {}) or {}
    value = attrs.get("__lr_mult__", attrs.get("lr_mult"))
    return _number(value) == 0.0


def _variable_zero_init(entry: dict | None) -> bool:
    attrs = (entry or {}).get("attrs", {}) or {}
    return "zero" in str(attrs.get("__init__", "")).lower()


# ------------------------------------------------------------------------ dropout

@pair_check("dropout", "TF keep probability vs MXNet drop probability p (keep 0.8 <=> p 0.2); mode='always'")
def check_dropout(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.DROPOUT or mx.kind != Kind.DROPOUT:
        return []
    findings = []
    p = _number(mx.attrs.get("p"))
    mode = str(mx.attrs.get("mode", "training"))
    if mode == "always":
        findings.append(_finding(
            "dropout", Severity.ERROR, tf, mx, "dropout in training only", f"mode='always' (p {_g(p)})",
            "MXNet Dropout(mode='always') drops activations at inference too; TF's slim.dropout is the "
            "identity when is_training=False, so every inference output differs.",
            "use mx.sym.Dropout(..., mode='training') (the default)"))
    keep = tf.attrs.get("keep_prob")
    if not tf.attrs.get("visible", keep is not None) or keep is None:
        context.mark_not_visible("dropout", tf.name)
        return findings
    if p is None:
        return findings
    expected = 1.0 - keep
    if context.close(p, expected) or abs(p - expected) < 1e-6:
        return findings
    inverted = abs(p - keep) < 1e-6
    message = (f"TF keeps {_g(keep)} of the activations (keep_prob {_g(keep)}); MXNet's p is the DROP "
               f"probability, so p={_g(p)} keeps {_g(1 - p)}. Inference is unaffected (dropout is the "
               "identity there), training is not")
    if inverted:
        message += (": p was set to TF's keep_prob, the inverted convention (PITFALLS #6), so training drops "
                    f"{_g(p):s} instead of {_g(expected)} of the features")
    findings.append(_finding("dropout", Severity.ERROR if inverted else Severity.WARNING, tf, mx,
                             f"keep_prob {_g(keep)}", f"p {_g(p)}", message + ".",
                             f"mx.sym.Dropout(..., p={_g(expected)})  # p = 1 - keep_prob"))
    return findings


# --------------------------------------------------------------------- batch norm

def _bn_sides(pair):
    return _part_attrs(pair.tf, Kind.BN), _part_attrs(pair.mx, Kind.BN)


@pair_check("batch_norm", "batch norm present on one side only; MXNet BatchNorm axis must be 1 (channels, NCHW)")
def check_batch_norm(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    tf, mx = pair.tf, pair.mx
    if tf_bn is not None and mx_bn is None:
        return [_finding("batch_norm", Severity.ERROR, tf, mx, "batch norm", "none",
                         f"TF normalizes the output of {tf.name} (slim's normalizer_fn=slim.batch_norm); the MXNet "
                         f"layer {mx.name} has no BatchNorm, so every output after it differs.",
                         f"add mx.sym.BatchNorm(..., eps={_g(tf_bn.get('eps'))}, "
                         f"momentum={_g(tf_bn.get('momentum') or 0.999)}, fix_gamma={not tf_bn.get('scale', False)}) "
                         f"after {mx.name}")]
    if tf_bn is None and mx_bn is not None:
        return [_finding("batch_norm", Severity.ERROR, tf, mx, "none", "batch norm",
                         f"the MXNet port normalizes the output of {mx.name}; TF does not (e.g. slim.conv2d with "
                         "normalizer_fn=None, like a residual up-projection).",
                         f"remove the BatchNorm after {mx.name}")]
    if mx_bn is not None and int(mx_bn.get("axis", 1)) not in (1, -3):
        return [_finding("batch_norm", Severity.ERROR, tf, mx, "channels (NHWC axis 3)", f"axis {mx_bn.get('axis')}",
                         "MXNet's BatchNorm normalizes per index of `axis`; on NCHW data the channels are axis 1.",
                         "mx.sym.BatchNorm(..., axis=1)")]
    return []


@pair_check("bn_eps", "batch-norm epsilon (slim 0.001; resnet_arg_scope 1e-5)")
def check_bn_eps(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    a, b = _number(tf_bn.get("eps")), _number(mx_bn.get("eps"))
    if a is None or b is None or context.close(a, b):
        return []
    return [_finding("bn_eps", Severity.ERROR, pair.tf, pair.mx, f"epsilon {_g(a)}", f"eps {_g(b)}",
                     f"the variance is offset by epsilon before the square root: {_g(a)} in TF, {_g(b)} in MXNet "
                     "(1e-5 instead of 1e-3 gave 5e-3 max abs diff per layer on unit-variance data).",
                     f"mx.sym.BatchNorm(..., eps={_g(a)})")]


@pair_check("bn_momentum", "batch-norm moving-average decay (TF) vs momentum (MXNet)")
def check_bn_momentum(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    decay, momentum = _number(tf_bn.get("momentum")), _number(mx_bn.get("momentum"))
    if decay is None:
        context.mark_not_visible("bn_momentum", pair.tf.name)
        return []
    if momentum is None or context.close(decay, momentum):
        return []
    return [_finding("bn_momentum", Severity.WARNING, pair.tf, pair.mx, f"decay {_g(decay)}",
                     f"momentum {_g(momentum)}",
                     "both update moving = moving * m + batch * (1 - m); with a different m the moving statistics "
                     "learned in training differ (inference with converted statistics is unaffected).",
                     f"mx.sym.BatchNorm(..., momentum={_g(decay)})")]


@pair_check("bn_gamma", "TF scale (learned gamma) vs MXNet fix_gamma: fix_gamma must be not scale")
def check_bn_gamma(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    scale = bool(tf_bn.get("scale", False))
    fix_gamma = _flag(mx_bn.get("fix_gamma"))
    if fix_gamma is None or fix_gamma == (not scale):
        return []
    if scale:
        message = ("TF learns a gamma (scale=True: Keras, slim ResNet); MXNet's fix_gamma=True forces gamma to 1 in "
                   "the forward pass even when a gamma is loaded (2.07 max abs diff measured), so the loaded "
                   "TF gamma is silently ignored.")
    else:
        message = ("TF has no gamma (slim.batch_norm scale=False: gamma is 1); MXNet's fix_gamma=False uses the "
                   "`_gamma` argument, which is not in the TF checkpoint: it is trained (and initialised to 1 only if "
                   "the initializer does so), so outputs differ as soon as it is not exactly 1.")
    return [_finding("bn_gamma", Severity.ERROR, pair.tf, pair.mx, f"scale={scale}", f"fix_gamma={fix_gamma}",
                     message, f"mx.sym.BatchNorm(..., fix_gamma={not scale})")]


@pair_check("bn_beta", "TF center (beta) vs a trainable or frozen MXNet beta")
def check_bn_beta(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    center = bool(tf_bn.get("center", True))
    bn_name = _part_name(pair.mx, Kind.BN) or pair.mx.name
    beta = context.mx_input_entry(bn_name, 2)
    frozen = _variable_frozen(beta)
    if center and frozen:
        return [_finding("bn_beta", Severity.WARNING, pair.tf, pair.mx, "center=True (beta learned)",
                         "beta lr_mult=0", "TF learns beta; the MXNet beta is frozen, so fine-tuning differs "
                         "(inference with the converted beta is unaffected).",
                         f"remove lr_mult=0 from {beta['name'] if beta else 'the beta variable'}")]
    if not center and not frozen:
        return [_finding("bn_beta", Severity.WARNING, pair.tf, pair.mx, "center=False (no beta)", "beta trainable",
                         "TF has no beta (center=False, offset 0); MXNet's BatchNorm always has a `_beta`. Loaded as "
                         "zeros it is exact at inference, but training moves it away from 0.",
                         "declare the beta frozen at zero: mx.sym.Variable('<bn>_beta', lr_mult=0, wd_mult=0, "
                         "init=mx.init.Zero()) passed as beta=")]
    return []


@pair_check("bn_moving_stats", "moving mean/variance present (MXNet auxiliary states), use_global_stats")
def check_bn_moving_stats(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    findings = []
    bn_name = _part_name(pair.mx, Kind.BN) or pair.mx.name
    aux_names = [entry["name"] for entry in (context.mx_input_entry(bn_name, 3), context.mx_input_entry(bn_name, 4))
                 if entry is not None]
    aux_states = set(getattr(context.mx_graph, "aux_shapes", {}) or {})
    mx_has = len(aux_names) == 2 and (not aux_states or all(name in aux_states for name in aux_names))
    tf_has = tf_bn.get("has_moving_stats")
    if tf_has is False and mx_has:
        findings.append(_finding(
            "bn_moving_stats", Severity.ERROR, pair.tf, pair.mx, "batch statistics only (no moving mean/variance)",
            "moving_mean/moving_var aux states",
            "TF normalizes with the statistics of the current batch, even at inference; MXNet's BatchNorm uses its "
            "moving statistics whenever is_train=False, so inference outputs differ.",
            "mx.sym.BatchNorm(..., use_global_stats=False) and run the MXNet forward with is_train=True for this "
            "layer, or give the TF layer moving statistics (slim.batch_norm)"))
    elif tf_has and not mx_has:
        findings.append(_finding(
            "bn_moving_stats", Severity.ERROR, pair.tf, pair.mx, "moving_mean, moving_variance", "no aux states",
            f"TF's moving statistics have no MXNet auxiliary state to load into (expected {bn_name}_moving_mean and "
            f"{bn_name}_moving_var in list_auxiliary_states()); left at 0/1 the normalization is wrong.",
            "use mx.sym.BatchNorm, whose moving_mean/moving_var are auxiliary states, and load them as aux params"))
    if _flag(mx_bn.get("use_global_stats")) and context.training and tf_bn.get("is_training", True):
        findings.append(_finding(
            "bn_moving_stats", Severity.WARNING, pair.tf, pair.mx, "batch statistics in training",
            "use_global_stats=True",
            "in training TF normalizes with batch statistics and updates the moving ones; MXNet's "
            "use_global_stats=True freezes the layer to its moving statistics (inference is the same).",
            "mx.sym.BatchNorm(..., use_global_stats=False) unless the freeze is intended"))
    return findings


# -------------------------------------------------------------- conv / fc layers

def _bias_side(record: LayerRecord) -> bool:
    return bool(record.attrs.get("has_bias")) or record.part(Kind.BIAS) is not None


@pair_check("conv_bias", "a conv/FC bias on one side only (slim convs with batch norm have none)")
def check_conv_bias(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind not in (Kind.CONV, Kind.DWCONV, Kind.FC) or mx.kind not in (Kind.CONV, Kind.DWCONV, Kind.FC):
        return []
    tf_bias, mx_bias = _bias_side(tf), _bias_side(mx)
    if tf_bias == mx_bias:
        return []
    op = "FullyConnected" if mx.kind == Kind.FC else "Convolution"
    if tf_bias:
        return [_finding("conv_bias", Severity.ERROR, tf, mx, "bias", f"no_bias=True",
                         f"TF adds a bias after {tf.name}; the MXNet {op} has none, so the TF bias cannot be loaded "
                         "and every output is off by it.", f"mx.sym.{op}(..., no_bias=False)")]
    bias = context.mx_input_entry(mx.name, 2)
    name = bias["name"] if bias else f"{mx.name}_bias"
    if _variable_frozen(bias):
        zero = _variable_zero_init(bias)
        return [_finding("conv_bias", Severity.INFO, tf, mx, "no bias",
                         "bias, lr_mult=0" + (", zero init" if zero else ""),
                         f"TF has no bias here (slim.conv2d with a normalizer_fn creates none); the MXNet {name} is "
                         "declared frozen" + (" and zero-initialised, so it adds nothing." if zero else
                                              ": it must be loaded as zeros (the TF checkpoint has no value for it)."),
                         "no change needed" if zero else f"load {name} as zeros, or use no_bias=True")]
    return [_finding("conv_bias", Severity.ERROR, tf, mx, "no bias", "bias (no_bias=False)",
                     f"TF has no bias here (slim.conv2d with a normalizer_fn creates none); MXNet's {op} creates "
                     f"{name} by default. It has no TF source: loading fails with allow_missing=False, or it keeps a "
                     "random/trained value; nothing declares it frozen at zero.",
                     f"mx.sym.{op}(..., no_bias=True), or declare it: mx.sym.Variable('{name}', lr_mult=0, "
                     "init=mx.init.Zero()) passed as bias=")]


def _act_of(record: LayerRecord) -> tuple[str | None, float | None]:
    attrs = _part_attrs(record, Kind.ACT)
    if attrs is None:
        return None, None
    return attrs.get("act"), _number(attrs.get("alpha"))


_ACT_FIX = {"relu": "mx.sym.Activation(..., act_type='relu')", "relu6": "mx.sym.clip(..., a_min=0, a_max=6)",
            "sigmoid": "mx.sym.Activation(..., act_type='sigmoid')", "tanh": "mx.sym.Activation(..., act_type='tanh')",
            "elu": "mx.sym.LeakyReLU(..., act_type='elu', slope=1.0)",
            "softrelu": "mx.sym.Activation(..., act_type='softrelu')",
            "softsign": "mx.sym.Activation(..., act_type='softsign')", "selu": "mx.sym.LeakyReLU(..., act_type='selu')"}


@pair_check("activation", "activation present/absent/different (slim's implicit ReLU, relu6 vs clip, leaky slope)")
def check_activation(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if not ({tf.kind, mx.kind} & {Kind.CONV, Kind.DWCONV, Kind.FC, Kind.ACT}):
        return []
    (tf_act, tf_alpha), (mx_act, mx_alpha) = _act_of(tf), _act_of(mx)
    if tf_act == mx_act and (tf_act != "leaky_relu" or context.close(tf_alpha, mx_alpha)):
        return []
    slim_layer = tf.kind in (Kind.CONV, Kind.DWCONV, Kind.FC)
    if tf_act and not mx_act:
        message = (f"TF applies {tf_act} after {tf.name}"
                   + (" (slim.conv2d and slim.fully_connected default to activation_fn=tf.nn.relu)"
                      if slim_layer else "")
                   + f"; the MXNet {mx.op} is linear, so every negative value differs.")
        fix = f"add {_ACT_FIX.get(tf_act, tf_act)} after {mx.name}"
    elif mx_act and not tf_act:
        message = (f"the MXNet port applies {mx_act} after {mx.name}; TF's layer is linear "
                   "(activation_fn=None, as in slim's residual up-projections and logits).")
        fix = f"remove the activation after {mx.name}"
    elif tf_act == "leaky_relu" and mx_act == "leaky_relu":
        message = (f"leaky ReLU slopes differ: TF alpha {_g(tf_alpha)}, MXNet slope {_g(mx_alpha)} "
                   "(defaults: tf.nn 0.2, Keras 0.3, MXNet 0.25).")
        fix = f"mx.sym.LeakyReLU(..., act_type='leaky', slope={_g(tf_alpha)})"
    else:
        message = f"TF applies {tf_act}, MXNet {mx_act}" + (
            ": MXNet's Activation has no relu6; use clip(x, 0, 6)." if "relu6" in (tf_act, mx_act) else ".")
        fix = _ACT_FIX.get(tf_act, f"use {tf_act}")
    return [_finding("activation", Severity.ERROR, tf, mx, tf_act or "none (linear)", mx_act or "none (linear)",
                     message, fix)]


@pair_check("dilation", "convolution dilation (atrous rate)")
def check_dilation(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind not in (Kind.CONV, Kind.DWCONV) or mx.kind not in (Kind.CONV, Kind.DWCONV):
        return []
    a, b = tuple(tf.dilation or (1, 1)), tuple(mx.dilation or (1, 1))
    if a == b:
        return []
    return [_finding("dilation", Severity.ERROR, tf, mx, f"rate {a}", f"dilate {b}",
                     "the kernel taps are spaced by the dilation; with another one each output reads other input "
                     "cells (and SAME pads change with it).",
                     f"mx.sym.Convolution(..., dilate={a}) with pads recomputed for the dilated span")]


# ------------------------------------------------------------------------ pooling

def _mx_pool_geometry(context: Context, record: LayerRecord) -> dict | None:
    """The MX Pooling node's own kernel, stride, symmetric pad, convention and input size (after a folded pad)."""
    part = record.part(record.kind) if record.kind in (Kind.POOL_AVG, Kind.POOL_MAX) else None
    entry = context.mx_entry(part.name) if part is not None else None
    if entry is None or entry.get("op") != "Pooling" or record.in_shape is None or len(record.in_shape) != 4:
        return None
    attrs = entry.get("attrs", {}) or {}

    def pair_of(key, default):
        value = attrs.get(key)
        if value is None:
            return default
        parsed = ast.literal_eval(value)
        parsed = (parsed,) * 2 if isinstance(parsed, int) else tuple(parsed)
        return parsed or default

    size = list(record.in_shape[2:4])
    pad_part = record.part(Kind.PAD)
    if pad_part is not None:  # the Pooling reads the output of the folded pad op
        pad_entry = context.mx_entry(pad_part.name) or {}
        width = ast.literal_eval((pad_entry.get("attrs", {}) or {}).get("pad_width", "(0, 0, 0, 0, 0, 0, 0, 0)"))
        if len(width) == 8:
            size = [size[0] + width[4] + width[5], size[1] + width[6] + width[7]]
    return {"kernel": pair_of("kernel", (1, 1)), "stride": pair_of("stride", (1, 1)), "pad": pair_of("pad", (0, 0)),
            "convention": attrs.get("pooling_convention", "valid"), "size": tuple(size),
            "global": _flag(attrs.get("global_pool")) or False,
            "count_include_pad": _flag(attrs.get("count_include_pad"))}


@pair_check("avg_pool_padding", "average pooling over padded cells must not count them (count_include_pad=False)")
def check_avg_pool_padding(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.POOL_AVG or mx.kind != Kind.POOL_AVG:
        return []
    tf_pad_part = tf.part(Kind.PAD)
    tf_counts = tf_pad_part is not None and any(tf.pads or ())
    mx_counts, how = False, ""
    if mx.part(Kind.PAD) is not None and any(mx.pads or ()):
        mx_counts, how = True, "an explicit mx.sym.pad before the Pooling (its zeros are data, counted whatever " \
                               "count_include_pad says)"
    else:
        geometry = _mx_pool_geometry(context, mx)
        sym_pad = geometry["pad"] if geometry else (mx.pads[0], mx.pads[2]) if mx.pads else (0, 0)
        include = mx.attrs.get("count_include_pad", True)
        if geometry and geometry["global"]:
            sym_pad = (0, 0)
        if any(sym_pad) and include is not False:
            mx_counts, how = True, f"pad={tuple(sym_pad)} with count_include_pad={include} (MXNet's default is True)"
    if tf_counts == mx_counts:
        return []
    if mx_counts:
        message = (f"TF's {tf.attrs.get('padding', 'SAME')} average pool divides by the number of real cells in "
                   f"each window; the MXNet port pads with {how}, so border outputs are divided by k*k and shrink "
                   "(0.577 max abs diff measured for 35x35 3x3 stride 1).")
        fix = ("mx.sym.Pooling(..., pool_type='avg', pad=<TF before-pad>, count_include_pad=False)"
               + ("; drop the explicit pad op (use pooling_convention='full' or the masked average for asymmetric "
                  "pads)" if mx.part(Kind.PAD) is not None else ""))
        return [_finding("avg_pool_padding", Severity.ERROR, tf, mx, "padded cells not counted",
                         "padded cells counted", message, fix)]
    return [_finding("avg_pool_padding", Severity.ERROR, tf, mx, "explicit zero pad: zeros counted",
                     "padded cells not counted",
                     "TF pads explicitly with zeros before a VALID average pool, so the zeros are averaged; the "
                     "MXNet port excludes padded cells from the count.",
                     "pad explicitly with mx.sym.pad(mode='constant') before the Pooling, or count_include_pad=True")]


@pair_check("max_pool_padding", "max pooling over padded cells must pad with -inf (an explicit pad op with 0 is wrong)")
def check_max_pool_padding(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.POOL_MAX or mx.kind != Kind.POOL_MAX:
        return []

    def pad_value(record: LayerRecord) -> float | None:
        part = record.part(Kind.PAD)
        if part is None or not any(record.pads or ()):
            return None  # only the op's own pad: ignored cells, i.e. -inf
        return _number(record.attrs.get("pad.pad_value", 0.0))

    a, b = pad_value(tf), pad_value(mx)
    a_eff = float("-inf") if a is None else a
    b_eff = float("-inf") if b is None else b
    if a_eff == b_eff:
        return []
    return [_finding("max_pool_padding", Severity.ERROR, tf, mx, f"pads act as {_g(a_eff)}", f"pads are {_g(b_eff)}",
                     "TF's max pool ignores padded cells (equivalent to -inf); an explicit pad with "
                     f"{_g(b_eff)} wins the max wherever the activations near the border are below it "
                     "(1.6-2.6 max abs diff measured on negative inputs, e.g. pooling after batch norm).",
                     "mx.sym.pad(..., mode='constant', constant_value=-np.inf) before the Pooling, or "
                     "pooling_convention='full' with pad=<TF before-pad>")]


@pair_check("pooling_convention", "MXNet pooling_convention (floor 'valid' / ceil 'full') must give TF's output size")
def check_pooling_convention(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind not in (Kind.POOL_MAX, Kind.POOL_AVG) or mx.kind not in (Kind.POOL_MAX, Kind.POOL_AVG):
        return []
    geometry = _mx_pool_geometry(context, mx)
    if geometry is None or geometry["global"] or len(tf.shape) != 4:
        return []
    want = tuple(tf.shape[2:4])
    sizes = {}
    for convention in ("valid", "full"):
        sizes[convention] = tuple(mx_output_size(geometry["size"][a], geometry["kernel"][a], geometry["stride"][a],
                                                 geometry["pad"][a], 1, convention) for a in range(2))
    got = sizes.get(geometry["convention"], tuple(mx.shape[2:4]))
    if got == want:
        return []
    other = next((c for c, s in sizes.items() if s == want), None)
    padding = tf.attrs.get("padding", "SAME")
    rule = "ceil(in / s)" if padding == "SAME" else "ceil((in - k + 1) / s)"
    message = (f"TF's {padding} rule out = {rule} gives {want[0]}x{want[1]}; MXNet's "
               f"pooling_convention='{geometry['convention']}' with pad={geometry['pad']} on "
               f"{geometry['size'][0]}x{geometry['size'][1]} gives {got[0]}x{got[1]} "
               "('valid' = floor((in + 2p - k) / s) + 1, 'full' = ceil(...) + 1).")
    if other:
        fix = f"mx.sym.Pooling(..., pooling_convention='{other}')"
    else:
        fix = "see `python -m porting.padding --op {op} --size {s} --kernel {k} --stride {st} --padding {p}`".format(
            op="max" if tf.kind == Kind.POOL_MAX else "avg", s=tf.in_shape[2] if tf.in_shape else "?",
            k=tf.kernel[0] if tf.kernel else "?", st=tf.stride[0] if tf.stride else "?", p=padding)
    return [_finding("pooling_convention", Severity.ERROR, tf, mx, f"{padding}: {want[0]}x{want[1]}",
                     f"'{geometry['convention']}': {got[0]}x{got[1]}", message, fix)]


@pair_check("global_pool", "global pooling vs a kernel equal to the feature map")
def check_global_pool(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if not ({tf.kind, mx.kind} & {Kind.POOL_AVG, Kind.POOL_MAX, Kind.MEAN}):
        return []
    tf_global_any = tf.kind == Kind.MEAN and tuple(tf.attrs.get("axis") or ()) == (2, 3)
    mx_global_any = bool(mx.attrs.get("global_pool")) or (
        mx.kind == Kind.MEAN and tuple(mx.attrs.get("axis") or ()) == (2, 3))

    def covers_map(record: LayerRecord) -> bool:
        return (record.kernel is not None and record.in_shape is not None and len(record.in_shape) == 4
                and tuple(record.kernel) == tuple(record.in_shape[2:4]) and not any(record.pads or ()))

    if tf_global_any == mx_global_any:
        return []
    if mx_global_any and not tf_global_any:
        if covers_map(tf):
            return [_finding("global_pool", Severity.INFO, tf, mx,
                             f"kernel {tf.kernel[0]}x{tf.kernel[1]} = the whole map", "global_pool=True",
                             "identical at this input size. TF's kernel is fixed when the graph is built, MXNet's "
                             "global pool adapts to any input; built for another input size, TF's layer is no longer "
                             "global unless its builder derives the kernel from the map (slim's IRv2 does).",
                             "no change needed at this input size")]
        return [_finding("global_pool", Severity.ERROR, tf, mx,
                         f"kernel {'x'.join(map(str, tf.kernel or ()))} on {format_shape(tf.in_shape)}",
                         "global_pool=True",
                         "MXNet averages (or maxes) the whole feature map; TF's window covers only part of it.",
                         f"mx.sym.Pooling(..., kernel={tuple(tf.kernel or ())}, stride={tuple(tf.stride or ())}, "
                         "global_pool=False)")]
    if covers_map(mx):
        return [_finding("global_pool", Severity.INFO, tf, mx, "global mean over H, W",
                         f"kernel {mx.kernel[0]}x{mx.kernel[1]} = the whole map",
                         "identical at this input size; the MXNet kernel is fixed, so the symbol must be rebuilt for "
                         "another input size.", "mx.sym.Pooling(..., global_pool=True) to follow any input size")]
    return [_finding("global_pool", Severity.ERROR, tf, mx, "global mean over H, W",
                     f"kernel {'x'.join(map(str, mx.kernel or ()))} on {format_shape(mx.in_shape)}",
                     "TF averages the whole feature map; the MXNet window covers only part of it.",
                     "mx.sym.Pooling(..., pool_type='avg', global_pool=True)")]


# --------------------------------------------------------- LRN, concat, softmax

@pair_check("lrn", "LRN depth_radius/alpha/beta/bias <=> nsize=2r+1, alpha*(2r+1), beta, knorm")
def check_lrn(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.LRN or mx.kind != Kind.LRN:
        return []
    r = int(tf.attrs["depth_radius"])
    want = {"nsize": 2 * r + 1, "alpha": tf.attrs["alpha"] * (2 * r + 1), "beta": tf.attrs["beta"],
            "knorm": tf.attrs["bias"]}
    wrong = [key for key, value in want.items() if not context.close(float(value), _number(mx.attrs.get(key)))]
    if not wrong:
        return []
    notes = []
    if "alpha" in wrong and context.close(float(tf.attrs["alpha"]), _number(mx.attrs.get("alpha"))):
        notes.append("alpha was copied unscaled: MXNet divides alpha by nsize, TF does not")
    if "nsize" in wrong and int(mx.attrs.get("nsize", 0)) == r:
        notes.append("nsize was set to TF's depth_radius; it is the full window 2r+1")
    message = ("TF: x / (bias + alpha * sum_{2r+1} x^2)^beta; MXNet: x / (knorm + alpha/nsize * sum_{nsize} x^2)^beta. "
               f"Wrong: {', '.join(wrong)}" + (f" ({'; '.join(notes)})" if notes else "") +
               " (1.19 max abs diff measured for r=5, alpha=1 unscaled).")
    fix = "mx.sym.LRN(..., " + ", ".join(f"{key}={_g(value)}" for key, value in want.items()) + ")"
    return [_finding("lrn", Severity.ERROR, tf, mx,
                     f"depth_radius {r}, alpha {_g(tf.attrs['alpha'])}, beta {_g(tf.attrs['beta'])}, "
                     f"bias {_g(tf.attrs['bias'])}",
                     ", ".join(f"{key} {_g(mx.attrs.get(key))}" for key in want), message, fix)]


def _axis(value, rank: int) -> int | None:
    if value is None:
        return None
    value = int(value)
    return value + rank if value < 0 else value


@pair_check("concat_axis", "concat axis (NHWC 3 = NCHW 1)")
def check_concat_axis(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.CONCAT or mx.kind != Kind.CONCAT:
        return []
    a = _axis(tf.attrs.get("axis"), len(tf.shape))
    b = _axis(mx.attrs.get("axis"), len(mx.shape))
    if a is None or b is None or a == b:
        return []
    names = {1: "channels", 2: "height", 3: "width", 0: "batch"}
    return [_finding("concat_axis", Severity.ERROR, tf, mx, f"axis {a} (NCHW: {names.get(a, a)})",
                     f"dim {b} ({names.get(b, b)})",
                     f"TF concatenates along {names.get(a, a)} (NHWC axis 3 is NCHW axis 1); MXNet along "
                     f"{names.get(b, b)}.", f"mx.sym.concat(..., dim={a})")]


@pair_check("softmax_axis",
            "softmax axis (TF: last = channels; mx.sym.softmax default -1 is W in NCHW), SoftmaxOutput on 4-D")
def check_softmax_axis(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.SOFTMAX or mx.kind != Kind.SOFTMAX:
        return []
    rank = len(mx.shape)
    a = _axis(tf.attrs.get("axis"), len(tf.shape))
    b = _axis(mx.attrs.get("axis"), rank)
    findings = []
    entry = context.mx_entry(mx.part(Kind.SOFTMAX).name if mx.part(Kind.SOFTMAX) else mx.name) or {}
    attrs = entry.get("attrs", {}) or {}
    if mx.op == "SoftmaxOutput":
        spatial = rank == 4 and mx.shape[2] * mx.shape[3] > 1
        if _flag(attrs.get("preserve_shape")):
            b = rank - 1
        elif spatial and not _flag(attrs.get("multi_output")):
            findings.append(_finding(
                "softmax_axis", Severity.ERROR, tf, mx, f"axis {a} (channels)", "SoftmaxOutput over C*H*W",
                "SoftmaxOutput flattens its 4-D input to (N, C*H*W) unless multi_output=True, so it normalizes over "
                "every position and channel at once; TF normalizes each position over the channels.",
                "mx.sym.SoftmaxOutput(..., multi_output=True) or mx.sym.softmax(..., axis=1)"))
            return findings
    if a is not None and b is not None and a != b:
        findings.append(_finding("softmax_axis", Severity.ERROR, tf, mx, f"axis {a} (NCHW)", f"axis {b}",
                                 "TF's softmax runs over the last NHWC axis (the channels, NCHW axis 1); "
                                 "mx.sym.softmax's default axis=-1 is the width in NCHW.",
                                 f"mx.sym.softmax(..., axis={a})"))
    if bool(tf.attrs.get("log")) != bool(mx.attrs.get("log")):
        findings.append(_finding("softmax_axis", Severity.ERROR, tf, mx,
                                 "log_softmax" if tf.attrs.get("log") else "softmax",
                                 "log_softmax" if mx.attrs.get("log") else "softmax",
                                 "one side returns log-probabilities, the other probabilities.",
                                 "use mx.sym.log_softmax" if tf.attrs.get("log") else "use mx.sym.softmax"))
    return findings


# -------------------------------------------------------------------- flatten order

def _mx_flattens_nhwc(context: Context, record: LayerRecord) -> bool:
    """An MX flatten whose input was transposed to NHWC first reads (H, W, C) like TF."""
    source = context.mx_by_name.get(record.inputs[0]) if record.inputs else None
    if source is None or source.op not in ("transpose", "Transpose"):
        return False
    entry = context.mx_entry(source.attrs.get("output_node", source.name)) or {}
    axes = (entry.get("attrs", {}) or {}).get("axes")
    try:
        return tuple(ast.literal_eval(axes)) == (0, 2, 3, 1)
    except (ValueError, SyntaxError, TypeError):
        return False


@pair_check("flatten_order", "flatten order before a dense layer: NHWC (TF) vs NCHW (MXNet) when H*W > 1")
def check_flatten_order(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind in (Kind.FLATTEN, Kind.RESHAPE) and mx.kind in (Kind.FLATTEN, Kind.RESHAPE):
        tf_layout, mx_layout = tf.attrs.get("source_layout"), mx.attrs.get("source_layout")
        spatial = bool(tf.attrs.get("spatial")) or bool(mx.attrs.get("spatial"))
        if not spatial or tf_layout is None or mx_layout is None:
            return []
        if mx_layout == "NCHW" and _mx_flattens_nhwc(context, mx):
            mx_layout = "NHWC"
        if tf_layout == mx_layout:
            return []
        shape = tf.in_shape or mx.in_shape
    elif tf.kind == Kind.FC and mx.kind == Kind.FC:
        # MXNet's FullyConnected(flatten=True) flattens a 4-D input itself, in NCHW order.
        mx_in, source = mx.in_shape, context.tf_by_name.get(tf.inputs[0]) if tf.inputs else None
        if not (mx_in and len(mx_in) == 4 and mx_in[2] * mx_in[3] > 1 and source is not None
                and source.attrs.get("source_layout") == "NHWC" and source.attrs.get("spatial")
                and source.name not in context.tf_to_mx and mx.attrs.get("flatten", True)):
            return []
        shape = mx_in
    else:
        return []
    n, c, h, w = shape
    return [_finding("flatten_order", Severity.ERROR, tf, mx, f"(H, W, C) = ({h}, {w}, {c}) order",
                     f"(C, H, W) = ({c}, {h}, {w}) order",
                     f"TF flattens NHWC, so feature i*{w * c}+j*{c}+k is (h=i, w=j, c=k); MXNet flattens NCHW. The "
                     "shapes agree, but the dense layer after it reads permuted features unless its weight is "
                     "reordered (12.3 max abs diff measured with a plain w.T).",
                     "mx.sym.transpose(x, axes=(0, 2, 3, 1)) before the Flatten, or convert the FC weight with "
                     f"w.reshape({h}, {w}, {c}, O).transpose(3, 2, 0, 1).reshape(O, -1)")]


# --------------------------------------------------------------------------- head

def _tf_record_of_tensor(context: Context, tensor) -> LayerRecord | None:
    by_output = {record.attrs.get("output_node"): record for record in context.tf_by_name.values()}
    op = tensor.op
    for _ in range(20):
        if op.name in by_output:
            return by_output[op.name]
        if not op.inputs:
            return None
        op = op.inputs[0].op
    return None


def _mx_heads(context: Context) -> list[LayerRecord]:
    graph = context.mx_graph
    symbol = getattr(graph, "symbol", None)
    if symbol is None:
        return []
    heads = json.loads(symbol.tojson())["heads"]
    by_output = {record.attrs.get("output_node"): record for record in context.mx_by_name.values()}
    records = []
    for index, _, *_ in heads:
        entry = context.mx_entries[index] if index < len(context.mx_entries) else None
        for _ in range(20):
            if entry is None or entry["name"] in by_output or not entry.get("inputs"):
                break
            entry = context.mx_entries[entry["inputs"][0][0]]
        record = by_output.get(entry["name"]) if entry is not None else None
        if record is not None:
            records.append(record)
    return records


def _width(record: LayerRecord) -> int | None:
    return int(record.shape[1]) if record is not None and len(record.shape) >= 2 else None


@network_check("num_classes", "number of classes (slim's 1001 with background class 0 vs MXNet's 1000)")
def check_num_classes(context: Context) -> list[Finding]:
    tf_graph = context.tf_graph
    if tf_graph is None or getattr(tf_graph, "logits", None) is None:
        return []
    tf = _tf_record_of_tensor(context, tf_graph.logits)
    if tf is None:
        return []
    if tf.kind == Kind.SOFTMAX and tf.inputs:
        tf = context.tf_by_name.get(tf.inputs[0], tf)
    mx = context.tf_to_mx.get(tf.name)
    if mx is None:
        heads = _mx_heads(context)
        mx = heads[0] if heads else None
        if mx is not None and mx.kind == Kind.SOFTMAX and mx.inputs:
            mx = context.mx_by_name.get(mx.inputs[0], mx)
    a, b = _width(tf), _width(mx)
    if a is None or b is None:
        return []
    if a != b:
        background = {a, b} == {1000, 1001}
        message = (f"TF's logits have {a} classes, MXNet's {b}."
                   + (" slim's ImageNet checkpoints (Inception, ResNet-v2, MobileNet) have 1001 logits, class 0 = "
                      "background; MXNet ImageNet models and synsets have 1000 (index 0..999). Slicing the wrong row "
                      "shifts every label by one (accuracy ~0)." if background else ""))
        fix = (f"build the MXNet head with num_hidden={a}" + ("; or, to drop the background class, take rows 1: of "
                                                             "the TF logits weight and bias and use labels_offset=1"
                                                             if a == 1001 and b == 1000 else ""))
        return [_finding("num_classes", Severity.ERROR, tf, mx, f"{a} classes", f"{b} classes", message, fix)]
    if a == 1001:
        return [_finding("num_classes", Severity.INFO, tf, mx, "1001 classes", "1001 classes",
                         "both heads have 1001 logits: slim's ImageNet convention with class 0 = background. Labels "
                         "from a 1000-class synset (MXNet's) need +1 (labels_offset=1 in slim terms); predictions "
                         "need -1 before looking up a 1000-class synset.",
                         "no change needed; keep labels_offset=1 in the data pipeline")]
    return []


@network_check("output_kind", "the builder returns logits on one side and softmax probabilities on the other")
def check_output_kind(context: Context) -> list[Finding]:
    tf_graph = context.tf_graph
    if tf_graph is None or getattr(tf_graph, "logits", None) is None:
        return []
    tf = _tf_record_of_tensor(context, tf_graph.logits)
    heads = _mx_heads(context)
    if tf is None or not heads:
        return []
    mx = heads[0]
    tf_soft, mx_soft = tf.kind == Kind.SOFTMAX, mx.kind == Kind.SOFTMAX
    if tf_soft == mx_soft:
        return []
    what = {True: "softmax probabilities", False: "logits"}
    extra = (" SoftmaxOutput is MXNet's training head: its forward is the softmax." if mx.op == "SoftmaxOutput" else "")
    return [_finding("output_kind", Severity.ERROR, tf, mx, what[tf_soft], f"{what[mx_soft]} ({mx.op})",
                     f"the TF builder's first output is {what[tf_soft]}; the MXNet symbol's first output is "
                     f"{what[mx_soft]}. The top-k classes agree, the values do not." + extra,
                     ("put the logits first: mx.sym.Group([logits, mx.sym.softmax(logits, axis=1)])" if mx_soft else
                      "return the softmax first, or compare against TF's logits end point"))]


@network_check("aux_head", "an auxiliary classifier head present on one side only")
def check_aux_head(context: Context) -> list[Finding]:
    findings = []
    tf_graph = context.tf_graph
    tf_aux = set()
    for key, name in (getattr(tf_graph, "end_point_records", {}) or {}).items():
        if "aux" in key.lower():
            tf_aux.add(name)
    tf_aux |= {name for name, record in context.tf_by_name.items()
               if "auxlogits" in name.lower().replace("_", "") and record.kind == Kind.FC}
    for name in sorted(tf_aux):
        record = context.tf_by_name.get(name)
        if record is not None and name not in context.tf_to_mx:
            findings.append(_finding(
                "aux_head", Severity.WARNING, record, None, "auxiliary head", "none",
                f"TF has an auxiliary classifier ({name}); the MXNet port has no counterpart. It does not feed the "
                "main logits, so inference is the same; training loses the auxiliary loss (weight 0.4 in slim's "
                "train_image_classifier).",
                "add the AuxLogits head and a second SoftmaxOutput with grad_scale=0.4 (mx_impl: "
                "create_aux_logits=True)"))
    if not tf_aux:
        for record in context.mx_by_name.values():
            if "aux" in record.name.lower() and record.kind == Kind.FC and record.name not in context.mx_to_tf:
                findings.append(_finding(
                    "aux_head", Severity.WARNING, None, record, "none", "auxiliary head",
                    f"the MXNet port has an auxiliary head ({record.name}) that TF does not build; inference of "
                    "the main logits is the same, training adds a loss TF does not have.",
                    "remove the auxiliary head, or build TF with it (slim: create_aux_logits=True)"))
    return findings


# ------------------------------------------------------------------ shape comments

_SHAPE_COMMENT = re.compile(r"^#\s*(\d+(?:\s*[x×X*]\s*\d+)*)\b\s*(.*)$")
_CONDITIONAL = re.compile(r"\b(if|when|unless|else|otherwise|or)\b", re.IGNORECASE)
_SKIP_PATH_PARTS = ("site-packages", "dist-packages")
_SKIP_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib", "purelib",
                                                                                    "platlib")})


@dataclass(frozen=True)
class ShapeComment:
    file: str
    line: int
    dims: tuple[int, ...]
    text: str
    start: int  # the statement the comment describes: first and last line
    end: int


def shape_comments(path: str) -> list[ShapeComment]:
    """Every ``# H x W x C`` comment of a Python file (cached per file version); see ``_shape_comments``."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return []
    return list(_cached_shape_comments(path, stamp))


@functools.lru_cache(maxsize=64)
def _cached_shape_comments(path: str, stamp: int) -> tuple[ShapeComment, ...]:
    return tuple(_shape_comments(path))


def _shape_comments(path: str) -> list[ShapeComment]:
    """Every ``# H x W x C`` comment of a Python file, with the statement it describes.

    A comment after code describes the statement on its line; a comment on a
    line of its own describes the statement right below it (slim's style:
    ``# 149 x 149 x 32`` above the conv), when no blank line separates them.
    Conditional comments ('17 x 17 if output_stride == 8') are skipped.
    """
    try:
        source = Path(path).read_text()
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        return []
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)
                  and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    lines = source.splitlines()
    code_lines = {token.start[0] for token in tokens
                  if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                        tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER)}
    result = []
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _SHAPE_COMMENT.match(token.string)
        if not match or _CONDITIONAL.search(match.group(2)):
            continue
        dims = tuple(int(d) for d in re.split(r"\s*[x×X*]\s*", match.group(1).strip()))
        line = token.start[0]
        if line in code_lines:  # trailing: the innermost statement on this line
            around = [s for s in statements if s.lineno <= line <= (s.end_lineno or s.lineno)]
            if not around:
                continue
            target = min(around, key=lambda s: (s.end_lineno or s.lineno) - s.lineno)
        else:  # own line: the statement right below (only comment lines in between)
            below = line + 1
            while below <= len(lines) and lines[below - 1].strip().startswith("#"):
                below += 1
            starting = [s for s in statements if s.lineno == below]
            if not starting:
                continue
            target = max(starting, key=lambda s: (s.end_lineno or s.lineno) - s.lineno)
        result.append(ShapeComment(path, line, dims, token.string.strip(), target.lineno,
                                   target.end_lineno or target.lineno))
    return result


#: The porting package itself (every layer below it): never a builder author's file.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


@functools.lru_cache(maxsize=1024)
def _user_file(filename: str) -> bool:
    """A source file of the builder's author: not TF, slim, the standard library or this package."""
    if not filename or filename.startswith("<"):
        return False
    normalized = filename.replace("\\", "/")
    if any(part in normalized for part in _SKIP_PATH_PARTS):
        return False
    real = os.path.realpath(filename)
    if real.startswith(_PACKAGE_DIR) or real.startswith(_SKIP_DIRS):
        return False
    return os.path.isfile(filename)


def _builder_frames(frames) -> list:
    """The frames inside the TF builder call: below tf_reader's build_graph (the caller's stack is not the builder)."""
    frames = list(frames)
    start = 0
    for index, frame in enumerate(frames):
        if os.path.basename(frame.filename) == "tf_reader.py" and frame.name == "build_graph":
            start = index + 1
    return frames[start:]


def _module_nominal_size(path: str) -> tuple[int, int] | None:
    """slim's convention: a module's DEFAULT_IMAGE_SIZE, or ``default_image_size`` on one of its functions."""
    module = _module_of(path)
    if module is not None:
        values = []
        for attribute in ("DEFAULT_IMAGE_SIZE", "default_image_size", "IMAGE_SIZE"):
            if isinstance(getattr(module, attribute, None), int):
                values.append(getattr(module, attribute))
        for value in vars(module).values():
            size = getattr(value, "default_image_size", None) if callable(value) else None
            if isinstance(size, int):
                values.append(size)
        if values:
            return (values[0], values[0])
    return None


def _module_of(path: str):
    resolved = os.path.realpath(path)
    name = os.path.basename(resolved)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.basename(file) == name and os.path.realpath(file) == resolved:
            return module
    return None


def _source_is_current(path: str) -> bool:
    """Whether the file on disk is the one the graph was built from.

    The graph's tracebacks carry the line numbers of the code as imported; if the
    file was edited since, comments would be matched to the wrong statements. The
    first line of every top-level function (decorators included) must agree
    between the imported module and the file; an unknown module counts as current.
    """
    module = _module_of(path)
    if module is None:
        return True
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    on_disk = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            on_disk[node.name] = min([node.lineno] + [d.lineno for d in node.decorator_list])
    resolved = os.path.realpath(path)
    for name, value in vars(module).items():
        function = inspect.unwrap(value) if callable(value) else None
        code = getattr(function, "__code__", None)
        if code is None or os.path.realpath(code.co_filename) != resolved or function.__name__ != name:
            continue
        if name in on_disk and on_disk[name] != code.co_firstlineno:
            return False
    return True


def _as_size(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value)[:2]


#: Builder options that change no shape (registered variants with only these keep the comments valid).
SHAPE_NEUTRAL_OPTIONS = frozenset({"repeats", "is_training", "dropout_keep_prob", "reuse", "scope"})


@network_check("shape_comment", "a `# H x W x C` comment in the TF source that contradicts the inferred shape")
def check_shape_comments(context: Context) -> list[Finding]:
    if not context.options.shape_comments:
        return []
    tf_graph = context.tf_graph
    graph = getattr(tf_graph, "graph", None)
    images = getattr(tf_graph, "images", None)
    if graph is None or images is None:
        return []
    size = tuple(images.shape.as_list()[1:3])
    spec = getattr(context.result, "spec", None)
    variant = sorted(set(getattr(spec, "tf_kwargs", {}) or {}) - SHAPE_NEUTRAL_OPTIONS) if spec is not None else []
    # The ops on the data path, with the lines of user source that created them.
    op_names = []
    for record in tf_graph.records:
        op_names.extend(part.name for part in record.parts)
        op_names.extend(record.attrs.get("members", []) or [])
    owner = {}
    for record in tf_graph.records:
        for part in record.parts:
            owner[part.name] = record.name
        for member in record.attrs.get("members", []) or []:
            owner[member] = record.name
    ops = []
    for name in dict.fromkeys(op_names):
        try:
            ops.append(graph.get_operation_by_name(name))
        except (KeyError, ValueError):
            continue
    sites: dict[str, dict[int, list]] = {}  # file -> line -> ops created (directly or below) from that line
    for op in ops:
        try:
            frames = op.traceback
        except Exception:  # noqa: BLE001  (no traceback: nothing to map)
            continue
        for frame in _builder_frames(frames):
            if _user_file(frame.filename):
                sites.setdefault(frame.filename, {}).setdefault(frame.lineno, []).append(op)
    findings = []
    logits = getattr(tf_graph, "logits", None)
    classes = _width(_tf_record_of_tensor(context, logits)) if logits is not None else None
    for path in sorted(sites):
        comments = shape_comments(path)
        if not comments:
            continue
        nominal = _as_size(context.options.nominal_size) or _module_nominal_size(path) or (
            _as_size(getattr(spec, "size", None)) if spec is not None else None)
        shown = _display_path(path)
        if nominal is None:
            findings.append(Finding(shown, "shape_comment", Severity.INFO, "--", "--",
                                    f"{len(comments)} shape comments in {shown} were not checked: the nominal input "
                                    "size they describe is unknown.",
                                    "set DEFAULT_IMAGE_SIZE (or fn.default_image_size) in the builder's module, or "
                                    "pass lint.apply(result, nominal_size=N)", file=shown))
            continue
        if tuple(nominal) != size or variant:
            continue  # the comments describe another input size or configuration
        if not _source_is_current(path):
            findings.append(Finding(shown, "shape_comment", Severity.INFO, "--", "--",
                                    f"the shape comments in {shown} were not checked: the file changed after the "
                                    "graph was built from it, so its line numbers no longer match the graph's.",
                                    "run the comparison again", file=shown))
            continue
        lines = sites[path]
        for comment in comments:
            candidates = [op for line in range(comment.start, comment.end + 1) for op in lines.get(line, [])]
            candidates = list(dict.fromkeys(candidates))
            if not candidates:
                continue
            inside = set(candidates)
            sinks = [op for op in candidates
                     if not any(reader in inside for tensor in op.outputs for reader in tensor.consumers())]
            seen = set()
            for op in sinks:
                if not op.outputs or op.outputs[0].shape.rank is None:
                    continue
                actual = tuple(op.outputs[0].shape.as_list()[1:])
                if actual in seen or None in actual:
                    continue
                seen.add(actual)
                dims = comment.dims
                if len(dims) == 1 and len(actual) != 1:
                    continue  # a bare number on a feature map: not a shape
                if actual == dims:
                    continue
                if classes is not None and actual and actual[-1] == classes and dims[-1] != classes \
                        and actual[:-1] == dims[:-1]:
                    continue  # the class count is a builder argument, not part of the geometry
                layer = owner.get(op.name, op.name)
                expected = " x ".join(map(str, actual))
                findings.append(Finding(
                    layer, "shape_comment", Severity.INFO, f"inferred {expected}", "--",
                    f"{shown}:{comment.line}: the comment `{comment.text}` says "
                    f"{' x '.join(map(str, dims))}, but TF infers {expected} (NHWC without batch) for the tensor this "
                    f"statement produces ({layer}) at the nominal {size[0]}x{size[1]} input.",
                    f"correct the comment to `# {expected}` (or the layer, if the comment states the intent)",
                    file=shown, line=comment.line))
    return findings


def _display_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- driver

def _not_visible_findings(context: Context) -> list[Finding]:
    texts = {
        "dropout": ("keep_prob not visible", "TF's dropout rate is only in a training-mode graph (an inference graph "
                    "has no dropout op), so the MXNet p could not be checked", "verify with is_training=True "
                    "(verify()'s default) to check it"),
        "bn_momentum": ("decay not visible", "TF's batch-norm decay only appears in the moving-average updates of a "
                        "training-mode graph, so MXNet's momentum could not be checked", "verify with "
                        "is_training=True (verify()'s default) to check it"),
    }
    findings = []
    for check, layers in context.not_visible.items():
        tf_text, message, fix = texts.get(check, ("not visible", "not visible in this graph", ""))
        more = (f" ({len(layers)} layer{'s' if len(layers) != 1 else ''}: {', '.join(layers[:3])}"
                f"{', ...' if len(layers) > 3 else ''})")
        findings.append(Finding(layers[0] if len(layers) == 1 else f"{len(layers)} layers", check, Severity.INFO,
                                tf_text, "--", message + more + ".", fix))
    return findings


def run(result, options: Options | None = None, checks: list[str] | None = None) -> list[Finding]:
    """Run the checks (all, or the named ones) on a comparison; returns the findings, errors first."""
    options = options or Options()
    unknown = sorted(set(checks or ()) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown lint checks {unknown}. Available: {', '.join(CHECKS)}")
    context = _build_context(result, options)
    selected = set(checks) if checks else set(CHECKS)
    findings: list[Finding] = []
    for pair in getattr(result, "pairs", []) or []:
        if pair.tf is None or pair.mx is None:
            continue
        for name, check in PAIR_CHECKS.items():
            if name in selected:
                findings.extend(check(pair, context))
    for name, check in NETWORK_CHECKS.items():
        if name in selected:
            findings.extend(check(context))
    findings.extend(_not_visible_findings(context))
    rank = {severity: index for index, severity in enumerate(SEVERITY_ORDER)}
    order = {name: index for index, name in enumerate(CHECKS)}
    return sorted(findings, key=lambda f: (rank[f.severity], order.get(f.check, 99)))


def apply(result, options: Options | None = None, **kwargs) -> list[Finding]:
    """Lint a ``CompareResult``: set ``result.findings`` and add the findings table to its reports.

    Keyword arguments are ``Options`` fields (``nominal_size=299``, ``shape_comments=False``).
    """
    options = options or Options(**kwargs)
    result.findings = run(result, options)
    result.lint_ran = True
    renderers = getattr(result, "section_renderers", None)
    if renderers is None:
        renderers = []
        result.section_renderers = renderers
    if render_section not in renderers:
        renderers.append(render_section)
    return result.findings


# ------------------------------------------------------------------------- render

def counts(findings) -> dict[str, int]:
    tally = Counter(str(f.severity) for f in findings)
    return {str(severity): tally.get(str(severity), 0) for severity in SEVERITY_ORDER}


def summary_line(findings) -> str:
    """'lint PASSED | 0 errors, 1 warning, 2 infos' (FAILED when there is an error)."""
    tally = counts(findings)
    words = ", ".join(f"{tally[s]} {s}{'' if tally[s] == 1 else 's'}" for s in ("error", "warning", "info"))
    return f"lint {'FAILED' if tally['error'] else 'PASSED'} | {words}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def render_section(result, fmt: str) -> str:
    """The findings table for the compare report ('text' or 'markdown'; '' otherwise)."""
    findings = getattr(result, "findings", []) or []
    if fmt == "text":
        head = f"\nLint findings: {summary_line(findings)}"
        if not findings:
            return head
        rows = [[str(f.severity), f.check, _cut(f.layer, 48) + (f"\n({f.location})" if f.file else ""), f.tf, f.mx,
                 f.message, f.fix] for f in findings]
        table = tabulate(rows, headers=["severity", "check", "layer", "TF", "MXNet", "why", "fix"], tablefmt="simple",
                         maxcolwidths=[None, None, 48, 22, 22, 60, 40], disable_numparse=True)
        return f"{head}\n{table}"
    if fmt == "markdown":
        lines = ["", "## Lint findings", "", f"**{summary_line(findings)}**", ""]
        if not findings:
            return "\n".join(lines)
        rows = [[_md(f.severity), _md(f.check), _md(f.layer) + (f" ({_md(f.location)})" if f.file else ""), _md(f.tf),
                 _md(f.mx), _md(f.message), _md(f.fix)] for f in findings]
        lines.append(tabulate(rows, headers=["severity", "check", "layer", "TF", "MXNet", "why", "fix"],
                              tablefmt="github", disable_numparse=True))
        return "\n".join(lines)
    return ""


def render_lint_only(result, fmt: str = "text") -> str:
    """The report of ``--lint-only``: only the findings and the lint verdict."""
    findings = getattr(result, "findings", []) or []
    if fmt == "json":
        document = {"title": result.title, "verdict": "fail" if counts(findings)["error"] else "pass",
                    "verdict_line": summary_line(findings), "summary": counts(findings),
                    "findings": [f.as_dict() for f in findings]}
        return json.dumps(document, indent=1) + "\n"
    if fmt == "markdown":
        return f"# porting lint: {result.title}\n{render_section(result, 'markdown')}\n"
    return f"porting lint: {result.title}{render_section(result, 'text')}\n{summary_line(findings)}\n"


def checks_markdown() -> str:
    """The table of registered checks (for the README), generated from the registry."""
    rows = [[f"`{name}`", "layer pair" if name in PAIR_CHECKS else "network", description.replace("|", "\\|")]
            for name, description in CHECKS.items()]
    return tabulate(rows, headers=["check", "runs on", "what it compares"], tablefmt="github")


def write_bug_reports(result, directory) -> list[Path]:
    """One Markdown file per error or warning finding (``--lint-only --bug-reports DIR``)."""
    from porting.verifier.report import atomic_write

    directory = Path(directory)
    written = []
    for number, finding in enumerate(f for f in result.findings if f.severity != Severity.INFO):
        slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{finding.check}_{finding.layer}").strip("_")[:120]
        path = directory / f"finding_{number:03d}_{slug}.md"
        atomic_write(path, finding.bug_report(result))
        written.append(path)
    return written


__all__ = ["Severity", "Finding", "Options", "Context", "CHECKS", "PAIR_CHECKS", "NETWORK_CHECKS", "pair_check",
           "network_check", "run", "apply", "render_section", "render_lint_only", "summary_line", "counts",
           "shape_comments", "write_bug_reports", "checks_markdown"]
