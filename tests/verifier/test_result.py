"""CompareResult declares everything it holds: the passes return typed results that verify() attaches.

A full ``verify()`` with the lint and numeric parity on a tiny network, then: every attribute
of the result is a declared field (the class has slots, no ``__dict__``), each pass's result
sits in its field with its own type, the rows are untouched, and running a pass again
returns a new result without changing the comparison.
"""
from __future__ import annotations

import dataclasses

import pytest

from porting import compat
from porting.verifier import lint, parity
from porting.verifier.api import CompareResult, verify

DECLARED = {"title", "rows", "end_points", "tf_graph", "mx_graph", "pairs", "timings", "framework_params", "spec",
            "lint", "numeric_report", "equivalences", "reference_cache"}


def tf_tiny(images, num_classes, is_training=False):
    slim = compat.import_slim()
    net = slim.conv2d(images, 4, 3, normalizer_fn=None, scope="conv")
    net = slim.max_pool2d(net, 2, scope="pool")
    return slim.conv2d(net, num_classes, 4, padding="VALID", activation_fn=None, normalizer_fn=None,
                       scope="logits"), {}


def mx_tiny(num_classes):
    mx = compat.import_mx()
    net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv")
    net = mx.sym.Activation(net, act_type="relu", name="conv/Relu")
    net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    return mx.sym.Convolution(net, num_filter=num_classes, kernel=(4, 4), name="logits")


@pytest.fixture(scope="module")
def result():
    return verify(tf=tf_tiny, mx=mx_tiny, size=8, classes=3, numeric=True)


def test_fields_are_declared_and_nothing_else_can_be_set(result):
    assert {f.name for f in dataclasses.fields(CompareResult)} == DECLARED
    assert set(CompareResult.__slots__) == DECLARED
    assert not hasattr(result, "__dict__")
    with pytest.raises(AttributeError):
        result.section_renderers = []  # the old way of extending a result at run time


def test_each_pass_result_is_in_its_field(result):
    assert isinstance(result.lint, lint.LintResult) and isinstance(result.numeric_report, parity.NumericReport)
    assert result and result.lint and result.numeric_report
    assert result.findings == list(result.lint.findings)
    assert result.numeric == result.numeric_report.summary() and result.numeric["passed"]
    assert "Lint findings" in result.report() and "Numeric parity" in result.report()


def test_passes_return_new_results_and_change_nothing(result):
    before = (result.lint, result.numeric_report, list(result.rows))
    again = lint.run_pass(result)
    numeric = parity.run_pass(result, seed=1)
    assert isinstance(again, lint.LintResult) and again == result.lint and again is not result.lint
    assert isinstance(numeric, parity.NumericReport) and numeric.seed == 1
    assert (result.lint, result.numeric_report, list(result.rows)) == before


def test_apply_attaches_to_the_declared_fields(result):
    twin = CompareResult(title=result.title, rows=result.rows, end_points=result.end_points,
                         tf_graph=result.tf_graph, mx_graph=result.mx_graph, pairs=result.pairs)
    assert twin.lint is None and twin.numeric_report is None and twin.findings == [] and twin.numeric is None
    findings = lint.apply(twin)
    report = parity.apply(twin)
    assert findings == twin.findings and twin.lint is not None and twin.numeric_report is report
    assert twin.report("json") == CompareResult(
        title=result.title, rows=result.rows, end_points=result.end_points, tf_graph=result.tf_graph,
        mx_graph=result.mx_graph, pairs=result.pairs, lint=twin.lint, numeric_report=report).report("json")


def test_a_failing_pass_fails_the_result(result):
    error = lint.Finding("conv", "bn_eps", lint.Severity.ERROR, "a", "b", "why", "fix")
    failing = dataclasses.replace(result, lint=lint.LintResult((error,), lint.Options()), timings={})
    assert not failing and failing.summary()["verdict"] == "mismatch"
    assert failing.verdict_line().startswith("FAILED") and failing.verdict_line().endswith("; 1 lint error")
