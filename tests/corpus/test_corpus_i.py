"""Corpus ports of helper I (Inception v1/v2/v3, OverFeat): each computes what slim computes.

For every port in ``tests/support/ports``: slim's logits (and Inception-v3's AuxLogits) with
seeded random weights and one seeded input equal the port's ``SoftmaxOutput`` inputs
(rtol 1e-4, atol 1e-4 x range); every mutant's outputs differ by more than 100x that tolerance,
or, for a defect that only matters in training, its symbol attribute differs. Each slim graph is
built once per module.
"""
from __future__ import annotations

import importlib
import json

import pytest

from porting import compat  # noqa: F401  (shims first)
from tests.support.ports import common

pytestmark = pytest.mark.slow

PORTS = ("inception_v1", "inception_v2", "inception_v3", "overfeat")
#: A mutant must miss by more than this many tolerances (the defect is real and visible).
MUTANT_FACTOR = 100


def _port(name):
    return importlib.import_module(f"tests.support.ports.{name}")


MUTANT_CASES = [(name, mutant) for name in PORTS for mutant in _port(name).MUTANTS]


class _Reference:
    """slim's outputs for one port (seeded weights, one input) and the port's converted weights."""

    def __init__(self, name):
        self.port = _port(name)
        run = common.run_slim(self.port.tf_build, self.port.SIZE, self.port.CLASSES, heads=self.port.HEADS)
        try:
            self.images, self.heads = run.images, run.heads
            self.arg_params, self.aux_params = self.port.weights_from_tf(run.values)
        finally:
            run.close()

    def run(self, symbol):
        return common.run_mx_heads(symbol, self.arg_params, self.aux_params, self.images)


@pytest.fixture(scope="module")
def reference():
    cache = {}

    def get(name):
        if name not in cache:  # all four hold ~1 GB of weights (OverFeat's fc6 alone is 450 MB)
            cache[name] = _Reference(name)
        return cache[name]

    return get


def _attrs(symbol, node_name):
    nodes = json.loads(symbol.tojson())["nodes"]
    return next(node.get("attrs", {}) for node in nodes if node["name"] == node_name)


@pytest.mark.parametrize("name", PORTS)
def test_port_declares_the_contract(name):
    port = _port(name)
    assert port.SLIM.startswith("tf_slim.nets.") and port.ARG_SCOPE.startswith("tf_slim.nets.")
    assert len(port.MUTANTS) >= 2
    assert set(port.MUTANT_ROOTS) == set(port.MUTANTS)
    assert all(isinstance(root, str) and root for root in port.MUTANT_ROOTS.values())  # slim's layer
    symbol = port.build(port.CLASSES)
    assert symbol.list_arguments()[0] == "data"
    assert "softmax_label" in symbol.list_arguments()
    assert symbol.list_outputs()[0] == "softmax_output"


@pytest.mark.parametrize("name", PORTS)
def test_port_computes_slims_logits(name, reference):
    ref = reference(name)
    symbol = ref.port.build(ref.port.CLASSES)
    assert common.check_params(symbol, ref.arg_params, ref.aux_params, (1, 3, ref.port.SIZE, ref.port.SIZE)) == []
    outputs = ref.run(symbol)
    assert len(outputs) == len(ref.heads) == 1 + len(ref.port.HEADS)
    for expected, actual in zip(ref.heads, outputs):
        common.assert_matches(expected, actual)


@pytest.mark.parametrize("name, mutant", MUTANT_CASES, ids=[f"{n}-{m}" for n, m in MUTANT_CASES])
def test_mutant_is_a_real_defect(name, mutant, reference):
    ref = reference(name)
    builder, _ = ref.port.MUTANTS[mutant]
    symbol = builder(ref.port.CLASSES)
    training_only = getattr(ref.port, "TRAINING_ONLY", {})
    if mutant in training_only:
        node, attribute = training_only[mutant]
        correct = ref.port.build(ref.port.CLASSES)
        assert _attrs(symbol, node)[attribute] != _attrs(correct, node)[attribute]
        return
    # the defect is the only change: the mutant reads the correct port's weights (a subset at most)
    problems = common.check_params(symbol, ref.arg_params, ref.aux_params, (1, 3, ref.port.SIZE, ref.port.SIZE))
    if mutant in getattr(ref.port, "CHANGES_PARAMETERS", ()):  # another structure (a layer split in two)
        assert any(problem.startswith("missing ") for problem in problems), problems  # slim's weights do not load
        return
    assert all(problem.startswith("unexpected ") for problem in problems), problems
    outputs = ref.run(symbol)
    misses = [common.max_abs_diff(expected, actual) / common.tolerance(expected)
              for expected, actual in zip(ref.heads, outputs)]
    assert max(misses) > MUTANT_FACTOR, f"{mutant}: off by only {max(misses):.1f} tolerances"
