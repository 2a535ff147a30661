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
    setting the graph does not show, a background class, a wrong shape comment),
    or a difference that is harmless at inference: a conv bias followed by a
    batch norm (which subtracts the mean), a learned gamma where slim has none
    (equal while the gamma weights hold 1; with weights, ``--numeric`` settles
    it), a softmax / SoftmaxOutput head on one side and logits on the other.

The classes check reads each side's logits layer: the last dense or conv layer
behind the network's output (through softmax, SoftmaxOutput, squeeze, flatten),
so a Flatten + FullyConnected head is not read as the feature vector's width.

Layout of the package:
  * ``base``: ``Severity``, ``Finding``, ``Options``, ``Context``, the registries
    ``PAIR_CHECKS`` / ``NETWORK_CHECKS`` and their decorators;
  * one module per check family: ``dropout``, ``batch_norm``, ``layers`` (conv/FC
    bias, activation, dilation), ``pooling``, ``lrn_concat_softmax``, ``flatten``,
    ``head`` (classes, output kind, auxiliary head), ``source_comments`` (shape
    comments in the TF source);
  * ``driver``: ``run`` (the findings), ``run_pass`` (a ``LintResult``) and ``apply``
    (attaches it to ``CompareResult.lint``); ``verify()`` runs the pass;
  * ``render``: the findings table, the ``--lint-only`` report, bug reports; identical findings
    (same check, severity, settings and message on several layers) are grouped there
    (``group_findings``): one row, one bug report, with the count and the layers.

The families are imported below in a fixed order: registration order is the order
of ``CHECKS``, of findings of equal severity, and of the README's table.
"""
from __future__ import annotations

# Registration order (see above): keep these imports in this order.
from porting.verifier.lint import dropout
from porting.verifier.lint import batch_norm
from porting.verifier.lint import layers
from porting.verifier.lint import pooling
from porting.verifier.lint import lrn_concat_softmax
from porting.verifier.lint import flatten
from porting.verifier.lint import head
from porting.verifier.lint import source_comments
from porting.verifier.lint.base import (CHECKS, NETWORK_CHECKS, PAIR_CHECKS, SEVERITY_MEANING, SEVERITY_ORDER, Context,
                                        Finding, Options, Severity, network_check, pair_check)
from porting.verifier.lint.driver import LintResult, apply, run, run_pass
from porting.verifier.lint.render import (FindingGroup, bug_report, bug_reports, checks_markdown, counts,
                                          group_bug_report, group_findings, grouped, render_lint_only, render_section,
                                          summary_line, write_bug_reports)
from porting.verifier.lint.source_comments import SHAPE_NEUTRAL_OPTIONS, ShapeComment, shape_comments

#: The check-family modules, in registration order.
FAMILIES = (dropout, batch_norm, layers, pooling, lrn_concat_softmax, flatten, head, source_comments)

__all__ = ["FAMILIES", "Severity", "Finding", "Options", "Context", "LintResult", "CHECKS", "PAIR_CHECKS",
           "NETWORK_CHECKS", "SEVERITY_ORDER", "SEVERITY_MEANING", "pair_check", "network_check", "run", "run_pass",
           "apply", "render_section", "render_lint_only", "summary_line", "counts", "shape_comments", "ShapeComment",
           "SHAPE_NEUTRAL_OPTIONS", "bug_report", "bug_reports", "write_bug_reports", "checks_markdown",
           "FindingGroup", "group_findings", "grouped", "group_bug_report"]
