"""The lint pass: run the registered checks on a comparison and return a typed ``LintResult``."""
from __future__ import annotations

from dataclasses import dataclass

from porting.verifier.lint.base import (CHECKS, NETWORK_CHECKS, PAIR_CHECKS, SEVERITY_ORDER, Context, Finding, Options,
                                        Severity, build_context)


@dataclass(frozen=True)
class LintResult:
    """What the lint pass found (errors first) and the options it ran with; truthy when no finding is an error."""

    findings: tuple[Finding, ...]
    options: Options

    def __bool__(self) -> bool:
        return self.errors == 0

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == Severity.ERROR)


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
    """Run the checks (all, or the named ones) on a comparison; returns the findings, errors first.

    ``result`` needs ``pairs``, ``tf_graph`` and ``mx_graph`` (and may have ``spec``).
    """
    options = options or Options()
    unknown = sorted(set(checks or ()) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown lint checks {unknown}. Available: {', '.join(CHECKS)}")
    context = build_context(result, options)
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


def run_pass(result, options: Options | None = None, **kwargs) -> LintResult:
    """The lint pass over a ``CompareResult``: every check; returns a ``LintResult``, changes nothing.

    Keyword arguments are ``Options`` fields (``nominal_size=299``, ``shape_comments=False``).
    """
    options = options or Options(**kwargs)
    return LintResult(tuple(run(result, options)), options)


def apply(result, options: Options | None = None, **kwargs) -> list[Finding]:
    """:func:`run_pass`, its result attached to ``result.lint`` (a field ``CompareResult`` declares); the findings."""
    result.lint = run_pass(result, options, **kwargs)
    return list(result.lint.findings)
