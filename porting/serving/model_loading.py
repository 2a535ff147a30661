"""Loading a model to serve: its checkpoint, its symbol and how its inputs are prepared.

* :func:`load_model` loads a model directory written by ``porting.train``: it holds the
  checkpoint files, its ``checkpoint.json`` and, under ``data/``, a copy of the data set's
  ``manifest.json``, mean image and ``contents.tsv`` (the content hash of every image and its
  split). It checks that the checkpoint is complete and fits its symbol (naming the
  parameters that do not), and that the manifest copy is the one the run recorded
  (:func:`load_model_manifest`); the preprocessing comes from that copy only.
* A model converted by ``porting.convert`` (or written by autoport) has no ``checkpoint.json``
  and no manifest: :func:`load_converted` serves its ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params``
  with the preprocessing its flags give (:class:`PreprocessOptions`: ``--size``, ``--preprocess``,
  ``--mean-rgb``/``--std-rgb``, ``--resize``, ``--labels``), the number of classes read from
  the symbol.
* :func:`inference_symbol` is the softmax over the main logits that ``porting.serving.predictor``
  binds; :func:`check_fit` names every parameter that does not fit a symbol.

:class:`PredictError` (``str(e)`` is one line) is what serving raises for an unusable model,
manifest or input.
"""
from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

from porting import compat

mx = compat.import_mx()

from porting.data.manifest import Manifest, ManifestError, load_manifest, read_format_json, sha256_file  # noqa: E402
from porting.serving.preprocessing import Preprocessing  # noqa: E402
from porting.training.checkpoint import (CHECKPOINT_NAME, DATA_COPY_DIR, FORMAT, checkpoint_paths,  # noqa: E402
                                         fit_problems, load_params_file, param_shapes)
from porting.training.config import TrainError  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME, infer_shape, is_prediction  # noqa: E402

LOGITS = "InceptionResnetV2/Logits/Logits_output"


class PredictError(Exception):
    """The model, its manifest or an input is unusable; ``str(e)`` is one line."""


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
