"""Batch norm and its ReLU as one oneDNN operator in training, proved on the run's own shapes first.

Training on CPU, MXNet 1.9.1 runs each batch norm and the ReLU after it as two oneDNN
primitives: two passes over the activation forward, two more backward. Its contrib operator
``BatchNormWithReLU`` (oneDNN's batch norm with the ReLU fused in, forward and backward; the
same parameters, attributes and moving statistics) does it in one: +3 % training img/s for the
full network at 299, batch 8 (README, "Performance").

But its backward is wrong when its input reaches it in the plain NCHW layout rather than one
of oneDNN's blocked layouts: the data and beta gradients come out wrong (not rounding: wrong),
while the forward pass is right. Which layout a convolution hands on is oneDNN's choice per
shape (a 1x7 convolution on a 2x2 map picks a plain one). So :func:`proven_fusion` fuses, runs
one training step of the fused and of the plain symbol on the same random values (dropout's masks
included) at the run's own batch and input size, and keeps the fused symbol only if every output,
gradient and moving statistic agrees; otherwise the run trains the plain symbol and says why.
The check runs in a child process (its two executors are never part of the trainer's peak), one
executor at a time, each array compared by its norm and two random projections rather than kept.

CPU with oneDNN only: the fused operator has no GPU kernel and no non-oneDNN CPU one.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from porting import compat
from porting.frameworks.mx_attrs import attrs_of, read_counts, rebuilt_graph, symbol_graph

mx = compat.import_mx()

#: MXNet's batch norm with the ReLU that follows it in one oneDNN primitive (contrib; CPU with oneDNN only).
BN_RELU_OP = "_contrib_BatchNormWithReLU"

#: Seconds the check's child process may take (two training steps and their binds; ~10 s at 299, batch 8).
CHECK_TIMEOUT_S = 900

#: How far a fused step's fingerprints may differ from the plain one's, relative to the array's norm (or the
#: typical array's): float rounding passes, the layout bug (differences of the gradients' own size) does not.
TOLERANCE = 1e-4


def fuse_batch_norm_relu(sym):
    """``(symbol, pairs)``: ``sym`` with each batch norm that only a ReLU reads fused with it, and how many.

    The ReLU nodes go, the batch-norm nodes keep their names and inputs, so the parameters, auxiliary
    states and outputs are those of ``sym``. A batch norm over another axis than 1 (oneDNN's fused
    kernel is channels-first) or that returns its mean and variance is left alone.
    """
    graph = symbol_graph(sym)
    nodes = graph["nodes"]
    reads = read_counts(graph)
    drop = set()
    for index, node in enumerate(nodes):
        if node["op"] != "Activation" or attrs_of(node).get("act_type") != "relu":
            continue
        source, output = node["inputs"][0][:2]
        norm, attrs = nodes[source], attrs_of(nodes[source])
        if (norm["op"] == "BatchNorm" and output == 0 and reads.get(source) == 1 and int(attrs.get("axis", 1)) == 1
                and attrs.get("output_mean_var", "False").lower() in ("false", "0")):
            norm["op"] = BN_RELU_OP
            drop.add(index)
    if not drop:
        return sym, 0
    return mx.sym.load_json(json.dumps(rebuilt_graph(graph, drop))), len(drop)


def onednn_active() -> bool:
    """Whether MXNet runs its CPU operators through oneDNN (built with it, not disabled by ``MXNET_MKLDNN_ENABLED=0``)."""
    return mx.runtime.Features().is_enabled("MKLDNN") and os.environ.get("MXNET_MKLDNN_ENABLED", "1") != "0"


@dataclass
class Proof:
    """What :func:`proven_fusion` found: pairs fused, the largest relative difference and where, its cost;
    ``failed``: why there is no proof (no fusion either)."""

    pairs: int
    worst: float = 0.0
    where: str | None = None
    seconds: float = 0.0
    failed: str | None = None

    @property
    def holds(self) -> bool:
        return self.pairs > 0 and self.failed is None and self.worst <= TOLERANCE

    def describe(self) -> str:
        if self.failed:
            return f"batch norms not fused with their ReLU: {self.failed}"
        if self.pairs == 0:
            return "no batch norm + ReLU to fuse"
        if self.holds:
            return (f"{self.pairs} batch norms fused with their ReLU (one training step checked against the plain "
                    f"symbol: largest difference {self.worst:.1e} of the array's scale, {self.seconds:.1f} s)")
        return (f"batch norms not fused with their ReLU: the fused step differs from the plain one at {self.where} "
                f"({self.worst:.2g} of the array's scale; MXNet 1.9.1's BatchNormWithReLU on a plain-layout input)")


def _fingerprints(arrays: dict, seed: int) -> dict[str, np.ndarray]:
    """Per array: its L2 norm and two projections on fixed random directions (``[norm, p1, p2]``).

    Equal arrays have equal fingerprints up to float rounding (relative to the norm); an array that
    differs by a fraction of its own size moves its projections by about that fraction, except in a
    direction of probability zero. A few numbers per array instead of a host copy of every gradient:
    the check needs no more memory than a training step.
    """
    prints = {}
    for index, (key, array) in enumerate(arrays.items()):
        flat = array.asnumpy().ravel().astype(np.float64)
        directions = np.random.default_rng([seed, index]).standard_normal((2, flat.size))
        prints[key] = np.array([np.linalg.norm(flat), *(directions @ flat)])
    return prints


def _one_step(sym, context, shapes: dict, seed: int) -> dict[str, np.ndarray]:
    """One training step of ``sym`` on seeded random values: fingerprints of its outputs, gradients and
    moving statistics (:func:`_fingerprints`). The executor is gone when this returns."""
    executor = sym.simple_bind(context, grad_req={name: "null" if name in shapes else "write"
                                                  for name in sym.list_arguments()}, **shapes)
    rng = np.random.default_rng(seed)
    for name in sorted(executor.arg_dict):  # the same values for both symbols: they share argument names
        array = executor.arg_dict[name]
        if name == "data":
            array[:] = rng.normal(0.0, 1.0, array.shape).astype(np.float32)
        elif name in shapes:
            array[:] = 0.0  # class 0: a valid label for any head
        else:
            array[:] = rng.normal(0.0, 0.1, array.shape).astype(np.float32)
    for name, array in executor.aux_dict.items():
        array[:] = 1.0 if name.endswith("var") else 0.0
    mx.random.seed(seed)  # dropout draws the same masks in both steps
    arrays = {f"output {i}": out for i, out in enumerate(executor.forward(is_train=True))}
    executor.backward()
    arrays.update((f"gradient of {name}", grad) for name, grad in executor.grad_dict.items() if grad is not None)
    arrays.update((f"moving statistic {name}", aux) for name, aux in executor.aux_dict.items())
    prints = _fingerprints(arrays, seed)
    # every handle on the executor's memory dropped and the engine's frees done before the next bind
    del arrays, array, executor
    gc.collect()
    mx.nd.waitall()
    return prints


def _largest_difference(reference: dict, other: dict) -> tuple[float, str | None]:
    """The largest fingerprint difference relative to the array's norm, and which array.

    An array that is zero in exact arithmetic (a bias before a training-mode batch norm) is rounding
    noise on both sides: judged on the typical norm.
    """
    typical = float(np.median([prints[0] for prints in reference.values()]))
    worst, where = 0.0, None
    for key, expected in reference.items():
        scale = max(float(expected[0]), typical) or 1.0
        difference = float(np.abs(other[key] - expected).max()) / scale
        if difference > worst:
            worst, where = difference, key
    return worst, where


def _prove(sym, fused, context, data_shape: tuple, label_shape: tuple, seed: int) -> tuple[float, str | None]:
    """The largest difference between one training step of ``fused`` and of ``sym``, and where (this process)."""
    from porting.training.symbol_heads import LABEL_NAME

    shapes = {"data": tuple(data_shape), LABEL_NAME: tuple(label_shape)}
    reference = _one_step(sym, context, shapes, seed)
    return _largest_difference(reference, _one_step(fused, context, shapes, seed))


def _prove_in_child(sym, data_shape: tuple, label_shape: tuple, seed: int) -> tuple[float, str | None]:
    """:func:`_prove` in a fresh interpreter (this module's ``main``), with this process's environment (its
    OpenMP and oneDNN settings): the two executors' memory is never part of this process's peak."""
    request = json.dumps({"symbol": sym.tojson(), "data_shape": list(data_shape), "label_shape": list(label_shape),
                          "seed": seed})
    root = str(Path(__file__).resolve().parents[2])
    # a local computation: not a member of a distributed run (DMLC_ROLE=server would serve at MXNet's import)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DMLC_", "PS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run([sys.executable, "-m", "porting.training.fusion"], input=request, capture_output=True,
                              text=True, env=env, timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the fusion check took more than {CHECK_TIMEOUT_S} s") from None
    answer = next((line for line in done.stdout.splitlines() if line.startswith(ANSWER)), None)
    if done.returncode != 0 or answer is None:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"the fusion check's process failed: {last}")
    worst, where = json.loads(answer[len(ANSWER):])
    return worst, where


def proven_fusion(sym, contexts, data_shape: tuple, label_shape: tuple, *, seed: int = 0, isolated: bool = True):
    """``(symbol, Proof)``: ``sym`` with batch norms fused with their ReLU where one training step at these shapes
    proves it equal to ``sym``, else ``sym``. Not on GPUs or without oneDNN (``Proof.pairs == 0``).

    ``isolated``: the step runs in a child process (the default: the caller's peak memory is its own
    training's); else in this one.
    """
    if not all(context.device_type == "cpu" for context in contexts):
        return sym, Proof(0, failed="a GPU run (the fused operator has no GPU kernel)")
    if not onednn_active():
        return sym, Proof(0, failed="MXNet runs without oneDNN here (the fused operator needs it)")
    fused, pairs = fuse_batch_norm_relu(sym)
    if not pairs:
        return sym, Proof(0)
    started = time.perf_counter()
    try:
        if isolated:
            worst, where = _prove_in_child(sym, data_shape, label_shape, seed)
        else:
            worst, where = _prove(sym, fused, contexts[0], data_shape, label_shape, seed)
    except RuntimeError as error:  # no proof, no fusion
        return sym, Proof(pairs, seconds=time.perf_counter() - started, failed=str(error))
    proof = Proof(pairs, worst, where, time.perf_counter() - started)
    return (fused if proof.holds else sym), proof


#: The line the check's child process answers on.
ANSWER = "FUSION-CHECK "


def main() -> int:
    """The check's child process: a request on stdin, ``FUSION-CHECK [worst, where]`` on stdout."""
    request = json.loads(sys.stdin.read())
    sym = mx.sym.load_json(request["symbol"])
    fused, _ = fuse_batch_norm_relu(sym)
    worst, where = _prove(sym, fused, mx.cpu(), tuple(request["data_shape"]), tuple(request["label_shape"]),
                          request["seed"])
    print(ANSWER + json.dumps([worst, where]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
