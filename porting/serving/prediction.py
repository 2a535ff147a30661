"""Predictions and accuracy over image files, with exactly the preprocessing the model was trained with.

The model comes from ``porting.serving.model_loading`` and brings its preprocessing: a
``porting.train`` model's manifest copy (MXNet's decoder (RGB), the packer's resize and codec,
the center crop and the mean/std of training: a prediction cannot drift from what the
validation iterator fed the network during training), or a converted model's explicit one.
The scores come from ``porting.serving.predictor.Predictor``.

* :func:`predict_files` gives the top-k of every decodable image and marks the images of the
  training split (content hash in the model's ``contents.tsv``, :func:`training_hashes`).
* :func:`evaluate_list` computes accuracy on an ``.lst`` file (:func:`read_list`) and refuses
  images whose content hash is in the training split unless told otherwise.

Images are read, checked and predicted a batch at a time (memory does not grow with the
number of images), an image too large to decode (OpenCV's pixel limit, or more memory than
the machine has) is an error line of its own, and a progress bar runs on a terminal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from porting import progress, util
from porting.data import imageproc
from porting.serving.model_loading import LoadedModel, PredictError
from porting.serving.predictor import Predictor

#: Test hook: ``PORTING_PREDICT_PAUSE_AFTER=N`` makes ``predict_files`` stop after N images and sleep.
PAUSE_ENV = "PORTING_PREDICT_PAUSE_AFTER"


def preprocess(model: LoadedModel, path: str | Path) -> np.ndarray:
    """One image file as the model's validation iterator saw images: (3, H, W) float32.

    Raises:
        PredictError: the file is missing, unreadable, cannot be decoded, or is too large to decode.
    """
    return _prepare(model, path)[0]


def _prepare(model: LoadedModel, path: str | Path) -> tuple[np.ndarray, str]:
    """``(input, content hash)`` of one image file (one read, checked before any decoder sees it)."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise PredictError(f"{path}: cannot read it ({e.strerror or e})") from e
    try:
        # OpenCV fails synchronously; MXNet reports some failures later. Also refuses images too large to decode.
        _, digest = imageproc.probe_image(buf)
        return model.preprocessing(buf), digest
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
    """Content hashes of the training split, from the ``contents.tsv`` saved with the model.

    Empty for a converted model: nothing says which images it was trained on.
    """
    if model.manifest is None:
        return set()
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
    """Top-k of every decodable image, a batch at a time; returns ``(predictions, error lines)``.

    An image that cannot be read or decoded (or is too large to decode) is an error line;
    the others are still predicted.
    """
    train = training_hashes(model)
    k = min(top_k, len(model.classes))
    out, errors, pause, seen = [], [], util.pause_hook(PAUSE_ENV, "porting.predict", "images"), 0
    with progress.bar(total=len(paths), desc="predict", unit="img") as bar:
        for start in range(0, len(paths), predictor.batch_size):
            arrays, kept = [], []
            for p in paths[start:start + predictor.batch_size]:
                try:
                    array, digest = _prepare(model, p)
                    arrays.append(array)
                    kept.append((str(p), digest))
                except PredictError as e:
                    errors.append(str(e))
                seen += 1
                bar.update(1)
                pause(seen)
            if not kept:
                continue
            for (path, digest), row in zip(kept, predictor.scores(np.stack(arrays))):
                order = np.argsort(-row, kind="stable")[:k]
                out.append(Prediction(path, [(model.classes[i], float(row[i])) for i in order], digest in train))
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
    source = model.manifest.raw.get("dataset", {}).get("source") if model.manifest is not None else None
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
    overlap = []
    if train:
        with progress.bar(total=len(items), desc="check", unit="img") as bar:
            for p, _ in items:
                if content_hash(p) in train:
                    overlap.append(p)
                bar.update(1)
    if overlap and not allow_train:
        raise TrainingImagesError(
            f"refused: {len(overlap)} of {len(items)} images are in the model's training split (same decoded "
            f"pixels, e.g. {overlap[0]}); accuracy on them would be inflated. Pass --allow-train-images to "
            f"evaluate anyway")
    k = min(top_k, len(model.classes))
    labels, errors, top1, topk, ce = [], [], 0, 0, 0.0
    with progress.bar(total=len(items), desc="evaluate", unit="img") as bar:
        for start in range(0, len(items), predictor.batch_size):
            arrays, chunk_labels = [], []
            for p, y in items[start:start + predictor.batch_size]:
                try:
                    arrays.append(preprocess(model, p))
                    chunk_labels.append(y)
                except PredictError as e:
                    errors.append(str(e))
                bar.update(1)
            if not arrays:
                continue
            scores = predictor.scores(np.stack(arrays))
            y = np.asarray(chunk_labels)
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            top1 += int(np.sum(order[:, 0] == y))
            topk += int(np.sum((order == y[:, None]).any(axis=1)))
            ce += float(np.sum(-np.log(np.maximum(scores[np.arange(len(y)), y].astype(np.float64), 1e-12))))
            labels += chunk_labels
    if not labels:
        return EvalResult(0, math.nan, math.nan, top_k, math.nan, len(overlap), errors)
    n = len(labels)
    return EvalResult(n, top1 / n, topk / n, k, ce / n, len(overlap), errors)
