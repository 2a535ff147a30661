"""``python -m porting.autoport``: translate a TF network to MXNet, then prove the translation.

Examples:
    python -m porting.autoport --slim-net inception_v3 --out models/inception_v3
    python -m porting.autoport --tf nets/mynet.py:build --size 224 --classes 10 --out models/mynet
    python -m porting.autoport --slim-net resnet_v1_50 --checkpoint ckpt/resnet_v1_50.ckpt --out models/r50
    python -m porting.autoport --list-ops > docs/supported_ops.md

Writes PREFIX-symbol.json, PREFIX-0000.params, PREFIX-report.md and PREFIX-report.json.
Exit status: 0 translated and verified (shapes, lint, numeric parity); 1 verification
failed or some ops cannot be translated (all listed at once); 2 bad usage or input.
"""
from __future__ import annotations

import argparse
import sys

from porting import compat  # noqa: F401  (shims before any framework import)
from porting import util
from porting.autoport.errors import CheckpointError
from porting.cli import common
from porting.frameworks.errors import BuilderError, SymbolError
from porting.util import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from porting.verifier import arguments

#: Bad input besides ``UsageError``: a builder that raised or broke its contract, a translated
#: symbol whose shapes do not infer, a checkpoint that does not fit the graph.
INPUT_ERRORS = (BuilderError, SymbolError, CheckpointError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m porting.autoport",
        description="Translate a TF (tf.slim) graph into an MXNet symbol and parameters, then verify the "
                    "result layer by layer: shapes, lint and numeric parity.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--slim-net", metavar="NAME", help="a network of the zoo table (see --list-nets)")
    source.add_argument("--tf", metavar="FILE:FUNCTION",
                        help="TF builder fn(images, num_classes[, is_training]) -> (logits, end_points)")
    parser.add_argument("--checkpoint", metavar="CKPT", help="TF checkpoint with the weights "
                        "(default: seeded random weights, which prove the translation, not a model)")
    parser.add_argument("--out", metavar="PREFIX", help="output prefix: PREFIX-symbol.json, PREFIX-0000.params, "
                        "PREFIX-report.md, PREFIX-report.json")
    parser.add_argument("--size", help="input size N or HxW (default: the network's, else 299)")
    parser.add_argument("--classes", type=int, help="number of classes (default: the network's, else 1001)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and input (default 0)")
    parser.add_argument("--rtol", type=float, help="numeric parity rtol (default porting.verifier.parity's 1e-4)")
    parser.add_argument("--atol", type=float, help="numeric parity atol (default: porting.verifier.parity's, "
                        "proportional to each layer's range)")
    parser.add_argument("--no-training-hints", action="store_true",
                        help="do not build the training graph that shows dropout rates and batch-norm decays")
    parser.add_argument("--list-ops", action="store_true", help="print the supported TF ops (Markdown) and exit")
    parser.add_argument("--list-nets", action="store_true", help="print the zoo table and exit")
    common.add_common_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(_parser(), argv)
    if args is None:
        return EXIT_USAGE
    if args.list_ops:
        from porting.autoport import registry

        sys.stdout.write(registry.render_markdown())
        return EXIT_OK
    from porting.autoport import zoo

    if args.list_nets:
        for net in zoo.ZOO.values():
            print(f"{net.name:30s} {net.size[0]}x{net.size[1]}  {net.classes:5d} classes  "
                  f"{net.skip or net.note}")
        return EXIT_OK
    return common.run(lambda: _main(args), args, errors=INPUT_ERRORS,
                      interrupted="run the same command again")


def _validate(args):
    """Every argument check that needs no framework; returns (zoo entry or None, size, classes, rtol, atol)."""
    from porting.autoport import zoo
    from porting.autoport.files import output_paths

    if not (args.slim_net or args.tf):
        raise UsageError("give --slim-net NAME or --tf FILE:FUNCTION (see --list-nets)")
    if not args.out:
        raise UsageError("--out PREFIX is required")
    arguments.classes(args.classes)
    rtol, atol = arguments.tolerance(args.rtol, "--rtol"), arguments.tolerance(args.atol, "--atol")
    net = None
    if args.slim_net:
        try:
            net = zoo.get(args.slim_net)
        except zoo.UnknownNet as error:
            raise UsageError(str(error)) from None
        if net.skip:
            raise UsageError(f"{net.name} cannot run here: {net.skip}")
        size = arguments.size(args.size) if args.size else net.size
        classes = args.classes or net.classes
        rtol = rtol if rtol is not None else net.rtol
        atol = atol if atol is not None else net.atol
    else:
        arguments.builder(args.tf, "tf")
        size = arguments.size(args.size) if args.size else (299, 299)
        classes = args.classes or 1001
    arguments.input_fits(1, size)
    if args.checkpoint:
        arguments.checkpoint(args.checkpoint, "--checkpoint")
    for path in output_paths(args.out).values():
        util.check_output_file(path, "--out")
    return net, size, classes, rtol, atol


def _main(args) -> int:
    net, size, classes, rtol, atol = _validate(args)
    from porting.autoport import zoo
    from porting.frameworks.models import load_builder

    if net is not None:
        builder, name = zoo.builder(net), net.name
    else:
        builder = load_builder(args.tf, "tf")
        name = getattr(builder, "__name__", "network")
    from porting.autoport.pipeline import autoport, write_outputs, write_unsupported
    from porting.autoport.translate import UnsupportedOps

    try:
        outcome = autoport(builder, size=size, classes=classes, name=name, checkpoint=args.checkpoint,
                           seed=args.seed, rtol=rtol, atol=atol, hints=not args.no_training_hints)
    except UnsupportedOps as error:  # the full list and a report, exit 1 (not a usage error)
        paths = write_unsupported(error, args.out, name)
        print(error.describe(), file=sys.stderr)
        print(f"wrote {paths['report_md']}", file=sys.stderr)
        return EXIT_FAILED
    paths = write_outputs(outcome, args.out)
    print(outcome.verdict_line())
    print(f"wrote {paths['symbol']}, {paths['params']}, {paths['report_md']}, {paths['report_json']}")
    return EXIT_OK if outcome else EXIT_FAILED
