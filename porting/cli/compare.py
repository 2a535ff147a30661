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
from porting.frameworks.models import MODELS, available
from porting.verifier.api import FORMATS, CompareResult, verify

#: Bad usage or input (``porting.util.UsageError``; the model registry and ``verify`` raise it too).
USAGE_ERRORS = (util.UsageError,)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m porting.compare",
        description="Prove a TF (tf.slim) network and its MXNet port are the same network, layer by layer.")
    parser.add_argument("model", nargs="?", help=f"registered pair (default inception_resnet_v2): {available()}")
    parser.add_argument("--tf", help="TF builder path/to/file.py:function, "
                                     "fn(images, num_classes) -> (logits, end_points)")
    parser.add_argument("--mx", help="MX builder path/to/file.py:function, fn(num_classes) -> Symbol with input 'data'")
    parser.add_argument("--size", help="input size N or HxW (default: the model's, else 299)")
    parser.add_argument("--classes", type=int, help="number of classes (default: the model's, else 1001)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--format", default="text", help="text, markdown or json (default text)")
    parser.add_argument("--only-problems", action="store_true", help="show only rows that do not match")
    parser.add_argument("--end-points", action="store_true", help="coarse view: end points only")
    parser.add_argument("--bug-reports", metavar="DIR", help="write one Markdown bug report per defect into DIR")
    parser.add_argument("--out", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    parser.add_argument("--no-lint", action="store_true", help="skip the semantic lint pass")
    parser.add_argument("--lint-only", action="store_true",
                        help="print only the lint findings; exit 1 if any is an error (see porting.verifier.lint)")
    parser.add_argument("--list", action="store_true", help="list the registered models and exit")
    parser.add_argument("--numeric", action="store_true",
                        help="also transfer weights and compare every layer's output (inference mode)")
    parser.add_argument("--weights", metavar="CKPT",
                        help="TF checkpoint for --numeric (default: seeded random weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and the input (default 0)")
    parser.add_argument("--rtol", type=float,
                        help="numeric relative tolerance (default porting.verifier.parity.DEFAULT_RTOL)")
    parser.add_argument("--atol", type=float,
                        help="numeric absolute tolerance (default: 3e-5 x each layer's max |output|, at least 1)")
    return parser


def _checkpoint_exists(path: str) -> bool:
    """A TF checkpoint prefix (PREFIX.index) or a directory with a 'checkpoint' state file."""
    target = Path(path)
    return Path(f"{path}.index").is_file() or (target.is_dir() and (target / "checkpoint").is_file())


def _validate(args) -> None:
    """Every argument check that needs no framework, before anything is built."""
    if args.format not in FORMATS:
        raise util.UsageError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    if args.model and args.model not in MODELS:
        raise util.UsageError(f"unknown model {args.model!r}. Available: {available()}")
    if args.classes is not None and args.classes < 1:
        raise util.UsageError(f"--classes must be a positive integer, got {args.classes}")
    if args.lint_only and args.no_lint:
        raise util.UsageError("--lint-only and --no-lint exclude each other")
    for flag, value in (("--rtol", args.rtol), ("--atol", args.atol)):
        if value is not None and not value >= 0:
            raise util.UsageError(f"{flag} must be a non-negative number, got {value}")
    if args.weights and not _checkpoint_exists(args.weights):
        raise util.UsageError(f"--weights: no TF checkpoint at {args.weights!r} (expected PREFIX.index and "
                              "PREFIX.data-* files, or a directory holding a 'checkpoint' file)")


def _input_errors() -> tuple[type[Exception], ...]:
    """A builder that raised or broke its contract, or numeric parity that could not run: bad input."""
    from porting.frameworks.mx_reader import SymbolError
    from porting.frameworks.tf_reader import BuilderError
    from porting.verifier.parity import ParityError

    return BuilderError, SymbolError, ParityError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for spec in MODELS.values():
            print(f"{spec.name:32s} {spec.size[0]}x{spec.size[1]}  {spec.description}")
        return util.EXIT_OK
    try:
        _validate(args)
        model = args.model or (None if (args.tf and args.mx) else "inception_resnet_v2")
        result = verify(model, tf=args.tf, mx=args.mx, size=args.size, classes=args.classes, batch=args.batch,
                        lint=not args.no_lint, numeric=args.numeric or bool(args.weights), weights=args.weights,
                        seed=args.seed, rtol=args.rtol, atol=args.atol)
    except USAGE_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return util.EXIT_USAGE
    except Exception as error:
        if isinstance(error, _input_errors()):
            print(f"error: {error}", file=sys.stderr)
            return util.EXIT_USAGE
        raise
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
