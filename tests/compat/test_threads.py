"""porting.threads: MXNet's CPU thread settings, applied before MXNet loads (by compat.import_mx)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from porting import threads


def test_one_openmp_thread_per_physical_core(monkeypatch):
    monkeypatch.setattr(threads, "threads_per_core", lambda: 1)
    assert threads.mxnet_cpu_env(2) == {"OMP_NUM_THREADS": "2"}
    monkeypatch.setattr(threads, "threads_per_core", lambda: 2)  # SMT: MXNet's own halving is right there
    assert threads.mxnet_cpu_env(16) == {"OMP_NUM_THREADS": "8"}
    assert threads.mxnet_cpu_env(1) == {"OMP_NUM_THREADS": "1"}


def test_training_threads_also_wait_actively(monkeypatch):
    monkeypatch.setattr(threads, "threads_per_core", lambda: 1)
    assert threads.mxnet_cpu_env(2, training=True) == {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}
    assert "OMP_WAIT_POLICY" not in threads.mxnet_cpu_env(2)  # inference: idle servers must not spin


@pytest.mark.parametrize("role, active", [(None, True), ("worker", True), ("server", False), ("scheduler", False)])
def test_training_settings_only_in_a_process_that_trains(role, active):
    env = {} if role is None else {"DMLC_ROLE": role}
    applied = threads.apply_mxnet_cpu_env(env, training=True)
    assert ("OMP_WAIT_POLICY" in applied) == active
    assert env.get("OMP_WAIT_POLICY") == ("ACTIVE" if active else None)
    assert env["OMP_NUM_THREADS"] == threads.mxnet_cpu_env()["OMP_NUM_THREADS"]


def test_the_users_wait_policy_wins():
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    assert "OMP_WAIT_POLICY" not in threads.apply_mxnet_cpu_env(env, training=True)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"


_OPENMP_AS_LOADED = """
import sys
from porting.cli import train
from porting import compat
if sys.argv[1] == "train":
    print("RC", train.main(["--data", sys.argv[2], "--model-dir", sys.argv[3]]))
else:
    compat.import_mx()
"""


def _wait_policies(*argv: str) -> tuple[list[str], str]:
    """(OMP_WAIT_POLICY of every OpenMP runtime as it initialised, stdout) in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MXNET_", "PORTING_", "DMLC_"))}
    env["OMP_DISPLAY_ENV"] = "TRUE"  # each libgomp prints its settings when it initialises
    done = subprocess.run([sys.executable, "-c", _OPENMP_AS_LOADED, *argv], capture_output=True, text=True,
                          timeout=300, env=env)
    policies = [line.split("=")[1].strip(" '") for line in done.stderr.splitlines()
                if line.strip().startswith("OMP_WAIT_POLICY")]
    return policies, done.stdout


def test_the_trainer_loads_mxnet_with_active_waiting_and_other_commands_do_not(tmp_path):
    policies, out = _wait_policies("train", str(tmp_path / "no-data"), str(tmp_path / "run"))
    assert "RC 2" in out  # refused for the missing data set, after MXNet loaded with its settings
    assert policies and set(policies) == {"ACTIVE"}
    policies, _ = _wait_policies("import")
    assert policies and "ACTIVE" not in policies


def test_usable_cores_are_this_process_affinity():
    assert threads.usable_cores() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.parametrize("siblings, expected", [("0\n", 1), ("0-1\n", 2), ("0,64\n", 2), ("0-3\n", 4),
                                                ("0-1,8-9\n", 4), (None, 1)],
                         ids=["no-smt", "range", "list", "4-way", "ranges", "unknown"])
def test_threads_per_core_reads_the_sibling_list(siblings, expected, tmp_path):
    path = tmp_path / "thread_siblings_list"
    if siblings is not None:
        path.write_text(siblings)
    assert threads.threads_per_core(str(path)) == expected


def test_threads_per_core_agrees_with_psutil_on_this_machine():
    import psutil

    logical, physical = psutil.cpu_count(), psutil.cpu_count(logical=False)
    if not physical or not os.path.exists(threads.SIBLINGS_PATH):
        pytest.skip("this machine does not report physical cores")
    assert threads.threads_per_core() == logical // physical


def test_apply_leaves_what_the_user_set():
    env = {"OMP_NUM_THREADS": "5"}
    assert threads.apply_mxnet_cpu_env(env) == {}
    assert env == {"OMP_NUM_THREADS": "5"}
    env = {}
    applied = threads.apply_mxnet_cpu_env(env)
    assert applied == threads.mxnet_cpu_env() == env


def test_apply_refuses_once_mxnet_is_loaded(monkeypatch):
    monkeypatch.setitem(sys.modules, "mxnet", object())
    with pytest.raises(RuntimeError, match="before MXNet is imported"):
        threads.apply_mxnet_cpu_env()


def test_settings_are_in_place_when_mxnet_loads():
    code = ("import os; from porting import threads; os.environ.pop('OMP_NUM_THREADS', None); "
            "threads.apply_mxnet_cpu_env(); from porting import compat; mx = compat.import_mx(); "
            "print(os.environ['OMP_NUM_THREADS'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == threads.mxnet_cpu_env()["OMP_NUM_THREADS"]


_COUNT_OPENMP_WORKERS = """
import os, psutil
from porting import compat
mx = compat.import_mx()
x, w = mx.nd.ones((4, 32, 28, 28)), mx.nd.ones((32, 32, 3, 3))
x.wait_to_read(); w.wait_to_read()
before = psutil.Process().num_threads()
for _ in range(3):
    mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=32, no_bias=True, pad=(1, 1)).wait_to_read()
print(os.environ.get("OMP_NUM_THREADS"), psutil.Process().num_threads() - before)
"""


def _openmp_workers(**env_changes) -> tuple[str, int]:
    """(OMP_NUM_THREADS as MXNet loaded with it, threads a conv added) in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MXNET_", "PORTING_"))}
    env.update(env_changes)
    done = subprocess.run([sys.executable, "-c", _COUNT_OPENMP_WORKERS], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    value, added = done.stdout.strip().splitlines()[-1].split()
    return value, int(added)


def test_import_mx_loads_mxnet_with_one_openmp_thread_per_core():
    """Not only the variable: MXNet's conv really runs on that many OpenMP threads."""
    ours = threads.mxnet_cpu_env()["OMP_NUM_THREADS"]
    assert _openmp_workers() == (ours, int(ours) - 1)  # the calling thread is the first of the team
    assert _openmp_workers(OMP_NUM_THREADS="3") == ("3", 2)  # the user's export wins
    value, added = _openmp_workers(PORTING_MXNET_LIBRARY_THREADS="1")  # the library's own default
    assert value == "None"
    if threads.usable_cores() == 2 and threads.threads_per_core() == 1:  # this project's machines
        assert added == 0  # MXNet 1.9.1 alone: half the cores, one thread
