"""Corpus H: independent MXNet ports of vgg_16, alexnet_v2, resnet_v1_50, resnet_v2_50 (tests/support/ports).

Each port must compute exactly slim's logits (inference, seeded random weights, one seeded input):
``assert_allclose(rtol=1e-4, atol=1e-4 x range)``. Each mutant (one real defect) must be visible:
its logits differ from slim's by more than 100x that tolerance, or its parameter shapes no longer
fit slim's weights (a shape defect: the port cannot even load them).
"""
from __future__ import annotations

import importlib

import pytest

from tests.support.ports import common  # porting.compat's shims first, then TF, tf_slim, MXNet

NETWORKS = ("vgg_16", "alexnet_v2", "resnet_v1_50", "resnet_v2_50")
#: A mutant's logits must be this many tolerances away from slim's.
VISIBLE = 100.0

pytestmark = pytest.mark.slow


def _port(net: str):
    return importlib.import_module(f"tests.support.ports.{net}")


def _mutant_cases():
    return [(net, name) for net in NETWORKS for name in _port(net).MUTANTS]


@pytest.fixture(scope="module")
def slim_runs():
    """slim built once per network for the whole module: ``get(net) -> (port, SlimRun, arg, aux)``."""
    cache = {}

    def get(net):
        if net not in cache:
            port = _port(net)
            slim_run = common.run_slim(port.tf_build, port.SIZE, port.CLASSES)
            cache[net] = (port, slim_run, *port.weights_from_tf(slim_run.values))
        return cache[net]

    yield get
    for _, slim_run, _, _ in cache.values():
        slim_run.close()


@pytest.mark.parametrize("net", NETWORKS)
def test_port_computes_slims_logits(slim_runs, net):
    port, slim_run, arg, aux = slim_runs(net)
    symbol = port.build(port.CLASSES)
    assert symbol.list_outputs() == ["softmax_output"]
    assert "softmax_label" in symbol.list_arguments()
    assert common.check_params(symbol, arg, aux, (1, 3, port.SIZE, port.SIZE)) == []
    logits = common.run_mx(symbol, arg, aux, slim_run.images)
    assert logits.shape == (1, port.CLASSES)
    common.assert_matches(slim_run.logits, logits)


@pytest.mark.parametrize("net,mutant", _mutant_cases())
def test_mutant_is_visible(slim_runs, net, mutant):
    port, slim_run, arg, aux = slim_runs(net)
    builder, _ = port.MUTANTS[mutant]
    symbol = builder(port.CLASSES)
    problems = common.check_params(symbol, arg, aux, (1, 3, port.SIZE, port.SIZE))
    shape_problems = [p for p in problems if not p.startswith("unexpected")]  # a dropped layer leaves extras
    if shape_problems:
        return  # the defect changes a parameter shape: slim's weights do not load
    logits = common.run_mx(symbol, arg, aux, slim_run.images)
    difference = common.max_abs_diff(slim_run.logits, logits)
    assert difference > VISIBLE * common.tolerance(slim_run.logits), (mutant, difference)


def test_every_port_has_two_mutants_and_declares_its_slim_net():
    for net in NETWORKS:
        port = _port(net)
        assert len(port.MUTANTS) >= 2, net
        assert port.SLIM.startswith("tf_slim.nets.") and port.ARG_SCOPE.startswith("tf_slim.nets.")
        assert all(callable(fn) and doc for fn, doc in port.MUTANTS.values())
        assert set(port.MUTANT_ROOTS) == set(port.MUTANTS), net
        assert all(isinstance(root, str) and root for root in port.MUTANT_ROOTS.values()), net  # slim's layer
