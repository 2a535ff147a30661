"""``python -m porting.convert``: a TF Saver checkpoint of our reference network to MXNet and back.

Uses the reduced Inception-ResNet-v2 (one block of each kind: every layer kind) at 139x139,
so the TF graph builds in seconds; the TF graph is built once for the module.
"""
from __future__ import annotations

import pytest

from porting import compat

MODEL = "inception_resnet_v2_reduced"
SIZE = 139


@pytest.fixture(scope="module")
def reference():
    """(TF graph in inference mode, seeded values) of the reduced reference network."""
    from porting.frameworks import mx_reader
    from porting.frameworks import tf_reader
    from porting.verifier import weights
    from porting.core.match import match
    from porting.frameworks.models import get_model, mx_builder, tf_builder

    spec = get_model(MODEL)
    tf_graph = tf_reader.read_graph(tf_builder(spec), (SIZE, SIZE), spec.classes, 1, False)
    mx_graph = mx_reader.read_symbol(mx_builder(spec, (SIZE, SIZE)), (SIZE, SIZE), spec.classes)
    plan = weights.plan_transfer(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records))
    return tf_graph, weights.seeded_values(plan, seed=11)


@pytest.fixture(scope="module")
def saver_checkpoint(reference, tmp_path_factory):
    """A checkpoint written by TF's own tf.compat.v1.train.Saver, as slim's training writes them."""
    tf = compat.import_tf()
    from porting.verifier import weights

    tf_graph, values = reference
    graph = tf_graph.graph
    with graph.as_default():
        init = tf.compat.v1.global_variables_initializer()
        saver = tf.compat.v1.train.Saver()
    path = tmp_path_factory.mktemp("tf") / "model.ckpt"
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(init)
        weights.assign_values(session, graph, values)
        return saver.save(session, str(path))


def _read(prefix):
    from porting.verifier.weights import CheckpointValues

    checkpoint = CheckpointValues(prefix)
    return {name: checkpoint[name] for name in checkpoint}


@pytest.fixture
def built_once(reference, monkeypatch):
    """The CLI builds the TF graph it pairs with; hand it the module's graph instead of a rebuild."""
    from porting.verifier import conversion

    monkeypatch.setattr(conversion, "_tf_graph", lambda tf_fn, size, classes: reference[0])


def test_checkpoint_converts_loads_and_passes_parity(reference, saver_checkpoint, tmp_path, built_once):
    from porting.frameworks import mx_reader
    from porting.verifier import parity
    from porting.cli.convert import main
    from porting.core.match import match

    mx = compat.import_mx()
    prefix = str(tmp_path / "mx" / "irv2")
    assert main(["--model", MODEL, "--size", str(SIZE), "--tf-checkpoint", saver_checkpoint, "--out", prefix]) == 0
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    assert any(name.endswith("moving_var") for name in aux_params)  # moving statistics are aux states
    assert not any(name.endswith("moving_var") for name in arg_params)

    module = mx.mod.Module.load(prefix, 0, data_names=("data",), label_names=None)
    module.bind(data_shapes=[("data", (1, 3, SIZE, SIZE))], for_training=False)
    module.forward(mx.io.DataBatch([mx.nd.ones((1, 3, SIZE, SIZE))]), is_train=False)
    assert module.get_outputs()[0].shape == (1, 1001)

    tf_graph, _ = reference
    mx_graph = mx_reader.read_symbol(symbol, (SIZE, SIZE), 1001)  # the saved symbol, not a rebuilt one
    params = ({k: v.asnumpy() for k, v in arg_params.items()}, {k: v.asnumpy() for k, v in aux_params.items()})
    report = parity.numeric_parity(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records),
                                   weights=saver_checkpoint, mx_params=params, seed=3)
    assert report, report.summary()
    assert report.weights.startswith("checkpoint")
    transferred = parity.numeric_parity(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records),
                                        weights=saver_checkpoint, seed=3)  # what compare --weights runs
    assert transferred and transferred.transfer.ok


def test_round_trips_are_bit_for_bit(reference, saver_checkpoint, tmp_path, built_once):
    from porting.cli.convert import main
    from porting.verifier.conversion import mx_to_tf, tf_to_mx

    mx = compat.import_mx()
    tf_graph, _ = reference
    first = str(tmp_path / "first")
    tf_to_mx(saver_checkpoint, first, model=MODEL, size=SIZE, tf_graph=tf_graph)
    # MXNet -> TF: every TF tensor as TF's saver wrote it
    written, report = mx_to_tf(first, str(tmp_path / "back" / "model.ckpt"), model=MODEL, size=SIZE,
                               tf_graph=tf_graph)
    assert report.ok
    original, back = _read(saver_checkpoint), _read(written)
    assert set(back) == set(original)
    for name, value in original.items():
        assert back[name].dtype == value.dtype and back[name].tobytes() == value.tobytes(), name
    # TF -> MXNet again: every MXNet parameter as the first conversion wrote it
    second = str(tmp_path / "second")
    tf_to_mx(written, second, model=MODEL, size=SIZE, tf_graph=tf_graph)
    _, args_1, aux_1 = mx.model.load_checkpoint(first, 0)
    _, args_2, aux_2 = mx.model.load_checkpoint(second, 0)
    for one, two in ((args_1, args_2), (aux_1, aux_2)):
        assert set(one) == set(two)
        for name in one:
            assert one[name].asnumpy().tobytes() == two[name].asnumpy().tobytes(), name
    assert main(["--model", MODEL, "--size", str(SIZE), "--mx-checkpoint", first, "--epoch", "0",
                 "--out-tf-checkpoint", str(tmp_path / "cli" / "model.ckpt")]) == 0
    assert (tmp_path / "cli" / "model.ckpt.index").is_file()


def test_checkpoint_without_aux_logits_needs_allow_missing(reference, tmp_path):
    from porting.verifier import weights
    from porting.verifier.conversion import tf_to_mx

    tf_graph, values = reference
    trunk = {name: value for name, value in values.items() if "/AuxLogits/" not in name}
    assert len(trunk) < len(values)
    checkpoint = weights.write_tf_checkpoint(tf_graph, trunk, tmp_path / "trunk" / "model.ckpt")
    with pytest.raises(weights.WeightTransferError) as caught:
        tf_to_mx(checkpoint, str(tmp_path / "refused"), model=MODEL, size=SIZE, tf_graph=tf_graph)
    missing = {p.name for p in caught.value.report.problems}
    assert missing and all("AuxLogits" in name for name in missing)
    assert "InceptionResnetV2/AuxLogits/Logits_weight" in str(caught.value)
    assert not (tmp_path / "refused-0000.params").exists()
    report = tf_to_mx(checkpoint, str(tmp_path / "trunk_mx"), model=MODEL, size=SIZE, tf_graph=tf_graph,
                      allow_missing=["AuxLogits/*"])
    assert report.ok and {p.name for p in report.allowed} == missing
    _, arg_params, aux_params = compat.import_mx().model.load_checkpoint(str(tmp_path / "trunk_mx"), 0)
    # only the gammas stay: TF's graph defines them (a constant 1), not the checkpoint
    assert all(name.endswith("BatchNorm_gamma") for name in arg_params if "AuxLogits" in name)
    assert not any("AuxLogits" in name for name in aux_params)


def test_cli_usage_errors(tmp_path, capsys):
    from porting.cli.convert import main

    assert main([]) == 2
    assert "--tf-checkpoint" in capsys.readouterr().err
    assert main(["--tf-checkpoint", "x"]) == 2
    assert main(["--model", "irv3", "--tf-checkpoint", "x", "--out", "y"]) == 2
    assert "Available" in capsys.readouterr().err
    assert main(["--mx-checkpoint", str(tmp_path / "none"), "--out-tf-checkpoint", str(tmp_path / "t")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--tf-checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o"),
                 "--model", MODEL]) == 2
    assert "checkpoint" in capsys.readouterr().err
