"""Predictions and accuracy with exactly the preprocessing the model was trained with.

A model directory written by ``porting.train`` holds the checkpoint files, its
``checkpoint.json`` and, under ``data/``, a copy of the data set's ``manifest.json``,
mean image and ``contents.tsv`` (the content hash of every image and its split).
Everything here reads preprocessing only from that copy, through
``porting.data.iterators.preprocess_image``: MXNet's decoder (RGB), the packer's resize and
codec, the center crop and the mean/std of training. So a prediction cannot drift from
what the validation iterator fed the network during training.

* :func:`load_model` checks that the checkpoint is complete and fits its symbol (naming
  the parameters that do not), and that the manifest copy is the one the run recorded.
* :class:`Predictor` runs the Module in inference mode and returns softmax scores.
* :func:`evaluate_list` computes accuracy on an ``.lst`` file and refuses images whose
  content hash is in the training split unless told otherwise.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from porting import compat

mx = compat.import_mx()

from porting.data import imageproc, iterators  # noqa: E402
from porting.data.manifest import Manifest, ManifestError, load_manifest, read_format_json, sha256_file  # noqa: E402
from porting.serving import rewrites  # noqa: E402
from porting.training.checkpoint import (CHECKPOINT_NAME, DATA_COPY_DIR, FORMAT, checkpoint_paths,  # noqa: E402
                                         fit_problems, load_params_file, param_shapes)
from porting.training.config import TrainError  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME  # noqa: E402

LOGITS = "InceptionResnetV2/Logits/Logits_output"


class PredictError(Exception):
    """The model, its manifest or an input is unusable; ``str(e)`` is one line."""


@dataclass
class LoadedModel:
    """A checkpoint with the manifest it was trained on."""

    prefix: Path
    epoch: int
    record: dict
    symbol: object
    arg_params: dict
    aux_params: dict
    manifest: Manifest

    @property
    def model_dir(self) -> Path:
        return self.prefix.parent

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes

    @property
    def data_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest.data_shape)


def _record(model_dir: Path) -> dict:
    return read_format_json(model_dir / CHECKPOINT_NAME, FORMAT, PredictError,
                            f"{model_dir} is not a model directory written by porting.train "
                            "(or no epoch has completed yet)")


def load_model_manifest(model_dir: Path, record: dict, manifest: str | Path | None = None) -> Manifest:
    """The manifest copy saved with the model, checked against ``checkpoint.json``.

    Args:
        manifest: optionally, a data set's manifest the caller expects to match; it
            must be byte-identical to the copy (same data set, same build).

    Raises:
        PredictError: the copy is missing or changed, or ``manifest`` is another data set's.
    """
    copy = model_dir / DATA_COPY_DIR / "manifest.json"
    if not copy.is_file():
        raise PredictError(f"{copy} not found: the model directory lacks the copy of its data manifest")
    recorded = record.get("manifest_sha256")
    if sha256_file(copy) != recorded:
        raise PredictError(f"{copy} does not belong to the model: its SHA-256 differs from the one "
                           f"{model_dir / CHECKPOINT_NAME} recorded at training time")
    if manifest is not None:
        given = Path(manifest)
        given = given / "manifest.json" if given.is_dir() else given
        if not given.is_file():
            raise PredictError(f"--manifest {given} not found")
        if sha256_file(given) != recorded:
            try:
                other = json.loads(given.read_text("utf-8")).get("fingerprint", "?")
            except (OSError, ValueError):
                other = "unreadable"
            raise PredictError(f"manifest {given} does not belong to model {model_dir} (fingerprint {other[:12]}, "
                               f"the model was trained on {record.get('manifest_fingerprint', '?')[:12]})")
    try:
        m = load_manifest(copy, verify="none")
    except ManifestError as e:
        raise PredictError(str(e)) from e
    for name, meta in m.raw.get("files", {}).items():  # the mean image and contents.tsv travel with it
        p = m.root / meta["path"]
        if not p.is_file() or sha256_file(p) != meta["sha256"]:
            raise PredictError(f"{p} is missing or differs from what {copy} records; the model directory is damaged")
    return m


def load_model(prefix: str | Path, epoch: int | None = None, manifest: str | Path | None = None) -> LoadedModel:
    """Load ``PREFIX-symbol.json`` and ``PREFIX-NNNN.params`` with the model's manifest copy.

    Args:
        prefix: ``MODEL_DIR/NAME`` as given to ``porting.train`` (``--model-dir``/``--prefix``).
        epoch: a complete epoch; default the last one.
        manifest: see :func:`load_model_manifest`.

    Raises:
        PredictError: a missing or incomplete checkpoint, parameters that do not fit the
        symbol (named), or a manifest that does not belong to the model.
    """
    prefix = Path(prefix)
    model_dir = prefix.parent
    record = _record(model_dir)
    if record["prefix"] != prefix.name:
        raise PredictError(f"{model_dir} holds the checkpoints of prefix {record['prefix']!r}, not {prefix.name!r}; "
                           f"use --model {model_dir / record['prefix']}")
    done = sorted(int(e) for e in record.get("epochs", {}))
    epoch = int(record["epoch"]) if epoch is None else int(epoch)
    if epoch not in done:
        raise PredictError(f"epoch {epoch} is not a complete checkpoint of {prefix}. "
                           f"Available: {', '.join(map(str, done)) or 'none'}")
    paths = checkpoint_paths(model_dir, record["prefix"], epoch)
    for kind in ("symbol", "params"):
        p = paths[kind]
        if not p.is_file():
            raise PredictError(f"{p} not found ({kind} of epoch {epoch})")
        if sha256_file(p) != record["epochs"][str(epoch)][kind]:
            raise PredictError(f"{p} differs from the {kind} file checkpoint.json recorded for epoch {epoch}")
    try:
        symbol = mx.sym.load(str(paths["symbol"]))
        arg, aux = load_params_file(paths["params"])
    except (TrainError, mx.base.MXNetError) as e:
        raise PredictError(str(e).strip().splitlines()[0]) from e
    m = load_model_manifest(model_dir, record, manifest)
    check_fit(symbol, m.data_shape, arg, aux, paths["params"])
    width = arg.get("InceptionResnetV2/Logits/Logits_weight")
    width = width.shape[0] if width is not None else _classes(symbol, m.data_shape)
    if width is not None and width != m.num_classes:
        raise PredictError(f"the manifest copy lists {m.num_classes} classes but the model's logits have "
                           f"{width}: the manifest does not belong to the model")
    return LoadedModel(prefix, epoch, record, symbol, arg, aux, m)


def _classes(symbol, data_shape) -> int | None:
    """Width of the main head's output for one image, None when it is not (1, K)."""
    try:
        _, outs, _ = symbol.infer_shape(data=(1, *data_shape), **{LABEL_NAME: (1,)})
    except mx.base.MXNetError:
        return None
    return outs[0][1] if outs and len(outs[0]) == 2 else None


def check_fit(symbol, data_shape, arg: dict, aux: dict, where) -> None:
    """Raise PredictError naming every parameter of ``arg``/``aux`` that does not fit ``symbol``."""
    try:
        want_arg, want_aux = param_shapes(symbol, tuple(data_shape))
    except mx.base.MXNetError as e:
        raise PredictError(f"the symbol does not accept input {tuple(data_shape)}: "
                           f"{str(e).strip().splitlines()[0]}") from e
    problems = fit_problems((want_arg, want_aux), (arg, aux))
    if problems:
        raise PredictError(f"{where} does not fit its symbol: " + "; ".join(problems))


def inference_symbol(symbol):
    """Softmax over the main logits (the training symbol's SoftmaxOutput head, without its label).

    mx_impl's Inception-ResNet-v2 by its logits' name; any other training symbol (``porting.train
    --symbol``, a network translated by autoport) by the input of its first ``SoftmaxOutput`` head.
    """
    internals = symbol.get_internals()
    if LOGITS in internals.list_outputs():
        return mx.sym.softmax(internals[LOGITS], axis=1, name="predictions")
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    head = nodes[graph["heads"][0][0]]
    if head["op"] != "SoftmaxOutput":
        raise PredictError(f"the symbol's first output {head['name']} is a {head['op']}, not a SoftmaxOutput "
                           f"training head; is it a checkpoint written by porting.train?")
    source = nodes[head["inputs"][0][0]]
    name = source["name"] if source["op"] == "null" else f"{source['name']}_output"
    if name not in internals.list_outputs():
        raise PredictError(f"cannot find the logits {name} that feed the symbol's head {head['name']}")
    return mx.sym.softmax(internals[name], axis=1, name="predictions")


class Predictor:
    """Softmax scores of a :class:`LoadedModel` with MXNet's Module, in inference mode."""

    def __init__(self, model: LoadedModel, context=None, batch_size: int = 16, fold_scales: bool = True):
        """Bind an inference-only executor (MXNet fuses conv + batch norm + ReLU there).

        ``fold_scales``: move the residual scales into the up-projection weights
        (``porting.serving.rewrites.fold_residual_scales``; the same scores up to float rounding, faster
        on CPU);
        ``folded`` lists the convolutions that absorbed one.
        """
        self.model = model
        self.batch_size = int(batch_size)
        symbol, arg_params, self.folded = inference_symbol(model.symbol), model.arg_params, []
        if fold_scales:
            symbol, arg_params, self.folded = rewrites.fold_residual_scales(symbol, arg_params)
        self.module = mx.mod.Module(symbol, data_names=("data",), label_names=None, context=context or mx.cpu())
        self.module.bind(data_shapes=[("data", (self.batch_size, *model.data_shape))], for_training=False)
        self.module.set_params(arg_params, model.aux_params, allow_missing=False, allow_extra=True)

    def scores(self, images: np.ndarray) -> np.ndarray:
        """``(N, classes)`` softmax scores of preprocessed ``(N, 3, H, W)`` images."""
        images = np.asarray(images, np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            n = len(chunk)
            if n < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - n, *chunk.shape[1:]), np.float32)])
            self.module.forward(mx.io.DataBatch([mx.nd.array(chunk)]), is_train=False)
            out.append(self.module.get_outputs()[0].asnumpy()[:n])
        return np.concatenate(out) if out else np.zeros((0, len(self.model.classes)), np.float32)


def preprocess(model: LoadedModel, path: str | Path) -> np.ndarray:
    """One image file as the model's validation iterator saw images: (3, H, W) float32.

    Raises:
        PredictError: the file is missing, unreadable or cannot be decoded.
    """
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise PredictError(f"{path}: cannot read it ({e.strerror or e})") from e
    try:
        imageproc.probe_image(buf)  # OpenCV fails synchronously; MXNet reports some failures later
        return iterators.preprocess_image(model.manifest, buf)
    except imageproc.BadImage as e:
        raise PredictError(f"{path}: cannot be decoded as an image ({e})") from e
    except ValueError as e:
        raise PredictError(f"{path}: {e}") from e


def content_hash(path: str | Path) -> str | None:
    """The data pipeline's content hash (SHA-256 of the decoded pixels), None if undecodable."""
    try:
        return imageproc.probe_image(Path(path).read_bytes())[1]
    except (OSError, imageproc.BadImage):
        return None


def training_hashes(model: LoadedModel) -> set[str]:
    """Content hashes of the training split, from the ``contents.tsv`` saved with the model."""
    path = model.manifest.root / "contents.tsv"
    if not path.is_file():
        raise PredictError(f"{path} not found: cannot tell training images apart")
    hashes = set()
    for line in path.read_text("utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 4 and parts[0] == "train":
            hashes.add(parts[3])
    return hashes


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, score), best first
    in_training_split: bool


def predict_files(model: LoadedModel, predictor: Predictor, paths: list[str | Path], top_k: int = 5
                  ) -> tuple[list[Prediction], list[str]]:
    """Top-k of every decodable image; returns ``(predictions, error lines)``."""
    arrays, kept, errors = [], [], []
    for p in paths:
        try:
            arrays.append(preprocess(model, p))
            kept.append(str(p))
        except PredictError as e:
            errors.append(str(e))
    if not kept:
        return [], errors
    scores = predictor.scores(np.stack(arrays))
    train = training_hashes(model)
    k = min(top_k, len(model.classes))
    out = []
    for path, row in zip(kept, scores):
        order = np.argsort(-row, kind="stable")[:k]
        out.append(Prediction(path, [(model.classes[i], float(row[i])) for i in order], content_hash(path) in train))
    return out, errors


def read_list(path: str | Path, root: str | Path | None) -> list[tuple[Path, int]]:
    """``(image path, label)`` of an im2rec ``.lst`` (``index \\t label \\t relative path``).

    Raises:
        PredictError: the file is missing or a line is malformed (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"--eval {path} not found")
    base = Path(root) if root is not None else path.parent
    items = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            label = float(parts[1])
        except (IndexError, ValueError):
            raise PredictError(f"{path}:{n}: expected 'index<TAB>label<TAB>path', got {line!r}") from None
        if len(parts) < 3 or label != int(label):
            raise PredictError(f"{path}:{n}: expected 'index<TAB>label<TAB>path' with an integer label, got {line!r}")
        items.append((base / parts[-1], int(label)))
    return items


def default_root(model: LoadedModel, list_path: Path) -> Path:
    """Where relative ``.lst`` paths point: the data set's recorded source if it exists, else the list's folder."""
    source = model.manifest.raw.get("dataset", {}).get("source")
    if source and Path(source).is_dir():
        return Path(source)
    return Path(list_path).parent


class TrainingImagesError(PredictError):
    """Evaluation refused: some images are in the training split."""


@dataclass
class EvalResult:
    count: int
    top1: float
    topk: float
    k: int
    cross_entropy: float
    in_training_split: int
    errors: list[str] = field(default_factory=list)


def evaluate_list(model: LoadedModel, predictor: Predictor, items: list[tuple[Path, int]], top_k: int = 5,
                  allow_train: bool = False) -> EvalResult:
    """Accuracy over ``(path, label)`` items.

    Raises:
        TrainingImagesError: some images have the content hash of a training image and
            ``allow_train`` is False (the accuracy would be inflated).
        PredictError: a label outside the model's classes.
    """
    bad_labels = [(p, y) for p, y in items if not 0 <= y < len(model.classes)]
    if bad_labels:
        p, y = bad_labels[0]
        raise PredictError(f"{len(bad_labels)} label(s) outside the model's {len(model.classes)} classes "
                           f"(e.g. {y} for {p}): the list does not belong to this model's data set")
    train = training_hashes(model)
    overlap = [p for p, _ in items if content_hash(p) in train]
    if overlap and not allow_train:
        raise TrainingImagesError(
            f"refused: {len(overlap)} of {len(items)} images are in the model's training split (same decoded "
            f"pixels, e.g. {overlap[0]}); accuracy on them would be inflated. Pass --allow-train-images to "
            f"evaluate anyway")
    arrays, labels, errors = [], [], []
    for p, y in items:
        try:
            arrays.append(preprocess(model, p))
            labels.append(y)
        except PredictError as e:
            errors.append(str(e))
    if not arrays:
        return EvalResult(0, math.nan, math.nan, top_k, math.nan, len(overlap), errors)
    scores = predictor.scores(np.stack(arrays))
    labels = np.asarray(labels)
    k = min(top_k, len(model.classes))
    topk = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top1 = float(np.mean(topk[:, 0] == labels))
    topk_acc = float(np.mean((topk == labels[:, None]).any(axis=1)))
    ce = float(np.mean(-np.log(np.maximum(scores[np.arange(len(labels)), labels], 1e-12))))
    return EvalResult(len(labels), top1, topk_acc, k, ce, len(overlap), errors)
