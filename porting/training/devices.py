"""Where a run computes: the device contexts of ``--gpus`` and the kvstore of ``--kv-store``.

Nothing else differs between CPU and GPU training. Weight updates never happen on the
kvstore (``MXNET_UPDATE_ON_KVSTORE=0``, set by the loop): the kvstore sums gradients
(``device`` over GPUs, ``dist_sync`` over machines) and every worker applies the same
update. A ``dist_*`` kvstore needs processes started with MXNet's parameter-server
environment (:data:`DMLC_VARS`); :func:`check_dist_env` refuses to start without it.
"""
from __future__ import annotations

import os

from porting import compat, util
from porting.training.config import KVSTORES, TrainError

mx = compat.import_mx()

#: The parameter-server environment every ``dist_*`` process needs (README, "Training on several machines").
DMLC_VARS = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER")


def gpu_ids(gpus: str | None) -> list[int]:
    """``--gpus`` as GPU numbers (``[]``: CPU).

    Raises:
        TrainError: ``--gpus <what is wrong>``.
    """
    try:
        return util.parse_gpus(gpus)
    except ValueError as e:
        raise TrainError(f"--gpus {e}") from None


def contexts(gpus: str | None) -> list:
    """The contexts to train on: ``[mx.cpu()]`` without ``--gpus``, else one ``mx.gpu(i)`` each.

    Raises:
        TrainError: ``--gpus`` is malformed, or a requested GPU does not exist for this MXNet build.
    """
    ids = gpu_ids(gpus)
    if not ids:
        return [mx.cpu()]
    available = mx.context.num_gpus()
    missing = [i for i in ids if i >= available]
    if missing:
        why = " (this is a CPU-only MXNet build; GPU builds are the mxnet-cuXXX wheels)" if available == 0 else ""
        raise TrainError(f"--gpus {gpus}: GPU {missing[0]} is not available; MXNet sees {available} GPU(s){why}")
    return [mx.gpu(i) for i in ids]


def kvstore_type(kv_store: str | None, num_devices: int) -> str:
    """``--kv-store``, defaulting to ``device`` for several GPUs and ``local`` otherwise."""
    if kv_store is None:
        return "device" if num_devices > 1 else "local"
    if kv_store not in KVSTORES:
        raise TrainError(f"--kv-store {kv_store!r} unknown. Available: {', '.join(KVSTORES)}")
    return kv_store


def check_dist_env(kv: str, env=os.environ) -> None:
    """A ``dist_*`` kvstore needs a worker started with the DMLC variables (else it would hang)."""
    if not kv.startswith("dist"):
        return
    missing = [v for v in DMLC_VARS if not env.get(v)]
    if missing:
        raise TrainError(f"--kv-store {kv} needs the parameter-server environment; missing {', '.join(missing)} "
                         f"(start a scheduler, servers and workers as the README shows)")
    if env["DMLC_ROLE"] != "worker":
        raise TrainError(f"DMLC_ROLE={env['DMLC_ROLE']!r} reached training; only workers train")
