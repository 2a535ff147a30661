"""The trainer's memory settings (porting.training.memory): applied, and training the same.

* one glibc malloc arena for the threads started after ``limit_malloc_arenas``;
* the Module's host copy of the parameters is the executor's own arrays on one CPU
  device (``share_host_params``), and get_params / set_params / checkpoints still work;
* the residual scales move onto the convolutions' weights
  (``network.scale_residuals_in_weights``) with the same parameters, outputs and gradients;
* ``preparation.prepare`` applies all three before training, and checkpoints keep the network's symbol.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from porting import compat

mx = compat.import_mx()

from porting.training import config, memory, network, preparation  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

ARENAS_SCRIPT = textwrap.dedent("""
    import ctypes, os, sys, tempfile, threading
    sys.path.insert(0, {root!r})
    limit = sys.argv[1] == "limit"
    if limit:
        from porting.training import memory
        assert memory.limit_malloc_arenas()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    held, ready = [], threading.Barrier(5)
    def work():
        held.append(libc.malloc(4096))  # a thread's first allocation picks its arena
        ready.wait()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    ready.wait()
    path = os.path.join(tempfile.mkdtemp(), "info.xml")
    handle = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(handle))
    libc.fclose(ctypes.c_void_p(handle))
    print(open(path).read().count("<heap nr="))
    for t in threads:
        t.join()
""")


def _arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT.format(root=str(ROOT)), mode], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_limit_malloc_arenas_makes_later_threads_share_one_arena():
    assert _arenas("default") > 1  # glibc's default: a new arena per allocating thread
    assert _arenas("limit") == 1


def _small_module(contexts):
    data = mx.sym.var("data")
    net = mx.sym.Convolution(data, kernel=(3, 3), num_filter=4, name="conv")
    net = mx.sym.BatchNorm(net, name="bn")
    net = mx.sym.FullyConnected(mx.sym.flatten(net), num_hidden=3, name="fc")
    sym = mx.sym.SoftmaxOutput(net, name="softmax")
    mod = mx.mod.Module(sym, context=contexts)
    mod.bind(data_shapes=[("data", (4, 1, 6, 6))], label_shapes=[("softmax_label", (4,))])
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier())
    return mod


def _batch():
    rng = np.random.default_rng(0)
    return mx.io.DataBatch([mx.nd.array(rng.standard_normal((4, 1, 6, 6)))], [mx.nd.array([0, 1, 2, 1])])


def test_shared_host_params_are_the_executors_and_training_is_unchanged(tmp_path):
    reference, shared = _small_module([mx.cpu()]), _small_module([mx.cpu()])
    assert memory.share_host_params(shared)
    executor = shared._exec_group.execs[0]
    arg, aux = shared.get_params()
    assert all(arg[name] is executor.arg_dict[name] for name in arg)
    assert all(aux[name] is executor.aux_dict[name] for name in aux)
    for mod in (reference, shared):
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
        for _ in range(3):
            mod.forward_backward(_batch())
            mod.update()
    mx.nd.waitall()  # the batch-norm statistics are written in backward, unordered with reads (loop.py)
    for (ref_arg, ref_aux), (got_arg, got_aux) in [(reference.get_params(), shared.get_params())]:
        for name in ref_arg:
            np.testing.assert_array_equal(got_arg[name].asnumpy(), ref_arg[name].asnumpy())
        for name in ref_aux:
            np.testing.assert_array_equal(got_aux[name].asnumpy(), ref_aux[name].asnumpy())
    # set_params from outside reaches the executor; a checkpoint round-trips
    new = {name: mx.nd.ones(a.shape) * 0.01 for name, a in shared.get_params()[0].items()}
    shared.set_params(new, shared.get_params()[1])
    np.testing.assert_array_equal(executor.arg_dict["fc_weight"].asnumpy(), new["fc_weight"].asnumpy())
    shared.save_checkpoint(str(tmp_path / "m"), 1)
    _, loaded, _ = mx.model.load_checkpoint(str(tmp_path / "m"), 1)
    np.testing.assert_array_equal(loaded["conv_weight"].asnumpy(), new["conv_weight"].asnumpy())


def test_host_params_stay_separate_with_several_devices():
    mod = _small_module([mx.cpu(0), mx.cpu(1)])
    assert not memory.share_host_params(mod)
    arg, _ = mod.get_params()
    assert arg["fc_weight"] is not mod._exec_group.execs[0].arg_dict["fc_weight"]


def test_prepare_applies_the_memory_settings(digits_data, tmp_path, caplog):
    from tests.conftest import DIGITS_TRAIN_ARGS

    cfg = config.TrainConfig(data=str(digits_data), model_dir=str(tmp_path / "run"), **DIGITS_TRAIN_ARGS)
    with caplog.at_level("INFO", logger="porting.train"):
        session = preparation.prepare(cfg)
    try:
        mod = session.module
        executor = mod._exec_group.execs[0]
        arg, _ = mod.get_params()
        assert arg and all(arg[name] is executor.arg_dict[name] for name in arg)
        # At 32x32 a 1x7 convolution meets a 2x2 map and hands its batch norm a plain layout, where
        # MXNet's fused batch norm + ReLU is wrong: the proof refuses it and the plain symbol trains.
        assert mod.symbol.tojson() == network.scale_residuals_in_weights(session.setup.symbol).tojson()
        assert "batch norms not fused with their ReLU: the fused step differs" in caplog.text
    finally:
        session.close()


def _ops(sym) -> list[str]:
    import json

    return [node["op"] for node in json.loads(sym.tojson())["nodes"]]


def test_residual_scales_on_the_weights_give_the_same_outputs_and_gradients():
    sym = network.build_symbol(10, (32, 32), repeats=(1, 1, 1), align_feature_maps=True, dropout_keep_prob=1.0)
    moved = network.scale_residuals_in_weights(sym)
    # the same parameters (names, order, attributes) and outputs; no scale left on an activation
    assert moved.list_arguments() == sym.list_arguments()
    assert moved.list_auxiliary_states() == sym.list_auxiliary_states()
    assert moved.list_outputs() == sym.list_outputs()
    assert moved.attr_dict()["InceptionResnetV2/Repeat/block35_1/Conv2d_1x1_bias"]["__wd_mult__"] == "0.0"
    ops, before = _ops(moved), _ops(sym)
    assert before.count("_mul_scalar") == 4  # block35, block17, block8 and the final Block8 (scale 1.0)
    assert ops.count("_mul_scalar") == 8  # a weight and a bias each
    shapes = {"data": (4, 3, 32, 32), LABEL_NAME: (4,)}
    rng = np.random.default_rng(0)
    executors = [s.simple_bind(mx.cpu(), **shapes) for s in (sym, moved)]
    values = {name: rng.normal(0, 0.1, a.shape).astype(np.float32) for name, a in executors[0].arg_dict.items()}
    values[LABEL_NAME] = np.array([1, 3, 5, 7], dtype=np.float32)
    results = []
    for ex in executors:
        for name, array in ex.arg_dict.items():
            array[:] = values[name]
        outputs = [o.asnumpy() for o in ex.forward(is_train=True)]
        ex.backward()
        results.append((outputs, {n: g.asnumpy() for n, g in ex.grad_dict.items() if g is not None}))
    (out_a, grad_a), (out_b, grad_b) = results
    for a, b in zip(out_a, out_b):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    assert set(grad_a) == set(grad_b)
    # Float rounding apart. A gradient that is zero in exact arithmetic (a bias in front of a
    # training-mode batch norm) is rounding noise on both sides: compared on the typical scale.
    typical = float(np.median([np.abs(g).max() for g in grad_a.values()]))
    for name in grad_a:
        bound = 1e-4 * max(float(np.abs(grad_a[name]).max()), typical)
        assert np.abs(grad_b[name] - grad_a[name]).max() <= bound, name


def test_a_network_without_residual_scales_is_returned_as_is():
    data = mx.sym.var("data")
    sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data * 2.0, num_hidden=3, name="fc"), name="softmax")
    assert network.scale_residuals_in_weights(sym) is sym  # the scale reads the data, not a convolution
