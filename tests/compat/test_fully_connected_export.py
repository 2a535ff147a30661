"""compat.fully_connected_flatten_written: MXNet 1.9.1's ONNX exporter on a dense layer with the default flatten.

The exporter reads an unset ``flatten`` as False and writes ``Flatten(axis=-1)`` + Gemm + a
run-time ``Reshape``: on a rank-4 input that flattens the wrong axes, and MXNet's own importer
refuses the file. Written out, the dense layer exports as ``Flatten`` + ``Gemm``, computes what
MXNet computes in onnxruntime and imports back through MXNet's importer.
"""
from __future__ import annotations

import numpy as np
import pytest

from porting import compat
from porting.serving import onnx_export

mx = compat.import_mx()
SHAPE = (1, 3, 4, 4)


def _dense():
    return mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=5, name="fc")  # flatten left at its default


def _params():
    rng = np.random.default_rng(2)
    return {"fc_weight": rng.normal(size=(5, 48)).astype(np.float32),
            "fc_bias": rng.normal(size=(5,)).astype(np.float32)}


def _mx_forward(symbol, args, x):
    bound = {name: mx.nd.array(value) for name, value in args.items()}
    bound["data"] = mx.nd.array(x)
    return symbol.bind(mx.cpu(), args=bound).forward()[0].asnumpy()


def test_the_bare_exporter_reads_the_default_flatten_as_false(tmp_path):
    onnx = compat.import_onnx()
    path = tmp_path / "bare.onnx"
    nd = {name: mx.nd.array(value) for name, value in _params().items()}
    with compat.quiet_native_stderr():
        mx.onnx.export_model(_dense(), nd, [SHAPE], [np.float32], str(path), verbose=False)
    model = onnx.load(str(path))
    flatten = [node for node in model.graph.node if node.op_type == "Flatten"]
    assert [onnx.helper.get_attribute_value(a) for a in flatten[0].attribute if a.name == "axis"] == [-1]
    assert "Reshape" in {node.op_type for node in model.graph.node}
    with pytest.raises(RuntimeError, match="Flatten operator only supports axis=1"):
        compat.import_onnx_to_mx(model)


def test_written_out_the_dense_layer_exports_runs_and_imports_back(tmp_path):
    symbol = compat.fully_connected_flatten_written(_dense())
    assert symbol.attr_dict()["fc"]["flatten"] == "True"
    assert compat.fully_connected_flatten_written(symbol) is symbol  # nothing unset: the same symbol
    args = _params()
    x = np.random.default_rng(3).normal(size=SHAPE).astype(np.float32)
    expected = _mx_forward(_dense(), args, x)
    path = onnx_export.export_onnx(_dense(), args, {}, SHAPE, tmp_path / "dense.onnx")  # applies the shim
    onnx = compat.import_onnx()
    model = onnx.load(str(path))
    assert [node.op_type for node in model.graph.node] == ["Flatten", "Gemm"]
    (ran,) = onnx_export.run_onnx(path, x).values()
    np.testing.assert_allclose(ran, expected, rtol=1e-5, atol=1e-5)
    imported, imported_args, _ = compat.import_onnx_to_mx(model)
    inputs = [name for name in imported.list_arguments() if name not in imported_args]
    bound = {name: value for name, value in imported_args.items()}
    bound[inputs[0]] = mx.nd.array(x)
    out = imported.bind(mx.cpu(), args=bound).forward()[0].asnumpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
