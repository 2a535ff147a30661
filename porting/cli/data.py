"""``python -m porting.data``: images → shuffled, stratified RecordIO data set + manifest.

Examples:
    python -m porting.data --layout digits --out data/digits
    python -m porting.data --layout folders --src photos/ --out data/photos --val 0.1 --test 0.1
    python -m porting.data --layout oxford102 --src 102flowers/ --out data/ox102 --official-split
    python -m porting.data --layout oxford17 --src 17flowers/ --out data/ox17 --resize 320 --crop 299x299

Exit status: 0 done (or already up to date), 2 bad input (one ``error:`` line on stderr; the
traceback only with ``--debug``), 130 after Ctrl-C (nothing half-written: re-run the same
command, finished work is kept).
"""
from __future__ import annotations

import argparse

from porting import compat  # noqa: F401  (numpy shim before MXNet)
from porting import util
from porting.cli import common


def _hxw(text: str) -> tuple[int, int]:
    from porting.util import parse_hxw

    try:
        return parse_hxw(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m porting.data",
        description="Build a RecordIO data set (lists, .rec/.idx, mean image, manifest.json) for training.",
    )
    p.add_argument("--layout", required=True, choices=["folders", "oxford17", "oxford102", "digits"],
                   help="folders: SRC/<class>/<image>; oxford17: SRC/jpg/image_0001.jpg..., 80 per class; "
                        "oxford102: SRC/jpg + imagelabels.mat (+ setid.mat); digits: scikit-learn's bundled "
                        "handwritten digits, written out as PNG class folders (no download)")
    p.add_argument("--src", help="source directory (digits: where the PNGs are written; default OUT/digits_src)")
    p.add_argument("--out", required=True, help="output directory (created; must hold nothing else)")
    p.add_argument("--val", type=float, default=None, help="validation fraction per class (default 0.1)")
    p.add_argument("--test", type=float, default=None, help="test fraction per class (default 0)")
    p.add_argument("--seed", type=int, default=0, help="split and shuffle seed, recorded in the manifest (default 0)")
    p.add_argument("--official-split", action="store_true", help="oxford102: use setid.mat's train/val/test")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--resize", type=_positive, metavar="N",
                      help="shorter side to N pixels, aspect kept (default 256; digits 36)")
    size.add_argument("--size", type=_hxw, metavar="HxW", help="every image to exactly HxW")
    p.add_argument("--crop", type=_hxw, metavar="HxW",
                   help="network input size and mean-image size (default 224x224, digits 32x32; "
                        "with --resize/--size: the whole resized image)")
    p.add_argument("--encoding", choices=["jpg", "png"], help="record encoding (default jpg; digits png)")
    p.add_argument("--quality", type=int, help="JPEG quality 1-100 (default 95) or PNG compression 0-9 (default 3)")
    p.add_argument("--normalize", choices=["image", "channel"], default="image",
                   help="subtract the mean image (default) or the per-channel mean; both divide by the per-channel std")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal mirror in training (recorded in the manifest; default on, off for digits)")
    p.add_argument("--force", action="store_true",
                   help="replace a different data set in --out, or the same one split differently "
                        "(another --val, --test, --seed or --official-split)")
    common.add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(build_parser(), argv)
    if args is None:
        return util.EXIT_USAGE
    from porting.data.sources import DataError

    return common.run(lambda: _main(args), args, errors=(DataError,),
                      interrupted="re-run the same command: finished work is kept")


def _main(args) -> int:
    from pathlib import Path

    from porting.data.build import build
    from porting.data.build_config import BuildConfig
    from porting.data.imageproc import ResizeSpec

    resize = None
    if args.resize is not None:
        resize = ResizeSpec("shorter", shorter=args.resize)
    elif args.size is not None:
        resize = ResizeSpec("exact", height=args.size[0], width=args.size[1])
    config = BuildConfig(
        layout=args.layout, out=Path(args.out), src=Path(args.src) if args.src else None, val=args.val,
        test=args.test, seed=args.seed, resize=resize, crop=args.crop,
        encoding=f".{args.encoding}" if args.encoding else None, quality=args.quality,
        normalize=args.normalize, mirror=args.mirror, official_split=args.official_split,
        force=args.force, progress=not args.no_progress,
    )
    result = build(config)
    m = result.manifest
    path = result.manifest_path
    if result.status == "up-to-date":
        print(f"up to date: {path} (same arguments, unchanged sources; nothing written)")
        return 0
    splits = " / ".join(f"{s} {v['count']}" for s, v in m["splits"].items())
    norm, img = m["normalization"], m["image"]
    print(f"wrote {path}: {m['num_classes']} classes, {splits} (seed {m['seed']})")
    print(f"  images: {ResizeSpec.from_json(img['resize']).describe()}, crop {img['data_shape'][1]}x{img['data_shape'][2]}, "
          f"{img['colour_order']}, {img['encoding'][1:]} q{img['quality']}")
    print("  mean RGB " + ", ".join(f"{v:.2f}" for v in norm["mean_rgb"])
          + "; std RGB " + ", ".join(f"{v:.2f}" for v in norm["std_rgb"])
          + f"; mean image {norm['mean_img']} {tuple(norm['mean_img_shape'])} (train only)")
    print(f"  skipped {len(m['skipped'])} file(s), dropped {len(m['duplicates'])} duplicate(s); {result.seconds:.1f} s")
    return 0

