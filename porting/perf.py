"""CPU threading settings for MXNet, applied before ``import mxnet``.

MXNet 1.9.1 reads its threading settings once, when the library loads:

* ``OMP_NUM_THREADS`` unset: MXNet assumes two hardware threads per core on x86 and
  gives each operator ``omp_get_num_procs() / 2`` OpenMP threads
  (``src/engine/openmp.cc``; apache/mxnet#10836). On a CPU without SMT (such as
  this project's 2-vCPU machines, ``lscpu``: one thread per core) that is half the
  cores: one thread on two cores, while TensorFlow uses both.
* ``MXNET_CPU_WORKER_NTHREADS`` (default 1): how many operators run at once. With
  one, the branches of an Inception block run one after the other; TensorFlow's
  inter-op pool runs them side by side.

:func:`mxnet_cpu_env` sets one OpenMP thread per physical core. Measured with
``bench/train_throughput.py`` on 2 vCPUs (AMD EPYC, no SMT), Inception-ResNet-v2 training
at 299, batch 8: 0.67 -> 1.05 images/s, and inference 2.6 -> 3.8 images/s (README,
"Performance"). Two engine workers (``MXNET_CPU_WORKER_NTHREADS=2``) on top gave nothing
more on an idle machine and are not set. On a machine oversubscribed by other
processes, OpenMP threads wait for each other at every barrier, so more threads can be
slower there; export ``OMP_NUM_THREADS`` to override.

:func:`apply_mxnet_cpu_env` sets it without overriding anything the user exported;
``porting.compat.import_mx()`` calls it just before MXNet loads, so every entry point
(compare, train, predict, autoport) runs with it. CPU operators only; GPU kernels are
unaffected.
"""
from __future__ import annotations

import os
import sys


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def threads_per_core() -> int:
    """Hardware threads per physical core (1 without SMT), from sysfs; 1 when unknown."""
    path = "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list"
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return 1
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return max(1, count)


def mxnet_cpu_env(cores: int | None = None) -> dict[str, str]:
    """The MXNet threading settings for training on ``cores`` CPUs (default: this process's)."""
    cores = cores or usable_cores()
    physical = max(1, cores // threads_per_core())
    return {"OMP_NUM_THREADS": str(physical)}


def apply_mxnet_cpu_env(environ=None) -> dict[str, str]:
    """Set :func:`mxnet_cpu_env` in ``environ`` (default ``os.environ``) where unset.

    Returns:
        the settings that were applied (those already set are left alone).

    Raises:
        RuntimeError: MXNet is already imported, so the settings could not take effect.
    """
    environ = os.environ if environ is None else environ
    if environ is os.environ and "mxnet" in sys.modules:
        raise RuntimeError("apply_mxnet_cpu_env() must run before MXNet is imported: "
                           "MXNet reads its thread settings when the library loads")
    applied = {}
    for key, value in mxnet_cpu_env().items():
        if key not in environ:
            environ[key] = value
            applied[key] = value
    if environ is os.environ:
        _APPLIED_HERE.update(applied)
    return applied


#: What :func:`apply_mxnet_cpu_env` set in this process's own environment.
_APPLIED_HERE: dict[str, str] = {}


def environ_without_applied() -> dict[str, str]:
    """``os.environ`` as the user exported it: without the settings this process applied.

    For child processes that must not inherit them (a TensorFlow measurement, or
    MXNet with the library's defaults).
    """
    return {key: value for key, value in os.environ.items() if _APPLIED_HERE.get(key) != value}


def fold_residual_scales(symbol, arg_params: dict):
    """Fold each constant scaling of a convolution's output into the convolution (inference).

    Inception-ResNet-v2's residual is ``net + scale * conv(mixed)``. MXNet 1.9.1 runs the
    ``_mul_scalar`` outside MKL-DNN: the convolution's output leaves the blocked layout,
    is scaled in one more memory pass, and the following ``elemwise_add`` cannot be fused
    into the convolution as a sum post-op. ``scale * (W x + b) = (scale W) x + scale b``,
    so for inference the scale can live in the weights, as MKL-DNN's subgraph backend
    folds batch norms. The symbol the verifier checked is not changed: this returns a
    serving copy. Not for training: gradients of the scaled weights are not the same
    updates.

    A ``_mul_scalar`` is folded when its input is output 0 of a ``Convolution`` that no
    other node reads.

    Args:
        symbol: an MXNet symbol (e.g. ``mx_impl.inception_resnet_v2.get_symbol()``).
        arg_params: its parameters (name -> NDArray), e.g. from ``Module.get_params()``.

    Returns:
        ``(symbol, arg_params, folded)``: the new symbol, a new parameter dict (the
        caller's is not modified; unfolded entries are shared) and the names of the
        convolutions that absorbed a scale.
    """
    import json

    from porting import compat

    mx = compat.import_mx()
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    readers: dict[int, int] = {}
    for node in nodes:
        for entry in node["inputs"]:
            readers[entry[0]] = readers.get(entry[0], 0) + 1
    for entry in graph["heads"]:
        readers[entry[0]] = readers.get(entry[0], 0) + 1
    params = dict(arg_params)
    drop: set[int] = set()
    folded = []
    for index, node in enumerate(nodes):
        if node["op"] != "_mul_scalar":
            continue
        source, output = node["inputs"][0][:2]
        conv = nodes[source]
        if conv["op"] != "Convolution" or output != 0 or readers.get(source, 0) != 1:
            continue
        scale = float(node["attrs"]["scalar"])
        for weight_entry in conv["inputs"][1:]:  # weight, then bias when there is one
            name = nodes[weight_entry[0]]["name"]
            params[name] = arg_params[name] * scale
        drop.add(index)
        folded.append(conv["name"])
    if not drop:
        return symbol, params, folded
    return mx.sym.load_json(json.dumps(_without_nodes(graph, drop))), params, folded


def _without_nodes(graph: dict, drop: set[int]) -> dict:
    """The graph with single-input nodes ``drop`` removed (their readers read their input)."""
    nodes = graph["nodes"]

    def resolve(entry):
        while entry[0] in drop:
            entry = nodes[entry[0]]["inputs"][0]
        return entry

    index = {}
    kept = []
    for old, node in enumerate(nodes):
        if old not in drop:
            index[old] = len(kept)
            kept.append(dict(node))
    for node in kept:
        node["inputs"] = [[index[entry[0]], *entry[1:]] for entry in map(resolve, node["inputs"])]
    result = dict(graph)
    result["nodes"] = kept
    result["heads"] = [[index[entry[0]], *entry[1:]] for entry in map(resolve, graph["heads"])]
    result["arg_nodes"] = [i for i, node in enumerate(kept) if node["op"] == "null"]
    result.pop("node_row_ptr", None)  # recomputed by the loader
    return result
