"""Everything a training run does before its first batch: :func:`prepare` gives a :class:`Session`.

:func:`prepare` checks the config, picks the devices and the kvstore (``devices``), builds the
network (``network``), locks the model directory and then, under the lock, starts a new
checkpoint record or reads the one to resume (``checkpoint``), binds the Module and loads
its parameters (:func:`_init_params`: the checkpoint's, a pretrained or autoport params
file, or random) and optimizer states. :func:`load_data` loads the data set's manifest and
checks its files first.

Before the model directory is created: the config, ``--model-dir`` (kind, a write probe,
free space for one epoch's files), the devices, the data set's content
(``load_manifest(verify="quick")``, every byte with ``--verify-data``), a split at least
one batch large, and the memory the run needs (``memory``). A run that created the model
directory and fails before training removes it again.

In ``dist_sync`` the workers start from rank 0's initial parameters (pulled from the
kvstore); rank 0 writes to ``--model-dir``, rank ``r`` to ``--model-dir/rank<r>``.
The epochs themselves are ``porting.training.loop``'s.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from porting import compat, progress, util
from porting.training.config import TrainConfig, TrainError, start_params, validate

mx = compat.import_mx()  # a DMLC server or scheduler process serves here and exits

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402
from porting.data.manifest import Manifest, ManifestError, check_files, load_manifest  # noqa: E402
from porting.training import checkpoint, fusion, memory, symbol_heads  # noqa: E402
from porting.training.devices import check_dist_env, contexts, kvstore_type  # noqa: E402
from porting.training.metrics_log import MetricsLog  # noqa: E402
from porting.training.network import (check_random_init, network_symbol,  # noqa: E402
                                      scale_residuals_in_weights)
from porting.training.optimizer import SlimExponentialDecay, optimizer_spec  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME  # noqa: E402

log = logging.getLogger("porting.train")


@dataclass
class RunSetup:
    """What a run trains and where, decided before the model directory is locked."""

    cfg: TrainConfig
    manifest: Manifest
    symbol: object
    aux_logits: bool
    contexts: list
    kv: object  # a KVStore (dist) or the kvstore type name
    kv_name: str
    rank: int
    num_workers: int
    model_dir: Path  # this worker's: --model-dir for rank 0, --model-dir/rank<r> otherwise
    lock_fd: int | None = None  # flock on MODEL_DIR/.lock, released by release()

    @property
    def distributed(self) -> bool:
        return not isinstance(self.kv, str)

    def release(self) -> None:
        """Release the model directory's lock."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


@dataclass
class Session:
    """A run ready to train: module bound, parameters and optimizer state loaded."""

    setup: RunSetup
    module: object
    record: dict  # checkpoint.json as it will be written next
    metrics_log: MetricsLog
    batches_per_epoch: int
    begin_epoch: int  # complete epochs before this call
    num_update: int
    scheduler: SlimExponentialDecay
    optimizer_name: str

    @property
    def cfg(self) -> TrainConfig:
        return self.setup.cfg

    def close(self) -> None:
        """Release the model directory's lock."""
        self.setup.release()


def prepare(cfg: TrainConfig) -> Session:
    """Everything up to the first batch: data, symbol, module, parameters, optimizer, states.

    A resumed run loads exactly the files ``checkpoint.json`` names (checked by SHA-256),
    including the optimizer states, and restarts the update count where it stopped.
    Nothing is written before every check has passed.

    Raises:
        TrainError: bad input or state, one line.
    """
    validate(cfg)
    _check_model_dir(cfg.model_dir)
    if cfg.pretrained and not cfg.resume and not Path(f"{cfg.pretrained}-{cfg.pretrained_epoch:04d}.params").is_file():
        raise TrainError(f"--pretrained {cfg.pretrained}: {cfg.pretrained}-{cfg.pretrained_epoch:04d}.params not found "
                         f"(write it with `python -m porting.convert`)")
    ctxs = contexts(cfg.gpus)
    kv_name = kvstore_type(cfg.kv_store, len(ctxs))
    check_dist_env(kv_name)
    manifest = load_data(cfg.data, full=cfg.verify_data)
    if "train" not in manifest.splits or manifest.splits["train"].count == 0:
        raise TrainError(f"{manifest.path} has no training images")

    data_shape = tuple(manifest.data_shape)
    sym, aux_logits = network_symbol(cfg, manifest.num_classes, data_shape[1:], channels=data_shape[0])
    need = memory.check_training_memory(sym, data_shape, cfg.batch_size, ctxs,
                                        memory.optimizer_states(cfg.optimizer, cfg.momentum))
    _check_model_dir(cfg.model_dir, need_bytes=need.checkpoint)
    kv = mx.kv.create(kv_name) if kv_name.startswith("dist") else kv_name
    rank, num_workers = (0, 1) if isinstance(kv, str) else (kv.rank, kv.num_workers)
    train_count = manifest.splits["train"].count // num_workers
    if train_count < cfg.batch_size:
        per = " per worker" if num_workers > 1 else ""
        raise TrainError(f"the training split of {manifest.path} has {train_count} images{per}, fewer than "
                         f"--batch-size {cfg.batch_size}: use --batch-size {max(train_count, 1)} or less")
    model_dir = Path(cfg.model_dir) if rank == 0 else Path(cfg.model_dir) / f"rank{rank}"
    created = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    setup = RunSetup(cfg, manifest, sym, aux_logits, ctxs, kv, kv_name, rank, num_workers, model_dir,
                     checkpoint.lock_model_dir(model_dir))
    try:
        return _prepare_locked(setup)
    except BaseException:
        if created:  # this call made the folder and trained nothing in it: leave nothing behind
            shutil.rmtree(model_dir, ignore_errors=True)
        setup.release()
        raise


def _check_model_dir(model_dir: str, need_bytes: int | None = None) -> None:
    """``--model-dir`` is (or can be made) a writable folder with room for one epoch's files."""
    try:
        util.check_output_dir(model_dir, "--model-dir", need_bytes=need_bytes)
    except util.UsageError as e:
        raise TrainError(str(e)) from None


def load_data(data: str, full: bool = False) -> Manifest:
    """The data set's manifest, its files checked before MXNet reads them.

    The quick check (``porting.data.integrity``: sizes, digests, every ``.idx`` offset) by
    default; with ``full`` the SHA-256 of every byte, with a progress bar.

    Raises:
        TrainError: the manifest is missing or malformed, or a file is damaged (naming it and the fix).
    """
    tic = time.perf_counter()
    try:
        manifest = load_manifest(data, verify="none")
        if full:
            total = sum(s.sizes[k] for s in manifest.splits.values() for k in ("lst", "rec", "idx"))
            with progress.bar(total=round(total / 2**20, 1), desc="verify data", unit="MiB") as bar:
                notes = check_files(manifest, "hash", on_bytes=lambda n: bar.update(n / 2**20))
        else:
            notes = check_files(manifest, "quick")
    except ManifestError as e:
        raise TrainError(str(e)) from e
    for note in notes:
        log.warning("%s: %s", manifest.path, note)
    log.info("data %s: %s check passed in %.2f s", manifest.path, "full SHA-256" if full else "quick content",
             time.perf_counter() - tic)
    return manifest


def _prepare_locked(setup: RunSetup) -> Session:
    cfg, model_dir = setup.cfg, setup.model_dir
    util.remove_stale_temps(model_dir)
    batches_per_epoch = math.ceil(setup.manifest.splits["train"].count / (cfg.batch_size * setup.num_workers))
    if cfg.max_batches:
        batches_per_epoch = min(batches_per_epoch, cfg.max_batches)
    metrics_log = MetricsLog(model_dir, title=_title(cfg, setup.manifest, setup.aux_logits))
    record, begin_epoch, num_update = _start_record(setup, batches_per_epoch, metrics_log)

    mx.random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    # Before the first operator starts MXNet's engine and OpenMP threads: they share one
    # malloc arena, so memory one thread frees is reused by the others (memory module doc).
    memory.limit_malloc_arenas()
    # The module trains the network with its residual scales on the weights (same parameters, outputs and
    # gradients; ~1 GB less at 299, batch 8: network.scale_residuals_in_weights) and, where one step at these
    # shapes proves it exact, its batch norms fused with their ReLU (speed: fusion.proven_fusion; not with
    # --mirror, whose recomputation that step does not cover); checkpoints save setup.symbol.
    data_shape, label_shape = (cfg.batch_size, *setup.manifest.data_shape), (cfg.batch_size,)
    train_symbol = scale_residuals_in_weights(setup.symbol)
    if not cfg.mirror:
        train_symbol, proof = fusion.proven_fusion(train_symbol, setup.contexts, data_shape, label_shape)
        log.info(proof.describe())
    mod = mx.mod.Module(train_symbol, data_names=("data",), label_names=(LABEL_NAME,), context=setup.contexts,
                        logger=log)
    with _env("MXNET_BACKWARD_DO_MIRROR", "1" if cfg.mirror else None):
        mod.bind(data_shapes=[("data", data_shape)], label_shapes=[(LABEL_NAME, label_shape)], for_training=True)
    _init_params(mod, setup, record, begin_epoch)
    # Module's host copy of the parameters becomes the executor's own (one CPU device): one
    # copy of the weights less for the whole run (224 MB for the full network).
    memory.share_host_params(mod)

    opt_name, opt_params = optimizer_spec(cfg, batches_per_epoch, num_update)
    # The kvstore only sums gradients; every worker/device applies the update itself.
    with _env("MXNET_UPDATE_ON_KVSTORE", "0"):
        mod.init_optimizer(kvstore=setup.kv, optimizer=opt_name, optimizer_params=opt_params)
    if cfg.resume:
        _load_optimizer_states(mod, setup, record, begin_epoch)
    if setup.distributed:
        # Module stored rank 0's initial parameters in the kvstore; every worker starts from them.
        arg, aux = mod.get_params()
        names = sorted(arg)
        setup.kv.pull(names, out=[arg[n] for n in names])
        aux_names = sorted(aux)
        setup.kv.init([f"aux::{n}" for n in aux_names], [aux[n] for n in aux_names])
        mod.set_params(arg, aux)
    record["num_devices"] = len(setup.contexts)
    return Session(setup, mod, record, metrics_log, batches_per_epoch, begin_epoch, num_update,
                   opt_params["lr_scheduler"], opt_name)


def _start_record(setup: RunSetup, batches_per_epoch: int, metrics_log: MetricsLog) -> tuple[dict, int, int]:
    """``(checkpoint record, complete epochs, updates made)``: the resumed run's, or a new run's.

    Raises:
        TrainError: resuming with other data, another ``--symbol`` network or another number
        of updates per epoch; or a new run in a directory that holds one.
    """
    cfg, manifest, model_dir = setup.cfg, setup.manifest, setup.model_dir
    if cfg.resume:
        record = checkpoint.read_checkpoint(model_dir)
        checkpoint.check_data_copy(manifest, model_dir, record["manifest_sha256"])
        if cfg.symbol:
            checkpoint.check_symbol_unchanged(setup.symbol, cfg.symbol, model_dir, record)
        if record["batches_per_epoch"] != batches_per_epoch:
            raise TrainError(f"this run would make {batches_per_epoch} updates per epoch, the checkpoint made "
                             f"{record['batches_per_epoch']} (another number of workers?); the learning-rate "
                             f"schedule would change, so resume with the original setup")
        begin_epoch, num_update = int(record["epoch"]), int(record["num_update"])
        if "metrics" in record:  # the rows of the committed epochs, whatever the metrics files hold
            metrics_log.restore([row for row in record["metrics"] if int(row["epoch"]) <= begin_epoch])
        else:  # a checkpoint written before the rows were recorded in it
            metrics_log.truncate(begin_epoch)
        return record, begin_epoch, num_update
    name = checkpoint.CHECKPOINT_NAME
    if (model_dir / name).exists():
        raise TrainError(f"{model_dir} already holds a run ({name}); pass --resume to continue it "
                         f"or choose another --model-dir")
    metrics_log.truncate(0)
    record = {
        "format": checkpoint.FORMAT, "prefix": cfg.prefix, "config": cfg.to_json(), "aux_logits": setup.aux_logits,
        "num_classes": manifest.num_classes, "classes": manifest.classes, "data_shape": list(manifest.data_shape),
        "manifest_sha256": checkpoint.copy_data_manifest(manifest, model_dir),
        "manifest_fingerprint": manifest.fingerprint, "batches_per_epoch": batches_per_epoch,
        "num_workers": setup.num_workers, "rank": setup.rank, "epochs": {}, "epoch": 0, "num_update": 0,
        "metrics": [],
    }
    return record, 0, 0


def _init_params(mod, setup: RunSetup, record: dict, begin_epoch: int) -> None:
    """The checkpoint's parameters on resume; else a pretrained or autoport params file; else random."""
    cfg, sym = setup.cfg, setup.symbol
    initializer = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2.0)
    if cfg.resume:
        paths = checkpoint.checkpoint_paths(setup.model_dir, record["prefix"], begin_epoch)
        arg, aux = checkpoint.load_params_file(paths["params"])
        mod.init_params(arg_params=arg, aux_params=aux, allow_missing=False)
    elif cfg.pretrained or start_params(cfg):
        # --pretrained, else autoport's PREFIX-0000.params of --symbol: the same fine-tuning path
        prefix, epoch, option = ((cfg.pretrained, cfg.pretrained_epoch, "--pretrained") if cfg.pretrained
                                 else (cfg.symbol, 0, "--symbol"))
        head = symbol_heads.logits_params(sym) if cfg.symbol else checkpoint.HEAD_PREFIXES
        arg, aux, fresh = checkpoint.load_pretrained(sym, tuple(setup.manifest.data_shape), prefix, epoch,
                                                     head=head, option=option)
        log.info("fine-tuning from %s-%04d.params; new head: %s", prefix, epoch, ", ".join(fresh) or "none")
        mod.init_params(initializer, arg_params=arg, aux_params=aux, allow_missing=True)
    else:
        if cfg.symbol:
            check_random_init(sym, cfg.symbol)
        mod.init_params(initializer)


def _load_optimizer_states(mod, setup: RunSetup, record: dict, begin_epoch: int) -> None:
    """The checkpoint's optimizer states, re-keyed when the number of devices changed."""
    paths = checkpoint.checkpoint_paths(setup.model_dir, record["prefix"], begin_epoch)
    devices = len(setup.contexts)
    blob = checkpoint.remap_states(paths["states"].read_bytes(), int(record.get("num_devices", devices)), devices)
    tmp = util.temp_path(setup.model_dir / "resume-states")  # a killed run's copy is removed as stale
    try:
        tmp.write_bytes(blob)
        mod.load_optimizer_states(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)


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
