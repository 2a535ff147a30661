"""The TF side from model files (porting/frameworks/tf_files.py): one kind per test, input and logits found.

The tiny slim network (tests/support/tiny_tf.py) is written with seeded weights as a checkpoint
with its .meta, a frozen .pb and a SavedModel (tests/support/tf_model_files.py); each file is
compared with the network's MXNet port (tests/support/tiny_mx.py, a builder without weights)
with ``numeric=True``: the file's own weights go into MXNet and every layer agrees.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from porting import compat
from porting.frameworks import tf_files, tf_variables
from porting.util import UsageError
from porting.verifier.api import verify
from tests.support import tf_model_files, tiny_mx

tf = compat.import_tf()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tf_files")
    written = tf_model_files.write_all(folder)
    written["two_heads"] = tf_model_files.two_heads(folder / "two_heads.pb")
    written["two_inputs"] = tf_model_files.two_inputs(folder / "two_inputs.pb")
    return written


def _frozen_logits(path: str, images: np.ndarray) -> np.ndarray:
    """The frozen graph's logits, run by TF itself (the reference the numeric pass must agree with)."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run("Tiny/Logits/BiasAdd:0", {"images:0": images})


@pytest.mark.parametrize("kind", ["checkpoint", "meta", "frozen", "saved_model"])
def test_each_file_kind_is_one_frozen_graph_whose_own_weights_reach_mxnet(files, kind):
    result = verify(tf=files[kind], mx=tiny_mx.build, numeric=True)
    assert result, result.report()
    graph = result.tf_graph
    assert graph.own_weights and graph.images.shape.as_list() == [1, 8, 8, 3]  # the open batch fed at 1
    assert graph.logits.op.name == "Tiny/Logits/BiasAdd"  # the softmax's input, found without --tf-output
    assert not [op for op in graph.graph.get_operations() if op.type in ("VariableV2", "VarHandleOp")]
    # The conv weight, its bias and the dense layer's weight and bias: frozen constants read as variables.
    assert sorted(tf_variables.graph_variables(graph.graph)) == [
        "Tiny/Conv2d_1a_3x3/biases", "Tiny/Conv2d_1a_3x3/weights", "Tiny/Logits/biases", "Tiny/Logits/weights"]
    numeric = result.numeric
    assert numeric["weights"] == "the TF model file's own weights" and numeric["layers"] == 5
    assert numeric["transfer"]["set"] == 4 and not numeric["transfer"]["problems"]
    assert result.framework_params == {"tf": 269, "mx": 269}


def test_the_weights_compared_are_the_files_not_seeded_ones(files):
    """The TF side computes what the frozen file computes by itself, and MXNet agrees with it layer by layer."""
    from porting.verifier import parity

    result = verify(tf=files["frozen"], mx=tiny_mx.build, numeric=True, seed=3)
    images = parity.seeded_input([1, 8, 8, 3], 3)
    expected = _frozen_logits(files["frozen"], images)
    assert np.abs(expected).max() > 0.1  # non-trivial logits: the comparison could fail
    graph = result.tf_graph
    with tf.compat.v1.Session(graph=graph.graph) as session:  # nothing to initialise: the weights are in the graph
        ours = session.run(graph.logits, {graph.images: images})
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)
    logits = result.numeric_report.layer("Tiny/Logits")
    assert logits is not None and logits.result and result.numeric_report.passed
    assert result.numeric_report.transfer.as_dict()["counts"] == {"hwio_to_oihw": 1, "identity": 2, "dense_to_mx": 1}


def test_a_size_the_file_fixes_is_kept_and_a_different_one_refused(files):
    with pytest.raises(UsageError, match=r"--size 16x16: the input of .* is fixed at 8x8"):
        verify(tf=files["frozen"], mx=tiny_mx.build, size=16)
    result = verify(tf=files["frozen"], mx=tiny_mx.build, batch=2, lint=False)
    assert result.tf_graph.images.shape.as_list() == [2, 8, 8, 3]


def test_several_logits_are_ambiguous_until_one_is_named(files):
    with pytest.raises(UsageError) as error:
        verify(tf=files["two_heads"], mx=tiny_mx.build)
    message = str(error.value)
    assert "2 candidate outputs" in message and "Tiny/Logits/BiasAdd" in message and "Aux/BiasAdd" in message
    assert "--tf-output" in message
    result = verify(tf=files["two_heads"], mx=tiny_mx.build, tf_output="Tiny/Logits/BiasAdd:0")
    assert result, result.report()
    with pytest.raises(UsageError, match="--tf-output Nope: no such op .* candidate outputs: Tiny/Logits/BiasAdd"):
        verify(tf=files["two_heads"], mx=tiny_mx.build, tf_output="Nope")


def test_several_image_inputs_are_ambiguous_until_one_is_named(files):
    with pytest.raises(UsageError, match=r"2 image inputs \(images \?x8x8x3, thumbnail \?x4x4x3\).*--tf-input"):
        verify(tf=files["two_inputs"], mx=tiny_mx.build)
    assert verify(tf=files["two_inputs"], mx=tiny_mx.build, tf_input="images")
    with pytest.raises(UsageError, match="no rank-2 .* output depends on the input thumbnail"):
        verify(tf=files["two_inputs"], mx=tiny_mx.build, tf_input="thumbnail")


def test_file_options_need_a_file_and_kinds_are_detected_without_tensorflow(files, tmp_path):
    assert tf_files.file_kind(files["checkpoint"]) == "checkpoint"
    assert tf_files.file_kind(files["meta"]) == "checkpoint"
    assert tf_files.file_kind(files["frozen"]) == "frozen"
    assert tf_files.file_kind(files["saved_model"]) == "savedmodel"
    assert tf_files.file_kind(tmp_path) is None
    with pytest.raises(UsageError, match="--tf-input applies to a TF model file"):
        verify(tf="tests/support/tiny_tf.py:build", mx=tiny_mx.build, tf_input="images", size=8)


def test_the_compare_command_takes_a_model_file(files, capsys):
    from porting.cli import compare as compare_cli

    code = compare_cli.main(["--tf", files["frozen"], "--mx", "tests/support/tiny_mx.py:build", "--numeric",
                             "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    import json

    report = json.loads(out)
    assert report["title"].startswith("frozen.pb vs build at 8x8, 5 classes")
    assert report["numeric"]["passed"] and report["numeric"]["weights"] == "the TF model file's own weights"


def test_a_graph_that_would_write_a_file_is_refused_and_writes_nothing(tmp_path):
    marker = tmp_path / "written_by_the_graph.txt"
    path = tf_model_files.writes_a_file(tmp_path / "writes.pb", marker)
    with pytest.raises(UsageError, match=r"holds ops that touch files or run Python: WriteFile \(WriteFile\)"):
        verify(tf=path, mx=tiny_mx.build, numeric=True)
    assert not marker.exists()
