"""Memory estimates before big allocations, from the layer records alone (no framework).

A run that does not fit dies in the middle: numpy raises ``MemoryError`` after minutes of
work, or the kernel kills the process, or a framework segfaults. So a command estimates
what it is about to allocate, compares it with the memory the machine has available
(``psutil.virtual_memory().available``) and refuses with one line that gives both and
what to change, before anything big is allocated:

* :func:`input_bytes`: the input batch itself (``batch x H x W x 3`` float32): checked
  before a graph is even built, so an absurd ``--size`` is refused in a second instead of
  failing inside MXNet's shape inference or TF's graph build;
* :func:`numeric_bytes`: numeric parity (``--numeric``, autoport's proof), from both sides'
  records at the real batch and size: every paired layer's output is held on both
  sides at once, plus the weights in their copies.

The estimates are deliberately generous upper bounds (see :func:`numeric_bytes`):
refusing a run that would have fitted costs the user a smaller ``--size``, while
starting one that does not fit costs a crash.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import psutil

from porting.core.cost import layer_cost
from porting.util import UsageError, human_bytes

#: Bytes of one float32 value: every activation and weight of a numeric run.
FLOAT32 = 4
#: Copies of every activation of the TF side while both sides are held: the fetched
#: NHWC value, its NCHW transpose, and TF's own buffers during ``session.run``.
TF_ACTIVATION_COPIES = 3
#: Copies of every activation of the MXNet side: the executor's outputs and ``asnumpy``.
MX_ACTIVATION_COPIES = 2
#: Copies of every weight: the TF variables, the numpy values, the transferred numpy
#: arrays and MXNet's NDArrays.
WEIGHT_COPIES = 4


class NotEnoughMemory(UsageError):
    """The work would need more memory than the machine has available (exit 2, one line)."""


@dataclass(frozen=True)
class Estimate:
    """What a step would allocate, in bytes, and in words."""

    total: int
    what: str  # e.g. "numeric parity at 299x299, batch 1"
    detail: str = ""  # e.g. "activations 1.2 GiB on each side, weights 226 MiB, float32"

    def text(self) -> str:
        return f"{self.what} needs about {human_bytes(self.total)}" + (f" ({self.detail})" if self.detail else "")


def available_bytes() -> int:
    """Memory the machine can give this process now without swapping (psutil's ``available``)."""
    return int(psutil.virtual_memory().available)


def input_bytes(batch: int, size: tuple[int, int], channels: int = 3) -> int:
    """The float32 input batch: ``batch x H x W x channels x 4`` bytes."""
    return int(batch) * int(size[0]) * int(size[1]) * int(channels) * FLOAT32


def activation_bytes(records) -> int:
    """float32 bytes of every record's output (shapes include the batch axis)."""
    return sum(math.prod(int(dim) for dim in record.shape) for record in records if record.shape) * FLOAT32


def weight_bytes(records) -> int:
    """float32 bytes of every record's weights, biases, batch-norm parameters and moving statistics."""
    total = 0
    for record in records:
        cost = layer_cost(record)
        total += cost.weights + cost.bias + cost.bn + cost.moving
    return total * FLOAT32


def input_estimate(batch: int, size: tuple[int, int]) -> Estimate:
    """The input batch alone: the least any run at this size and batch allocates."""
    return Estimate(input_bytes(batch, size), f"an input of {batch}x3x{size[0]}x{size[1]} float32 values")


def numeric_estimate(tf_records, mx_records, batch: int, size: tuple[int, int]) -> Estimate:
    """Numeric parity: both sides' activations of every layer at once, and the weights in their copies.

    ``TF_ACTIVATION_COPIES`` x the TF side's outputs + ``MX_ACTIVATION_COPIES`` x the
    MXNet side's + ``WEIGHT_COPIES`` x the weights (counted on the TF side, where they
    come from; the larger side when they differ) + the input.
    """
    tf_act, mx_act = activation_bytes(tf_records), activation_bytes(mx_records)
    weights = max(weight_bytes(tf_records), weight_bytes(mx_records))
    total = (TF_ACTIVATION_COPIES * tf_act + MX_ACTIVATION_COPIES * mx_act + WEIGHT_COPIES * weights
             + input_bytes(batch, size))
    detail = (f"activations {human_bytes(tf_act)} TF and {human_bytes(mx_act)} MXNet, weights "
              f"{human_bytes(weights)}, float32, held in several copies")
    return Estimate(total, f"numeric parity at {size[0]}x{size[1]}, batch {batch}", detail)


def check_fits(estimate: Estimate, fix: str = "use a smaller --size or --batch") -> None:
    """Refuse, before allocating, work that needs more memory than is available.

    Raises:
        NotEnoughMemory: one line with the estimate, the available memory and ``fix``.
    """
    free = available_bytes()
    if estimate.total > free:
        raise NotEnoughMemory(f"{estimate.text()} but this machine has {human_bytes(free)} available; "
                              f"{fix}, or run on a machine with more memory")
