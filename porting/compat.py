"""Every compatibility shim of the project, in one place.

Import this module before TensorFlow, tf_slim or MXNet (every entry point and
both network modules do). It is idempotent and cheap: it imports neither
framework itself; ``import_tf()``, ``import_slim()`` and ``import_mx()`` do,
after the shims are in place.

Shims (see ../shared/PITFALLS.md #15 and #16):
  * mxnet 1.9.1 reads ``numpy.bool``, removed in numpy 1.24: alias it to numpy.bool_.
    ``mxnet.test_utils`` also reads ``numpy.int``.
  * tf_slim 1.1.0's batch_norm lazy-loads ``tf_keras.legacy_tf_layers``; tf-keras 2.21
    keeps it at ``tf_keras.src.legacy_tf_layers``: alias the module.
  * tf_slim's fused path reads ``tensorflow.python.framework.ops.Tensor``; alias it.
  * TF's C++ log level defaults to 2 (warnings and notes off); TF's Python logger to ERROR.
  * ``no_subgraph_fusion()``: MXNet 1.9.1's MKLDNN subgraph pass breaks binding a
    group of internals around a fused conv+bn+add; layer-by-layer reads bind unfused.
  * ``fast_graph_building()``: building a slim graph is quadratic in TF 2.21
    because every variable hash asks an expensive eager-context question; see there.
  * ``import_mx()`` gives MXNet one OpenMP thread per physical core: its default is
    half the cores, one thread on a 2-core machine without SMT (``porting.threads``).
  * ``quiet_native_stderr()``: the frameworks' C++ start-up lines never reach the user.
    Some are written straight to file descriptor 2 whatever ``TF_CPP_MIN_LOG_LEVEL`` says
    (absl's "All log messages before absl::InitializeLog()", TF's oneDNN and CUDA-stub
    notes), and MXNet logs "MXNET_SUBGRAPH_BACKEND=NONE is detected" at every bind under
    ``no_subgraph_fusion()`` and an MKLDNN pooling note at the first training forward.
    Upstream cannot be changed, so while a framework loads (``import_tf/_slim/_mx``), in
    ``no_subgraph_fusion()`` and around the training epochs, fd 2 is a pipe read by a small filter
    process that drops the lines of :data:`NOISE_PATTERNS` and passes every other byte
    through unchanged (a C++ error, a crash's message, a Python traceback), promptly:
    complete lines at once, a partial line (a progress bar) after 50 ms of quiet. The
    filter is a process, not a thread, so a line written just before the process crashes
    or calls ``os._exit`` is still delivered. ``sys.stderr`` goes through the same pipe (in
    order with the native lines) and still says whether the real stderr is a terminal, so
    progress bars show. Nothing is filtered with ``PORTING_NATIVE_LOGS=1``.
  * ``import_mx()``: ``Symbol.infer_shape`` / ``infer_type`` print their arguments on
    stdout before raising (which corrupts ``--format json`` on stdout); the printout is
    kept as a note on the exception instead.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import io
import os
import re
import subprocess
import sys
import threading
import warnings

import numpy

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# MXNet prints a warning per process when this is unset and the CPU has many cores.
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

if numpy.__dict__.get("bool") is not numpy.bool_:
    numpy.bool = numpy.bool_  # type: ignore[attr-defined]
for _name, _alias in (("int", int), ("float", float), ("object", object)):
    if _name not in numpy.__dict__:
        setattr(numpy, _name, _alias)

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(tensorflow|tf_slim|mxnet|keras|tf_keras)\b.*")
warnings.filterwarnings("ignore", category=UserWarning, module=r"(tensorflow|tf_slim|tf_keras|keras)\b.*")


# --------------------------------------------------------------------------- native stderr

#: Set to 1 to let every line the frameworks write to stderr through (no filter).
NATIVE_LOGS_ENV = "PORTING_NATIVE_LOGS"

_ABSL = r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ "  # TF (absl): "I0000 00:00:1795966168.814066   24542 "
_DMLC = r"\[\d\d:\d\d:\d\d\] \S*"  # MXNet (dmlc): "[15:29:46] ../src/"

#: The framework lines :func:`quiet_native_stderr` drops: (regular expression, where it comes from).
#: A line is dropped from the match to its end; everything else passes unchanged.
NOISE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
     "TF import (twice): absl's notice that its logging is not set up yet"),
    (_ABSL + r"port\.cc:\d+\] oneDNN custom operations are on\.",
     "TF import (twice): oneDNN banner, printed even with TF_CPP_MIN_LOG_LEVEL=3"),
    (_ABSL + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
     "TF import (twice) on a machine without a CUDA driver"),
    (_ABSL + r"cuda_(?:platform|driver|diagnostics)\.cc:\d+\] failed call to cuInit: .*"
             r"(?:UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE|no CUDA-capable device)",
     "TF's first device lookup on a machine without a CUDA driver or GPU (import_tf does it)"),
    (_ABSL + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions",
     "TF import with TF_CPP_MIN_LOG_LEVEL=0 or 1: a note about CPU instructions"),
    (r"To enable the following instructions: [\w, ]+ in other operations, rebuild TensorFlow with the "
     r"appropriate compiler flags\.",
     "the second line of that note"),
    (_DMLC + r"graph_executor\.cc:\d+: MXNET_SUBGRAPH_BACKEND=NONE is detected, subgraph backend is not in use",
     "MXNet, every executor bound under no_subgraph_fusion()"),
    (_DMLC + r"mkldnn_pooling\.cc:\d+: MKLDNN Pooling: training with prop_kind is forward_scoring",
     "MXNet, the first training forward of each average pooling (per shape and worker thread)"),
)

_NOISE = re.compile("|".join(f"(?:{pattern})" for pattern, _ in NOISE_PATTERNS))


def is_noise(line: str) -> bool:
    """Whether ``line`` holds one of the framework lines :data:`NOISE_PATTERNS` lists."""
    return _NOISE.search(line) is not None


def _filter_main() -> None:  # pragma: no cover (runs in the filter process, ``python -I -S -c``)
    """The filter process: fd 0 is the pipe behind the parent's fd 2, fd 1 the real stderr.

    Complete lines are written as they arrive, less any noise match (from the match to the
    end of the line); a partial line goes out after 50 ms without more data (2 s when it
    may be the start of a log line that MXNet writes piece by piece). Ends at end of file:
    when every writer (the parent, and children it started meanwhile) has closed the pipe,
    so what a crashing parent wrote last still arrives. It runs in its own session, so
    Ctrl-C (sent to the terminal's process group) reaches the parent, never the filter.
    """
    import os
    import re
    import select
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    noise = re.compile(b"|".join(b"(?:" + pattern.encode() + b")" for pattern in sys.argv[1:]))
    log_start = re.compile(rb"\[\d\d:\d\d:\d\d\] |[IWEF]\d{4} |WARNING: All log")

    def may_be_log(fragment: bytes) -> bool:
        return bool(log_start.match(fragment)) or (len(fragment) < 16 and fragment[:1] in (b"[", b"I", b"W", b"E"))

    def write(data: bytes) -> None:
        while data:
            try:
                data = data[os.write(1, data):]
            except OSError:  # the terminal is gone: keep draining so the writers never block
                return

    def clean(line: bytes) -> bytes:
        match = noise.search(line)
        return line if match is None else line[:match.start()]

    pending = b""
    while True:
        wait = None
        if pending:
            wait = 2.0 if may_be_log(pending.rsplit(b"\r", 1)[-1]) else 0.05
        if not select.select([0], [], [], wait)[0]:
            write(pending)
            pending = b""
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            write(clean(pending))
            return
        pending += chunk
        if b"\n" in pending:
            lines, _, pending = pending.rpartition(b"\n")
            write(b"".join(clean(line + b"\n") for line in lines.split(b"\n")))


_quiet_lock = threading.RLock()
_quiet_depth = 0
_quiet_window = None  # the open window: (filter process, real stderr fd, sys.stderr before, its stand-in)
_filter_program = None
#: Seconds to wait at the end of a window for the filter to write what is left.
_DRAIN_SECONDS = 5.0


class _StderrStandIn(io.TextIOWrapper):
    """``sys.stderr`` during a window: writes to fd 2 (in order with native writes, through
    the filter), but answers ``isatty()`` for the real stderr, so progress bars still show."""

    def __init__(self, like, terminal: bool):
        super().__init__(io.FileIO(2, "w", closefd=False), encoding=getattr(like, "encoding", None) or "utf-8",
                         errors=getattr(like, "errors", None) or "backslashreplace",
                         line_buffering=getattr(like, "line_buffering", True),
                         write_through=getattr(like, "write_through", True))
        self._terminal = terminal

    def isatty(self) -> bool:
        return self._terminal


def _writes_to_fd2(stream) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _flush_python_stderr() -> None:
    for stream in {id(s): s for s in (sys.stderr, sys.__stderr__) if s is not None}.values():
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _open_window():
    global _filter_program
    if _filter_program is None:
        import inspect
        import textwrap

        _filter_program = textwrap.dedent(inspect.getsource(_filter_main)) + "\n_filter_main()\n"
    _flush_python_stderr()
    real_fd = os.dup(2)  # close-on-exec: children started in the window do not hold it
    try:
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _filter_program,
                                        *(pattern for pattern, _ in NOISE_PATTERNS)],
                                       stdin=read_end, stdout=real_fd, stderr=real_fd, close_fds=True,
                                       start_new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        os.dup2(write_end, 2)
        os.close(write_end)
    except BaseException:
        os.close(real_fd)
        raise
    before = sys.stderr
    if _writes_to_fd2(before):
        sys.stderr = _StderrStandIn(before, os.isatty(real_fd))
    return process, real_fd, before, sys.stderr


def _close_window(window) -> None:
    process, real_fd, before, stand_in = window
    _flush_python_stderr()
    if sys.stderr is stand_in and stand_in is not before:
        sys.stderr = before
    os.dup2(real_fd, 2)  # closes this process's end of the pipe: the filter reads to the end, then exits
    os.close(real_fd)
    try:
        process.wait(timeout=_DRAIN_SECONDS)
    except subprocess.TimeoutExpired:  # a child started in the window still holds the pipe: it ends with it
        pass


@contextlib.contextmanager
def quiet_native_stderr():
    """Drop the frameworks' known C++ noise (:data:`NOISE_PATTERNS`) from stderr in this block.

    File descriptor 2 points at a pipe read by a filter process that writes every other
    byte to the real stderr, unchanged and promptly; the descriptor is restored when the
    block ends, also on an exception, after the filter has written everything. Nested and
    concurrent blocks share one filter. Without a usable stderr or Python executable, or
    with ``PORTING_NATIVE_LOGS=1``, the block runs unfiltered.
    """
    global _quiet_depth, _quiet_window
    with _quiet_lock:
        _quiet_depth += 1
        if _quiet_depth == 1 and sys.executable and os.environ.get(NATIVE_LOGS_ENV, "") in ("", "0"):
            try:
                _quiet_window = _open_window()
            except Exception:  # noqa: BLE001  (no filter: the lines show, nothing else changes)
                _quiet_window = None
            except BaseException:  # Ctrl-C while it starts: no window, and the count stays right
                _quiet_depth -= 1
                raise
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_window is not None:
                window, _quiet_window = _quiet_window, None
                _close_window(window)


@atexit.register
def _close_open_window() -> None:
    """A window still open at exit (a thread, an unclosed generator): restore fd 2 and drain."""
    global _quiet_window, _quiet_depth
    with _quiet_lock:
        if _quiet_window is not None:
            window, _quiet_window, _quiet_depth = _quiet_window, None, 0
            _close_window(window)


# --------------------------------------------------------------------------- frameworks

_tf_ready = False


def _alias_tf_keras() -> None:
    """Let tf_slim's batch_norm find tf_keras.legacy_tf_layers (tf-keras 2.21 moved it)."""
    if "tf_keras.legacy_tf_layers" in sys.modules:
        return
    try:
        legacy = importlib.import_module("tf_keras.src.legacy_tf_layers")
    except ImportError:  # an older tf-keras that still has the public path
        return
    sys.modules["tf_keras.legacy_tf_layers"] = legacy
    for sub in ("base", "convolutional", "core", "normalization", "pooling", "variable_scope_shim"):
        name = f"tf_keras.src.legacy_tf_layers.{sub}"
        try:
            sys.modules[f"tf_keras.legacy_tf_layers.{sub}"] = importlib.import_module(name)
        except ImportError:
            pass


def import_tf():
    """Import TensorFlow (v1 graph-mode API available) with every shim applied.

    The first call loads TF inside :func:`quiet_native_stderr` and looks up its devices
    there too: on a machine without a GPU that lookup logs a failed ``cuInit``.
    """
    global _tf_ready
    if _tf_ready:
        import tensorflow as tf

        return tf
    with quiet_native_stderr():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        from tensorflow.python.framework import ops

        if not hasattr(ops, "Tensor"):
            ops.Tensor = tf.Tensor
        _alias_tf_keras()
        tf.config.list_physical_devices()
        _tf_ready = True
    return tf


def import_slim():
    """Import tf_slim after the TF shims."""
    with quiet_native_stderr() if "tf_slim" not in sys.modules else contextlib.nullcontext():
        import_tf()
        import tf_slim

    return tf_slim


#: Set to "1" to load MXNet with the library's own thread defaults instead of
#: ``porting.threads.mxnet_cpu_env()`` (the benchmarks' "before" baseline).
LIBRARY_THREADS_ENV = "PORTING_MXNET_LIBRARY_THREADS"


def import_mx(*, training: bool = False):
    """Import MXNet after the numpy shim, with one OpenMP thread per physical core.

    MXNet reads its thread settings once, when the library loads, and its default is
    half the cores (one thread on a 2-core machine without SMT); ``porting.threads``
    explains and measures it. ``training``: with the trainer's settings too (OpenMP
    threads that wait actively between operators). Settings the user exported are kept;
    nothing changes when MXNet was imported before this call or
    ``PORTING_MXNET_LIBRARY_THREADS=1``.
    The first call loads MXNet inside :func:`quiet_native_stderr`, and keeps
    ``infer_shape`` / ``infer_type`` from printing on stdout (:func:`_quiet_infer`).
    """
    if "mxnet" in sys.modules:
        import mxnet

        _quiet_infer(mxnet)
        return mxnet
    if os.environ.get(LIBRARY_THREADS_ENV) != "1":
        from porting import threads

        threads.apply_mxnet_cpu_env(training=training)
    with quiet_native_stderr():
        import mxnet

    _quiet_infer(mxnet)
    return mxnet


def _quiet_infer(mx) -> None:
    """``Symbol.infer_shape`` / ``infer_type`` without their stdout printout on an error.

    MXNet 1.9.1 prints "infer_shape error. Arguments:" and every argument with ``print``
    before re-raising an ``MXNetError``: on stdout, where a command's JSON goes. The
    printout becomes a note on the exception (shown with its traceback); output of a call
    that succeeds, or of other threads meanwhile, is written to stdout as before.
    """
    symbol_class = mx.sym.Symbol
    for name in ("infer_shape", "infer_type"):
        method = getattr(symbol_class, name)
        if getattr(method, "_porting_quiet", False):
            continue

        def quiet(self, *args, _method=method, **kwargs):
            captured = io.StringIO()
            try:
                with contextlib.redirect_stdout(captured):
                    result = _method(self, *args, **kwargs)
            except mx.base.MXNetError as error:
                if captured.getvalue().strip():
                    error.add_note(captured.getvalue().rstrip())
                raise
            except BaseException:
                sys.stdout.write(captured.getvalue())
                raise
            sys.stdout.write(captured.getvalue())
            return result

        functools.update_wrapper(quiet, method)
        quiet._porting_quiet = True
        setattr(symbol_class, name, quiet)


@contextlib.contextmanager
def fast_graph_building():
    """Skip a per-hash context lookup that makes building slim graphs quadratic.

    Every legacy layer's ``add_weight`` (tf_keras) puts all global variables into a
    set, and each ``Variable.__hash__`` first asks
    ``executing_eagerly_outside_functions()``, which is slow: the full
    Inception-ResNet-v2 build took 54 s without this and 19 s with it on a loaded
    2-core machine. In a plain ``tf.Graph`` that question is always answered False
    and the hash is ``id(self)``; with ``Tensor._USE_EQUALITY`` off the question is
    skipped and the result is the same. Applied only while building in a plain
    graph (not eagerly, not inside a tf.function), and always restored. Usable as
    a decorator or a ``with`` block.
    """
    tf = import_tf()
    try:  # private TF module; without it, build at normal speed
        from tensorflow.python.framework import tensor as tensor_lib
    except ImportError:  # pragma: no cover
        tensor_lib = None
    tensor_class = getattr(tensor_lib, "Tensor", None)
    graph = tf.compat.v1.get_default_graph()
    if (not hasattr(tensor_class, "_USE_EQUALITY") or tf.executing_eagerly()
            or getattr(graph, "building_function", False)):
        yield
        return
    saved = tensor_class._USE_EQUALITY
    tensor_class._USE_EQUALITY = False
    try:
        yield
    finally:
        tensor_class._USE_EQUALITY = saved


@contextlib.contextmanager
def no_subgraph_fusion():
    """Bind MXNet executors without the MKLDNN subgraph (fusion) pass.

    MXNet 1.9.1 fails to bind a group of internals that includes the input of a
    fused conv+bn+add (a ResNet residual): "sg_mkldnn_conv_bn ... (6 vs. 7)".
    Reading every layer's output therefore binds unfused; the numbers are the
    same operators without fusion. The setting is read at bind time and restored.
    MXNet logs "MXNET_SUBGRAPH_BACKEND=NONE is detected" at every bind: the block runs
    inside :func:`quiet_native_stderr`.
    """
    previous = os.environ.get("MXNET_SUBGRAPH_BACKEND")
    os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
    try:
        with quiet_native_stderr():  # MXNet logs the setting at every bind
            yield
    finally:
        if previous is None:
            os.environ.pop("MXNET_SUBGRAPH_BACKEND", None)
        else:
            os.environ["MXNET_SUBGRAPH_BACKEND"] = previous


# --------------------------------------------------------------------------- ONNX into MXNet

def import_onnx():
    """Import the ``onnx`` package (after MXNet's numpy shim: MXNet's importer imports it too)."""
    import_mx()
    import onnx

    return onnx


def fully_connected_flatten_written(symbol):
    """``symbol`` with every ``FullyConnected``'s ``flatten`` written out (its default, True, where unset).

    MXNet 1.9.1's ONNX exporter reads a ``flatten`` the symbol leaves at its default as False
    (``get_boolean_attribute_value`` defaults to 0) and exports the dense layer as a
    ``Flatten(axis=-1)`` + Gemm + a ``Reshape`` to a shape computed at run time: on a rank-2
    input the same numbers, but MXNet's own importer refuses both forms ("Flatten operator only
    supports axis=1", then a ``KeyError`` on the computed ``Slice`` end), and on a rank-4 input
    the wrong axis is flattened. Written out, the exporter gives ``Flatten`` + ``Gemm``.
    """
    import json

    mx = import_mx()
    graph = json.loads(symbol.tojson())
    unset = [node for node in graph["nodes"]
             if node["op"] == "FullyConnected" and "flatten" not in node.get("attrs", {})]
    for node in unset:
        node.setdefault("attrs", {})["flatten"] = "True"
    return mx.sym.load_json(json.dumps(graph)) if unset else symbol


def onnx_initialisers_as_inputs(model):
    """A copy of the ONNX ``model`` in which every initialiser is also listed as a graph input.

    MXNet 1.9.1's importer (``mx.contrib.onnx``) looks parameters up among the graph's inputs
    only: an initialiser that is not also an input (ONNX allows it since IR version 4, and
    tf2onnx writes them, e.g. ``*_weights_fused_bn``) fails with a ``KeyError`` on its name.
    Listing each one as an input with its own type and shape changes no value.
    """
    onnx = import_onnx()
    rewritten = type(model)()
    rewritten.CopyFrom(model)
    listed = {value.name for value in rewritten.graph.input}
    for initialiser in rewritten.graph.initializer:
        if initialiser.name not in listed:
            rewritten.graph.input.append(onnx.helper.make_tensor_value_info(
                initialiser.name, initialiser.data_type, list(initialiser.dims)))
            listed.add(initialiser.name)
    return rewritten


def import_onnx_to_mx(model):
    """``(symbol, arg_params, aux_params)`` of an in-memory ONNX model, by MXNet's own importer.

    The same ``GraphProto.from_onnx`` that ``mx.contrib.onnx.import_model`` runs on a file, on
    :func:`onnx_initialisers_as_inputs` of the model. The importer prints a banner and a
    deprecation notice on stdout (where a command's JSON goes): they are swallowed.
    """
    import_mx()
    from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

    fixed = onnx_initialisers_as_inputs(model)
    opset = max((entry.version for entry in fixed.opset_import if entry.domain in ("", "ai.onnx")), default=13)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GraphProto().from_onnx(fixed.graph, opset_version=opset)
