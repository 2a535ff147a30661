"""The transfers: TF values -> MXNet parameters and back, with a report of every problem.

Nothing is left silently at a default: every MXNet parameter with no TF source
(*missing*), every TF variable no MXNet parameter takes (*unexpected*), every shape
that disagrees after the layout transform (*mismatched*) and every MXNet value TF has
no place for (*lost*) is listed by name; a transfer raises ``WeightTransferError``
unless each problem is allowed by a pattern (``allow_missing=['AuxLogits/*']``).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping as MappingABC
from dataclasses import dataclass, field

import numpy as np

from porting.verifier.weights.mapping import (AUX, SOURCE_VARIABLE, Mapping, Problem, TransferPlan,
                                              WeightTransferError, shape_text, to_shape)
from porting.verifier.weights.values import value_shape

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
            shape = value_shape(tf_values, mapping.tf_name)
            if mapping.tf_shape is not None and shape != tuple(mapping.tf_shape):
                problems.append(Problem("mismatched", mapping.mx_name,
                                        f"the TF value of {mapping.tf_name} is {shape_text(shape)}, the graph's variable "
                                        f"{shape_text(mapping.tf_shape)}", layer=mapping.layer, tf_name=mapping.tf_name,
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
                                    f"MXNet value {shape_text(value.shape)}, the symbol expects {shape_text(mapping.mx_shape)}",
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
                                    mx_name=name, mx_shape=to_shape(mx_values[name].shape)))
    _settle(report, problems, allow_missing, allow_unexpected)
    if strict:
        report.raise_if_failed()
    return tf_values, report
