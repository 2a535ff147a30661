"""compat.quiet_native_stderr(): the frameworks' start-up lines vanish, everything else arrives.

The filter works on file descriptor 2, so most cases run a small script in a fresh
interpreter and look at the bytes its stderr received. The lines written there are the
real ones, copied from runs of TF 2.21 and MXNet 1.9.1 on this project's machines; the
commands' own noise checks (real framework imports) are in tests/badinput/test_noise.py.
"""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy
import pytest

from porting import compat

ROOT = Path(__file__).resolve().parents[2]

#: Lines the frameworks really print (one per pattern of compat.NOISE_PATTERNS, in order).
NOISE_SAMPLES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795966168.814066   24542 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To "
    "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1795966168.814334   24542 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1795966327.366372   26030 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1795966329.181622   26071 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.",
    "[15:32:07] ../src/executor/graph_executor.cc:60: MXNET_SUBGRAPH_BACKEND=NONE is detected, subgraph backend "
    "is not in use",
    "[15:29:46] ../src/operator/nn/mkldnn/mkldnn_pooling.cc:58: MKLDNN Pooling: training with prop_kind is "
    "forward_scoring",
]
#: Lines that look alike but are real problems: they must pass.
REAL_ERRORS = [
    "E0000 00:00:1795966327.366372   26030 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_"
    "MISMATCH: system has unsupported display driver / cuda driver combination",
    "[15:29:46] ../src/operator/nn/mkldnn/mkldnn_pooling.cc:61: MKLDNN Pooling: algorithm is not supported",
    "[15:36:57] ../src/operator/nn/convolution.cc:202: Check failed: dilated_ksize_y <= AddPad(dshape[2], "
    "param_.pad[0]) (30 vs. 8) : kernel size exceed input",
    "F0000 00:00:1795966168.814066   24542 port.cc:153] Check failed: oneDNN custom operations are on",
    "terminate called after throwing an instance of 'dmlc::Error'",
    "Traceback (most recent call last):",
    "I saw 'WARNING: All log messages' in my own output",
]


def _env(**overrides) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "MXNET_", "PORTING_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", "import os, sys, time\nfrom porting import compat\n" + textwrap.dedent(body)]


def _run(body: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(_script(body), capture_output=True, timeout=120, env=_env(**env), cwd=ROOT)


def test_every_pattern_matches_its_real_line_and_no_real_error():
    assert len(NOISE_SAMPLES) == len(compat.NOISE_PATTERNS)
    for sample, (pattern, where) in zip(NOISE_SAMPLES, compat.NOISE_PATTERNS):
        assert compat.is_noise(sample), (sample, pattern)
        assert compat.is_noise("\r 40%|####      | 2/5 " + sample)  # after a progress bar's fragment
        assert where  # each pattern says where it comes from
    for line in REAL_ERRORS:
        assert not compat.is_noise(line), line


# The script writes each noise line the way its framework does: absl in one write,
# MXNet's dmlc logger piece by piece (std::cerr is unbuffered); real lines in between.
_MIXED = f"""
noise = {NOISE_SAMPLES!r}
real = {REAL_ERRORS[:3]!r}
with compat.quiet_native_stderr():
    for index, line in enumerate(noise):
        if line.startswith("["):
            for piece in (line[:1], line[1:9], line[9:11], line[11:40], line[40:], "\\n"):
                os.write(2, piece.encode())
                time.sleep(0.002)
        else:
            os.write(2, (line + "\\n").encode())
        if index < len(real):
            os.write(2, (real[index] + "\\n").encode())
    os.write(2, b"\\r 40%|####  | 2/5 " + noise[-1].encode() + b"\\n")
    os.write(2, b"bytes \\xff\\xfe as they are\\n")
    print("python", "line", file=sys.stderr)
    os.write(2, b"no newline at the end")
print("after the window", file=sys.stderr)
"""


def test_noise_lines_vanish_and_every_other_byte_arrives_in_order():
    done = _run(_MIXED)
    assert done.returncode == 0
    expected = b"".join(line.encode() + b"\n" for line in REAL_ERRORS[:3])
    expected += b"\r 40%|####  | 2/5 "  # the bar's fragment stays; the noise after it goes
    expected += b"bytes \xff\xfe as they are\npython line\nno newline at the end" + b"after the window\n"
    assert done.stderr == expected
    assert done.stdout == b""


def test_without_the_filter_the_same_lines_show(monkeypatch):
    done = _run(_MIXED, PORTING_NATIVE_LOGS="1")
    text = done.stderr.decode(errors="replace")
    assert all(line in text for line in NOISE_SAMPLES)


def test_a_partial_line_arrives_while_the_process_still_runs():
    process = subprocess.Popen(_script("""
        with compat.quiet_native_stderr():
            os.write(2, b"\\r 50%|#####     | 5/10 [00:01<00:01]")
            time.sleep(20)
        """), stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
    try:
        started = time.monotonic()
        received = b""
        while b"5/10" not in received and time.monotonic() - started < 15:
            if select.select([process.stderr], [], [], 0.1)[0]:
                received += os.read(process.stderr.fileno(), 4096)
        assert b"5/10 [00:01<00:01]" in received
        assert process.poll() is None  # delivered while the writer still runs (after 50 ms of quiet)
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("death", ["os._exit(3)", "os.abort()", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_lines_written_just_before_the_process_dies_in_a_window_arrive(death):
    done = _run(f"""
        import signal
        with compat.quiet_native_stderr():
            os.write(2, {NOISE_SAMPLES[1]!r}.encode() + b"\\n")
            os.write(2, b"F0000 00:00:1.0  7 fatal.cc:1] Check failed: the last words\\n")
            {death}
        """)
    assert done.returncode in (3, -signal.SIGABRT, -signal.SIGKILL)
    assert done.stderr == b"F0000 00:00:1.0  7 fatal.cc:1] Check failed: the last words\n"


def test_ctrl_c_in_a_window_loses_nothing():
    process = subprocess.Popen(_script("""
        try:
            with compat.quiet_native_stderr():
                os.write(2, b"native line before\\n")
                print("ready", flush=True)
                time.sleep(30)
        except KeyboardInterrupt:
            os.write(2, b"native line after Ctrl-C\\n")
            print("interrupted; nothing half-written", file=sys.stderr)
        """), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT, start_new_session=True)
    try:
        assert process.stdout.readline() == b"ready\n"
        os.killpg(process.pid, signal.SIGINT)  # the terminal sends it to the whole group: the filter too
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert err == b"native line before\nnative line after Ctrl-C\ninterrupted; nothing half-written\n"


def _fd2_identity() -> tuple[int, int]:
    info = os.fstat(2)
    return info.st_dev, info.st_ino


def test_fd2_and_sys_stderr_are_restored_after_an_exception():
    before, stream, fds = _fd2_identity(), sys.stderr, set(os.listdir("/proc/self/fd"))
    with pytest.raises(RuntimeError, match="builder failed"):
        with compat.quiet_native_stderr():
            assert _fd2_identity() != before  # a pipe to the filter
            filter_process = compat._quiet_window[0]
            raise RuntimeError("builder failed")
    assert _fd2_identity() == before and sys.stderr is stream
    assert compat._quiet_window is None and compat._quiet_depth == 0
    assert filter_process.returncode == 0  # it read to the end and exited
    assert set(os.listdir("/proc/self/fd")) == fds  # no descriptor left behind


def test_nested_windows_share_one_filter_and_the_outer_one_restores():
    before = _fd2_identity()
    with compat.quiet_native_stderr():
        outer = _fd2_identity()
        with compat.quiet_native_stderr():
            assert _fd2_identity() == outer
        assert _fd2_identity() == outer  # the inner end does not close the outer window
    assert _fd2_identity() == before


def test_porting_native_logs_turns_the_filter_off(monkeypatch):
    monkeypatch.setenv(compat.NATIVE_LOGS_ENV, "1")
    before = _fd2_identity()
    with compat.quiet_native_stderr():
        assert _fd2_identity() == before


def test_sys_stderr_still_says_terminal_inside_a_window():
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(_script("""
            with compat.quiet_native_stderr():
                inside = (sys.stderr.isatty(), os.isatty(2))
            print(inside, sys.stderr.isatty(), os.isatty(2))
            """), stdout=subprocess.PIPE, stderr=terminal, env=_env(), cwd=ROOT, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    # Inside: fd 2 is the filter's pipe, but sys.stderr answers for the terminal (progress bars show).
    assert done.stdout.split() == [b"(True,", b"False)", b"True", b"True"]


def test_infer_shape_error_keeps_stdout_clean_and_keeps_the_arguments(capsys):
    mx = compat.import_mx()
    net = mx.sym.Convolution(mx.sym.var("data"), kernel=(5, 5), num_filter=2, name="conv")
    assert net.infer_shape(data=(1, 3, 8, 8))[1] == [(1, 2, 4, 4)]
    with pytest.raises(mx.base.MXNetError, match="kernel size exceed input") as caught:
        net.infer_shape(data=(1, 3, 2, 2))
    assert capsys.readouterr().out == ""  # MXNet prints "infer_shape error. Arguments:" here without the shim
    assert caught.value.__notes__ == ["infer_shape error. Arguments:\n  data: (1, 3, 2, 2)"]
    assert mx.sym.Symbol.infer_shape.__name__ == "infer_shape" and mx.sym.Symbol.infer_shape._porting_quiet
    assert mx.sym.Symbol.infer_type._porting_quiet
    assert net.infer_type(data="float32")[1] == [numpy.float32]


def test_a_filter_that_cannot_start_leaves_stderr_alone(monkeypatch):
    def no_process(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")  # fork failed: too many processes

    monkeypatch.setattr(compat.subprocess, "Popen", no_process)
    before, stream = _fd2_identity(), sys.stderr
    with compat.quiet_native_stderr():
        assert _fd2_identity() == before and sys.stderr is stream
    assert compat._quiet_depth == 0 and compat._quiet_window is None
    fds = set(os.listdir("/proc/self/fd"))  # and no descriptor leaks (the dup of fd 2, the pipe)
    with compat.quiet_native_stderr():
        pass
    assert set(os.listdir("/proc/self/fd")) == fds
