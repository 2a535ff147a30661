"""The compatibility shims: each one is needed, and each one works."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from porting import compat

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_numpy_bool_alias_is_in_place():
    assert numpy.__dict__.get("bool") is numpy.bool_


def test_mxnet_imports_and_computes_after_the_shim():
    mx = compat.import_mx()
    out = (mx.nd.ones((2, 2)) * 3).asnumpy()
    assert out.sum() == 12.0
    assert mx.__version__ == "1.9.1"


def test_mxnet_import_fails_without_the_shim():
    # Proves the shim is needed at all with numpy 1.26 (PITFALLS #15).
    result = _run("import mxnet")
    assert result.returncode != 0
    assert "bool" in result.stderr


def test_slim_batch_norm_builds_with_the_tf_keras_alias():
    tf = compat.import_tf()
    slim = compat.import_slim()
    assert "tf_keras.legacy_tf_layers" in sys.modules
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3])
        net = slim.conv2d(images, 4, 3, normalizer_fn=slim.batch_norm, scope="conv")
        names = sorted(v.op.name for v in tf.compat.v1.global_variables())
    assert net.shape.as_list() == [1, 8, 8, 4]
    assert names == ["conv/BatchNorm/beta", "conv/BatchNorm/moving_mean", "conv/BatchNorm/moving_variance",
                     "conv/weights"]


def _fused_batch_norm(tf, slim, x, is_training: bool):
    """slim's own fused batch norm on ``x`` (NHWC, scale): its output and the moving mean after one run.

    ``updates_collections=None`` (update in place) takes slim's ``_fused_batch_norm``, not the
    Keras layer; it asks whether ``is_training`` is an ``ops.Tensor``, which TF 2.21 no longer has.
    """
    graph = tf.Graph()
    with graph.as_default():
        net = slim.batch_norm(tf.constant(x), decay=0.5, epsilon=1e-3, scale=True, fused=True,
                              is_training=is_training, updates_collections=None, scope="bn")
        ops = {op.type for op in graph.get_operations()}
        (moving_mean,) = [v for v in tf.compat.v1.global_variables() if v.op.name == "bn/moving_mean"]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            out = session.run(net)
            return out, session.run(moving_mean), ops


def test_fused_batch_norm_path_runs_with_the_ops_tensor_alias():
    tf = compat.import_tf()
    slim = compat.import_slim()
    x = numpy.random.RandomState(0).uniform(-2, 3, (2, 3, 3, 2)).astype(numpy.float32)
    inference, moving_mean, ops = _fused_batch_norm(tf, slim, x, is_training=False)
    assert "FusedBatchNormV3" in ops
    numpy.testing.assert_allclose(inference, x / numpy.sqrt(1 + 1e-3), rtol=1e-5)  # moving mean 0, variance 1
    numpy.testing.assert_array_equal(moving_mean, 0.0)
    training, moving_mean, ops = _fused_batch_norm(tf, slim, x, is_training=True)
    assert "FusedBatchNormV3" in ops
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    numpy.testing.assert_allclose(training, (x - mean) / numpy.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(moving_mean, 0.5 * mean, rtol=1e-5)  # decay 0.5 from 0: updated in place


def test_fused_batch_norm_fails_without_the_ops_tensor_alias():
    # Proves the alias is needed at all with TF 2.21 (it has no ops.Tensor).
    code = ("from porting import compat; import tensorflow as tf; compat._alias_tf_keras()\n"
            "from tensorflow.python.framework import ops; assert not hasattr(ops, 'Tensor')\n"
            "import tf_slim as slim\n"
            "with tf.Graph().as_default():\n"
            "    x = tf.compat.v1.placeholder(tf.float32, [1, 2, 2, 1])\n"
            "    slim.batch_norm(x, fused=True, is_training=True, updates_collections=None)\n")
    result = _run(code)
    assert result.returncode != 0
    assert "AttributeError" in result.stderr and "'Tensor'" in result.stderr


def _clean_env(**overrides) -> dict:
    """The test's own environment: none of the caller's TF, MXNet or porting settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TF_", "MXNET_", "PORTING_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


@pytest.mark.parametrize("exported", [None, "3"], ids=["log-level-unset", "log-level-3-exported"])
def test_both_frameworks_in_one_process_and_quiet_tf_logs(exported):
    code = ("from porting import compat; tf = compat.import_tf(); mx = compat.import_mx(); "
            "import os; print(tf.__version__, mx.__version__, os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    env = _clean_env(**({"TF_CPP_MIN_LOG_LEVEL": exported} if exported else {}))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    # compat's default is 2; a value the user exported is kept.
    assert result.stdout.split() == ["2.21.0", "1.9.1", exported or "2"]
    assert result.stderr == ""  # no start-up line of either framework


def test_fast_graph_building_only_inside_a_plain_graph_and_restored():
    tf = compat.import_tf()
    from tensorflow.python.framework import tensor as tensor_lib

    assert tensor_lib.Tensor._USE_EQUALITY is True
    with compat.fast_graph_building():  # eager at top level: left alone
        assert tensor_lib.Tensor._USE_EQUALITY is True
    graph = tf.Graph()
    with graph.as_default():
        with compat.fast_graph_building():
            assert tensor_lib.Tensor._USE_EQUALITY is False
            variable = tf.compat.v1.get_variable("v", [2])
            assert hash(variable) == id(variable)
        try:
            with compat.fast_graph_building():
                raise RuntimeError("builder failed")
        except RuntimeError:
            pass
    assert tensor_lib.Tensor._USE_EQUALITY is True


def test_no_subgraph_fusion_binds_internals_around_conv_bn_add_and_restores():
    import os

    import numpy as np

    mx = compat.import_mx()
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data, kernel=(3, 3), pad=(1, 1), num_filter=3, no_bias=True, name="conv")
    bn = mx.sym.BatchNorm(conv, fix_gamma=False, name="bn")
    net = mx.sym.Activation(bn + data, act_type="relu", name="out")
    group = mx.sym.Group([conv, bn, net])
    shapes = {"data": (1, 3, 6, 6)}
    arg_shapes, _, aux_shapes = group.infer_shape(**shapes)
    rng = np.random.RandomState(0)
    args = {n: mx.nd.array(rng.rand(*s)) for n, s in zip(group.list_arguments(), arg_shapes)}
    aux = {n: mx.nd.array(rng.rand(*s) + 0.5) for n, s in zip(group.list_auxiliary_states(), aux_shapes)}
    before = os.environ.get("MXNET_SUBGRAPH_BACKEND")
    with compat.no_subgraph_fusion():
        assert os.environ["MXNET_SUBGRAPH_BACKEND"] == "NONE"
        outputs = group.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null").forward(is_train=False)
        values = [o.asnumpy() for o in outputs]
    assert os.environ.get("MXNET_SUBGRAPH_BACKEND") == before
    assert values[2].shape == (1, 3, 6, 6) and np.isfinite(values[2]).all()
