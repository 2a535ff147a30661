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

:func:`mxnet_cpu_env` sets one OpenMP thread per physical core (what it gains, measured
with ``bench/train_throughput.py``: README, "Performance"). Two engine workers
(``MXNET_CPU_WORKER_NTHREADS=2``) are not set: on top of it they gave nothing more. On a
machine oversubscribed by other processes, OpenMP threads wait for each other at every
barrier, so more threads can be slower there; export ``OMP_NUM_THREADS`` to override.

For training (``import_mx(training=True)``, what ``python -m porting.train`` and the
benches' trainer load MXNet with) the OpenMP threads also wait actively between operators
(``OMP_WAIT_POLICY=ACTIVE``). A training step runs ~1,500 oneDNN primitives back to back on
one engine thread; with libgomp's default wait (a short spin, then sleep) the second
thread of the team is often asleep when the next primitive starts. Spinning costs nothing
while the next operator is seconds away at most, and gained 7-10 % training img/s at 139
and 299 (README, "Performance"). Not for inference: a serving process idle between
requests would spin a core for seconds after each one. Not for a DMLC server or scheduler,
which serve rather than compute and share the machine with the workers.

:func:`apply_mxnet_cpu_env` sets them without overriding anything the user exported;
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


#: CPU 0's hardware-thread siblings ("0-1", "0,64" or "0"), as Linux lists them.
SIBLINGS_PATH = "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list"


def threads_per_core(path: str = SIBLINGS_PATH) -> int:
    """Hardware threads per physical core (1 without SMT), from sysfs; 1 when unknown."""
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


#: DMLC roles that run no network: a parameter server or the scheduler (``DMLC_ROLE``).
SERVING_ROLES = frozenset({"server", "scheduler"})


def mxnet_cpu_env(cores: int | None = None, *, training: bool = False) -> dict[str, str]:
    """The MXNet threading settings on ``cores`` CPUs (default: this process's).

    ``training``: the OpenMP threads also wait actively between operators (module docstring).
    """
    cores = cores or usable_cores()
    physical = max(1, cores // threads_per_core())
    settings = {"OMP_NUM_THREADS": str(physical)}
    if training:
        settings["OMP_WAIT_POLICY"] = "ACTIVE"
    return settings


def apply_mxnet_cpu_env(environ=None, *, training: bool = False) -> dict[str, str]:
    """Set :func:`mxnet_cpu_env` in ``environ`` (default ``os.environ``) where unset.

    ``training`` is ignored in a DMLC server or scheduler process (``DMLC_ROLE``).

    Returns:
        the settings that were applied (those already set are left alone).

    Raises:
        RuntimeError: MXNet is already imported, so the settings could not take effect.
    """
    environ = os.environ if environ is None else environ
    if environ is os.environ and "mxnet" in sys.modules:
        raise RuntimeError("apply_mxnet_cpu_env() must run before MXNet is imported: "
                           "MXNet reads its thread settings when the library loads")
    training = training and environ.get("DMLC_ROLE", "worker") not in SERVING_ROLES
    applied = {}
    for key, value in mxnet_cpu_env(training=training).items():
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
