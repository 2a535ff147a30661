"""``python -m porting.convert --onnx FILE``: the converted model exported to ONNX and proven against MXNet and TF.

Every registered variant, with its own options and one block of each kind (so the default
network is the reduced one and runs once), at 107x107 (the
smallest size near 100 that keeps the AuxLogits head): a TF checkpoint of seeded values goes
through the conversion, the written MXNet checkpoint is exported, and onnxruntime's logits,
predictions and aux logits are compared with MXNet's and TF's. The command line runs end to
end in-process on the reduced network; the registered full-depth variants run the same
command, marked slow (each builds a full-depth TF graph).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from porting import compat
from porting.frameworks.models import MODELS

SIZE = 107
REDUCED = (1, 1, 1)
CLASSES = 1001


def _reduced_spec(name: str):
    spec = MODELS[name]
    return dataclasses.replace(spec, tf_kwargs={**spec.tf_kwargs, "repeats": REDUCED},
                               mx_kwargs={**spec.mx_kwargs, "repeats": REDUCED})


def _distinct_reduced() -> list[str]:
    """Registered names whose one-block-each networks differ (the default one is the reduced one)."""
    seen, names = set(), []
    for name in sorted(MODELS, key=lambda name: ("repeats" not in MODELS[name].mx_kwargs, name)):
        spec = _reduced_spec(name)
        key = (spec.tf, spec.mx, repr(sorted(spec.tf_kwargs.items())), repr(sorted(spec.mx_kwargs.items())))
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


def _checkpoint(tf_graph, mx_graph, folder, seed=11) -> str:
    """A TF checkpoint of seeded values (non-trivial moving statistics, betas and biases)."""
    from porting.core.match import match
    from porting.verifier import weights

    plan = weights.plan_transfer(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records))
    return weights.write_tf_checkpoint(tf_graph, weights.seeded_values(plan, seed), folder / "model.ckpt")


@pytest.fixture(scope="module")
def reduced_sides(tmp_path_factory):
    """name -> (TF graph, MXNet symbol, checkpoint) of each registered variant with one block of each kind."""
    from porting.frameworks import mx_reader, tf_reader
    from porting.frameworks.models import mx_builder, tf_builder

    built = {}
    for name in _distinct_reduced():
        spec = _reduced_spec(name)
        tf_graph = tf_reader.read_graph(tf_builder(spec), (SIZE, SIZE), CLASSES, 1, False)
        symbol = mx_builder(spec, (SIZE, SIZE))(CLASSES)
        mx_graph = mx_reader.read_symbol(symbol, (SIZE, SIZE), CLASSES)
        built[name] = (tf_graph, symbol, _checkpoint(tf_graph, mx_graph, tmp_path_factory.mktemp(name)))
    return built


def _expected_outputs(name: str) -> int:
    return 1 if "final_endpoint" in MODELS[name].mx_kwargs else 3  # a base network ends in one feature map


@pytest.mark.parametrize("name", _distinct_reduced())
def test_every_registered_variant_exports_and_agrees_with_mxnet_and_tf(name, reduced_sides, tmp_path):
    from porting.cli.convert import export_and_prove
    from porting.serving import onnx_export
    from porting.verifier.conversion import convert_tf_to_mx

    tf_graph, symbol, checkpoint = reduced_sides[name]
    prefix = str(tmp_path / "mx")
    conversion = convert_tf_to_mx(checkpoint, prefix, model=name, size=SIZE, tf_graph=tf_graph, symbol=symbol)
    path = tmp_path / f"{name}.onnx"
    proof = export_and_prove(conversion, prefix, 0, path)
    assert proof, proof.text()
    assert len(proof.checks) == _expected_outputs(name)
    for check in proof.checks:  # every output compared with both sides, not only with MXNet
        assert check.against_mx is not None and check.against_tf is not None, proof.text()
        assert check.against_tf.range > 0  # a zero output would prove nothing
    assert path.is_file()
    outputs = onnx_export.run_onnx(path, np.zeros((2, 3, SIZE, SIZE), np.float32))  # any batch size
    assert {value.shape[0] for value in outputs.values()} == {2}


def test_cli_end_to_end_writes_a_proven_onnx_file(reduced_sides, tmp_path, capsys, monkeypatch):
    from porting.cli.convert import main
    from porting.serving import onnx_export
    from porting.verifier import conversion

    name = "inception_resnet_v2_reduced"
    tf_graph, _, checkpoint = reduced_sides[name]
    monkeypatch.setattr(conversion, "_tf_graph", lambda tf_fn, size, classes: tf_graph)  # built once above
    onnx_path = tmp_path / "out" / "irv2.onnx"
    assert main(["--model", name, "--size", str(SIZE), "--tf-checkpoint", checkpoint, "--out",
                 str(tmp_path / "out" / "irv2"), "--onnx", str(onnx_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for output in ("InceptionResnetV2/Logits/Logits", "InceptionResnetV2/Logits/Predictions",
                   "InceptionResnetV2/AuxLogits/Logits"):
        assert output in out
    assert "onnxruntime vs MXNet" in out and "onnxruntime vs TF" in out and "PASS: 3/3 outputs" in out
    assert f"wrote {onnx_path}" in out

    mx = compat.import_mx()
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(tmp_path / "out" / "irv2"), 0)
    batch = np.random.default_rng(5).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    exported = onnx_export.run_onnx(onnx_path, batch)
    expected = onnx_export.mx_outputs(symbol, arg_params, aux_params, batch)
    for key, value in expected.items():
        np.testing.assert_allclose(exported[key], value, rtol=1e-4, atol=1e-4)


def test_a_failed_proof_is_a_table_that_says_fail():
    from porting.verifier.conversion import prove_export

    reference = {"logits": np.linspace(-3, 3, 10, dtype=np.float32)[None]}
    off = {"logits": reference["logits"] + np.float32(0.5)}
    proof = prove_export("onnxruntime", "x.onnx", off, reference, reference)
    assert not proof
    text = proof.text()
    assert "5.00e-01 FAIL" in text and "FAIL: 0/1 outputs" in text

    dropped = prove_export("onnxruntime", "x.onnx", {}, reference)
    assert not dropped and "FAIL (missing)" in dropped.text()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(name for name in MODELS if "repeats" not in MODELS[name].mx_kwargs))
def test_cli_on_the_full_depth_registered_variants(name, tmp_path, capsys, monkeypatch):
    """The registered networks as they are (10/20/9 blocks), through the command line at 107x107."""
    from porting.cli.convert import main
    from porting.frameworks import mx_reader, tf_reader
    from porting.frameworks.models import mx_builder, tf_builder
    from porting.verifier import conversion

    spec = MODELS[name]
    tf_graph = tf_reader.read_graph(tf_builder(spec), (SIZE, SIZE), CLASSES, 1, False)
    monkeypatch.setattr(conversion, "_tf_graph", lambda tf_fn, size, classes: tf_graph)  # built once, here
    mx_graph = mx_reader.read_symbol(mx_builder(spec, (SIZE, SIZE)), (SIZE, SIZE), CLASSES)
    checkpoint = _checkpoint(tf_graph, mx_graph, tmp_path)
    onnx_path = tmp_path / f"{name}.onnx"
    code = main(["--model", name, "--size", str(SIZE), "--tf-checkpoint", checkpoint, "--out",
                 str(tmp_path / "mx"), "--onnx", str(onnx_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"PASS: {_expected_outputs(name)}/{_expected_outputs(name)} outputs" in out
    assert onnx_path.is_file()
