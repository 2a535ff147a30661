"""No framework start-up line reaches the user's terminal or stdout; a real error still does.

Every case runs a fresh interpreter (the noise comes from loading TensorFlow and MXNet, once
per process) with an environment of its own: none of the caller's TF_*, MXNET_* or
PORTING_* settings. Each command runs its cheapest real path that loads the frameworks
(tiny builders written to tmp_path, the session's digits data and model). The lines checked
are compat.NOISE_PATTERNS plus the bare phrases, so a variant of a known line counts too.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from porting import compat

ROOT = Path(__file__).resolve().parents[2]

#: Phrases of the known start-up lines (any of them in stderr or stdout fails a case).
PHRASES = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "failed call to cuInit",
           "cpu_feature_guard", "MXNET_SUBGRAPH_BACKEND", "MKLDNN Pooling", "infer_shape error",
           "infer_type error")

TINY_TF = '''
from porting import compat
tf = compat.import_tf()
slim = compat.import_slim()


def build(images, num_classes):
    end_points = {}
    with tf.compat.v1.variable_scope("Tiny"):
        net = slim.conv2d(images, 4, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        end_points["Conv2d_1a_3x3"] = net
        net = slim.avg_pool2d(net, 7, stride=1, padding="VALID", scope="AvgPool_2a_7x7")  # 7x7 -> 1x1
        end_points["AvgPool_2a_7x7"] = net
        net = slim.flatten(net, scope="Flatten")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
        end_points["Logits"] = logits
    return logits, end_points
'''

TINY_MX = '''
from porting import compat
mx = compat.import_mx()


def build(num_classes):
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(3, 3), stride=(2, 2), num_filter=4,
                             name="Tiny/Conv2d_1a_3x3")
    net = mx.sym.Activation(net, act_type="relu", name="Tiny/Conv2d_1a_3x3/Relu")
    net = mx.sym.Pooling(net, kernel=(7, 7), stride=(1, 1), pool_type="avg", name="Tiny/AvgPool_2a_7x7")
    net = mx.sym.flatten(net, name="Tiny/Flatten")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="Tiny/Logits")


def too_big_kernel(num_classes):
    """Shape inference fails: MXNet 1.9.1 prints its arguments on stdout before raising."""
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(30, 30), num_filter=4, name="Tiny/Conv2d_1a_3x3")
    return mx.sym.FullyConnected(mx.sym.flatten(net), num_hidden=num_classes, name="Tiny/Logits")
'''

#: A stand-in for TensorFlow that fails while it loads: a C++-style error line straight to
#: fd 2, then (``how``) a Python exception or a crash.
FAKE_TF = '''
import os
os.write(2, b"E0000 00:00:1795966168.814066   24542 loader.cc:42] cannot open libtensorflow_framework.so.2\\n")
os.write(2, {noise!r}.encode() + b"\\n")
{how}
'''


def _env(**overrides) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "MXNET_", "PORTING_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update({key: value for key, value in overrides.items() if value is not None})
    return env


def _python(args: list[str], timeout: float = 600, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=_env(**env),
                          cwd=ROOT)


def _assert_quiet(done: subprocess.CompletedProcess) -> None:
    for stream in (done.stderr, done.stdout):
        assert not [line for line in stream.splitlines() if compat.is_noise(line)], stream
        assert not [phrase for phrase in PHRASES if phrase in stream], stream


@pytest.fixture(scope="module")
def builders(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("noise_builders")
    (folder / "tiny_tf.py").write_text(TINY_TF)
    (folder / "tiny_mx.py").write_text(TINY_MX)
    return {"tf": str(folder / "tiny_tf.py"), "mx": str(folder / "tiny_mx.py"), "folder": str(folder)}


def _compare(builders, *extra, mx="build") -> list[str]:
    return ["-m", "porting.compare", "--tf", f"{builders['tf']}:build", "--mx", f"{builders['mx']}:{mx}",
            "--size", "16", "--classes", "10", *extra]


@pytest.fixture(scope="module")
def autoported(builders) -> tuple[subprocess.CompletedProcess, str]:
    """``porting.autoport`` of the tiny TF builder (numeric parity binds under no_subgraph_fusion)."""
    prefix = str(Path(builders["folder"]) / "ported" / "tiny")
    done = _python(["-m", "porting.autoport", "--tf", f"{builders['tf']}:build", "--size", "16", "--classes", "10",
                    "--out", prefix])
    return done, prefix


# ------------------------------------------------------------------ the commands


def test_compare_text_report(builders):
    done = _python(_compare(builders))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("porting compare: build vs build at 16x16, 10 classes")
    assert done.stderr == ""
    _assert_quiet(done)


def test_compare_json_on_stdout_parses(builders):
    done = _python(_compare(builders, "--format", "json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "match"
    assert done.stderr == ""
    _assert_quiet(done)


def test_compare_numeric_binds_without_the_subgraph_line(builders):
    done = _python(_compare(builders, "--numeric", "--format", "json"))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["numeric"]["passed"] is True
    assert done.stderr == ""
    _assert_quiet(done)


def test_compare_json_stays_clean_when_mxnet_shape_inference_fails(builders):
    done = _python(_compare(builders, "--format", "json", mx="too_big_kernel"))
    assert done.returncode == 2
    assert done.stdout == ""  # MXNet printed "infer_shape error. Arguments: ..." here
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "kernel size exceed input" in errors[0]
    assert "Traceback" not in done.stderr
    _assert_quiet(done)


def test_autoport_numeric_proof(autoported):
    done, prefix = autoported
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("PASSED")
    assert Path(f"{prefix}-symbol.json").is_file() and Path(f"{prefix}-0000.params").is_file()
    assert done.stderr == ""
    _assert_quiet(done)


def test_convert_mxnet_to_tf(builders, autoported, tmp_path):
    _, prefix = autoported
    done = _python(["-m", "porting.convert", "--tf", f"{builders['tf']}:build", "--mx", f"{builders['mx']}:build",
                    "--size", "16", "--classes", "10", "--mx-checkpoint", prefix,
                    "--out-tf-checkpoint", str(tmp_path / "ckpt")])
    assert done.returncode == 0, done.stderr
    assert "wrote TF checkpoint" in done.stdout and list(tmp_path.glob("ckpt.index"))
    _assert_quiet(done)


def test_data_digits(tmp_path):
    done = _python(["-m", "porting.data", "--layout", "digits", "--out", str(tmp_path / "data")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {tmp_path / 'data' / 'manifest.json'}")
    _assert_quiet(done)


def test_predict_json_on_stdout_parses(digits_model, tmp_path):
    import cv2
    import numpy as np

    image = tmp_path / "digit.png"
    assert cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    done = _python(["-m", "porting.predict", "--model", str(Path(digits_model.model_dir) / digits_model.prefix), str(image),
                    "--json"])
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    _assert_quiet(done)


@pytest.mark.slow
def test_train_short_run(digits_data, tmp_path):
    done = _python(["-m", "porting.train", "--data", str(digits_data), "--model-dir", str(tmp_path / "run"),
                    "--repeats", "reduced", "--align-feature-maps", "--batch-size", "16", "--max-batches", "2",
                    "--epochs", "1", "--preprocess-threads", "1"])
    assert done.returncode == 0, done.stderr
    assert "epoch 1 complete" in done.stdout
    _assert_quiet(done)


# ------------------------------------------------------------------ the imports


@pytest.mark.parametrize("level", [None, "3", "2", "0"], ids=lambda level: f"TF_CPP_MIN_LOG_LEVEL={level or 'unset'}")
def test_import_tf_slim_and_mx(level):
    code = ("from porting import compat; tf = compat.import_tf(); compat.import_slim(); compat.import_mx(); "
            "print(tf.__version__)")
    done = _python(["-c", code], TF_CPP_MIN_LOG_LEVEL=level)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2.21.0\n"
    if level != "0":  # 0 asks TF for every note: other lines may come, the known ones still do not
        assert done.stderr == ""
    _assert_quiet(done)


def test_bind_under_no_subgraph_fusion():
    code = ("from porting import compat; mx = compat.import_mx()\n"
            "net = mx.sym.Convolution(mx.sym.var('data'), kernel=(3, 3), num_filter=2, name='c')\n"
            "with compat.no_subgraph_fusion():\n"
            "    for _ in range(3):\n"
            "        net.simple_bind(mx.cpu(), data=(1, 3, 5, 5), grad_req='null').forward()[0].wait_to_read()\n"
            "print('bound')")
    done = _python(["-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "bound\n" and done.stderr == ""


@pytest.fixture
def fake_tf(tmp_path):
    """Write a ``tensorflow`` package that fails while loading; returns its PYTHONPATH."""

    def make(how: str) -> str:
        package = tmp_path / "fake" / "tensorflow"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(FAKE_TF.format(noise=NOISE_LINE, how=how))
        return os.pathsep.join([str(tmp_path / "fake"), str(ROOT)])

    return make


NOISE_LINE = ("I0000 00:00:1795966168.814334   24542 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
              "GPU will not be used.")
LOADER_ERROR = "E0000 00:00:1795966168.814066   24542 loader.cc:42] cannot open libtensorflow_framework.so.2"


def test_a_real_error_while_tf_loads_still_reaches_the_user(fake_tf):
    path = fake_tf('raise ImportError("libtensorflow_framework.so.2: cannot open shared object file")')
    done = _python(["-c", "from porting import compat; compat.import_tf()"], PYTHONPATH=path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == LOADER_ERROR  # the C++-style line, unchanged and first
    assert "Traceback (most recent call last):" in lines  # Python's own report, after the window closed
    assert lines[-1] == "ImportError: libtensorflow_framework.so.2: cannot open shared object file"
    assert NOISE_LINE not in done.stderr


def test_a_crash_while_tf_loads_still_shows_its_last_line(fake_tf):
    path = fake_tf('os.write(2, b"F0000 00:00:1.0  7 cpu_feature_guard.cc:1] illegal instruction: AVX512F\\n")\n'
                   "os.abort()")
    done = _python(["-c", "from porting import compat; compat.import_tf()"], PYTHONPATH=path)
    assert done.returncode == -signal.SIGABRT
    assert done.stderr.splitlines() == [LOADER_ERROR, "F0000 00:00:1.0  7 cpu_feature_guard.cc:1] illegal "
                                                      "instruction: AVX512F"]


def test_after_a_failed_import_fd2_is_the_real_stderr_again(fake_tf):
    path = fake_tf('raise ImportError("no TensorFlow here")')
    code = ("import os, sys\nfrom porting import compat\nbefore = os.fstat(2).st_ino, sys.stderr\n"
            "try:\n    compat.import_tf()\nexcept ImportError:\n    pass\n"
            "assert (os.fstat(2).st_ino, sys.stderr) == before, 'fd 2 or sys.stderr not restored'\n"
            f"os.write(2, {NOISE_LINE!r}.encode() + b'\\n')  # unfiltered now: it shows\n"
            "print('python after', file=sys.stderr)")
    done = _python(["-c", code], PYTHONPATH=path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [LOADER_ERROR, NOISE_LINE, "python after"]
