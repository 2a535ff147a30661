"""compat.onnx_initialisers_as_inputs / import_onnx_to_mx: MXNet 1.9.1's importer on IR-4 style ONNX.

The model is written with the real ``onnx`` helpers: a 3x3 convolution whose weight and bias are
initialisers that are *not* listed as graph inputs (as tf2onnx writes them). MXNet's importer fails
on it as is; after the rewrite it imports, and the imported symbol computes onnxruntime's numbers.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from porting import compat


def _model():
    onnx = compat.import_onnx()
    helper = onnx.helper
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(size=(4,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "conv",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 6, 6])],
        initializer=[onnx.numpy_helper.from_array(weight, "w"), onnx.numpy_helper.from_array(bias, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_the_importer_fails_as_is_and_imports_after_the_rewrite():
    model = _model()
    compat.import_mx()
    from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

    with pytest.raises(KeyError), contextlib.redirect_stdout(io.StringIO()):
        GraphProto().from_onnx(model.graph, opset_version=13)
    fixed = compat.onnx_initialisers_as_inputs(model)
    assert [value.name for value in fixed.graph.input] == ["x", "w", "b"]
    assert [value.name for value in model.graph.input] == ["x"]  # the caller's model is left as it was
    assert compat.onnx_initialisers_as_inputs(fixed).graph.input == fixed.graph.input  # idempotent


def test_the_imported_symbol_computes_what_onnxruntime_computes(capsys):
    import onnxruntime

    mx = compat.import_mx()
    model = _model()
    symbol, args, aux = compat.import_onnx_to_mx(model)
    assert capsys.readouterr().out == ""  # the importer's banner does not reach stdout
    x = np.random.default_rng(4).normal(size=(1, 3, 6, 6)).astype(np.float32)
    bound = dict(args, x=mx.nd.array(x))
    out = symbol.bind(mx.cpu(), args=bound, aux_states=aux).forward()[0].asnumpy()
    expected = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
