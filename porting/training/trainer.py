"""Train the verified Inception-ResNet-v2 port with MXNet's Module API.

``train(config)`` is the whole of ``python -m porting.train``; the pieces are importable
and tested one by one:

* :func:`contexts` turns ``--gpus`` into the context list; nothing else differs between
  CPU and GPU.
* :func:`build_symbol` is ``mx_impl.inception_resnet_v2.get_symbol(for_training=True)``
  at the data's input size, with two attributes written into the symbol (and saved with
  it): the batch-norm moving-average momentum when overridden, and ``__wd_mult__ = 0``
  on every ``*_beta``, ``*_gamma`` and ``*_bias`` variable, which MXNet's
  ``Optimizer.set_wd_mult`` reads, so weight decay reaches the weights only (slim
  regularises ``weights`` only; PITFALLS 19).
* :func:`translated_symbol` is the same for ``--symbol PREFIX``, a network translated by
  ``python -m porting.autoport``: its ``PREFIX-symbol.json`` with the heads of
  ``porting.training.symbol_heads.training_symbol``, started from ``PREFIX-0000.params`` through
  the fine-tuning path of :func:`load_pretrained` (new logits layers for another number of
  classes); everything after the symbol is the same as for the hand port.
* :class:`SlimRMSProp` is TF1's ``RMSPropOptimizer`` (slim's default) as an MXNet
  optimizer; :class:`SlimExponentialDecay` is slim's learning-rate schedule as an
  ``mx.lr_scheduler`` that is a pure function of the update count, so a resumed run
  continues on the same curve.
* Checkpoints are MXNet's ``PREFIX-symbol.json`` / ``PREFIX-NNNN.params`` (loadable with
  ``mx.model.load_checkpoint``) plus ``PREFIX-NNNN.states`` (``Module.save_optimizer_states``),
  each written to a temporary name and renamed; ``checkpoint.json`` is written last and
  names the last complete epoch with the SHA-256 of its files. ``--resume`` reads only
  what ``checkpoint.json`` names, so a kill at any moment loses at most the epoch in
  progress.

Optimizer mapping (slim's ``train_image_classifier.py`` defaults, PITFALLS 19):

==========================  =====================================  ==============================
slim / TF1                  here                                   why
==========================  =====================================  ==============================
RMSProp decay=0.9           ``SlimRMSProp(decay=0.9)``             same moving mean of g**2
momentum=0.9                ``momentum=0.9`` (heavy ball on the    MXNet's ``RMSProp`` has no
                            scaled step, as TF1)                   momentum unless ``centered``,
                                                                   which is Graves' different
                                                                   algorithm
epsilon=1.0, inside sqrt    ``epsilon=1.0`` inside the sqrt        MXNet's ``rmsprop_update``
                                                                   adds it outside
``ms`` slot starts at ones  starts at ones                         MXNet's starts at zeros
l2 4e-5 on weights          ``wd=4e-5``, ``__wd_mult__=0`` on      ``l2_regularizer(s)`` is
                            beta/gamma/bias                        ``s * sum(w**2) / 2``, gradient
                                                                   ``s * w`` = MXNet's ``wd``
lr 0.01 x 0.94 / 2 epochs   ``SlimExponentialDecay`` staircase     a pure function of the count
label_smoothing ls          get_symbol's ``smooth_alpha``          ``ls * (K-1) / K`` (PITFALLS 11a)
aux loss weight 0.4         aux head ``grad_scale=0.4``            mx_impl's training head
loss averaged over batch    ``rescale_grad = 1/(batch*workers)``   set by Module (PITFALLS 11b)
==========================  =====================================  ==============================

Batch-norm moving statistics: MXNet 1.x updates them in the *backward* pass (a forward
with ``is_train=True`` alone leaves them unchanged), with the symbol's ``momentum``.
slim's 0.9997 averages over ~3000 updates; in a run of a few hundred updates the
statistics still describe the early weights and inference-mode accuracy collapses
(measured on digits after 30 updates with momentum 0.9: validation top-1 0.18 with the
moving statistics, 0.85 after re-estimating them on 30 training batches). Short runs
should pass ``--bn-momentum 0.9`` (or lower); the value is saved in the symbol.

Weight updates never happen on the kvstore (``MXNET_UPDATE_ON_KVSTORE=0``): the kvstore
sums gradients (``device`` over GPUs, ``dist_sync`` over machines) and every worker
applies the same update, so optimizer states live on the workers and are checkpointed
like on one machine, and the parameter servers need no optimizer. In ``dist_sync`` the
workers start from rank 0's initial parameters (pulled from the kvstore) and average
their batch-norm moving statistics through the kvstore at the end of every epoch, so all
workers hold identical parameters; rank 0 writes to ``--model-dir``, rank ``r`` to
``--model-dir/rank<r>``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import pickle
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from porting import compat

mx = compat.import_mx()  # a DMLC server or scheduler process serves here and exits

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402
from porting.data import iterators  # noqa: E402
from porting.training import symbol_heads  # noqa: E402  (MXNet only, no TF)
from porting.data.manifest import (Manifest, ManifestError, atomic_write_bytes, atomic_write_text, read_format_json,  # noqa: E402
                              load_manifest, sha256_file)
from porting.training.metrics_log import MetricsLog  # noqa: E402
from porting.padding import PaddingError  # noqa: E402

log = logging.getLogger("porting.train")

FORMAT = "porting.train/1"
CHECKPOINT_NAME = "checkpoint.json"
LOCK_NAME = ".lock"
#: Sub-directory of the model directory that holds the copy of the data manifest.
DATA_COPY_DIR = "data"
DATA_COPY_FILES = ("manifest.json", "mean.bin", "contents.tsv")
LABEL_NAME = irv2.LABEL_NAME
KVSTORES = ("local", "device", "dist_sync", "dist_device_sync")
OPTIMIZERS = ("rmsprop", "sgd")
#: Parameters replaced (not loaded) when fine-tuning for another number of classes.
HEAD_PREFIXES = (f"{irv2.SCOPE}/Logits/Logits_", f"{irv2.SCOPE}/AuxLogits/")
#: Suffixes of the parameters slim does not regularise (MXNet names; PITFALLS 5d, 19).
NO_DECAY_SUFFIXES = ("_beta", "_gamma", "_bias")
#: Options that shape mx_impl's Inception-ResNet-v2, with their defaults; ``--symbol`` brings its own network.
IRV2_OPTIONS = {"repeats": irv2.DEFAULT_REPEATS, "align_feature_maps": False, "aux_logits": None,
                "dropout_keep_prob": 0.8}
#: Parameter name endings MXNet's initializers know (others need values from a params file).
INIT_SUFFIXES = ("weight", "bias", "gamma", "beta", "moving_mean", "moving_var", "moving_inv_var", "moving_avg")


class TrainError(Exception):
    """Bad input or state that stops training; ``str(e)`` is one line for the user."""


# ------------------------------------------------------------------------ config

@dataclass
class TrainConfig:
    """Everything a run depends on; saved in ``checkpoint.json``.

    Fields in :data:`RESUME_FREE` may change on ``--resume``; every other field must be
    the same as in the checkpoint (they decide the model or the learning-rate curve).
    """

    data: str
    model_dir: str
    prefix: str = "model"
    epochs: int = 10
    batch_size: int = 32
    repeats: tuple[int, int, int] = irv2.DEFAULT_REPEATS
    align_feature_maps: bool = False
    aux_logits: bool | None = None  # None: on when the input is large enough for the aux head
    dropout_keep_prob: float = 0.8
    label_smoothing: float = 0.0
    bn_momentum: float | None = None  # None: the network's own (slim's 0.9997; the translated decay with symbol)
    optimizer: str = "rmsprop"
    lr: float = 0.01
    lr_decay: float = 0.94
    lr_decay_epochs: float = 2.0
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_epsilon: float = 1.0
    wd: float = 4e-5
    max_batches: int | None = None
    seed: int = 0
    pretrained: str | None = None
    pretrained_epoch: int = 0
    symbol: str | None = None  # autoport's PREFIX (PREFIX-symbol.json) instead of mx_impl's Inception-ResNet-v2
    gpus: str | None = None
    kv_store: str | None = None  # None: 'device' with several GPUs, else 'local'
    mirror: bool = False
    log_every: int = 20
    preprocess_threads: int = 2
    keep_last: int = 0  # keep the files of this many latest epochs (0: all)
    resume: bool = False

    def __post_init__(self) -> None:
        self.repeats = tuple(int(v) for v in self.repeats)
        if self.bn_momentum is None and not self.symbol:
            self.bn_momentum = irv2.BN_MOMENTUM

    def to_json(self) -> dict:
        d = asdict(self)
        d["repeats"] = list(self.repeats)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


#: Fields that may differ between a run and its ``--resume``.
RESUME_FREE = frozenset({"epochs", "gpus", "kv_store", "mirror", "log_every", "preprocess_threads", "resume",
                         "keep_last", "data", "model_dir", "pretrained", "pretrained_epoch"})


def validate(cfg: TrainConfig) -> None:
    """Check every value up front; one message per problem, all of them at once.

    Raises:
        TrainError: naming each bad value and what is allowed.
    """
    problems = []
    for name in ("epochs", "batch_size", "log_every", "preprocess_threads"):
        if int(getattr(cfg, name)) < 1:
            problems.append(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.keep_last < 0:
        problems.append(f"--keep-last must be >= 0 (0 keeps every epoch), got {cfg.keep_last}")
    if cfg.max_batches is not None and cfg.max_batches < 1:
        problems.append(f"--max-batches must be >= 1, got {cfg.max_batches}")
    if len(cfg.repeats) != 3 or any(v < 0 for v in cfg.repeats):
        problems.append(f"--repeats must be three non-negative ints, got {cfg.repeats}")
    if not 0.0 < cfg.dropout_keep_prob <= 1.0:
        problems.append(f"--dropout-keep-prob must be in (0, 1], got {cfg.dropout_keep_prob}")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        problems.append(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if cfg.bn_momentum is not None and not 0.0 <= cfg.bn_momentum < 1.0:
        problems.append(f"--bn-momentum must be in [0, 1), got {cfg.bn_momentum}")
    if cfg.optimizer not in OPTIMIZERS:
        problems.append(f"--optimizer {cfg.optimizer!r} unknown. Available: {', '.join(OPTIMIZERS)}")
    if cfg.lr <= 0:
        problems.append(f"--lr must be > 0, got {cfg.lr}")
    if not 0.0 < cfg.lr_decay <= 1.0:
        problems.append(f"--lr-decay must be in (0, 1], got {cfg.lr_decay}")
    if cfg.lr_decay_epochs <= 0:
        problems.append(f"--lr-decay-epochs must be > 0, got {cfg.lr_decay_epochs}")
    if not 0.0 <= cfg.momentum < 1.0:
        problems.append(f"--momentum must be in [0, 1), got {cfg.momentum}")
    if not 0.0 < cfg.rmsprop_decay < 1.0:
        problems.append(f"--rmsprop-decay must be in (0, 1), got {cfg.rmsprop_decay}")
    if cfg.rmsprop_epsilon <= 0:
        problems.append(f"--rmsprop-epsilon must be > 0, got {cfg.rmsprop_epsilon}")
    if cfg.wd < 0:
        problems.append(f"--wd must be >= 0, got {cfg.wd}")
    if cfg.kv_store is not None and cfg.kv_store not in KVSTORES:
        problems.append(f"--kv-store {cfg.kv_store!r} unknown. Available: {', '.join(KVSTORES)}")
    if not cfg.prefix or "/" in cfg.prefix or cfg.prefix.startswith("."):
        problems.append(f"--prefix must be a plain file name, got {cfg.prefix!r}")
    try:
        parse_gpus(cfg.gpus)
    except TrainError as e:
        problems.append(str(e))
    if cfg.pretrained and cfg.resume:
        problems.append("--pretrained starts a new run; --resume continues one (give one of them)")
    if cfg.symbol:
        problem = symbol_option_conflict([n for n, default in IRV2_OPTIONS.items() if getattr(cfg, n) != default])
        if problem:
            problems.append(problem)
    if problems:
        raise TrainError("; ".join(problems))


def symbol_option_conflict(names) -> str | None:
    """The message for Inception-ResNet-v2 options given with ``--symbol`` (None when there are none)."""
    names = sorted(set(names) & set(IRV2_OPTIONS))
    if not names:
        return None
    listed = ", ".join(f"--{n.replace('_', '-')}" for n in names)
    return (f"--symbol trains the translated network as it is; {listed} "
            f"{'shapes' if len(names) == 1 else 'shape'} the hand-ported Inception-ResNet-v2 only (drop "
            f"{'it' if len(names) == 1 else 'them'})")


def resolve_resume(explicit: dict, saved: dict) -> TrainConfig:
    """The config of a resumed run: the saved one, with the explicitly given free fields.

    Args:
        explicit: the options given on this command line (name -> value).
        saved: ``checkpoint.json``'s ``config``.

    Raises:
        TrainError: an explicit option differs from the checkpoint on a field that
        decides the model or the schedule; all such fields are named.
    """
    cfg = TrainConfig.from_json(saved)
    clashes = []
    for name, value in explicit.items():
        if name in RESUME_FREE:
            setattr(cfg, name, value)
            continue
        have = getattr(cfg, name)
        want = tuple(value) if name == "repeats" else value
        if have != want:
            clashes.append(f"--{name.replace('_', '-')} {want} (checkpoint: {have})")
    if clashes:
        raise TrainError("--resume continues the checkpoint's run; these options differ from it: "
                         + ", ".join(clashes) + ". Drop them, or start a new run in another --model-dir")
    cfg.__post_init__()
    cfg.resume = True
    return cfg


# ---------------------------------------------------------------------- contexts

def parse_gpus(gpus: str | None) -> list[int]:
    """``"0,1"`` -> ``[0, 1]``; ``None`` or ``""`` -> ``[]`` (CPU).

    Raises:
        TrainError: not a comma-separated list of distinct non-negative ints.
    """
    if gpus is None or not str(gpus).strip():
        return []
    ids = []
    for part in str(gpus).split(","):
        part = part.strip()
        if not part.isdigit():
            raise TrainError(f"--gpus expects comma-separated GPU numbers like 0 or 0,1, got {gpus!r}")
        ids.append(int(part))
    if len(set(ids)) != len(ids):
        raise TrainError(f"--gpus lists a GPU twice: {gpus!r}")
    return ids


def contexts(gpus: str | None) -> list:
    """The contexts to train on: ``[mx.cpu()]`` without ``--gpus``, else one ``mx.gpu(i)`` each.

    Raises:
        TrainError: a requested GPU does not exist for this MXNet build.
    """
    ids = parse_gpus(gpus)
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


DMLC_VARS = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER")


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


# ------------------------------------------------------------------------- symbol

def build_symbol(num_classes: int, image_size: tuple[int, int], *, repeats=irv2.DEFAULT_REPEATS,
                 align_feature_maps: bool = False, aux_logits: bool = False, dropout_keep_prob: float = 0.8,
                 label_smoothing: float = 0.0, bn_momentum: float = irv2.BN_MOMENTUM):
    """The training symbol: mx_impl's SoftmaxOutput head(s), with wd_mult and BN momentum attributes.

    Raises:
        PaddingError: a feature map vanishes at this input size.
    """
    sym = irv2.get_symbol(num_classes, create_aux_logits=aux_logits, align_feature_maps=align_feature_maps,
                          dropout_keep_prob=dropout_keep_prob, repeats=tuple(repeats),
                          image_size=tuple(image_size), for_training=True, label_smoothing=label_smoothing)
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:
        attrs = node.setdefault("attrs", {})
        if node["op"] == "null" and node["name"].endswith(NO_DECAY_SUFFIXES):
            attrs["__wd_mult__"] = "0.0"
        # Variables created by BatchNorm carry a copy of its attributes in the JSON; keep them equal.
        if "momentum" in attrs and (node["op"] == "BatchNorm" or "/BatchNorm_" in node["name"]):
            attrs["momentum"] = repr(float(bn_momentum))
    return mx.sym.load_json(json.dumps(graph))


def smallest_image_size(align_feature_maps: bool, aux_logits: bool) -> int:
    """Smallest square input side for which no feature map vanishes (mx_impl's own pads)."""

    def fits(size: int) -> bool:
        try:
            irv2.end_point_shapes(2, create_aux_logits=aux_logits, align_feature_maps=align_feature_maps,
                                  repeats=(0, 0, 0), image_size=size)
        except PaddingError:
            return False
        return True

    lo, hi = 1, 1024
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def network_symbol(cfg: TrainConfig, num_classes: int, image_size: tuple[int, int], channels: int = 3):
    """``(symbol, aux_logits)`` for the config at the data's input size.

    ``aux_logits=None`` turns the aux head on when the input is large enough for it.
    With ``cfg.symbol``, the translated network of :func:`translated_symbol`.

    Raises:
        TrainError: the input is too small, naming the smallest size and the ways out.
    """
    if cfg.symbol:
        return translated_symbol(cfg, num_classes, (channels, *image_size))
    kwargs = dict(repeats=cfg.repeats, align_feature_maps=cfg.align_feature_maps,
                  dropout_keep_prob=cfg.dropout_keep_prob, label_smoothing=cfg.label_smoothing,
                  bn_momentum=cfg.bn_momentum)
    h, w = image_size
    if cfg.aux_logits is None:
        try:
            return build_symbol(num_classes, image_size, aux_logits=True, **kwargs), True
        except PaddingError:
            log.info("input %dx%d is too small for the AuxLogits head (needs %d): training without it",
                     h, w, smallest_image_size(cfg.align_feature_maps, True))
    aux = bool(cfg.aux_logits)
    try:
        return build_symbol(num_classes, image_size, aux_logits=aux, **kwargs), aux
    except PaddingError as e:
        need = smallest_image_size(cfg.align_feature_maps, aux)
        what = "Inception-ResNet-v2" + (" with AuxLogits" if aux else "")
        hint = (f"rebuild the data with `python -m porting.data ... --size {need}x{need}`"
                + ("" if cfg.align_feature_maps else
                   f", or train with --align-feature-maps (slim's SAME-padded stem; smallest input "
                   f"{smallest_image_size(True, aux)})"))
        raise TrainError(f"the data's input {h}x{w} is too small for {what} "
                         f"(align_feature_maps={cfg.align_feature_maps}): {e}; the smallest is {need}x{need}: "
                         f"{hint}") from e


def _translated_size(prefix: str) -> str | None:
    """``HxW`` autoport translated ``PREFIX`` for (from ``PREFIX-report.json``), None if unknown."""
    try:
        h, w = json.loads(Path(f"{prefix}-report.json").read_text("utf-8"))["autoport"]["size"]
        return f"{int(h)}x{int(w)}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def translated_symbol(cfg: TrainConfig, num_classes: int, data_shape: tuple[int, int, int]):
    """``(symbol, aux_logits)`` for ``--symbol PREFIX``: autoport's inference symbol with training heads.

    ``porting.training.symbol_heads.training_symbol`` adds the hand port's ``SoftmaxOutput``
    head(s) (label ``softmax_label``, label smoothing as ``smooth_alpha``, aux heads at 0.4,
    no weight decay on betas, gammas and biases; ``cfg.bn_momentum`` when given). When the
    data has another number of classes than the logits layers, those layers are resized
    (their parameters then start fresh, see :func:`load_pretrained`).

    Raises:
        TrainError: the file is missing or unusable, or the symbol does not take the data's
        input (naming the size it was translated for).
    """
    path = Path(f"{cfg.symbol}-symbol.json")
    if not path.is_file():
        raise TrainError(f"--symbol {cfg.symbol}: {path} not found (write it with "
                         f"`python -m porting.autoport ... --out {cfg.symbol}`)")
    try:
        sym = mx.sym.load(str(path))
    except mx.base.MXNetError as e:
        raise TrainError(f"--symbol {path} is not an MXNet symbol file: {str(e).strip().splitlines()[0]}") from e
    if "data" not in sym.list_arguments():
        raise TrainError(f"--symbol {path} has no input named 'data' (arguments: "
                         f"{short_list(sym.list_arguments(), 4)})")
    resized = False
    try:
        try:
            width = symbol_heads.logits_width(sym)
        except ValueError:
            width = None  # not found: the output shape check below still applies
        if width is not None and width != num_classes:
            log.info("--symbol %s: logits for %d classes, the data has %d: new logits layers", cfg.symbol,
                     width, num_classes)
            sym, resized = symbol_heads.resize_logits(sym, num_classes), True
        sym = symbol_heads.training_symbol(sym, label_smoothing=cfg.label_smoothing, num_classes=num_classes,
                                                bn_momentum=cfg.bn_momentum)
    except ValueError as e:
        raise TrainError(f"--symbol {path}: {e}") from e
    problem = symbol_heads.input_problem(sym, tuple(data_shape))
    if problem is None:
        _, outs, _ = sym.infer_shape(data=(1, *data_shape), **{LABEL_NAME: (1,)})
        wrong = [f"{n} {tuple(s)}" for n, s in zip(sym.list_outputs(), outs) if tuple(s) != (1, num_classes)]
        if wrong:
            problem = f"outputs {', '.join(wrong)} instead of (1, {num_classes}) for one image"
    if problem is None and initial_params(cfg) is not None:
        # A translated flatten may be MXNet's Flatten: then only the dense weights show the size.
        problem = _params_size_problem(sym, data_shape, initial_params(cfg),
                                       symbol_heads.logits_params(sym) if resized else ())
    if problem:
        c, h, w = data_shape
        size = _translated_size(cfg.symbol)
        hint = (f"it was translated for {size} input: rebuild the data with `python -m porting.data ... --size "
                f"{size}`, or autoport the network again with --size {h}x{w}" if size else
                f"autoport the network again with --size {h}x{w} ({cfg.symbol}-report.json, which names the "
                f"translated size, is missing)")
        raise TrainError(f"--symbol {cfg.symbol} does not take the data's input {c}x{h}x{w}: {problem}; {hint}")
    return sym, len(sym.list_outputs()) > 1


def _params_size_problem(sym, data_shape, path: Path, head) -> str | None:
    """Parameters of ``path`` whose shapes differ from ``sym``'s at this input size (a new head's rows may)."""
    arg, aux = load_params_file(path)
    want_arg, want_aux = param_shapes(sym, tuple(data_shape))
    wrong = []
    for want, have in ((want_arg, arg), (want_aux, aux)):
        for name, shape in want.items():
            got = tuple(have[name].shape) if name in have else None
            if got is not None and got != shape and not (name in head and got[1:] == shape[1:]):
                wrong.append(f"{name} (file {got}, network {shape})")
    return f"{path} does not fit it at this size: wrong shape: {short_list(sorted(wrong))}" if wrong else None


def main_output(sym) -> str:
    """Name of the main head's output (the first of the group)."""
    return sym.list_outputs()[0]


def make_metric(sym, num_classes: int):
    """Top-1, top-5 and cross-entropy of the main head only (not the aux head)."""
    names = dict(output_names=[main_output(sym)], label_names=[LABEL_NAME])
    metrics = [mx.metric.Accuracy(name="top1", **names)]
    if num_classes > 5:  # with 5 classes or fewer top-5 is always 1
        metrics.append(mx.metric.TopKAccuracy(top_k=5, name="top", **names))  # MXNet names it top_5
    metrics.append(mx.metric.CrossEntropy(name="ce", **names))
    return mx.metric.CompositeEvalMetric(metrics, **names)


def metric_values(metric) -> dict[str, float]:
    """``{"top1": ..., "top5": ..., "ce": ...}`` of a :func:`make_metric` metric."""
    return {name.replace("top_5", "top5"): float(value) for name, value in zip(*metric.get())}


# ----------------------------------------------------------------------- optimizer

class SlimExponentialDecay(mx.lr_scheduler.LRScheduler):
    """slim's ``exponential_decay``: ``lr * rate ** (step // decay_steps)`` (staircase).

    A pure function of the update count (no state), so ``begin_num_update`` on resume
    reproduces the curve. MXNet passes the 1-based number of the update being made;
    TF's ``global_step`` counts the updates already made, hence ``num_update - 1``.
    """

    def __init__(self, base_lr: float, decay_steps: int, decay_rate: float, staircase: bool = True):
        super().__init__(base_lr=base_lr)
        if decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1, got {decay_steps}")
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, num_update: int) -> float:
        p = max(int(num_update) - 1, 0) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.base_lr * self.decay_rate ** p


@mx.optimizer.register
class SlimRMSProp(mx.optimizer.Optimizer):
    """TF1 ``RMSPropOptimizer`` (non-centered, with momentum), slim's training default.

    Per weight, with ``g = rescale_grad * grad + wd * weight``::

        ms  = decay * ms + (1 - decay) * g**2          # ms starts at ones (TF1)
        mom = momentum * mom + lr * g / sqrt(ms + epsilon)
        weight -= mom

    (tensorflow/python/training/rmsprop.py and its ApplyRMSProp kernel). Registered as
    ``"slimrmsprop"``. States: ``(ms, mom)``, pickled by ``Module.save_optimizer_states``.
    """

    def __init__(self, learning_rate=None, decay: float = 0.9, momentum: float = 0.9, epsilon: float = 1.0,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def create_state(self, index, weight):
        return (mx.nd.ones(weight.shape, weight.context, dtype=weight.dtype),
                mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        ms, mom = state
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = mx.nd.clip(g, -self.clip_gradient, self.clip_gradient)
        if wd:
            g = g + wd * weight
        ms[:] = self.decay * ms + (1.0 - self.decay) * mx.nd.square(g)
        mom[:] = self.momentum * mom + lr * g / mx.nd.sqrt(ms + self.epsilon)
        weight[:] = weight - mom


def optimizer_spec(cfg: TrainConfig, batches_per_epoch: int, begin_num_update: int = 0) -> tuple[str, dict]:
    """``(name, params)`` for ``Module.init_optimizer``; Module adds ``rescale_grad`` and ``sym``."""
    decay_steps = max(1, int(round(batches_per_epoch * cfg.lr_decay_epochs)))
    params = {
        "lr_scheduler": SlimExponentialDecay(cfg.lr, decay_steps, cfg.lr_decay),
        "wd": cfg.wd,
        "begin_num_update": int(begin_num_update),
    }
    if cfg.optimizer == "rmsprop":
        params.update(decay=cfg.rmsprop_decay, momentum=cfg.momentum, epsilon=cfg.rmsprop_epsilon)
        return "slimrmsprop", params
    params.update(momentum=cfg.momentum)
    return "sgd", params


# --------------------------------------------------------------------- checkpoints

def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _atomic_via(path: Path, write) -> None:
    """Call ``write(tmp)`` (a writer that takes a path), fsync it, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(str(tmp))
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def clean_stale(model_dir: Path) -> None:
    """Remove temporary files a killed run left (never a committed file)."""
    if model_dir.is_dir():
        for p in model_dir.iterdir():
            if p.name.startswith(".") and ".tmp-" in p.name:
                p.unlink(missing_ok=True)


def checkpoint_paths(model_dir: Path, prefix: str, epoch: int) -> dict[str, Path]:
    return {
        "symbol": model_dir / f"{prefix}-symbol.json",
        "params": model_dir / f"{prefix}-{epoch:04d}.params",
        "states": model_dir / f"{prefix}-{epoch:04d}.states",
    }


def read_checkpoint(model_dir: str | Path, verify: bool = True) -> dict:
    """``checkpoint.json`` of a model directory; ``verify`` checks its files' SHA-256.

    Raises:
        TrainError: missing, malformed, or a file it names is missing or changed.
    """
    model_dir = Path(model_dir)
    path = model_dir / CHECKPOINT_NAME
    record = read_format_json(path, FORMAT, TrainError, f"no complete epoch in {model_dir} to resume from")
    epoch = int(record["epoch"])
    files = record["epochs"][str(epoch)]
    for kind, p in checkpoint_paths(model_dir, record["prefix"], epoch).items() if verify else ():
        if not p.is_file():
            raise TrainError(f"{path} names epoch {epoch} but its {kind} file {p} is missing")
        if sha256_file(p) != files[kind]:
            raise TrainError(f"{p} does not match the SHA-256 {path} recorded for epoch {epoch}")
    return record


def saved_config(model_dir: str | Path) -> dict:
    """The config of the run in ``model_dir`` (rank 0's, or any worker's ``rank<r>`` copy).

    Raises:
        TrainError: no checkpoint there.
    """
    model_dir = Path(model_dir)
    candidates = [model_dir] + sorted(model_dir.glob("rank*"))
    for d in candidates:
        if (d / CHECKPOINT_NAME).is_file():
            return read_checkpoint(d, verify=False)["config"]
    raise TrainError(f"{model_dir / CHECKPOINT_NAME} not found: no complete epoch in {model_dir} to resume from")


def save_checkpoint(mod, model_dir: Path, prefix: str, epoch: int, record: dict, keep_last: int = 0) -> dict:
    """Write symbol, params and optimizer states of ``epoch``, then ``checkpoint.json`` naming it.

    The params file is ``mx.model.save_checkpoint``'s format (``arg:``/``aux:`` keys).
    With ``keep_last`` > 0, older epochs are dropped from ``checkpoint.json`` first and
    their files deleted after, so the record never names a deleted file.
    """
    paths = checkpoint_paths(model_dir, prefix, epoch)
    atomic_write_text(paths["symbol"], mod.symbol.tojson())
    arg, aux = mod.get_params()
    blob = {f"arg:{k}": v for k, v in arg.items()} | {f"aux:{k}": v for k, v in aux.items()}
    _atomic_via(paths["params"], lambda tmp: mx.nd.save(tmp, blob))
    _atomic_via(paths["states"], mod.save_optimizer_states)
    record = dict(record)
    record["epochs"] = dict(record.get("epochs", {}))
    record["epochs"][str(epoch)] = {kind: sha256_file(p) for kind, p in paths.items()}
    record["epoch"] = epoch
    dropped = sorted(int(e) for e in record["epochs"])[:-keep_last] if keep_last else []
    for e in dropped:
        del record["epochs"][str(e)]
    atomic_write_text(model_dir / CHECKPOINT_NAME, json.dumps(record, indent=2) + "\n")
    for e in dropped:
        for kind, p in checkpoint_paths(model_dir, prefix, e).items():
            if kind != "symbol":
                p.unlink(missing_ok=True)
    return record


def load_params_file(path: Path) -> tuple[dict, dict]:
    """``(arg_params, aux_params)`` of an MXNet ``.params`` file."""
    try:
        loaded = mx.nd.load(str(path))
    except mx.base.MXNetError as e:
        raise TrainError(f"{path} is not an MXNet params file: {str(e).strip().splitlines()[0]}") from e
    arg, aux = {}, {}
    for key, value in loaded.items():
        kind, _, name = key.partition(":")
        if kind == "arg":
            arg[name] = value
        elif kind == "aux":
            aux[name] = value
        else:
            raise TrainError(f"{path}: key {key!r} is neither 'arg:' nor 'aux:' (not a Module checkpoint)")
    return arg, aux


def param_shapes(sym, data_shape: tuple[int, ...], batch: int = 1) -> tuple[dict, dict]:
    """Shapes of the symbol's parameters (inputs ``data``/``softmax_label`` excluded)."""
    args = sym.list_arguments()
    shapes = {"data": (batch, *data_shape)}
    if LABEL_NAME in args:
        shapes[LABEL_NAME] = (batch,)
    arg_shapes, _, aux_shapes = sym.infer_shape(**shapes)
    arg = {n: tuple(s) for n, s in zip(args, arg_shapes) if n not in ("data", LABEL_NAME)}
    aux = {n: tuple(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return arg, aux


def fit_report(expected: dict, got: dict) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, wrong shape)`` descriptions of ``got`` against ``expected`` shapes."""
    missing = sorted(n for n in expected if n not in got)
    unexpected = sorted(n for n in got if n not in expected)
    wrong = sorted(f"{n} (file {tuple(got[n].shape)}, network {expected[n]})"
                   for n in expected if n in got and tuple(got[n].shape) != expected[n])
    return missing, unexpected, wrong


def short_list(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def load_pretrained(sym, data_shape, prefix: str, epoch: int = 0, *, head=HEAD_PREFIXES,
                    option: str = "--pretrained") -> tuple[dict, dict, list[str]]:
    """Parameters of a converted slim checkpoint for ``sym``, with a new head where it differs.

    Head parameters (names starting with one of ``head``: by default the logits, and the
    AuxLogits branch whose last kernel depends on the input size) whose shape differs, or
    that the file lacks, are left out so they are initialised fresh; everything else must
    fit. ``option`` names the command-line option in messages.

    Returns:
        ``(arg_params, aux_params, reinitialised names)``.

    Raises:
        TrainError: the file is missing, or a body parameter is missing or has another shape.
    """
    path = Path(f"{prefix}-{epoch:04d}.params")
    if not path.is_file():
        tool = "porting.autoport" if option == "--symbol" else "porting.convert"
        raise TrainError(f"{option} {prefix}: {path} not found (write it with `python -m {tool}`)")
    arg, aux = load_params_file(path)
    want_arg, want_aux = param_shapes(sym, data_shape)
    fresh = []
    for want, have in ((want_arg, arg), (want_aux, aux)):
        for name, shape in want.items():
            if name.startswith(tuple(head)) and (name not in have or tuple(have[name].shape) != shape):
                have.pop(name, None)
                fresh.append(name)
    problems = []
    for kind, want, have in (("arg", want_arg, arg), ("aux", want_aux, aux)):
        missing, _, wrong = fit_report({n: s for n, s in want.items() if n not in fresh}, have)
        if missing:
            problems.append(f"missing {kind} parameters: {short_list(missing)}")
        if wrong:
            problems.append(f"wrong shape: {short_list(wrong)}")
    if problems:
        raise TrainError(f"{option} {path} does not fit the network: " + "; ".join(problems))
    arg = {n: v for n, v in arg.items() if n in want_arg}
    aux = {n: v for n, v in aux.items() if n in want_aux}
    return arg, aux, sorted(fresh)


def remap_states(blob: bytes, old_devices: int, new_devices: int) -> bytes:
    """Optimizer states saved with ``old_devices`` contexts, re-keyed for ``new_devices``.

    Module keys an updater state by ``param_index * num_devices + device``; the states of
    all devices are equal (same gradients, same updates), so device 0's are copied.
    """
    if old_devices == new_devices:
        return blob
    states = pickle.loads(blob)
    if isinstance(states, tuple) and len(states) == 2:  # (states, optimizer) dumps
        states = states[0]
    remapped = {}
    for key, value in states.items():
        param, device = divmod(int(key), old_devices)
        if device == 0:
            for k in range(new_devices):
                remapped[param * new_devices + k] = value
    return pickle.dumps(remapped)


# ------------------------------------------------------------------- data copy

def copy_data_manifest(manifest: Manifest, model_dir: Path) -> str:
    """Copy ``manifest.json``, the mean image and ``contents.tsv`` into ``MODEL_DIR/data``.

    Prediction reads preprocessing only from this copy. Returns the manifest's SHA-256.
    """
    dest = model_dir / DATA_COPY_DIR
    dest.mkdir(parents=True, exist_ok=True)
    for name in DATA_COPY_FILES:
        src = manifest.root / name
        if src.is_file():
            atomic_write_bytes(dest / name, src.read_bytes())
    return sha256_file(dest / "manifest.json")


def check_data_copy(manifest: Manifest, model_dir: Path, recorded_sha: str) -> None:
    """On resume: the data given is the data the run started with.

    Raises:
        TrainError: naming both manifests.
    """
    copy = model_dir / DATA_COPY_DIR / "manifest.json"
    if not copy.is_file() or sha256_file(copy) != recorded_sha:
        raise TrainError(f"{copy} is missing or differs from the manifest {CHECKPOINT_NAME} recorded")
    if sha256_file(manifest.path) != recorded_sha:
        raise TrainError(f"--data {manifest.path} is not the data set this run was trained on "
                         f"(its manifest differs from {copy}); resume with the original --data")


# -------------------------------------------------------------------- training

@dataclass
class TrainResult:
    """What ``train`` did."""

    model_dir: Path
    prefix: str
    first_epoch: int  # first epoch trained by this call (1-based)
    last_epoch: int  # last complete epoch (0 when nothing was trained)
    rows: list[dict] = field(default_factory=list)
    aux_logits: bool = False
    rank: int = 0
    num_workers: int = 1


@contextlib.contextmanager
def _env(name: str, value: str | None):
    """Set an environment variable for the block (MXNet reads it at bind / optimizer creation)."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def evaluate(mod, data_iter, metric, max_batches: int | None = None) -> dict[str, float]:
    """Metrics of the module in inference mode over the iterator, padding excluded."""
    metric.reset()
    data_iter.reset()
    outputs = mod.output_names
    for nbatch, batch in enumerate(data_iter):
        if max_batches is not None and nbatch >= max_batches:
            break
        mod.forward(batch, is_train=False)
        n = batch.data[0].shape[0] - (batch.pad or 0)
        preds = {name: out[:n] for name, out in zip(outputs, mod.get_outputs())}
        metric.update_dict({LABEL_NAME: batch.label[0][:n]}, preds)
    return metric_values(metric)


def _sync_aux(kv, mod, num_workers: int) -> None:
    """Average the batch-norm moving statistics over the workers through the kvstore."""
    arg, aux = mod.get_params()
    names = sorted(aux)
    keys = [f"aux::{n}" for n in names]
    kv.push(keys, [aux[n] for n in names])
    outs = [mx.nd.zeros(aux[n].shape) for n in names]
    kv.pull(keys, out=outs)
    mod.set_params(arg, {n: o / num_workers for n, o in zip(names, outs)})


@dataclass
class Session:
    """A run ready to train: module bound, parameters and optimizer state loaded."""

    cfg: TrainConfig
    manifest: Manifest
    module: object
    kv: object  # a KVStore (dist) or the kvstore type name
    kv_name: str
    contexts: list
    rank: int
    num_workers: int
    model_dir: Path
    record: dict
    metrics_log: MetricsLog
    aux_logits: bool
    batches_per_epoch: int
    begin_epoch: int  # complete epochs before this call
    num_update: int
    scheduler: SlimExponentialDecay
    optimizer_name: str
    lock_fd: int | None = None  # flock on MODEL_DIR/.lock, released by run()

    def close(self) -> None:
        """Release the model directory's lock."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    @property
    def distributed(self) -> bool:
        return not isinstance(self.kv, str)


def prepare(cfg: TrainConfig) -> Session:
    """Everything up to the first batch: data, symbol, module, parameters, optimizer, states.

    A resumed run loads exactly the files ``checkpoint.json`` names (checked by SHA-256),
    including the optimizer states, and restarts the update count where it stopped.

    Raises:
        TrainError: bad input or state, one line.
    """
    validate(cfg)
    ctxs = contexts(cfg.gpus)
    kv_name = kvstore_type(cfg.kv_store, len(ctxs))
    check_dist_env(kv_name)
    try:
        manifest = load_manifest(cfg.data)
    except ManifestError as e:
        raise TrainError(str(e)) from e
    if "train" not in manifest.splits or manifest.splits["train"].count == 0:
        raise TrainError(f"{manifest.path} has no training images")

    data_shape = tuple(manifest.data_shape)
    sym, aux_logits = network_symbol(cfg, manifest.num_classes, data_shape[1:], channels=data_shape[0])
    kv = mx.kv.create(kv_name) if kv_name.startswith("dist") else kv_name
    rank, num_workers = (0, 1) if isinstance(kv, str) else (kv.rank, kv.num_workers)
    model_dir = Path(cfg.model_dir) if rank == 0 else Path(cfg.model_dir) / f"rank{rank}"
    model_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(model_dir)
    try:
        return _prepare_locked(cfg, manifest, sym, aux_logits, kv, kv_name, ctxs, rank, num_workers, model_dir,
                               lock)
    except BaseException:
        os.close(lock)
        raise


def _lock(model_dir: Path) -> int:
    """An exclusive lock on the model directory for this process (the kernel drops it on any exit)."""
    fd = os.open(model_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TrainError(f"another training process is using {model_dir}") from None
    return fd


def _prepare_locked(cfg, manifest, sym, aux_logits, kv, kv_name, ctxs, rank, num_workers, model_dir, lock):
    clean_stale(model_dir)
    data_shape = tuple(manifest.data_shape)
    n_train = manifest.splits["train"].count
    batches_per_epoch = math.ceil(n_train / (cfg.batch_size * num_workers))
    if cfg.max_batches:
        batches_per_epoch = min(batches_per_epoch, cfg.max_batches)

    metrics_log = MetricsLog(model_dir, title=_title(cfg, manifest, aux_logits))
    begin_epoch, num_update = 0, 0
    if cfg.resume:
        record = read_checkpoint(model_dir)
        check_data_copy(manifest, model_dir, record["manifest_sha256"])
        if cfg.symbol:
            check_symbol_unchanged(sym, cfg.symbol, model_dir, record)
        if record["batches_per_epoch"] != batches_per_epoch:
            raise TrainError(f"this run would make {batches_per_epoch} updates per epoch, the checkpoint made "
                             f"{record['batches_per_epoch']} (another number of workers?); the learning-rate "
                             f"schedule would change, so resume with the original setup")
        begin_epoch, num_update = int(record["epoch"]), int(record["num_update"])
        metrics_log.truncate(begin_epoch)
    else:
        if (model_dir / CHECKPOINT_NAME).exists():
            raise TrainError(f"{model_dir} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it "
                             f"or choose another --model-dir")
        metrics_log.truncate(0)
        record = {
            "format": FORMAT, "prefix": cfg.prefix, "config": cfg.to_json(), "aux_logits": aux_logits,
            "num_classes": manifest.num_classes, "classes": manifest.classes, "data_shape": list(data_shape),
            "manifest_sha256": copy_data_manifest(manifest, model_dir),
            "manifest_fingerprint": manifest.fingerprint, "batches_per_epoch": batches_per_epoch,
            "num_workers": num_workers, "rank": rank, "epochs": {}, "epoch": 0, "num_update": 0,
        }

    mx.random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    mod = mx.mod.Module(sym, data_names=("data",), label_names=(LABEL_NAME,), context=ctxs, logger=log)
    with _env("MXNET_BACKWARD_DO_MIRROR", "1" if cfg.mirror else None):
        mod.bind(data_shapes=[("data", (cfg.batch_size, *data_shape))],
                 label_shapes=[(LABEL_NAME, (cfg.batch_size,))], for_training=True)

    initializer = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2.0)
    if cfg.resume:
        paths = checkpoint_paths(model_dir, record["prefix"], begin_epoch)
        arg, aux = load_params_file(paths["params"])
        mod.init_params(arg_params=arg, aux_params=aux, allow_missing=False)
    elif cfg.pretrained or start_params(cfg):
        # --pretrained, else autoport's PREFIX-0000.params of --symbol: the same fine-tuning path
        prefix, epoch, option = ((cfg.pretrained, cfg.pretrained_epoch, "--pretrained") if cfg.pretrained
                                 else (cfg.symbol, 0, "--symbol"))
        head = symbol_heads.logits_params(sym) if cfg.symbol else HEAD_PREFIXES
        arg, aux, fresh = load_pretrained(sym, data_shape, prefix, epoch, head=head, option=option)
        log.info("fine-tuning from %s-%04d.params; new head: %s", prefix, epoch, ", ".join(fresh) or "none")
        mod.init_params(initializer, arg_params=arg, aux_params=aux, allow_missing=True)
    else:
        if cfg.symbol:
            check_random_init(sym, cfg.symbol)
        mod.init_params(initializer)

    opt_name, opt_params = optimizer_spec(cfg, batches_per_epoch, num_update)
    # The kvstore only sums gradients; every worker/device applies the update itself.
    with _env("MXNET_UPDATE_ON_KVSTORE", "0"):
        mod.init_optimizer(kvstore=kv, optimizer=opt_name, optimizer_params=opt_params)
    if cfg.resume:
        blob = remap_states(paths["states"].read_bytes(), int(record.get("num_devices", len(ctxs))), len(ctxs))
        tmp = model_dir / f".resume-states.tmp-{os.getpid()}"
        try:
            tmp.write_bytes(blob)
            mod.load_optimizer_states(str(tmp))
        finally:
            tmp.unlink(missing_ok=True)
    if not isinstance(kv, str):
        # Module stored rank 0's initial parameters in the kvstore; every worker starts from them.
        arg, aux = mod.get_params()
        names = sorted(arg)
        kv.pull(names, out=[arg[n] for n in names])
        aux_names = sorted(aux)
        kv.init([f"aux::{n}" for n in aux_names], [aux[n] for n in aux_names])
        mod.set_params(arg, aux)
    record["num_devices"] = len(ctxs)
    return Session(cfg, manifest, mod, kv, kv_name, ctxs, rank, num_workers, model_dir, record, metrics_log,
                   aux_logits, batches_per_epoch, begin_epoch, num_update, opt_params["lr_scheduler"], opt_name,
                   lock)


def start_params(cfg: TrainConfig) -> Path | None:
    """autoport's ``PREFIX-0000.params`` of ``--symbol`` when it exists (the run starts from it)."""
    path = Path(f"{cfg.symbol}-0000.params") if cfg.symbol else None
    return path if path is not None and path.is_file() else None


def initial_params(cfg: TrainConfig) -> Path | None:
    """The params file a new run starts from: ``--pretrained``'s (if it exists), else :func:`start_params`."""
    if cfg.resume:
        return None
    if cfg.pretrained:
        path = Path(f"{cfg.pretrained}-{cfg.pretrained_epoch:04d}.params")
        return path if path.is_file() else None
    return start_params(cfg)


def check_random_init(sym, prefix: str) -> None:
    """Without ``PREFIX-0000.params`` every parameter must be one an initializer can make.

    Raises:
        TrainError: naming the frozen TF constants (``lr_mult`` 0) and the parameters of
        kinds MXNet's initializers do not know.
    """
    attrs = sym.attr_dict()
    names = [n for n in sym.list_arguments() + sym.list_auxiliary_states() if n not in ("data", LABEL_NAME)]
    bad = [n for n in names if float(attrs.get(n, {}).get("__lr_mult__", 1.0)) == 0.0
           or (not n.endswith(INIT_SUFFIXES) and "__init__" not in attrs.get(n, {}))]
    if bad:
        raise TrainError(f"--symbol {prefix}: {prefix}-0000.params not found, and these parameters cannot start "
                         f"from random values (TF constants, or kinds no initializer knows): {short_list(bad)}; "
                         f"autoport writes the params file next to the symbol")
    log.info("--symbol %s: no %s-0000.params, every parameter starts from random values", prefix, prefix)


def check_symbol_unchanged(sym, prefix: str, model_dir: Path, record: dict) -> None:
    """On resume: ``--symbol`` still gives the training symbol the checkpoint saved.

    Raises:
        TrainError: ``PREFIX-symbol.json`` changed since the run started.
    """
    saved = record["epochs"][str(record["epoch"])]["symbol"]
    if hashlib.sha256(sym.tojson().encode("utf-8")).hexdigest() != saved:
        raise TrainError(f"--symbol {prefix}-symbol.json no longer gives the network this run trains "
                         f"({model_dir / record['prefix']}-symbol.json): restore it (autoport writes the same "
                         f"file again from the same network and options) or start a new run in another --model-dir")


def run(session: Session) -> TrainResult:
    """Train from ``session.begin_epoch`` to ``cfg.epochs``, checkpointing every epoch; then release the lock."""
    try:
        return _run(session)
    finally:
        session.close()


def _run(session: Session) -> TrainResult:
    s, cfg = session, session.cfg
    mod, manifest = s.module, s.manifest
    first = s.begin_epoch + 1
    if s.begin_epoch >= cfg.epochs:
        log.info("checkpoint epoch %d already reaches --epochs %d: nothing to do", s.begin_epoch, cfg.epochs)
        return TrainResult(s.model_dir, cfg.prefix, first, s.begin_epoch, s.metrics_log.rows, s.aux_logits,
                           s.rank, s.num_workers)
    metric = make_metric(mod.symbol, manifest.num_classes)
    val_metric = make_metric(mod.symbol, manifest.num_classes)
    val_iter = None
    if "val" in manifest.splits and manifest.splits["val"].count:
        val_iter = iterators.make_split_iterator(manifest, "val", cfg.batch_size, train=False,
                                                 preprocess_threads=cfg.preprocess_threads)
    speedometer = mx.callback.Speedometer(cfg.batch_size * s.num_workers, frequent=cfg.log_every,
                                          auto_reset=False)
    log.info("training %s on %s (%s), rank %d/%d: epochs %d..%d, %d batches of %d per epoch, %s",
             s.metrics_log.title, ", ".join(str(c) for c in s.contexts), s.kv_name, s.rank, s.num_workers,
             first, cfg.epochs, s.batches_per_epoch, cfg.batch_size, s.optimizer_name)
    record, num_update = s.record, s.num_update
    for epoch in range(s.begin_epoch, cfg.epochs):
        tic = time.perf_counter()
        # Per-epoch seeds: the data order and dropout masks of epoch e do not depend on
        # whether the run was resumed before it.
        mx.random.seed(cfg.seed + epoch)
        train_iter = iterators.make_split_iterator(
            manifest, "train", cfg.batch_size, train=True, seed=cfg.seed + epoch,
            preprocess_threads=cfg.preprocess_threads, part_index=s.rank, num_parts=s.num_workers)
        metric.reset()
        nbatch = 0
        while nbatch < s.batches_per_epoch:
            try:
                batch = next(train_iter)
            except StopIteration:  # a worker's part can be short of a full epoch: wrap around
                train_iter.reset()
                continue
            mod.forward_backward(batch)
            mod.update()
            mod.update_metric(metric, batch.label)
            nbatch += 1
            num_update += 1
            speedometer(mx.model.BatchEndParam(epoch=epoch + 1, nbatch=nbatch, eval_metric=metric, locals=None))
        # MXNet 1.9 updates the batch-norm moving statistics in backward without the engine
        # ordering later reads after those writes (a read right after can see the old
        # values; checked on CPU): wait for them before evaluating or saving.
        mx.nd.waitall()
        if s.distributed:
            _sync_aux(s.kv, mod, s.num_workers)
        train_values = metric_values(metric)
        seconds = time.perf_counter() - tic
        row = {
            "epoch": epoch + 1, "num_update": num_update, "lr": s.scheduler(num_update),
            "train_top1": train_values.get("top1"), "train_top5": train_values.get("top5"),
            "train_ce": train_values.get("ce"), "samples": nbatch * cfg.batch_size, "seconds": round(seconds, 3),
            "samples_per_s": round(nbatch * cfg.batch_size / seconds, 3),
        }
        if val_iter is not None:
            values = evaluate(mod, val_iter, val_metric)
            row.update(val_top1=values.get("top1"), val_top5=values.get("top5"), val_ce=values.get("ce"))
        # Metrics first, checkpoint.json last: a kill in between leaves a row that resume drops.
        s.metrics_log.append(row)
        record["num_update"] = num_update
        record = save_checkpoint(mod, s.model_dir, cfg.prefix, epoch + 1, record, cfg.keep_last)
        log.info("epoch %d done in %.1f s: %s", epoch + 1, seconds,
                 ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
    s.record, s.num_update, s.begin_epoch = record, num_update, cfg.epochs
    return TrainResult(s.model_dir, cfg.prefix, first, cfg.epochs, s.metrics_log.rows, s.aux_logits, s.rank,
                       s.num_workers)


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) according to ``cfg``: :func:`prepare`, then :func:`run`.

    Raises:
        TrainError: bad input or state, one line.
    """
    return run(prepare(cfg))


def _title(cfg: TrainConfig, manifest: Manifest, aux_logits: bool) -> str:
    _, h, w = manifest.data_shape
    if cfg.symbol:
        try:
            name = json.loads(Path(f"{cfg.symbol}-report.json").read_text("utf-8"))["autoport"]["network"]
        except (OSError, ValueError, KeyError, TypeError):
            name = Path(cfg.symbol).name
        return (f"{name} (autoport {Path(cfg.symbol).name}{', aux' if aux_logits else ''}) at {h}x{w}, "
                f"{manifest.num_classes} classes, {cfg.optimizer} lr {cfg.lr:g}")
    variant = "full" if tuple(cfg.repeats) == irv2.DEFAULT_REPEATS else f"repeats {','.join(map(str, cfg.repeats))}"
    return (f"Inception-ResNet-v2 ({variant}{', aux' if aux_logits else ''}"
            f"{', align_feature_maps' if cfg.align_feature_maps else ''}) at {h}x{w}, "
            f"{manifest.num_classes} classes, {cfg.optimizer} lr {cfg.lr:g}")


def params_digest(arg: dict, aux: dict) -> str:
    """SHA-256 over every parameter (name, shape, float32 bytes), for comparing models."""
    h = hashlib.sha256()
    for kind, params in (("arg", arg), ("aux", aux)):
        for name in sorted(params):
            value = params[name].asnumpy().astype(np.float32)
            h.update(f"{kind}:{name}:{value.shape}\n".encode())
            h.update(value.tobytes())
    return h.hexdigest()
