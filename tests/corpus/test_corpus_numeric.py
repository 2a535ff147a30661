"""``--numeric`` on the corpus of independent MXNet ports (tests/support/ports), across the two head forms.

With the verifier's own seeded weights and weight transfer (the pairing, never names; slim's conv
heads become the ports' Flatten + FullyConnected weights):

* every correct port PASSES: every paired layer within tolerance;
* every mutant whose defect shows at inference FAILS, and nothing upstream of its root is blamed:
  the first divergent layer (or, where the weights no longer fit, the first TF layer the transfer
  names) is the root (``MUTANT_ROOTS``), downstream of it, or beside it in its unit (a defect
  that touches a parallel branch, e.g. a stride moved onto a unit's shortcut as well); a mutant
  whose defect only matters in training (``TRAINING_ONLY``) passes;
* ``python -m porting.convert`` goes TF checkpoint -> MXNet params -> TF checkpoint bit for bit on
  the ports with cross-form heads (vgg_16, inception_v3), and its MXNet parameters are exactly what
  each port's own hand-written ``weights_from_tf`` makes of the same checkpoint.

Each slim graph is built once for the module (graphs only: no values stay alive between tests).
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from porting import compat  # noqa: F401  (shims first)

pytestmark = pytest.mark.slow

NETWORKS = ("vgg_16", "alexnet_v2", "resnet_v1_50", "resnet_v2_50",
            "inception_v1", "inception_v2", "inception_v3", "overfeat")
PORTS = "tests/support/ports"


def _port(net: str):
    return importlib.import_module(f"tests.support.ports.{net}")


MUTANT_CASES = [(net, mutant) for net in NETWORKS for mutant in _port(net).MUTANTS]


@pytest.fixture(scope="module")
def tf_graphs():
    """``get(net)``: slim's graph in inference mode, built once per network."""
    from porting.frameworks import tf_reader

    cache = {}

    def get(net):
        if net not in cache:
            port = _port(net)
            cache[net] = tf_reader.read_graph(port.tf_build, (port.SIZE, port.SIZE), port.CLASSES, 1, False)
        return cache[net]

    return get


def _numeric(net, tf_graph, builder):
    from porting.verifier.api import verify

    port = _port(net)
    return verify(tf_graph=tf_graph, mx=builder, size=port.SIZE, classes=port.CLASSES, numeric=True,
                  lint=False).numeric_report


def _not_upstream_of_root(records, root: str) -> set[str]:
    """TF records at ``root`` (the layer or its scope), downstream of it, or beside it in its unit."""
    at_root = {r.name for r in records if r.name == root or r.name.startswith(root + "/")}
    assert at_root, f"MUTANT_ROOTS names {root}, no layer of slim's graph"
    by_name = {r.name: r for r in records}
    upstream, todo = set(), [i for name in at_root for i in by_name[name].inputs]
    while todo:
        name = todo.pop()
        if name in by_name and name not in upstream and name not in at_root:
            upstream.add(name)
            todo.extend(by_name[name].inputs)
    downstream, todo = set(at_root), list(at_root)
    while todo:
        current = todo.pop()
        for r in records:
            if current in r.inputs and r.name not in downstream:
                downstream.add(r.name)
                todo.append(r.name)
    unit = root.rsplit("/", 1)[0] + "/"
    beside = {r.name for r in records if r.name.startswith(unit) and r.name not in upstream}
    return downstream | beside


@pytest.mark.parametrize("net", NETWORKS)
def test_correct_port_passes_numeric(net, tf_graphs):
    report = _numeric(net, tf_graphs(net), _port(net).build)
    assert report.error is None, report.error
    assert report, f"first divergence {report.first_divergence}"
    assert report.transfer.ok and len(report.layers) > 10
    # the heads were compared across the forms, at the logits (not the MXNet softmax's label)
    assert any(layer.kind.value == "fc" for layer in report.layers)


@pytest.mark.parametrize("net, mutant", MUTANT_CASES, ids=[f"{net}-{mutant}" for net, mutant in MUTANT_CASES])
def test_mutant_fails_numeric_at_or_after_its_root(net, mutant, tf_graphs):
    port = _port(net)
    tf_graph = tf_graphs(net)
    report = _numeric(net, tf_graph, port.MUTANTS[mutant][0])
    if mutant in getattr(port, "TRAINING_ONLY", {}):
        assert report, f"{mutant} changes only training, yet {report.first_divergence or report.error}"
        return
    assert not report
    allowed = _not_upstream_of_root(tf_graph.records, port.MUTANT_ROOTS[mutant])
    if report.error is not None:  # the defect changed a parameter's shape or presence: the weights do not fit
        assert report.error.startswith("the weight transfer is incomplete"), report.error
        named = [p.layer for p in report.transfer.problems if p.tf_name is not None and p.layer]
        assert named and named[0] in allowed, (named[:3], port.MUTANT_ROOTS[mutant])
        return
    first = report.first_divergence
    assert first.tf in allowed, (first.tf, port.MUTANT_ROOTS[mutant])
    index = report.layers.index(first)
    assert all(layer.result for layer in report.layers[:index])


@pytest.mark.parametrize("net", ("vgg_16", "inception_v3"))
def test_convert_round_trip_across_forms(net, tf_graphs, tmp_path, monkeypatch):
    from porting.cli.convert import main
    from porting.frameworks import mx_reader
    from porting.verifier import conversion, weights

    mx = compat.import_mx()
    port = _port(net)
    tf_graph = tf_graphs(net)
    monkeypatch.setattr(conversion, "_tf_graph", lambda tf_fn, size, classes: tf_graph)  # built once
    mx_graph = mx_reader.read_symbol(port.build, (port.SIZE, port.SIZE), port.CLASSES)
    values = weights.seeded_values(weights.plan_transfer(tf_graph, mx_graph), seed=7)
    checkpoint = weights.write_tf_checkpoint(tf_graph, values, tmp_path / "tf" / "model.ckpt")
    sides = ["--tf", f"{PORTS}/{net}.py:tf_build", "--size", str(port.SIZE), "--classes", str(port.CLASSES)]
    prefix = str(tmp_path / "mx" / net)
    assert main([*sides, "--mx", f"{PORTS}/{net}.py:build", "--tf-checkpoint", checkpoint, "--out", prefix]) == 0
    _, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    own_args, own_aux = port.weights_from_tf(values)  # the port's hand-written conversion: an independent oracle
    for converted, own in ((arg_params, own_args), (aux_params, own_aux)):
        assert set(converted) == set(own)
        for name, value in own.items():
            assert converted[name].asnumpy().tobytes() == np.asarray(value, np.float32).tobytes(), name
    del arg_params, aux_params, own_args, own_aux, converted, own  # VGG's are 0.5 GB each: keep the peak down
    back = str(tmp_path / "back" / "model.ckpt")
    assert main([*sides, "--mx-checkpoint", prefix, "--out-tf-checkpoint", back]) == 0
    written = weights.CheckpointValues(back)
    assert set(written) == set(values)
    for name, value in values.items():
        assert written[name].tobytes() == value.tobytes(), name
