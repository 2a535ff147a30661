"""``python -m porting.compare``: verify a TF/MXNet pair layer by layer and print the report.

Argument parsing, one call of ``porting.verifier.api.verify``, the rendering asked for,
and the exit code: 0 the port matches, 1 it does not, 2 bad usage or input
(``porting.util.EXIT_*``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from porting import compat  # noqa: F401  (shims before any framework import)
from porting import util
from porting.cli import common
from porting.frameworks.errors import BuilderError, SymbolError
from porting.frameworks.models import MODELS, available
from porting.verifier import arguments
from porting.verifier.api import FORMATS, CompareResult, verify
from porting.verifier.parity.numeric import ParityError

#: The command's own bad-input errors besides ``UsageError``: a builder that raised or broke its
#: contract, a symbol whose shapes do not infer, numeric parity that could not run.
INPUT_ERRORS = (BuilderError, SymbolError, ParityError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m porting.compare",
        description="Prove a TF (tf.slim) network and its MXNet port are the same network, layer by layer.")
    parser.add_argument("model", nargs="?", help=f"registered pair (default inception_resnet_v2): {available()}")
    parser.add_argument("--tf", help="TF builder path/to/file.py:function, "
                                     "fn(images, num_classes) -> (logits, end_points); or a model file: checkpoint "
                                     "PREFIX with its .meta, frozen .pb, SavedModel directory, Keras .h5 / .keras")
    parser.add_argument("--tf-input", metavar="NAME",
                        help="model file: the input placeholder (default: its one float rank-4 placeholder)")
    parser.add_argument("--tf-output", metavar="NAME",
                        help="model file: the logits op (default: the one rank-2 output; a softmax's input)")
    parser.add_argument("--trust-keras-code", action="store_true",
                        help="let a Keras file's Lambda layers run their saved Python code (refused by default)")
    parser.add_argument("--keras-objects", metavar="FILE.py",
                        help="Python file defining the custom Keras layers a Keras file uses (it is imported)")
    parser.add_argument("--mx", help="MX builder path/to/file.py:function, fn(num_classes) -> Symbol with input 'data' "
                                     "(or a Gluon HybridBlock); or an MXNet model file: PREFIX-symbol.json, model.onnx")
    parser.add_argument("--mx-params", metavar="FILE",
                        help="PREFIX-EPOCH.params of a --mx PREFIX-symbol.json (default: the newest epoch beside it)")
    parser.add_argument("--size", help="input size N or HxW (default: the model's, else 299)")
    parser.add_argument("--classes", type=int, help="number of classes (default: the model's, else 1001)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--format", default="text", choices=FORMATS, help="text, markdown or json (default text)")
    parser.add_argument("--only-problems", action="store_true", help="show only rows that do not match")
    parser.add_argument("--end-points", action="store_true",
                        help="coarse view: end points only (in JSON: 'end_points' instead of 'rows')")
    parser.add_argument("--bug-reports", metavar="DIR", help="write one Markdown bug report per defect into DIR")
    parser.add_argument("--out", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    parser.add_argument("--no-lint", action="store_true", help="skip the semantic lint pass")
    parser.add_argument("--lint-only", action="store_true",
                        help="print only the lint findings; exit 1 if any is an error (see porting.verifier.lint)")
    parser.add_argument("--list", action="store_true", help="list the registered models and exit")
    parser.add_argument("--numeric", action="store_true",
                        help="also compare every layer's output (inference mode): each side with its own weights "
                             "when both carry them (--weights and an MXNet file), else TF's transferred into MXNet")
    parser.add_argument("--weights", metavar="CKPT",
                        help="TF checkpoint for --numeric (default: seeded random weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and the input (default 0)")
    parser.add_argument("--rtol", type=float,
                        help="numeric relative tolerance (default porting.verifier.parity.DEFAULT_RTOL)")
    parser.add_argument("--atol", type=float,
                        help="numeric absolute tolerance (default: 3e-5 x each layer's max |output|, at least 1)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--no-cache", action="store_true",
                       help="build both sides; neither read nor write the reference cache ($PORTING_CACHE)")
    cache.add_argument("--refresh-cache", action="store_true",
                       help="build both sides and rewrite their reference cache entries")
    common.add_common_arguments(parser)
    return parser


def _validate(args) -> None:
    """Every argument check that needs no framework, before anything is built (``verify`` repeats
    them with the same messages for its Python callers)."""
    arguments.sides(args.model, args.tf, args.mx)
    arguments.tf_file_options(args.tf, args.tf_input, args.tf_output, args.trust_keras_code, args.keras_objects,
                              args.weights)
    arguments.classes(args.classes)
    batch = arguments.positive_int(args.batch, "--batch")
    if args.lint_only and args.no_lint:
        raise util.UsageError("--lint-only and --no-lint exclude each other")
    for flag, value in (("--rtol", args.rtol), ("--atol", args.atol)):
        arguments.tolerance(value, flag)
    if args.weights:
        arguments.checkpoint(args.weights)
    arguments.mx_params(args.mx_params, args.mx)
    if args.size is not None:
        arguments.input_fits(batch, arguments.size(args.size))
    if args.out:
        util.check_output_file(args.out, "--out")
    if args.bug_reports:
        util.check_output_dir(args.bug_reports, "--bug-reports")


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(_parser(), argv)
    if args is None:
        return util.EXIT_USAGE
    if args.list:
        for spec in MODELS.values():
            print(f"{spec.name:32s} {spec.size[0]}x{spec.size[1]}  {spec.description}")
        return util.EXIT_OK
    return common.run(lambda: _main(args), args, errors=INPUT_ERRORS,
                      interrupted="run the same command again")


def _main(args) -> int:
    _validate(args)
    result = verify(args.model, tf=args.tf, mx=args.mx, size=args.size, classes=args.classes, batch=args.batch,
                    lint=not args.no_lint, numeric=args.numeric or bool(args.weights), weights=args.weights,
                    seed=args.seed, rtol=args.rtol, atol=args.atol, tf_input=args.tf_input,
                    tf_output=args.tf_output, trust_keras_code=args.trust_keras_code,
                    keras_objects=args.keras_objects, mx_params=args.mx_params,
                    cache="off" if args.no_cache else "refresh" if args.refresh_cache else "on")
    if result.reference_cache.startswith(("corrupt", "stale", "miss (unreadable")) \
            or any(what in result.reference_cache for what in ("could not be written", "MX side corrupt",
                                                               "MX side miss (unreadable")):
        print(f"note: reference cache: {result.reference_cache}", file=sys.stderr)
    if args.lint_only:
        return _lint_only(result, args)
    from porting.verifier import render

    _emit(result.report(args.format, args.only_problems, args.end_points), args.out, result.verdict_line())
    if args.bug_reports:
        _announce(render.write_bug_reports(result, Path(args.bug_reports)), args.bug_reports)
    return util.EXIT_OK if result else util.EXIT_FAILED


def _lint_only(result: CompareResult, args) -> int:
    """--lint-only: the shape rows were computed (the lint needs the pairs), only the findings are shown."""
    from porting.verifier import lint

    _emit(lint.render_lint_only(result, args.format), args.out, lint.summary_line(result.findings))
    if args.bug_reports:
        _announce(lint.write_bug_reports(result, Path(args.bug_reports)), args.bug_reports)
    return util.EXIT_FAILED if lint.counts(result.findings)["error"] else util.EXIT_OK


def _emit(text: str, out: str | None, verdict: str) -> None:
    """The report on stdout, or into ``out`` (atomically) with the verdict line on stdout."""
    if out:
        util.atomic_write_text(out, text, parents=True)
        print(verdict)
    else:
        sys.stdout.write(text)


def _announce(written: list[Path], directory: str) -> None:
    print(f"wrote {len(written)} bug report{'s' if len(written) != 1 else ''} to {directory}", file=sys.stderr)
