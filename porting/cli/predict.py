"""``python -m porting.predict``: top-k predictions and accuracy with the training preprocessing.

Examples:
    python -m porting.predict --model runs/digits/model --epoch 8 a.png b.png --top-k 3
    python -m porting.predict --model runs/digits/model --eval data/digits/val.lst
    python -m porting.predict --model runs/digits/model --eval data/digits/train.lst --allow-train-images

Preprocessing (decoder, resize, crop, mean and std) comes only from the manifest copy
saved with the model. ``--eval LIST`` reads an im2rec ``.lst`` (index, label, path);
relative paths resolve against ``--root``, else the data set's recorded source folder,
else the list's folder. It refuses to report accuracy when images of the list are in
the training split (same decoded pixels) unless ``--allow-train-images`` is given.

Exit status: 0 done; 2 bad input (a missing or mismatched checkpoint or manifest, an
image that cannot be decoded, a refused evaluation), with ``error:`` lines on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys

from porting import compat  # noqa: F401  (numpy shim before MXNet)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m porting.predict",
                                description="Predict with a model trained by porting.train.")
    p.add_argument("--model", required=True, metavar="PREFIX", help="MODEL_DIR/PREFIX of the checkpoint (e.g. runs/digits/model)")
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
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.images and not args.eval:
        parser.error("give IMAGE files, --eval LIST, or both")
    if args.top_k < 1 or args.batch_size < 1:
        parser.error("--top-k and --batch-size must be >= 1")

    from pathlib import Path

    from porting.serving import prediction
    from porting.training.config import TrainError
    from porting.training.devices import contexts

    try:
        ctx = contexts(args.gpus)
        if len(ctx) != 1:
            raise prediction.PredictError("--gpus: prediction runs on one device; give one GPU number")
        model = prediction.load_model(args.model, args.epoch, args.manifest)
        predictor = prediction.Predictor(model, ctx[0], args.batch_size)
    except (prediction.PredictError, TrainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    status = 0
    report: dict = {"model": str(model.prefix), "epoch": model.epoch}
    if args.images:
        preds, errors = prediction.predict_files(model, predictor, args.images, args.top_k)
        report["predictions"] = [{"path": p.path, "top": p.top, "in_training_split": p.in_training_split}
                                 for p in preds]
        if not args.json:
            for p in preds:
                shown = ", ".join(f"{name} ({score:.3f})" for name, score in p.top)
                print(f"{p.path}: {shown}" + ("  [in the training split]" if p.in_training_split else ""))
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        status = 2 if errors else status

    if args.eval:
        try:
            root = Path(args.root) if args.root else prediction.default_root(model, Path(args.eval))
            items = prediction.read_list(args.eval, root)
            result = prediction.evaluate_list(model, predictor, items, args.top_k, args.allow_train_images)
        except prediction.PredictError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
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
            print(f"error: {e}", file=sys.stderr)
        status = 2 if result.errors else status

    if args.json:
        print(json.dumps(report, indent=2))
    return status

