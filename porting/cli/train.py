"""``python -m porting.train``: train Inception-ResNet-v2 (the verified MXNet port), or a network
translated by ``python -m porting.autoport`` (``--symbol PREFIX``), on a data set.

Examples:
    # the embedded digits, reduced network, slim's SAME-padded stem (32x32 input):
    python -m porting.data --layout digits --out data/digits
    python -m porting.train --data data/digits --model-dir runs/digits --repeats 1,1,1 \\
        --align-feature-maps --optimizer sgd --lr 0.05 --bn-momentum 0.9 --epochs 8
    # continue after an interruption (same options; --epochs may grow):
    python -m porting.train --model-dir runs/digits --resume --epochs 12
    # two GPUs, fine-tuning a converted slim checkpoint with a new 17-class head:
    python -m porting.train --data data/ox17 --model-dir runs/ox17 --gpus 0,1 \\
        --pretrained models/irv2 --pretrained-epoch 0
    # a network translated by autoport (PREFIX-symbol.json, started from PREFIX-0000.params):
    python -m porting.autoport --tf nets/mynet.py:build --size 32 --classes 10 --out models/mynet
    python -m porting.train --symbol models/mynet --data data/digits --model-dir runs/mynet --epochs 4

Distributed (MXNet's parameter server; the same command in every process, the role
comes from the environment): see README, "Training on several machines".

Before anything is written: the options, ``--model-dir`` (a writable folder with room for
a checkpoint), the data set's files (sizes, content hashes, every ``.idx`` offset; every
byte with ``--verify-data``), a training split at least one batch large and the memory
the run needs. A progress bar per epoch and one over evaluation, on a terminal only
(``--no-progress`` turns them off), besides the log lines.

Exit status: 0 done, 2 bad input or state (one ``error:`` line on stderr; the traceback
only with ``--debug``), 130 after Ctrl-C (the epoch in progress is not saved; resume with
``python -m porting.train --resume --model-dir DIR``).
"""
from __future__ import annotations

import argparse
import logging
import sys

from porting import compat
from porting import progress, util
from porting.cli import common
from porting.util import UsageError


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: only the options actually given appear, so --resume can tell them apart.
    p = argparse.ArgumentParser(prog="python -m porting.train", argument_default=argparse.SUPPRESS,
                                description="Train the MXNet Inception-ResNet-v2, or a network translated by "
                                            "porting.autoport (--symbol), on a porting.data data set.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Defaults follow slim's train_image_classifier.py: RMSProp (decay 0.9, "
                                       "momentum 0.9, epsilon 1.0), lr 0.01 x 0.94 every 2 epochs, wd 4e-5 on "
                                       "weights only, batch-norm momentum 0.9997.")
    g = p.add_argument_group("data and output")
    g.add_argument("--data", help="data set directory (or its manifest.json) from `python -m porting.data`")
    g.add_argument("--model-dir", required=True, help="where checkpoints, metrics and the curve go")
    g.add_argument("--prefix", help="checkpoint file prefix inside --model-dir (default model)")
    g.add_argument("--resume", action="store_true", help="continue the run in --model-dir from its last complete epoch")
    g.add_argument("--keep-last", type=int, metavar="K",
                   help="keep the params/states of the K latest epochs only (default 0: keep all)")
    g.add_argument("--verify-data", action="store_true",
                   help="check the SHA-256 of every data file before training (default: sizes, the content hash "
                        "of files up to 256 MiB and sampled chunks of larger ones, and every .idx offset)")
    g = p.add_argument_group("network")
    g.add_argument("--symbol", metavar="PREFIX",
                   help="train the network `python -m porting.autoport --out PREFIX` translated: PREFIX-symbol.json "
                        "with the hand port's training heads, started from PREFIX-0000.params when present (new "
                        "logits layers when the number of classes differs); --repeats, --align-feature-maps, "
                        "--aux-logits and --dropout-keep-prob do not apply")
    # Presets are resolved in main(), after MXNet loads (mx_impl's REPEAT_PRESETS): --help stays fast.
    g.add_argument("--repeats", metavar="NAME|A,B,C",
                   help="residual blocks per stage (block35, block17, block8): a preset, full (10,20,9, "
                        "default), reduced (1,1,1) or small (2,2,2), or three counts A,B,C")
    g.add_argument("--align-feature-maps", action=argparse.BooleanOptionalAction,
                   help="slim's SAME-padded stem: allows inputs smaller than 75x75 (default off, as slim)")
    g.add_argument("--aux-logits", action=argparse.BooleanOptionalAction,
                   help="auxiliary head and its 0.4-weighted loss (default: on when the input is large enough)")
    g.add_argument("--dropout-keep-prob", type=float, help="slim's keep probability before the logits (default 0.8)")
    g.add_argument("--label-smoothing", type=float, help="TF's label smoothing (default 0)")
    g.add_argument("--bn-momentum", type=float,
                   help="batch-norm moving-average momentum (default: the network's, slim's 0.9997, or the "
                        "translated TF decay with --symbol; 0.9 for short runs)")
    g.add_argument("--pretrained", metavar="PREFIX",
                   help="start from PREFIX-NNNN.params (a converted slim checkpoint); the head is replaced "
                        "when the number of classes differs")
    g.add_argument("--pretrained-epoch", type=int, metavar="N", help="NNNN of --pretrained (default 0)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="train until this many epochs are complete (default 10)")
    g.add_argument("--batch-size", type=int, help="images per batch per worker, over all devices (default 32)")
    g.add_argument("--max-batches", type=int, help="batches per epoch at most (default: one pass over the data)")
    g.add_argument("--optimizer", choices=["rmsprop", "sgd"], help="rmsprop: TF1/slim RMSProp (default); sgd: with momentum")
    g.add_argument("--lr", type=float, help="initial learning rate (default 0.01)")
    g.add_argument("--lr-decay", type=float, help="multiply the lr by this ... (default 0.94)")
    g.add_argument("--lr-decay-epochs", type=float, help="... every this many epochs, staircase (default 2)")
    g.add_argument("--momentum", type=float, help="momentum of rmsprop or sgd (default 0.9)")
    g.add_argument("--rmsprop-decay", type=float, help="RMSProp decay of the squared-gradient mean (default 0.9)")
    g.add_argument("--rmsprop-epsilon", type=float, help="RMSProp epsilon, inside the sqrt as TF1 (default 1.0)")
    g.add_argument("--wd", type=float, help="weight decay on weights only (default 4e-5)")
    g.add_argument("--seed", type=int, help="initialisation and shuffle seed (default 0)")
    g = p.add_argument_group("devices")
    g.add_argument("--gpus", help="GPU numbers, e.g. 0 or 0,1 (default: CPU)")
    g.add_argument("--kv-store", choices=["local", "device", "dist_sync", "dist_device_sync"],
                   help="gradient aggregation (default: device with several GPUs, else local); dist_*: "
                        "MXNet's parameter server, started with the DMLC_* environment variables")
    g.add_argument("--mirror", action="store_true",
                   help="MXNET_BACKWARD_DO_MIRROR=1: recompute cheap activations in backward to save memory")
    g.add_argument("--preprocess-threads", type=int, help="decoding threads of the record iterator (default 2)")
    g.add_argument("--log-every", type=int, help="speedometer line every N batches (default 20)")
    common.add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parsed = common.parse_args(parser, argv)
    if parsed is None:
        return util.EXIT_USAGE
    explicit = vars(parsed)
    args = argparse.Namespace(debug=explicit.pop("debug", False), no_progress=explicit.pop("no_progress", False))
    model_dir = explicit["model_dir"]
    return common.run(lambda: _main(parser, explicit), args,
                      interrupted=f"the epoch in progress was not saved; resume with: python -m porting.train "
                                  f"--resume --model-dir {model_dir} (or re-run the same command if no epoch "
                                  f"had completed)")


class _StderrHandler(logging.StreamHandler):
    """Log lines to whatever ``sys.stderr`` is when a line is written (a test's capture, or the terminal).

    ``logging.basicConfig(stream=sys.stderr)`` would keep the stream of the first call: in a
    process that runs the command twice (tests), later lines would go to a closed stream.
    """

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property always answers sys.stderr
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if not progress.enabled():
            super().emit(record)
            return
        try:  # above the running bar, which tqdm redraws below the line
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001  (logging's own contract: never raise from emit)
            self.handleError(record)


def _log_to_stderr() -> None:
    """INFO lines (ours and MXNet's Speedometer, which logs on the root logger) on stderr, once per process."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def _main(parser: argparse.ArgumentParser, explicit: dict) -> int:
    _log_to_stderr()
    compat.import_mx(training=True)  # first: the trainer's thread settings apply only before MXNet loads
    # Imports MXNet: a DMLC server or scheduler runs inside this import.
    from porting.training.checkpoint import saved_config
    from porting.training.config import TrainConfig, TrainError, repeat_counts, resolve_resume, symbol_option_conflict
    from porting.training.loop import train

    if "repeats" in explicit:
        try:
            explicit["repeats"] = repeat_counts(explicit["repeats"])
        except ValueError as e:
            raise util.UsageError(f"argument --repeats: {e}") from None
    resume = explicit.pop("resume", False)
    try:
        if resume:
            cfg = resolve_resume(explicit, saved_config(explicit["model_dir"]))
        else:
            if "data" not in explicit:
                raise TrainError("--data is required (except with --resume)")
            cfg = TrainConfig(**explicit)
        conflict = symbol_option_conflict(explicit) if cfg.symbol else None
        if conflict:
            raise TrainError(conflict)
        result = train(cfg)
    except TrainError as e:  # the training package's one error type: one line, exit 2
        raise UsageError(str(e)) from e
    last = result.rows[-1] if result.rows else {}
    summary = ", ".join(f"{k} {last[k]:.4f}" for k in ("train_ce", "val_top1", "val_top5") if last.get(k) is not None)
    print(f"{result.model_dir}/{result.prefix}: epoch {result.last_epoch} complete"
          + (f" ({summary})" if summary else "")
          + f"; metrics {result.model_dir}/metrics.csv, curve {result.model_dir}/curve.png")
    return 0

