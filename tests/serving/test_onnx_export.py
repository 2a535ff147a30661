"""``porting.serving.onnx_export``: the exported file computes what MXNet computes, in onnxruntime.

Every registered variant (its own options, one block of each kind, so the default network is
the reduced one and runs once) at 107x107 with random
weights and gammas != 1 stored, run at batch 2 (the file's batch axis is dynamic); the
``fix_gamma`` trap against MXNet's bare exporter; each padded pooling form of
``porting.frameworks.mx_ops`` (symmetric, ``pooling_convention='full'``, -inf pad op, masked
average) against MXNet and TF; the pool rewrite onnxruntime needs for pads not smaller than
the kernel (MXNet itself refuses such a pool, so it is proven on a hand-built ONNX graph
against numpy); the clear errors. TF-side comparisons of whole networks are in
tests/cli/test_convert_onnx.py.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from porting import compat
from porting.core.tolerances import compare_arrays
from porting.frameworks import mx_ops
from porting.frameworks.models import MODELS, mx_builder
from porting.serving import onnx_export

mx = compat.import_mx()

SIZE = 107  # the smallest size near 100 at which every variant keeps its AuxLogits head
REDUCED = (1, 1, 1)


def _random_params(symbol, shape, seed=0):
    """Arguments ~ N(0, 0.1) (so stored gammas are far from 1), moving variances in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=shape)
    args = {name: rng.normal(0.0, 0.1, s).astype(np.float32)
            for name, s in zip(symbol.list_arguments(), arg_shapes) if name != "data"}
    aux = {name: rng.uniform(0.5, 1.5, s).astype(np.float32)
           for name, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return args, aux


def _reduced_symbol(name: str):
    spec = MODELS[name]
    spec = dataclasses.replace(spec, mx_kwargs={**spec.mx_kwargs, "repeats": REDUCED})
    return mx_builder(spec, (SIZE, SIZE))(10)


def _assert_same(reference: dict, candidate: dict):
    assert list(candidate) == list(reference)
    for name in reference:
        result = compare_arrays(reference[name], candidate[name], name=name)
        assert result, result.line()


def _distinct_reduced() -> list[str]:
    """Registered names whose one-block-each MXNet networks differ (the default one is the reduced one)."""
    by_network = {}
    for name in sorted(MODELS, key=lambda name: ("repeats" not in MODELS[name].mx_kwargs, name)):
        spec = MODELS[name]
        by_network.setdefault((spec.mx, repr(sorted({**spec.mx_kwargs, "repeats": REDUCED}.items()))), name)
    return list(by_network.values())


@pytest.mark.parametrize("name", _distinct_reduced())
def test_every_registered_variant_exports_and_runs_like_mxnet(name, tmp_path):
    symbol = _reduced_symbol(name)
    args, aux = _random_params(symbol, (1, 3, SIZE, SIZE))
    path = onnx_export.export_onnx(symbol, args, aux, (1, 3, SIZE, SIZE), tmp_path / f"{name}.onnx")
    assert path == tmp_path / f"{name}.onnx" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    batch = np.random.default_rng(1).uniform(-1, 1, (2, 3, SIZE, SIZE)).astype(np.float32)
    mx_values = onnx_export.mx_outputs(symbol, args, aux, batch)
    exported = onnx_export.run_onnx(path, batch)
    assert all(np.abs(value).max() > 0 for value in exported.values())  # a zero output would prove nothing
    _assert_same(mx_values, exported)


def test_fix_gamma_batch_norms_export_with_gamma_one(tmp_path):
    """MXNet ignores stored gammas under fix_gamma=True; its exporter does not, so they are pinned to 1."""
    data = mx.sym.var("data")
    net = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv")
    net = mx.sym.BatchNorm(net, fix_gamma=True, eps=1e-3, name="bn_fixed")
    net = mx.sym.BatchNorm(net, fix_gamma=False, eps=1e-3, name="bn_learned")
    symbol = mx.sym.relu(net, name="out")
    shape = (1, 3, 8, 8)
    args, aux = _random_params(symbol, shape)
    args["bn_fixed_gamma"] = np.full(4, 60.0, np.float32)
    args["bn_learned_gamma"] = np.full(4, 3.0, np.float32)
    assert onnx_export.fixed_gamma_names(symbol) == ["bn_fixed_gamma"]
    params, pinned = onnx_export.export_params(symbol, args, aux)
    assert pinned == ["bn_fixed_gamma"] and np.all(params["bn_fixed_gamma"] == 1)
    assert np.all(params["bn_learned_gamma"] == 3)  # a learned gamma is kept

    batch = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    mx_values = onnx_export.mx_outputs(symbol, args, aux, batch)
    _assert_same(mx_values, onnx_export.run_onnx(
        onnx_export.export_onnx(symbol, args, aux, shape, tmp_path / "pinned.onnx"), batch))

    # The trap itself: MXNet's exporter alone writes the stored gamma and is far off.
    nd_params = {name: mx.nd.array(value) for name, value in {**args, **aux}.items()}
    bare = mx.onnx.export_model(symbol, nd_params, [shape], [np.float32], str(tmp_path / "bare.onnx"))
    bare_out = onnx_export.run_onnx(bare, batch)["out"]
    assert np.abs(bare_out - mx_values["out"]).max() > 1.0


def _tf_pool(op, images_nchw, kernel, stride):
    tf = compat.import_tf()
    pool = tf.nn.max_pool2d if op == "max" else tf.nn.avg_pool2d
    out = pool(np.transpose(images_nchw, (0, 2, 3, 1)), kernel, stride, "SAME").numpy()
    return np.transpose(out, (0, 3, 1, 2))


@pytest.mark.parametrize("op, size, kernel, stride, method", [
    ("avg", 8, 3, 1, "symmetric"),
    ("max", 8, 3, 2, "full"),        # align_feature_maps' MaxPool_3a: pooling_convention='full'
    ("avg", 12, 5, 2, "full"),       # 'full' with pad=1 and count_include_pad=False
    ("max", 8, 2, 1, "pad_op"),      # explicit -inf pad op, then the pool
    ("avg", 8, 2, 1, "masked_avg"),  # zero pad op, pool, divided by the pooled mask of ones
])
def test_padded_pooling_forms_match_mxnet_and_tf(op, size, kernel, stride, method, tmp_path):
    from porting.padding import plan

    assert plan(op, size, kernel, stride, "SAME").method == method
    symbol = mx_ops.tf_pool2d(mx.sym.var("data"), op, size, kernel, stride, "SAME", name="pool")
    shape = (2, 3, size, size)
    path = onnx_export.export_onnx(symbol, {}, {}, shape, tmp_path / "pool.onnx")
    batch = np.random.default_rng(3).normal(size=shape).astype(np.float32) - 2.0  # negative: a 0 pad would show
    exported = onnx_export.run_onnx(path, batch)
    _assert_same(onnx_export.mx_outputs(symbol, {}, {}, batch), exported)
    result = compare_arrays(_tf_pool(op, batch, kernel, stride), exported["pool"], name="pool vs TF")
    assert result, result.line()


def _pool_model(op_type: str, pads, kernel=2, stride=2, **attributes):
    from onnx import TensorProto, helper

    node = helper.make_node(op_type, ["x"], ["y"], name="pool", kernel_shape=[kernel, kernel], strides=[stride] * 2,
                            pads=list(pads), **attributes)
    graph = helper.make_graph([node], "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, None, None])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _numpy_max_pool(x, pads, kernel, stride):
    padded = np.pad(x, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])], constant_values=-np.inf)
    rows = (padded.shape[2] - kernel) // stride + 1
    cols = (padded.shape[3] - kernel) // stride + 1
    out = np.empty((1, 1, rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            out[0, 0, i, j] = np.max(padded[0, 0, i * stride:i * stride + kernel, j * stride:j * stride + kernel])
    return out


def test_max_pools_with_pads_not_smaller_than_the_kernel_become_a_pad_node(tmp_path):
    import onnx

    pads = (2, 1, 2, 2)  # (top, left, bottom, right), kernel 2: onnxruntime refuses the pool as it is
    model = _pool_model("MaxPool", pads)
    refused = tmp_path / "refused.onnx"
    onnx.save(model, refused)
    with pytest.raises(onnx_export.OnnxExportError, match="Pad should be smaller than kernel"):
        onnx_export.OnnxSession(refused)

    assert onnx_export.explicit_pool_pads(model) == ["pool"]
    assert [node.op_type for node in model.graph.node] == ["Pad", "MaxPool"]
    onnx.checker.check_model(model)
    rewritten = tmp_path / "rewritten.onnx"
    onnx.save(model, rewritten)
    x = np.random.default_rng(4).normal(size=(1, 1, 5, 5)).astype(np.float32) - 3.0
    got = onnx_export.run_onnx(rewritten, x)["y"]
    np.testing.assert_array_equal(got, _numpy_max_pool(x, pads, 2, 2))


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pools_with_pads_not_smaller_than_the_kernel_are_refused(count_include_pad):
    model = _pool_model("AveragePool", (2, 2, 2, 2), count_include_pad=count_include_pad)
    with pytest.raises(onnx_export.OnnxExportError, match=r"layer pool: an average pool with pads \[2, 2, 2, 2\]"):
        onnx_export.explicit_pool_pads(model)


def test_parameters_are_initialisers_not_inputs(tmp_path):
    import onnx

    symbol = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
    args, aux = _random_params(symbol, (1, 4))
    model = onnx.load(onnx_export.export_onnx(symbol, args, aux, (1, 4), tmp_path / "fc.onnx"))
    assert [value.name for value in model.graph.input] == ["data"]
    assert {initializer.name for initializer in model.graph.initializer} >= {"fc_weight", "fc_bias"}


def test_an_op_the_exporter_lacks_is_a_clear_error_and_writes_nothing(tmp_path):
    symbol = mx.sym.contrib.AdaptiveAvgPooling2D(mx.sym.var("data"), output_size=2, name="adaptive")
    with pytest.raises(onnx_export.OnnxExportError, match="ONNX exporter cannot export this model"):
        onnx_export.export_onnx(symbol, {}, {}, (1, 3, 8, 8), tmp_path / "adaptive.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("found", [None, "1.23.0"])
def test_the_onnx_version_error_names_the_pinned_release(found):
    with pytest.raises(onnx_export.OnnxExportError) as error:
        onnx_export.check_onnx_version(found)
    message = str(error.value)
    assert f"onnx=={onnx_export.ONNX_VERSION}" in message and "protobuf" not in message
    assert (found or "not installed") in message


def test_the_installed_onnx_passes_the_check():
    onnx_export.check_onnx_version(onnx_export.installed_version("onnx"))
    assert onnx_export.import_onnx().__version__ == onnx_export.ONNX_VERSION


def test_providers_prefer_cuda_and_always_include_the_cpu():
    ort = onnx_export.import_onnxruntime()
    providers = onnx_export.available_providers()
    assert providers[-1] == "CPUExecutionProvider"
    assert providers == [name for name in onnx_export.PREFERRED_PROVIDERS if name in ort.get_available_providers()]
