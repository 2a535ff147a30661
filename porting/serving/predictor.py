"""The :class:`Predictor`: softmax scores of a loaded model, in inference mode, on a chosen runtime.

Both runtimes serve the same serving copy of the model's inference symbol
(``porting.serving.model_loading.inference_symbol`` with the exact rewrites of
``porting.serving.rewrites``: batch norms and residual scales folded into the convolutions):

* ``mxnet``: MXNet's Module, bound for a fixed batch size (MXNet 1.9.1 applies its MKL-DNN
  subgraph fusion at that bind); the last batch of a call is padded up to it.
* ``onnxruntime``: the serving copy exported to ONNX (``porting.serving.onnx_export``) and run
  in an onnxruntime session (any batch size).

Which runtime is faster depends on the machine, so it is measured, not assumed:
:func:`measure_runtimes` times both on the model (same random batch, alternating rounds,
best round's median) and checks that their scores agree; :func:`write_runtime_record` keeps
the result beside the model as ``PREFIX-runtime.json``; :func:`choose_runtime` reads it back
(the default of ``porting.predict``). The record counts only for the symbol, input shape and
machine it was measured on; otherwise, or without one, the runtime is ``mxnet``.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from porting import compat, util

mx = compat.import_mx()

from porting.serving import rewrites  # noqa: E402
from porting.serving.model_loading import LoadedModel, PredictError, inference_symbol  # noqa: E402

RUNTIMES = ("mxnet", "onnxruntime")
DEFAULT_RUNTIME = "mxnet"
RECORD_FORMAT = "porting.serving.runtime/1"
RECORD_SUFFIX = "-runtime.json"


class Predictor:
    """Softmax scores of a :class:`LoadedModel` in inference mode, with MXNet or onnxruntime."""

    def __init__(self, model: LoadedModel, context=None, batch_size: int = 16, runtime: str = DEFAULT_RUNTIME,
                 rewrite: bool = True):
        """Prepare the serving copy and the runtime.

        Args:
            runtime: ``mxnet`` or ``onnxruntime`` (:data:`RUNTIMES`).
            rewrite: serve the exact inference rewrites (``porting.serving.rewrites.serving_graph``;
                the same scores up to float rounding); ``False`` serves the verified symbol as it is.

        ``rewrites`` says what each rewrite folded; ``folded`` lists the convolutions that
        absorbed a residual scale.

        Raises:
            PredictError: an unknown runtime, or the export to ONNX failed (naming why).
        """
        if runtime not in RUNTIMES:
            raise PredictError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
        self.model = model
        self.runtime = runtime
        self.batch_size = int(batch_size)
        symbol = inference_symbol(model.symbol)
        if rewrite:
            served = rewrites.serving_graph(symbol, model.arg_params, model.aux_params)
        else:
            served = rewrites.ServingGraph(symbol, model.arg_params, model.aux_params)
        self.rewrites = served.folded
        self.folded = served.folded.get("residual scales folded", [])
        if runtime == "mxnet":
            self.module = mx.mod.Module(served.symbol, data_names=("data",), label_names=None,
                                        context=context or mx.cpu())
            self.module.bind(data_shapes=[("data", (self.batch_size, *model.data_shape))], for_training=False)
            self.module.set_params(served.arg_params, served.aux_params, allow_missing=False, allow_extra=True)
        else:
            self.session = onnx_session(served, (self.batch_size, *model.data_shape))

    def scores(self, images: np.ndarray) -> np.ndarray:
        """``(N, classes)`` softmax scores of preprocessed ``(N, 3, H, W)`` images."""
        images = np.asarray(images, np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            n = len(chunk)
            if self.runtime == "onnxruntime":
                out.append(next(iter(self.session.run(chunk).values())))
                continue
            if n < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - n, *chunk.shape[1:]), np.float32)])
            self.module.forward(mx.io.DataBatch([mx.nd.array(chunk)]), is_train=False)
            out.append(self.module.get_outputs()[0].asnumpy()[:n])
        return np.concatenate(out) if out else np.zeros((0, len(self.model.classes)), np.float32)


def onnx_session(served: "rewrites.ServingGraph", input_shape: tuple):
    """An onnxruntime session of a serving copy: exported to a temporary file, loaded, the file removed.

    Raises:
        PredictError: onnx/onnxruntime are missing or the export failed (their message).
    """
    from porting.serving import onnx_export

    with tempfile.TemporaryDirectory(prefix="porting-serve-") as folder:
        try:
            path = onnx_export.export_onnx(served.symbol, served.arg_params, served.aux_params, input_shape,
                                           Path(folder) / "model.onnx")
            return onnx_export.OnnxSession(path)
        except util.UsageError as e:
            raise PredictError(str(e)) from e


# ----------------------------------------------------------------------------- measured choice


def runtime_record_path(model: LoadedModel) -> Path:
    """``PREFIX-runtime.json``: where the measured choice of runtime lives, beside the model's files."""
    return Path(f"{model.prefix}{RECORD_SUFFIX}")


def machine_signature() -> dict:
    """What the speed of a runtime depends on besides the model: the CPU and how many cores there are."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.system()}


def symbol_fingerprint(model: LoadedModel) -> str:
    """SHA-256 of the model's symbol (its JSON, as loaded): a record is for this network only."""
    return hashlib.sha256(model.symbol.tojson().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime to serve with and why (one line for the user)."""

    runtime: str
    reason: str


def measure_runtimes(model: LoadedModel, context=None, batch_size: int = 8, rounds: int = 3, steps: int = 3,
                     runtimes: tuple[str, ...] = RUNTIMES) -> dict:
    """Images per second of each runtime on this model (a random batch), and whether their scores agree.

    Each runtime serves the same batch ``steps`` times per round after one warm-up; the
    runtimes alternate round by round (so a burst of other load hits both), and each keeps
    its best round's median step.

    Returns:
        The record :func:`write_runtime_record` writes (``fastest`` names the winner).

    Raises:
        PredictError: the runtimes' scores differ by more than float rounding (the record would be a lie).
    """
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, *model.data_shape)).astype(np.float32)
    predictors = {name: Predictor(model, context, batch_size, runtime=name) for name in runtimes}
    scores = {name: predictor.scores(batch) for name, predictor in predictors.items()}  # warm-up
    medians: dict[str, list[float]] = {name: [] for name in runtimes}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            times = []
            for _ in range(steps):
                started = time.perf_counter()
                predictor.scores(batch)
                times.append(time.perf_counter() - started)
            medians[name].append(statistics.median(times))
    reference = scores[runtimes[0]]
    difference = max(float(np.abs(s - reference).max()) for s in scores.values())
    if difference > 1e-4:
        raise PredictError(f"the runtimes' scores differ by {difference:.3g} on the same batch; not recording a "
                           f"choice between them")
    speed = {name: batch_size / min(values) for name, values in medians.items()}
    return {"format": RECORD_FORMAT, "fastest": max(speed, key=speed.get), "images_per_s": speed,
            "batch_size": batch_size, "data_shape": list(model.data_shape), "max_score_difference": difference,
            "symbol_sha256": symbol_fingerprint(model), "machine": machine_signature(),
            "load_average": list(os.getloadavg()), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_runtime_record(model: LoadedModel, record: dict) -> Path:
    """Write ``record`` to ``PREFIX-runtime.json`` atomically.

    Raises:
        util.UsageError: the file cannot be written there (naming it).
    """
    path = util.check_output_file(runtime_record_path(model), "runtime record")
    util.atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def choose_runtime(model: LoadedModel) -> RuntimeChoice:
    """The recorded fastest runtime when the record fits this model and machine, else ``mxnet`` (saying why)."""
    path = runtime_record_path(model)
    how = f"python -m porting.predict --model {model.prefix} --measure-runtime records the faster one"
    if not path.is_file():
        return RuntimeChoice(DEFAULT_RUNTIME, f"the default: no runtime measurement recorded at {path}; {how}")
    try:
        record = json.loads(path.read_text("utf-8"))
        fastest = record["fastest"]
        speed = record["images_per_s"]
        valid = record.get("format") == RECORD_FORMAT and fastest in RUNTIMES
    except (OSError, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        return RuntimeChoice(DEFAULT_RUNTIME, f"the default: {path} is not a runtime record this version reads; {how}")
    stale = [what for what, ok in (
        ("model symbol", record.get("symbol_sha256") == symbol_fingerprint(model)),
        ("input shape", record.get("data_shape") == list(model.data_shape)),
        ("machine", record.get("machine") == machine_signature())) if not ok]
    if stale:
        return RuntimeChoice(DEFAULT_RUNTIME, f"the default: {path} was measured for another "
                                              f"{' and '.join(stale)}; {how}")
    shown = ", ".join(f"{name} {value:.1f}" for name, value in sorted(speed.items()))
    return RuntimeChoice(fastest, f"measured fastest on this machine ({shown} img/s at batch "
                                  f"{record.get('batch_size')}, {path.name})")
