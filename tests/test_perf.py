"""porting.perf: MXNet's CPU thread settings, applied before MXNet loads."""
from __future__ import annotations

import subprocess
import sys

import pytest

from porting import perf


def test_one_openmp_thread_per_physical_core(monkeypatch):
    monkeypatch.setattr(perf, "threads_per_core", lambda: 1)
    assert perf.mxnet_cpu_env(2) == {"OMP_NUM_THREADS": "2"}
    monkeypatch.setattr(perf, "threads_per_core", lambda: 2)  # SMT: MXNet's own halving is right there
    assert perf.mxnet_cpu_env(16) == {"OMP_NUM_THREADS": "8"}
    assert perf.mxnet_cpu_env(1) == {"OMP_NUM_THREADS": "1"}


def test_usable_cores_and_threads_per_core_are_positive():
    assert perf.usable_cores() >= 1
    assert perf.threads_per_core() >= 1


def test_apply_leaves_what_the_user_set():
    env = {"OMP_NUM_THREADS": "5"}
    assert perf.apply_mxnet_cpu_env(env) == {}
    assert env == {"OMP_NUM_THREADS": "5"}
    env = {}
    applied = perf.apply_mxnet_cpu_env(env)
    assert applied == perf.mxnet_cpu_env() == env


def test_apply_refuses_once_mxnet_is_loaded(monkeypatch):
    monkeypatch.setitem(sys.modules, "mxnet", object())
    with pytest.raises(RuntimeError, match="before MXNet is imported"):
        perf.apply_mxnet_cpu_env()


def test_settings_are_in_place_when_mxnet_loads():
    code = ("import os; from porting import perf; os.environ.pop('OMP_NUM_THREADS', None); "
            "perf.apply_mxnet_cpu_env(); from porting import compat; mx = compat.import_mx(); "
            "print(os.environ['OMP_NUM_THREADS'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == perf.mxnet_cpu_env()["OMP_NUM_THREADS"]
