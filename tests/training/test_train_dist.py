"""One-machine distributed training: scheduler, server and two workers on loopback, dist_sync.

Every process runs the same ``python -m porting.train`` command; the DMLC environment
gives each its role (MXNet turns a scheduler or server process into its service loop at
import). Both workers must finish the epoch and hold identical parameters: the same
start (rank 0's, pulled from the kvstore), the same summed gradients every update, and
batch-norm statistics averaged through the kvstore at the end of the epoch.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from porting import compat

mx = compat.import_mx()

from porting.training import checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dist_sync_two_workers_hold_identical_parameters(digits_data, tmp_path):
    model_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "porting.train", "--kv-store", "dist_sync", "--data", str(digits_data),
           "--model-dir", str(model_dir), "--repeats", "1,1,1", "--align-feature-maps", "--bn-momentum", "0.5",
           "--batch-size", "4", "--max-batches", "3", "--epochs", "1", "--log-every", "1",
           "--preprocess-threads", "1"]
    base = dict(os.environ, DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT=str(_free_port()),
                DMLC_NUM_SERVER="1", DMLC_NUM_WORKER="2", DMLC_NODE_HOST="127.0.0.1",
                OMP_NUM_THREADS="1", MXNET_CPU_WORKER_NTHREADS="1")
    procs: dict[str, subprocess.Popen] = {}
    logs = {}
    try:
        for role in ("scheduler", "server", "worker0", "worker1"):
            logs[role] = open(tmp_path / f"{role}.log", "wb")
            procs[role] = subprocess.Popen(cmd, cwd=REPO, env=dict(base, DMLC_ROLE=role.rstrip("01")),
                                           stdout=logs[role], stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + TIMEOUT_S
        for role in ("worker0", "worker1", "server", "scheduler"):
            left = max(1.0, deadline - time.monotonic())
            code = procs[role].wait(timeout=left)
            assert code == 0, f"{role} exited {code}:\n" + _tail(tmp_path / f"{role}.log")
    except subprocess.TimeoutExpired:
        pytest.fail("distributed run did not finish in time:\n"
                    + "\n".join(f"--- {r}\n{_tail(tmp_path / f'{r}.log')}" for r in procs))
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        for f in logs.values():
            f.close()

    dirs = [model_dir, model_dir / "rank1"]
    records = [checkpoint.read_checkpoint(d) for d in dirs]
    assert [r["rank"] for r in records] == [0, 1]
    assert all(r["epoch"] == 1 and r["num_update"] == 3 and r["num_workers"] == 2 for r in records)
    digests = [checkpoint.params_digest(*checkpoint.load_params_file(d / "model-0001.params")) for d in dirs]
    assert digests[0] == digests[1]
    # the averaged batch-norm statistics are real ones, not the kvstore's initial values (0 and 1)
    _, aux = checkpoint.load_params_file(model_dir / "model-0001.params")
    means = [v.asnumpy() for k, v in aux.items() if k.endswith("moving_mean")]
    assert all(abs(m).max() > 0 for m in means)
    rows = [json.loads((d / "metrics.json").read_text())["epochs"] for d in dirs]
    assert [len(r) for r in rows] == [1, 1]
    assert rows[0][0]["val_top1"] == rows[1][0]["val_top1"]  # same parameters, same full val set


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return "(no log)"
