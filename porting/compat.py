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
  * TF's C++ log noise (oneDNN banners, CPU feature notes) is silenced.
  * ``no_subgraph_fusion()``: MXNet 1.9.1's MKLDNN subgraph pass breaks binding a
    group of internals around a fused conv+bn+add; layer-by-layer reads bind unfused.
  * ``fast_graph_building()``: building a slim graph is quadratic in TF 2.21
    because every variable hash asks an expensive eager-context question; see there.
  * ``import_mx()`` gives MXNet one OpenMP thread per physical core: its default is
    half the cores, one thread on a 2-core machine without SMT (``porting.threads``).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
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
    """Import TensorFlow (v1 graph-mode API available) with every shim applied."""
    global _tf_ready
    import tensorflow as tf

    if not _tf_ready:
        tf.get_logger().setLevel("ERROR")
        from tensorflow.python.framework import ops

        if not hasattr(ops, "Tensor"):
            ops.Tensor = tf.Tensor
        _alias_tf_keras()
        _tf_ready = True
    return tf


def import_slim():
    """Import tf_slim after the TF shims."""
    import_tf()
    import tf_slim

    return tf_slim


#: Set to "1" to load MXNet with the library's own thread defaults instead of
#: ``porting.threads.mxnet_cpu_env()`` (the benchmarks' "before" baseline).
LIBRARY_THREADS_ENV = "PORTING_MXNET_LIBRARY_THREADS"


def import_mx():
    """Import MXNet after the numpy shim, with one OpenMP thread per physical core.

    MXNet reads its thread settings once, when the library loads, and its default is
    half the cores (one thread on a 2-core machine without SMT); ``porting.threads``
    explains and measures it. Settings the user exported are kept; nothing changes
    when MXNet was imported before this call or ``PORTING_MXNET_LIBRARY_THREADS=1``.
    """
    if "mxnet" not in sys.modules and os.environ.get(LIBRARY_THREADS_ENV) != "1":
        from porting import threads

        threads.apply_mxnet_cpu_env()
    import mxnet

    return mxnet


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
    """
    previous = os.environ.get("MXNET_SUBGRAPH_BACKEND")
    os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MXNET_SUBGRAPH_BACKEND", None)
        else:
            os.environ["MXNET_SUBGRAPH_BACKEND"] = previous
