"""The pinned frameworks coexist: onnx, onnxruntime, tf2onnx, TensorFlow, tf-keras and MXNet import in one
process, at the versions pyproject.toml pins, and each works (protobuf included: onnx and TF share it)."""
from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import numpy as np
import pytest

from porting import compat

ROOT = Path(__file__).resolve().parents[2]

#: distribution -> the module it installs.
FRAMEWORKS = {"onnx": "onnx", "onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx", "tensorflow": "tensorflow",
              "tf-keras": "tf_keras", "mxnet": "mxnet"}


def _pins() -> dict[str, str]:
    """pyproject.toml's ``name==version`` dependencies."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for requirement in dependencies:
        name, separator, version = requirement.partition("==")
        assert separator, f"{requirement!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def imported():
    """Every framework imported into this one process, the shims first."""
    compat.import_tf()
    compat.import_mx()
    import onnx
    import onnxruntime
    import tf2onnx
    import tf_keras

    return {"onnx": onnx, "onnxruntime": onnxruntime, "tf2onnx": tf2onnx, "tf_keras": tf_keras}


@pytest.mark.parametrize("distribution", list(FRAMEWORKS))
def test_installed_version_is_the_pin(distribution, imported):
    pins = _pins()
    assert distribution in pins, f"{distribution} is not pinned in pyproject.toml"
    assert importlib.metadata.version(distribution) == pins[distribution]
    module = __import__(FRAMEWORKS[distribution])
    assert module.__version__.split("+")[0] == pins[distribution]  # the module loaded is the one installed


def test_the_export_module_names_the_pinned_releases():
    from porting.serving import onnx_export

    pins = _pins()
    assert onnx_export.ONNX_VERSION == pins["onnx"]
    assert onnx_export.ONNXRUNTIME_VERSION == pins["onnxruntime"]


def test_protobuf_is_shared_and_each_framework_runs(imported, tmp_path):
    """An ONNX model built with onnx, checked and run by onnxruntime, while TF and MXNet compute."""
    from onnx import TensorProto, helper

    onnx, ort = imported["onnx"], imported["onnxruntime"]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.array([-1.0, 2.0], np.float32)})[0].tolist() == [0.0, 2.0]

    tf, mx = compat.import_tf(), compat.import_mx()
    assert float(tf.reduce_sum(tf.constant([1.0, 2.0]))) == 3.0
    assert float((mx.nd.ones((2,)) * 2).sum().asscalar()) == 4.0
    assert imported["tf2onnx"].tf_loader is not None  # tf2onnx's TF side loaded against this TF
