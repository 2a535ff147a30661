"""How much memory a training run needs, estimated from the symbol before the executor is bound.

Binding a network too big for the machine ends in a failed allocation deep in MXNet, or
the kernel's OOM killer, minutes into a run. :func:`check_training_memory` refuses it up
front, with the estimate and what the machine has.

The estimate (:func:`estimate`): every internal output of the training symbol at the
per-device batch (the forward activations; MXNet's memory planner shares buffers, and
its plan came out at 0.5-0.8 of this sum, the rest of the backward pass fits in the
difference), plus the learnable parameters times (1 value + 1 gradient + the optimizer's
states), plus the auxiliary states, plus :data:`RUNTIME_BYTES` for the MXNet runtime
and oneDNN's buffers on CPU. Against the peak RSS of real runs (2 CPUs, SGD with
momentum) it came out 1.01x (full network at 299, batch 4: 2544 against 2513 MiB),
1.14x (small 2/2/2 at 149, batch 32) and 1.17x (reduced at 32, batch 128): slightly
above, never below, so a refusal is not a false alarm by a wide margin. Those runs predate
the settings below and ``network.scale_residuals_in_weights``, which lower the peak (full
network at 299, batch 8: 3835 to 2539 MB), so the estimate is now further on the safe side.

Two settings cut the peak of a CPU run without changing what is computed (measured with
``bench/train_memory.py``; README, "Where training memory goes"):

* :func:`limit_malloc_arenas`: one glibc malloc arena for the whole process. With the
  engine's worker, OpenMP and Python threads each allocating, glibc gave every thread its
  own arena, and ~80 MB freed in one arena stayed resident, unusable by the others.
* :func:`share_host_params`: ``Module`` keeps a host copy of every parameter besides the
  executor's (``get_params`` copies the executor's values into it); on one CPU device the
  copy is the executor's own arrays, so that second copy (224 MB for the full network)
  is never allocated for the run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np

from porting import compat, util
from porting.core.memory import available_bytes
from porting.training.config import TrainError

mx = compat.import_mx()

from porting.training.symbol_heads import LABEL_NAME, infer_shape  # noqa: E402

#: The MXNet runtime, its thread pools and oneDNN's reorder buffers on CPU (measured: ~450 MiB).
RUNTIME_BYTES = 512 << 20
BYTES_PER_VALUE = 4  # float32


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run needs on one device, by what holds them."""

    batch: int  # images per device
    activations: int  # every internal output at this batch
    parameters: int  # values, gradients and optimizer states of the learnable parameters, and aux states
    runtime: int  # MXNet's runtime (CPU only)
    checkpoint: int  # one epoch's params + states files on disk

    @property
    def total(self) -> int:
        return self.activations + self.parameters + self.runtime

    def describe(self) -> str:
        return (f"activations {util.human_bytes(self.activations)} for {self.batch} image(s), parameters with "
                f"gradients and optimizer states {util.human_bytes(self.parameters)}"
                + (f", MXNet runtime {util.human_bytes(self.runtime)}" if self.runtime else ""))


def optimizer_states(optimizer: str, momentum: float) -> int:
    """Arrays the optimizer keeps per parameter: slim's RMSProp 2 (mean square, momentum), SGD 1 or 0."""
    if optimizer == "rmsprop":
        return 2
    return 1 if momentum > 0 else 0


def estimate(sym, data_shape: tuple[int, int, int], batch: int, states: int, cpu: bool = True) -> MemoryEstimate:
    """The memory one device needs to train ``sym`` on ``batch`` images of ``data_shape`` (see the module doc)."""
    shapes = {"data": (batch, *data_shape)}
    if LABEL_NAME in sym.list_arguments():
        shapes[LABEL_NAME] = (batch,)
    internals = sym.get_internals()
    _, out_shapes, _ = infer_shape(internals, **shapes)
    variables = set(sym.list_arguments()) | set(sym.list_auxiliary_states())
    activations = sum(int(np.prod(s)) for name, s in zip(internals.list_outputs(), out_shapes)
                      if name not in variables)
    arg_shapes, _, aux_shapes = infer_shape(sym, **shapes)
    learnable = sum(int(np.prod(s)) for name, s in zip(sym.list_arguments(), arg_shapes)
                    if name not in ("data", LABEL_NAME))
    aux = sum(int(np.prod(s)) for s in aux_shapes)
    return MemoryEstimate(
        batch=batch, activations=activations * BYTES_PER_VALUE,
        parameters=(learnable * (2 + states) + aux) * BYTES_PER_VALUE,
        runtime=RUNTIME_BYTES if cpu else 0,
        checkpoint=(learnable * (1 + states) + aux) * BYTES_PER_VALUE,
    )


def check_training_memory(sym, data_shape: tuple[int, int, int], batch_size: int, contexts: list,
                          states: int) -> MemoryEstimate:
    """Refuse a run whose estimate exceeds the memory available (host RAM on CPU, free memory per GPU).

    Raises:
        TrainError: naming the estimate, its parts, the memory available and a batch size that fits.
    """
    per_device = max(1, math.ceil(batch_size / len(contexts)))
    cpu = all(ctx.device_type == "cpu" for ctx in contexts)
    est = estimate(sym, data_shape, per_device, states, cpu=cpu)
    if cpu:
        available, where = available_bytes(), "the machine"
    else:
        free = []
        for ctx in contexts:
            try:
                free.append((mx.context.gpu_memory_info(ctx.device_id)[0], f"GPU {ctx.device_id}"))
            except mx.base.MXNetError:  # pragma: no cover - no GPU here
                continue
        if not free:
            return est
        available, where = min(free)
    if est.total <= available:
        return est
    per_image = est.activations / per_device
    fits = int((available - est.parameters - est.runtime) // per_image) * len(contexts) if per_image else 0
    hint = (f"use --batch-size {fits} or less" if fits >= 1 else
            "even one image does not fit: use a smaller input (--crop in porting.data) or a smaller network")
    _, h, w = data_shape
    raise TrainError(f"training needs about {util.human_bytes(est.total)} per device (batch {batch_size} at {h}x{w}: "
                     f"{est.describe()}) but {where} has {util.human_bytes(available)} available; {hint}")


# ----------------------------------------------------------------------------- settings that cut the peak

#: glibc's ``mallopt`` parameter for the most arenas (malloc.h ``M_ARENA_MAX``).
M_ARENA_MAX = -8
#: Arenas a training process keeps: one (see the module doc).
TRAINING_MALLOC_ARENAS = 1


def limit_malloc_arenas(count: int = TRAINING_MALLOC_ARENAS) -> bool:
    """Let glibc's malloc use at most ``count`` arenas from now on (threads that allocate later share them).

    Call it before MXNet starts its engine and OpenMP threads (before the first operator
    runs); arenas already created stay. Returns False where there is no glibc (nothing is changed).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, int(count)))


def share_host_params(mod) -> bool:
    """Make a bound, initialised ``Module``'s host copy of the parameters the executor's own arrays.

    Only for one CPU device (with several devices, or a GPU, the host copy is where the
    devices' values are gathered and must stay separate). ``get_params`` then returns the
    live training arrays (its sync copies each onto itself); ``set_params`` writes into
    them. Returns True when the copy was replaced (its memory is freed with it).
    """
    group = mod._exec_group  # Module has no public handle on its executors
    if len(group.execs) != 1 or group.contexts[0].device_type != "cpu":
        return False
    executor = group.execs[0]
    mod._arg_params = {name: executor.arg_dict[name] for name in mod._arg_params}
    mod._aux_params = {name: executor.aux_dict[name] for name in mod._aux_params}
    return True
