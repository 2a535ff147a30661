"""What a training run depends on: :class:`TrainConfig`, its checks, and the resume rules.

The config is saved in ``checkpoint.json``; ``--resume`` rebuilds it from there with
:func:`resolve_resume`, which lets only the fields of :data:`RESUME_FREE` change (every
other field decides the model or the learning-rate curve). :func:`validate` checks
every value up front and names all problems at once. :class:`TrainError` is the one
error type of the training package: ``str(e)`` is one line for the user.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from porting import compat, util

compat.import_mx()  # a DMLC server or scheduler process serves here and exits

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402

#: Gradient aggregation a run may ask for (``--kv-store``).
KVSTORES = ("local", "device", "dist_sync", "dist_device_sync")
OPTIMIZERS = ("rmsprop", "sgd")
#: Options that shape mx_impl's Inception-ResNet-v2, with their defaults; ``--symbol`` brings its own network.
IRV2_OPTIONS = {"repeats": irv2.DEFAULT_REPEATS, "align_feature_maps": False, "aux_logits": None,
                "dropout_keep_prob": 0.8}


class TrainError(Exception):
    """Bad input or state that stops training; ``str(e)`` is one line for the user."""


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
    verify_data: bool = False  # SHA-256 of every data file before training (default: the quick check)
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
                         "keep_last", "data", "model_dir", "pretrained", "pretrained_epoch", "verify_data"})


def repeat_counts(text: str) -> tuple[int, int, int]:
    """``--repeats``: a preset name of mx_impl's ``REPEAT_PRESETS`` or three counts ``A,B,C``.

    Raises:
        ValueError: neither, naming the presets.
    """
    if text in irv2.REPEAT_PRESETS:
        return tuple(irv2.REPEAT_PRESETS[text])
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(v < 0 for v in values):
        names = ", ".join(f"'{name}'" for name in irv2.REPEAT_PRESETS)
        raise ValueError(f"expected a preset ({names}) or three non-negative ints like 1,1,1 "
                         f"(block35, block17, block8), got {text!r}")
    return values


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
        util.parse_gpus(cfg.gpus)
    except ValueError as e:
        problems.append(f"--gpus {e}")
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
