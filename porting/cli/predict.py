"""``python -m porting.predict``: top-k predictions and accuracy with the training preprocessing.

Examples:
    python -m porting.predict --model runs/digits/model --epoch 8 a.png b.png --top-k 3
    python -m porting.predict --model runs/digits/model --eval data/digits/val.lst
    python -m porting.predict --model runs/digits/model --eval data/digits/train.lst --allow-train-images
    # a model converted from a slim checkpoint by porting.convert (no checkpoint.json, no manifest):
    python -m porting.predict --model irv2 --size 299 --preprocess inception --labels names.txt a.jpg
    python -m porting.predict --model irv2 --size 299 --preprocess inception --measure-runtime --batch-size 8

Preprocessing (decoder, resize, crop, mean and std) of a model trained by ``porting.train``
comes only from the manifest copy saved with the model. A model written by
``porting.convert`` (``PREFIX-symbol.json`` + ``PREFIX-NNNN.params``) needs it given:
``--size HxW`` and ``--preprocess inception`` (slim's eval preprocessing, pixels scaled
to [-1, 1]) or ``--mean-rgb R,G,B --std-rgb R,G,B`` (optionally ``--resize N``); the
number of classes comes from the symbol, the names from ``--labels FILE``. ``--eval
LIST`` reads an im2rec ``.lst`` (index, label, path); relative paths resolve against
``--root``, else the data set's recorded source folder, else the list's folder. It
refuses to report accuracy when images of the list are in the training split (same
decoded pixels) unless ``--allow-train-images`` is given.

Runtime: ``--runtime mxnet`` (MXNet's Module) or ``--runtime onnxruntime`` (the model
exported to ONNX); both serve the exact inference rewrites (batch norms and residual scales
folded into the convolutions) and give the same scores. Without ``--runtime`` the one
measured faster on this machine is used: ``--measure-runtime`` times both on the model at
``--batch-size`` and records the result beside it (``PREFIX-runtime.json``); without a record
that fits (same network, input size and machine) it is ``mxnet``. The runtime used and why
is stated (stderr; ``runtime`` in ``--json``).

Exit status: 0 done; 2 bad input (a missing or mismatched checkpoint or manifest, missing
preprocessing flags, an image that cannot be decoded or is too large to decode, a refused
evaluation), with ``error:`` lines on stderr (one per bad image, the others still
predicted); 130 after Ctrl-C (nothing is written: run it again).
"""
from __future__ import annotations

import argparse
import json
import sys

from porting import compat  # noqa: F401  (numpy shim before MXNet)
from porting import util
from porting.cli import common


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m porting.predict",
                                description="Predict with a model trained by porting.train, or converted by "
                                            "porting.convert (with its preprocessing given).")
    p.add_argument("--model", required=True, metavar="PREFIX",
                   help="MODEL_DIR/PREFIX of the checkpoint (e.g. runs/digits/model), or the --out PREFIX of "
                        "porting.convert")
    p.add_argument("--epoch", type=int, help="checkpoint epoch (default: the last complete one)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files to classify")
    p.add_argument("--top-k", type=int, default=5, help="how many classes to show / count as top-k (default 5)")
    p.add_argument("--eval", metavar="LIST", help="report accuracy on the images of an im2rec .lst file")
    p.add_argument("--root", help="folder the --eval list's relative paths start from")
    p.add_argument("--allow-train-images", action="store_true",
                   help="evaluate even when some images are in the training split (the result says so)")
    p.add_argument("--manifest", help="check that this data manifest is the one the model was trained on")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--gpus", help="GPU number to run on (default: CPU)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--runtime", choices=["mxnet", "onnxruntime"],
                   help="serve with MXNet or with onnxruntime on the exported model (same scores; default: the one "
                        "--measure-runtime recorded faster on this machine, else mxnet)")
    p.add_argument("--measure-runtime", action="store_true",
                   help="time both runtimes on this model at --batch-size, record the faster beside the model "
                        "(PREFIX-runtime.json) and serve with it")
    g = p.add_argument_group("preprocessing of a converted model (a porting.train model brings its own)")
    g.add_argument("--size", metavar="N|HxW", help="the network input size")
    g.add_argument("--preprocess", choices=["inception", "mean-std"],
                   help="inception: slim's eval preprocessing (central 87.5 %%, bilinear resize, pixels to "
                        "[-1, 1]); mean-std: needs --mean-rgb and --std-rgb")
    g.add_argument("--mean-rgb", metavar="R,G,B", help="per-channel mean subtracted from 0..255 pixels")
    g.add_argument("--std-rgb", metavar="R,G,B", help="per-channel std the result is divided by")
    g.add_argument("--resize", type=int, metavar="N",
                   help="mean-std: shorter side before the center crop (default: the larger side of --size)")
    g.add_argument("--labels", metavar="FILE", help="class names, one per line in class order (default: numbers)")
    common.add_common_arguments(p)
    return p


def _rgb(text: str | None, flag: str, positive: bool = False) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or (positive and min(values) <= 0):
        raise util.UsageError(f"{flag} expects three {'positive ' if positive else ''}numbers R,G,B like "
                              f"{'58.4,57.1,57.4' if positive else '123.7,116.3,103.5'}, got {text!r}")
    return values


def preprocess_options(args):
    """The preprocessing flags, checked for form (what is missing is decided once the model is found)."""
    from porting.serving.model_loading import PreprocessOptions

    size = None
    if args.size is not None:
        try:
            size = util.parse_size(args.size)
        except ValueError as e:
            raise util.UsageError(f"--size {e}") from None
    if args.resize is not None and args.resize < 1:
        raise util.UsageError(f"--resize must be >= 1, got {args.resize}")
    return PreprocessOptions(size=size, preprocess=args.preprocess, mean_rgb=_rgb(args.mean_rgb, "--mean-rgb"),
                             std_rgb=_rgb(args.std_rgb, "--std-rgb", positive=True), resize=args.resize,
                             labels=args.labels)


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(build_parser(), argv)
    if args is None:
        return util.EXIT_USAGE
    return common.run(lambda: _main(args), args, interrupted="nothing is written by predict: run it again")


def _main(args) -> int:
    if not args.images and not args.eval and not args.measure_runtime:
        raise util.UsageError("give IMAGE files, --eval LIST, --measure-runtime, or a combination")
    if args.runtime and args.measure_runtime:
        raise util.UsageError("--runtime and --measure-runtime exclude each other: the measurement chooses the "
                              "runtime")
    if args.top_k < 1:
        raise util.UsageError(f"--top-k must be >= 1, got {args.top_k}")
    if args.batch_size < 1:
        raise util.UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.epoch is not None and args.epoch < 0:
        raise util.UsageError(f"--epoch must be >= 0, got {args.epoch}")
    for flag, value in (("--mean-rgb", args.mean_rgb), ("--std-rgb", args.std_rgb)):
        _rgb(value, flag, positive=flag == "--std-rgb")

    from pathlib import Path

    from porting.serving import prediction
    from porting.serving.model_loading import PredictError, load_model
    from porting.serving import predictor as serving
    from porting.training.config import TrainError
    from porting.training.devices import contexts

    options = preprocess_options(args)
    try:
        ctx = contexts(args.gpus)
        if len(ctx) != 1:
            raise PredictError("--gpus: prediction runs on one device; give one GPU number")
        model = load_model(args.model, args.epoch, args.manifest, options)
        if args.measure_runtime:
            util.check_output_file(serving.runtime_record_path(model), "--measure-runtime")  # before the timing
            print(f"measuring {' and '.join(serving.RUNTIMES)} on {model.prefix} at batch {args.batch_size} ...",
                  file=sys.stderr)
            record = serving.measure_runtimes(model, ctx[0], args.batch_size)
            written = serving.write_runtime_record(model, record)
            shown = ", ".join(f"{name} {value:.2f}" for name, value in sorted(record["images_per_s"].items()))
            print(f"measured at batch {args.batch_size}: {shown} img/s; fastest {record['fastest']} "
                  f"(recorded in {written})", file=sys.stderr if args.json else sys.stdout)
        choice = (serving.RuntimeChoice(args.runtime, "given with --runtime") if args.runtime
                  else serving.choose_runtime(model))
        if not args.images and not args.eval:
            if args.json:
                print(json.dumps({"model": str(model.prefix), "runtime_record": str(written), **record}, indent=2))
            return 0
        predictor = serving.Predictor(model, ctx[0], args.batch_size, runtime=choice.runtime)
    except (PredictError, TrainError) as e:
        raise util.UsageError(str(e)) from e
    print(f"runtime: {choice.runtime} ({choice.reason})", file=sys.stderr)

    status = 0
    report: dict = {"model": str(model.prefix), "epoch": model.epoch,
                    "runtime": {"name": choice.runtime, "reason": choice.reason}}
    if args.images:
        preds, errors = prediction.predict_files(model, predictor, args.images, args.top_k)
        report["predictions"] = [{"path": p.path, "top": p.top, "in_training_split": p.in_training_split}
                                 for p in preds]
        if not args.json:
            for p in preds:
                shown = ", ".join(f"{name} ({score:.3f})" for name, score in p.top)
                print(f"{p.path}: {shown}" + ("  [in the training split]" if p.in_training_split else ""))
        for e in errors:
            common.error(e)
        status = 2 if errors else status

    if args.eval:
        try:
            root = Path(args.root) if args.root else prediction.default_root(model, Path(args.eval))
            items = prediction.read_list(args.eval, root)
            result = prediction.evaluate_list(model, predictor, items, args.top_k, args.allow_train_images)
        except PredictError as e:
            raise util.UsageError(str(e)) from e
        report["eval"] = {"list": args.eval, "count": result.count, "top1": result.top1,
                          f"top{result.k}": result.topk, "cross_entropy": result.cross_entropy,
                          "in_training_split": result.in_training_split, "errors": result.errors}
        if not args.json:
            print(f"{args.eval}: {result.count} images, top-1 {result.top1:.4f}, top-{result.k} {result.topk:.4f}, "
                  f"cross-entropy {result.cross_entropy:.4f} ({model.prefix}, epoch {model.epoch})")
            if result.in_training_split:
                print(f"note: {result.in_training_split} of these images are in the training split "
                      f"(--allow-train-images); this accuracy is not a held-out estimate")
        for e in result.errors:
            common.error(e)
        status = 2 if result.errors else status

    if args.json:
        print(json.dumps(report, indent=2))
    return status
