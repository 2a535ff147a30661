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

A model converted by ``porting.convert`` (or written by autoport) has no ``checkpoint.json``
and no manifest: :func:`load_model` serves its ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params``
with an explicit :class:`Preprocessing` (``inception``: slim's eval preprocessing, pixels
scaled to [-1, 1]; ``mean-std``: a shorter-side resize, a center crop and
``(pixel - mean) / std``), the number of classes read from the symbol. Images are read,
checked and predicted a batch at a time (memory does not grow with the number of images),
an image too large to decode (OpenCV's pixel limit, or more memory than the machine has)
is an error line of its own, and a progress bar runs on a terminal.
"""
from __future__ import annotations

import glob
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from porting import compat, progress

mx = compat.import_mx()

import cv2  # noqa: E402

from porting.data import imageproc, iterators  # noqa: E402
from porting.data.manifest import Manifest, ManifestError, load_manifest, read_format_json, sha256_file  # noqa: E402
from porting.serving import rewrites  # noqa: E402
from porting.training.checkpoint import (CHECKPOINT_NAME, DATA_COPY_DIR, FORMAT, checkpoint_paths,  # noqa: E402
                                         fit_problems, load_params_file, param_shapes)
from porting.training.config import TrainError  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME, infer_shape, is_prediction  # noqa: E402

LOGITS = "InceptionResnetV2/Logits/Logits_output"
#: Test hook: ``PORTING_PREDICT_PAUSE_AFTER=N`` makes ``predict_files`` stop after N images and sleep.
PAUSE_ENV = "PORTING_PREDICT_PAUSE_AFTER"
#: slim's eval preprocessing (``inception_preprocessing.preprocess_for_eval``) keeps the central 87.5 %.
INCEPTION_CENTRAL_FRACTION = 0.875
PREPROCESS_KINDS = ("inception", "mean-std")


class PredictError(Exception):
    """The model, its manifest or an input is unusable; ``str(e)`` is one line."""


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes the network's input, (3, H, W) float32 RGB.

    ``kind``:
      * ``"manifest"``: a ``porting.train`` model's data manifest decides everything
        (``porting.data.iterators.preprocess_image``: the packer's resize and codec, the
        center crop, the mean image or mean RGB, the std);
      * ``"inception"``: slim's eval preprocessing for converted slim checkpoints: the central
        87.5 % of the image, a bilinear resize to H x W (OpenCV, half-pixel centres), then
        ``pixel / 127.5 - 1`` (slim's [-1, 1] scaling: mean and std 127.5);
      * ``"mean-std"``: the shorter side resized to ``resize`` (default: the larger of H and
        W), the center H x W, then ``(pixel - mean_rgb) / std_rgb`` on 0..255 values.
    """

    kind: str
    data_shape: tuple[int, int, int]
    manifest: Manifest | None = None
    mean_rgb: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std_rgb: tuple[float, float, float] = (127.5, 127.5, 127.5)
    resize: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("manifest", *PREPROCESS_KINDS):
            raise ValueError(f"unknown preprocessing {self.kind!r}. Available: {', '.join(PREPROCESS_KINDS)}")
        if (self.kind == "manifest") != (self.manifest is not None):
            raise ValueError("a manifest goes with kind 'manifest' and only with it")

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> "Preprocessing":
        return cls("manifest", tuple(manifest.data_shape), manifest)

    def __call__(self, buf: bytes) -> np.ndarray:
        """One image's bytes as the network input.

        Raises:
            imageproc.BadImage: not decodable (or too large to decode).
            ValueError: smaller than the crop.
        """
        if self.kind == "manifest":
            return iterators.preprocess_image(self.manifest, buf)
        _, height, width = self.data_shape
        img = imageproc.decode_rgb(buf)
        if self.kind == "inception":
            h, w = img.shape[:2]
            top = int((h - h * INCEPTION_CENTRAL_FRACTION) / 2)  # tf.image.central_crop's arithmetic
            left = int((w - w * INCEPTION_CENTRAL_FRACTION) / 2)
            img = img[top:h - top, left:w - left]
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            side = self.resize or max(height, width)
            img = imageproc.resize_rgb(img, imageproc.ResizeSpec("shorter", shorter=side))
            img = imageproc.center_crop(img, height, width)
        mean = np.broadcast_to(np.asarray(self.mean_rgb, np.float32).reshape(3, 1, 1), (3, height, width))
        return imageproc.normalize_chw(img, mean, self.std_rgb)

    def describe(self) -> str:
        if self.kind == "manifest":
            return f"the manifest copy {self.manifest.path}"
        _, h, w = self.data_shape
        if self.kind == "inception":
            return f"inception (central 87.5 %, bilinear to {h}x{w}, pixels to [-1, 1])"
        return (f"mean-std (shorter side {self.resize or max(h, w)}, center {h}x{w}, mean RGB "
                f"{', '.join(f'{v:g}' for v in self.mean_rgb)}, std RGB {', '.join(f'{v:g}' for v in self.std_rgb)})")


@dataclass
class LoadedModel:
    """A checkpoint with how its inputs are prepared: a ``porting.train`` model (its manifest
    copy) or a converted one (explicit preprocessing; ``manifest`` is None, ``record`` empty)."""

    prefix: Path
    epoch: int
    record: dict
    symbol: object
    arg_params: dict
    aux_params: dict
    manifest: Manifest | None
    preprocessing: Preprocessing | None = None
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.preprocessing is None:
            if self.manifest is None:
                raise ValueError("a model needs its manifest or an explicit preprocessing")
            self.preprocessing = Preprocessing.from_manifest(self.manifest)

    @property
    def model_dir(self) -> Path:
        return self.prefix.parent

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes if self.manifest is not None else list(self.class_names or [])

    @property
    def data_shape(self) -> tuple[int, int, int]:
        return tuple(self.preprocessing.data_shape)


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


def load_model(prefix: str | Path, epoch: int | None = None, manifest: str | Path | None = None,
               preprocessing: "PreprocessOptions | None" = None) -> LoadedModel:
    """Load ``PREFIX-symbol.json`` and ``PREFIX-NNNN.params`` with how its inputs are prepared.

    A model directory written by ``porting.train`` (it holds ``checkpoint.json``) brings its
    preprocessing in its manifest copy; any other ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params``
    pair (``porting.convert``, autoport) needs ``preprocessing``.

    Args:
        prefix: ``MODEL_DIR/NAME`` as given to ``porting.train`` (``--model-dir``/``--prefix``),
            or the prefix ``porting.convert --out`` wrote.
        epoch: a complete epoch; default the last one (the highest NNNN of a converted model).
        manifest: see :func:`load_model_manifest` (``porting.train`` models only).
        preprocessing: the explicit preprocessing of a converted model.

    Raises:
        PredictError: a missing or incomplete checkpoint, parameters that do not fit the
        symbol (named), a manifest that does not belong to the model, or a converted model
        without its preprocessing (naming what is missing).
    """
    prefix = Path(prefix)
    model_dir = prefix.parent
    if not (model_dir / CHECKPOINT_NAME).is_file():
        return load_converted(prefix, epoch, preprocessing, manifest)
    if preprocessing is not None and preprocessing.given():
        raise PredictError(f"{model_dir} is a porting.train model directory: its preprocessing comes from its "
                           f"manifest copy; drop {', '.join(preprocessing.given())}")
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


@dataclass(frozen=True)
class PreprocessOptions:
    """The preprocessing flags of a converted model, as given (``None``: not given)."""

    size: tuple[int, int] | None = None
    preprocess: str | None = None
    mean_rgb: tuple[float, float, float] | None = None
    std_rgb: tuple[float, float, float] | None = None
    resize: int | None = None
    labels: str | None = None

    def given(self) -> list[str]:
        """The flags that were given, by name."""
        names = {"size": "--size", "preprocess": "--preprocess", "mean_rgb": "--mean-rgb", "std_rgb": "--std-rgb",
                 "resize": "--resize", "labels": "--labels"}
        return [flag for name, flag in names.items() if getattr(self, name) is not None]

    def missing(self) -> list[str]:
        """What a converted model still needs: ``--size`` and one complete way to normalise."""
        need = [] if self.size else ["--size HxW"]
        if self.preprocess == "inception" or (self.mean_rgb is not None and self.std_rgb is not None):
            return need
        if self.preprocess == "mean-std" or self.mean_rgb is not None or self.std_rgb is not None:
            return need + [flag for flag, value in (("--mean-rgb R,G,B", self.mean_rgb),
                                                    ("--std-rgb R,G,B", self.std_rgb)) if value is None]
        return need + ["--preprocess inception (slim's [-1, 1] scaling) or --mean-rgb R,G,B --std-rgb R,G,B"]

    def build(self) -> Preprocessing:
        """The :class:`Preprocessing` (call only when nothing is :meth:`missing`)."""
        shape = (3, *self.size)
        if self.preprocess == "inception":
            if self.mean_rgb is not None or self.std_rgb is not None or self.resize is not None:
                raise PredictError("--preprocess inception fixes the resize and the [-1, 1] scaling; drop "
                                   "--mean-rgb, --std-rgb and --resize (or use them without --preprocess inception)")
            return Preprocessing("inception", shape)
        if self.resize is not None and self.resize < min(self.size):
            raise PredictError(f"--resize {self.resize} is smaller than --size {self.size[0]}x{self.size[1]}: the "
                               f"center crop would not fit")
        return Preprocessing("mean-std", shape, mean_rgb=self.mean_rgb, std_rgb=self.std_rgb, resize=self.resize)


def load_converted(prefix: Path, epoch: int | None, options: PreprocessOptions | None,
                   manifest: str | Path | None = None) -> LoadedModel:
    """A plain ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params`` (``porting.convert``, autoport) with explicit preprocessing.

    Raises:
        PredictError: no such files, the preprocessing flags are incomplete (listing what is
        missing), the parameters do not fit the symbol at ``--size``, or ``--labels`` does not
        list one name per output class.
    """
    model_dir = prefix.parent
    symbol_file = Path(f"{prefix}-symbol.json")
    if not symbol_file.is_file():
        raise PredictError(f"{model_dir} is not a model directory written by porting.train (no {CHECKPOINT_NAME}) "
                           f"and {symbol_file} of a converted model is not there either: give --model "
                           f"MODEL_DIR/PREFIX of porting.train or the --out PREFIX of porting.convert")
    if manifest is not None:
        raise PredictError(f"--manifest checks a porting.train model's data; {prefix} is a converted model "
                           f"(no {CHECKPOINT_NAME} in {model_dir})")
    options = options or PreprocessOptions()
    missing = options.missing()
    if missing:
        raise PredictError(f"{prefix} has no {CHECKPOINT_NAME} (not a porting.train model directory), so its "
                           f"preprocessing must be given; missing: {'; '.join(missing)}")
    pre = options.build()
    found = sorted(int(m.group(1)) for f in model_dir.glob(f"{glob.escape(prefix.name)}-*.params")
                   if (m := re.fullmatch(rf"{re.escape(prefix.name)}-(\d{{4}})\.params", f.name)))
    if epoch is None:
        if not found:
            raise PredictError(f"{prefix}-NNNN.params not found next to {symbol_file}")
        epoch = found[-1]
    params_file = Path(f"{prefix}-{int(epoch):04d}.params")
    if not params_file.is_file():
        raise PredictError(f"{params_file} not found. Available epochs: {', '.join(map(str, found)) or 'none'}")
    try:
        symbol = mx.sym.load(str(symbol_file))
        arg, aux = load_params_file(params_file)
    except (TrainError, mx.base.MXNetError) as e:
        raise PredictError(str(e).strip().splitlines()[0]) from e
    check_fit(symbol, pre.data_shape, arg, aux, params_file)
    width = _classes(inference_symbol(symbol), pre.data_shape)
    if width is None:
        raise PredictError(f"{symbol_file}: cannot tell the number of classes (its first output is not one "
                           f"score per class for input {pre.data_shape})")
    names = [str(k) for k in range(width)]
    if options.labels is not None:
        try:
            names = [line.strip() for line in Path(options.labels).read_text("utf-8").splitlines() if line.strip()]
        except OSError as e:
            raise PredictError(f"--labels {options.labels}: cannot read it ({e.strerror or e})") from e
        if len(names) != width:
            raise PredictError(f"--labels {options.labels} lists {len(names)} names but the model has {width} "
                               f"classes; give one name per line, in class order")
    return LoadedModel(prefix, int(epoch), {}, symbol, arg, aux, None, pre, names)


def _classes(symbol, data_shape) -> int | None:
    """Width of the main head's output for one image, None when it is not (1, K)."""
    shapes = {"data": (1, *data_shape)}
    if LABEL_NAME in symbol.list_arguments():
        shapes[LABEL_NAME] = (1,)
    try:
        _, outs, _ = infer_shape(symbol, **shapes)
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
    --symbol``, a network translated by autoport) by the input of its first ``SoftmaxOutput`` head;
    a plain inference symbol (``porting.convert``, autoport) by its first output that is not a
    softmax (flattened), or its first output when every output is one already.
    """
    internals = symbol.get_internals()
    if LOGITS in internals.list_outputs():
        return mx.sym.softmax(internals[LOGITS], axis=1, name="predictions")
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    head = nodes[graph["heads"][0][0]]
    if head["op"] != "SoftmaxOutput":
        if any(nodes[index]["op"] == "SoftmaxOutput" for index, *_ in graph["heads"]):
            raise PredictError(f"the symbol's first output {head['name']} is a {head['op']}, not its "
                               f"SoftmaxOutput training head")
        for i, (index, *_) in enumerate(graph["heads"]):
            if not is_prediction(nodes, index):
                return mx.sym.softmax(mx.sym.flatten(symbol[i]), axis=1, name="predictions")
        return symbol[0]
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


def _pause_hook():
    after = os.environ.get(PAUSE_ENV)
    if not after:
        return lambda n: None
    limit = int(after)

    def hook(n: int) -> None:
        if n == limit:
            print(f"porting.predict: paused after {n} images ({PAUSE_ENV})", file=sys.stderr, flush=True)
            time.sleep(3600)

    return hook


def predict_files(model: LoadedModel, predictor: Predictor, paths: list[str | Path], top_k: int = 5
                  ) -> tuple[list[Prediction], list[str]]:
    """Top-k of every decodable image, a batch at a time; returns ``(predictions, error lines)``.

    An image that cannot be read or decoded (or is too large to decode) is an error line;
    the others are still predicted.
    """
    train = training_hashes(model)
    k = min(top_k, len(model.classes))
    out, errors, pause, seen = [], [], _pause_hook(), 0
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
