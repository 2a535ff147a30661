"""The training run: ``preparation.prepare`` everything up to the first batch, then :func:`run` the epochs.

``train(config)`` is the whole of ``python -m porting.train``. ``porting.training.preparation``
checks the config, the devices, the data and the model directory, locks it and gives a bound
Module with its parameters and optimizer states (a ``Session``); :func:`run` trains epoch
by epoch, logging metrics (``metrics_log``) and committing a checkpoint after each
(:func:`_save`: a failed write is one ``TrainError`` that says what was kept), and
:func:`evaluate` scores the validation split after each epoch. Each epoch shows a progress
bar over its batches and one over evaluation (``porting.progress``: only on a terminal),
besides the Speedometer log lines. A checkpoint is committed by ``checkpoint.json``;
the metrics files are written after it and rebuilt from it on ``--resume``.

In ``dist_sync`` the workers start from rank 0's initial parameters (pulled from the
kvstore) and average their batch-norm moving statistics through the kvstore at the end
of every epoch, so all workers hold identical parameters; rank 0 writes to
``--model-dir``, rank ``r`` to ``--model-dir/rank<r>``. Optimizer states live on the
workers (the kvstore only sums gradients) and are checkpointed like on one machine.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from porting import compat, progress, util
from porting.training.config import TrainConfig, TrainError

mx = compat.import_mx()  # a DMLC server or scheduler process serves here and exits

from porting.data import iterators  # noqa: E402
from porting.training import checkpoint  # noqa: E402
from porting.training.network import make_metric, metric_values  # noqa: E402
from porting.training.preparation import RunSetup, Session, prepare  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME  # noqa: E402

log = logging.getLogger("porting.train")

#: Test hook: ``PORTING_TRAIN_PAUSE_AFTER=N`` makes the first epoch this process trains stop after N
#: batches and sleep, so a test can interrupt it in the middle of an epoch deterministically.
PAUSE_ENV = "PORTING_TRAIN_PAUSE_AFTER"


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


def evaluate(mod, data_iter, metric, max_batches: int | None = None, batches: int | None = None) -> dict[str, float]:
    """Metrics of the module in inference mode over the iterator, padding excluded.

    A batch smaller than the one the module is bound for (a validation split smaller than
    ``--batch-size`` is read in batches of its own size) is padded with zeros up to it;
    the padding never reaches the metric. ``batches`` sizes the progress bar.
    """
    metric.reset()
    data_iter.reset()
    outputs = mod.output_names
    bound = mod.data_shapes[0].shape[0]
    with progress.bar(total=batches, desc="evaluate", unit="batch") as bar:
        for nbatch, batch in enumerate(data_iter):
            if max_batches is not None and nbatch >= max_batches:
                break
            n = batch.data[0].shape[0] - (batch.pad or 0)
            if batch.data[0].shape[0] < bound:
                batch = _padded(batch, bound)
            mod.forward(batch, is_train=False)
            preds = {name: out[:n] for name, out in zip(outputs, mod.get_outputs())}
            metric.update_dict({LABEL_NAME: batch.label[0][:n]}, preds)
            bar.update(1)
    return metric_values(metric)


def _padded(batch, size: int):
    """``batch`` with zero images (and labels) appended up to ``size``; ``pad`` counts them."""
    extra = size - batch.data[0].shape[0]

    def grow(array):
        return mx.nd.concat(array, mx.nd.zeros((extra, *array.shape[1:]), ctx=array.context, dtype=array.dtype),
                            dim=0)

    return mx.io.DataBatch([grow(d) for d in batch.data], [grow(label) for label in batch.label],
                           pad=(batch.pad or 0) + extra)


def _sync_aux(kv, mod, num_workers: int) -> None:
    """Average the batch-norm moving statistics over the workers through the kvstore."""
    arg, aux = mod.get_params()
    names = sorted(aux)
    keys = [f"aux::{n}" for n in names]
    kv.push(keys, [aux[n] for n in names])
    outs = [mx.nd.zeros(aux[n].shape) for n in names]
    kv.pull(keys, out=outs)
    mod.set_params(arg, {n: o / num_workers for n, o in zip(names, outs)})


def run(session: Session) -> TrainResult:
    """Train from ``session.begin_epoch`` to ``cfg.epochs``, checkpointing every epoch; then release the lock."""
    try:
        return _run(session)
    finally:
        session.close()


def _run(session: Session) -> TrainResult:
    s, setup, cfg = session, session.setup, session.cfg
    mod, manifest = s.module, setup.manifest
    first = s.begin_epoch + 1

    def result(last_epoch: int) -> TrainResult:
        return TrainResult(setup.model_dir, cfg.prefix, first, last_epoch, s.metrics_log.rows, setup.aux_logits,
                           setup.rank, setup.num_workers)

    if s.begin_epoch >= cfg.epochs:
        log.info("checkpoint epoch %d already reaches --epochs %d: nothing to do", s.begin_epoch, cfg.epochs)
        return result(s.begin_epoch)
    metric = make_metric(mod.symbol, manifest.num_classes)
    val_metric = make_metric(mod.symbol, manifest.num_classes)
    val_iter, val_batches = None, 0
    if "val" in manifest.splits and manifest.splits["val"].count:
        # ImageRecordIter cannot read a batch larger than its file: a small split is read in smaller
        # batches, which evaluate() pads up to the bound batch size.
        val_batch = min(cfg.batch_size, manifest.splits["val"].count)
        val_batches = math.ceil(manifest.splits["val"].count / val_batch)
        if val_batch < cfg.batch_size:
            log.info("the validation split has %d images, fewer than --batch-size %d: evaluating in batches of %d",
                     manifest.splits["val"].count, cfg.batch_size, val_batch)
        val_iter = iterators.make_split_iterator(manifest, "val", val_batch, train=False,
                                                 preprocess_threads=cfg.preprocess_threads)
    speedometer = mx.callback.Speedometer(cfg.batch_size * setup.num_workers, frequent=cfg.log_every,
                                          auto_reset=False)
    log.info("training %s on %s (%s), rank %d/%d: epochs %d..%d, %d batches of %d per epoch, %s",
             s.metrics_log.title, ", ".join(str(c) for c in setup.contexts), setup.kv_name, setup.rank,
             setup.num_workers, first, cfg.epochs, s.batches_per_epoch, cfg.batch_size, s.optimizer_name)
    record, num_update = s.record, s.num_update
    pause = util.pause_hook(PAUSE_ENV, "porting.train", "batches")
    # MXNet's MKL-DNN average pooling logs a line at the first training forward of each pooling, on
    # its engine thread: the filter stays for the whole loop, so the line meets it wherever it lands.
    with compat.quiet_native_stderr():
        for epoch in range(s.begin_epoch, cfg.epochs):
            tic = time.perf_counter()
            # Per-epoch seeds: the data order and dropout masks of epoch e do not depend on
            # whether the run was resumed before it.
            mx.random.seed(cfg.seed + epoch)
            train_iter = iterators.make_split_iterator(
                manifest, "train", cfg.batch_size, train=True, seed=cfg.seed + epoch,
                preprocess_threads=cfg.preprocess_threads, part_index=setup.rank, num_parts=setup.num_workers)
            metric.reset()
            nbatch = 0
            with progress.bar(total=s.batches_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch") as bar:
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
                    bar.update(1)
                    speedometer(mx.model.BatchEndParam(epoch=epoch + 1, nbatch=nbatch, eval_metric=metric, locals=None))
                    pause(nbatch)
            # MXNet 1.9 updates the batch-norm moving statistics in backward without the engine
            # ordering later reads after those writes (a read right after can see the old
            # values; checked on CPU): wait for them before evaluating or saving.
            mx.nd.waitall()
            if setup.distributed:
                _sync_aux(setup.kv, mod, setup.num_workers)
            train_values = metric_values(metric)
            seconds = time.perf_counter() - tic
            row = {
                "epoch": epoch + 1, "num_update": num_update, "lr": s.scheduler(num_update),
                "train_top1": train_values.get("top1"), "train_top5": train_values.get("top5"),
                "train_ce": train_values.get("ce"), "samples": nbatch * cfg.batch_size, "seconds": round(seconds, 3),
                "samples_per_s": round(nbatch * cfg.batch_size / seconds, 3),
            }
            if val_iter is not None:
                values = evaluate(mod, val_iter, val_metric, batches=val_batches)
                row.update(val_top1=values.get("top1"), val_top5=values.get("top5"), val_ce=values.get("ce"))
            # checkpoint.json first (it also records the row), the metrics files after it: no file
            # claims an epoch whose checkpoint was not saved, and resume rewrites them from the record.
            record["num_update"] = num_update
            record["metrics"] = [r for r in record.get("metrics", []) if int(r["epoch"]) != epoch + 1] + [row]
            record = _save(mod, setup, cfg, epoch + 1, record)
            try:
                s.metrics_log.append(row)
            except OSError as e:
                raise TrainError(f"epoch {epoch + 1} is saved ({setup.model_dir / checkpoint.CHECKPOINT_NAME}), but "
                                 f"writing the metrics failed ({_why(e)}); free some space, then resume with: "
                                 f"{_resume_command(cfg)} (it rewrites the metrics from the checkpoint)") from e
            log.info("epoch %d done in %.1f s: %s", epoch + 1, seconds,
                     ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
    s.record, s.num_update, s.begin_epoch = record, num_update, cfg.epochs
    return result(cfg.epochs)


def _save(mod, setup: RunSetup, cfg: TrainConfig, epoch: int, record: dict) -> dict:
    """Commit the epoch's checkpoint; a failed write is a TrainError that says what was kept."""
    try:
        return checkpoint.save_checkpoint(mod, setup.model_dir, cfg.prefix, epoch, record, cfg.keep_last,
                                          symbol=setup.symbol)  # the network, not the form the module trains
    except (OSError, mx.base.MXNetError) as e:
        kept = int(record.get("epoch", 0))
        then = (f"resume with: {_resume_command(cfg)}" if kept else "re-run the same command")
        raise TrainError(f"saving epoch {epoch} in {setup.model_dir} failed ({_why(e)}); nothing of epoch {epoch} "
                         f"was kept ({checkpoint.CHECKPOINT_NAME} still names "
                         f"{f'epoch {kept}' if kept else 'no epoch'}): free some space, then {then}") from e


def _resume_command(cfg: TrainConfig) -> str:
    return f"python -m porting.train --resume --model-dir {cfg.model_dir}"


def _why(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) according to ``cfg``: :func:`prepare`, then :func:`run`.

    Raises:
        TrainError: bad input or state, one line.
    """
    return run(prepare(cfg))
