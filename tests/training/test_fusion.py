"""porting.training.fusion: batch norm + ReLU as one oneDNN operator, only where one step proves it exact.

MXNet 1.9.1's ``BatchNormWithReLU`` has a backward that is wrong on a plain-layout input; the
tests pin both sides of that: where the fusion is proved it trains exactly like the plain symbol,
and where MXNet gets it wrong the proof refuses it.
"""
from __future__ import annotations

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

from porting.training import fusion, network  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME  # noqa: E402


def _ops(sym) -> list[str]:
    import json

    return [node["op"] for node in json.loads(sym.tojson())["nodes"]]


def _conv_bn_relu(first, channels: int = 32):
    """data -> ``first`` -> batch norm -> ReLU -> 3x3 conv -> a small softmax head (a training symbol)."""
    data = mx.sym.var("data")
    x = mx.sym.BatchNorm(first(data), fix_gamma=True, eps=1e-3, name="bn")
    x = mx.sym.Activation(x, act_type="relu", name="relu")
    x = mx.sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=channels, no_bias=True, name="conv2")
    x = mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg")),
                              num_hidden=5, name="fc")
    return mx.sym.SoftmaxOutput(x, name="softmax")


def _conv(kernel, channels: int = 32):
    pad = tuple(k // 2 for k in kernel)
    return lambda data: mx.sym.Convolution(data, kernel=kernel, pad=pad, num_filter=channels, no_bias=True,
                                           name="conv1")


def _step(sym, shapes: dict) -> dict:
    """Outputs and gradients of one seeded training step."""
    ex = sym.simple_bind(mx.cpu(), grad_req={n: "null" if n in shapes else "write" for n in sym.list_arguments()},
                         **shapes)
    rng = np.random.default_rng(0)
    for name in sorted(ex.arg_dict):
        ex.arg_dict[name][:] = (np.zeros(shapes[name]) if name == LABEL_NAME
                                else rng.normal(0, 0.1 if name != "data" else 1.0, ex.arg_dict[name].shape))
    mx.random.seed(0)
    out = {f"out{i}": o.asnumpy() for i, o in enumerate(ex.forward(is_train=True))}
    ex.backward()
    out.update((name, g.asnumpy()) for name, g in ex.grad_dict.items() if g is not None)
    return out


def test_fusion_keeps_parameters_states_and_outputs_and_drops_the_relus():
    sym = network.build_symbol(10, (32, 32), repeats=(1, 1, 1), align_feature_maps=True)
    fused, pairs = fusion.fuse_batch_norm_relu(sym)
    assert fused.list_arguments() == sym.list_arguments()
    assert fused.list_auxiliary_states() == sym.list_auxiliary_states()
    assert fused.list_outputs() == sym.list_outputs()
    ops, before = _ops(fused), _ops(sym)
    # every batch norm of Inception-ResNet-v2 feeds a ReLU and nothing else
    assert pairs == before.count("BatchNorm") == ops.count(fusion.BN_RELU_OP) > 0 and "BatchNorm" not in ops
    assert ops.count("Activation") == before.count("Activation") - pairs


def test_only_a_batch_norm_that_only_a_relu_reads_is_fused():
    data = mx.sym.var("data")
    norm = mx.sym.BatchNorm(data, name="bn")
    both = mx.sym.Group([mx.sym.Activation(norm, act_type="relu"), norm])  # its output is also returned
    tanh = mx.sym.Activation(mx.sym.BatchNorm(data, name="bn2"), act_type="tanh")
    other_axis = mx.sym.Activation(mx.sym.BatchNorm(data, axis=3, name="bn3"), act_type="relu")
    for sym in (both, tanh, other_axis):
        assert fusion.fuse_batch_norm_relu(sym) == (sym, 0)


def test_where_proved_the_fused_step_is_the_plain_step():
    sym = _conv_bn_relu(_conv((3, 3)))
    shapes = {"data": (4, 16, 8, 8), LABEL_NAME: (4,)}
    chosen, proof = fusion.proven_fusion(sym, [mx.cpu()], shapes["data"], shapes[LABEL_NAME], isolated=False)
    assert proof.holds and proof.pairs == 1 and fusion.BN_RELU_OP in _ops(chosen), proof.describe()
    plain, fused = _step(sym, shapes), _step(chosen, shapes)
    for name in plain:  # compared whole, not by the proof's fingerprints
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert "1 batch norms fused" in proof.describe()


@pytest.mark.parametrize("first", [lambda data: data, lambda data: data * 2.0], ids=["data", "elementwise"])
def test_mxnet_gets_the_fused_backward_wrong_on_a_plain_input_and_the_proof_refuses_it(first):
    sym = _conv_bn_relu(first)
    shapes = {"data": (4, 32, 8, 8), LABEL_NAME: (4,)}
    fused, _ = fusion.fuse_batch_norm_relu(sym)
    plain, wrong = _step(sym, shapes), _step(fused, shapes)
    np.testing.assert_allclose(wrong["out0"], plain["out0"], rtol=1e-5, atol=1e-6)  # the forward is right
    error = np.abs(wrong["bn_beta"] - plain["bn_beta"]).max() / np.abs(plain["bn_beta"]).max()
    assert error > 0.1  # the backward is not: MXNet 1.9.1's bug, not rounding (a fixed MXNet fails this line)
    chosen, proof = fusion.proven_fusion(sym, [mx.cpu()], shapes["data"], shapes[LABEL_NAME], isolated=False)
    assert chosen is sym and not proof.holds and proof.worst > 0.1
    assert "not fused" in proof.describe() and proof.where


def test_the_proof_runs_in_a_child_process_by_default():
    shapes = {"data": (4, 16, 8, 8), LABEL_NAME: (4,)}
    good = _conv_bn_relu(_conv((3, 3)))
    chosen, proof = fusion.proven_fusion(good, [mx.cpu()], shapes["data"], shapes[LABEL_NAME])
    assert proof.holds and fusion.BN_RELU_OP in _ops(chosen)
    bad = _conv_bn_relu(lambda data: data, channels=16)
    chosen, proof = fusion.proven_fusion(bad, [mx.cpu()], shapes["data"], shapes[LABEL_NAME])
    assert chosen is bad and not proof.holds and proof.failed is None
    # a child that cannot run the step (a 3-d input for a 2-d convolution): no proof, no fusion
    chosen, proof = fusion.proven_fusion(good, [mx.cpu()], (4, 16, 8), shapes[LABEL_NAME])
    assert chosen is good and proof.failed and "fusion check" in proof.describe()


def test_the_check_is_no_member_of_a_distributed_run(monkeypatch):
    """A worker's check runs alone: with DMLC_ROLE=server inherited, MXNet's import would start serving."""
    for key, value in {"DMLC_ROLE": "server", "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "1",
                       "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "1"}.items():
        monkeypatch.setenv(key, value)
    chosen, proof = fusion.proven_fusion(_conv_bn_relu(_conv((3, 3))), [mx.cpu()], (4, 16, 8, 8), (4,))
    assert proof.holds, proof.describe()


def test_no_fusion_on_a_gpu_or_without_onednn(monkeypatch):
    sym = _conv_bn_relu(_conv((3, 3)))
    chosen, proof = fusion.proven_fusion(sym, [mx.gpu(0)], (4, 16, 8, 8), (4,))  # builds nothing on the GPU
    assert chosen is sym and "GPU" in proof.describe()
    monkeypatch.setenv("MXNET_MKLDNN_ENABLED", "0")
    chosen, proof = fusion.proven_fusion(sym, [mx.cpu()], (4, 16, 8, 8), (4,))
    assert chosen is sym and "oneDNN" in proof.describe()
