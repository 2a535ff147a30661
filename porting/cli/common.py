"""What every command shares: ``--debug`` and ``--no-progress``, one error line, the exit codes, Ctrl-C.

A command's ``main(argv)`` parses its arguments, then hands its body to :func:`run`::

    def main(argv=None) -> int:
        args = build_parser().parse_args(argv)
        return common.run(lambda: _main(args), args, errors=(DataError,),
                          interrupted="re-run the same command: finished work is kept")

:func:`run` turns every failure into one ``error:`` line on stderr and a non-zero exit:
``UsageError``, the command's own input errors and ``OSError`` (a read-only folder, a full
disk, a folder where a file belongs) exit with ``EXIT_USAGE``; anything else is reported the
same way with its type, and a traceback only with ``--debug`` or ``PORTING_DEBUG=1``. Ctrl-C
prints one line and exits 130. Output is written atomically everywhere, so an interrupted or
failed command leaves the old files or the new ones, never a part.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from typing import Callable

from porting import progress, util

#: Set to 1 to get the traceback of any error (like ``--debug``).
DEBUG_ENV = "PORTING_DEBUG"
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def add_common_arguments(parser: argparse.ArgumentParser, progress_flag: bool = True) -> None:
    """``--debug`` (tracebacks) and, for commands with long steps, ``--no-progress``."""
    parser.add_argument("--debug", action="store_true",
                        help=f"show the Python traceback of an error (or set {DEBUG_ENV}=1)")
    if progress_flag:
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bars (they are also off when stderr is not a terminal)")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None):
    """``parser.parse_args(argv)``, or None after one ``error:`` line for a bad command line.

    argparse would print its usage text, then ``prog: error: ...``, and exit; every command
    of this package prints one ``error:`` line and returns ``EXIT_USAGE`` instead (a bad
    choice reads like the other argument errors: "--format must be one of ...").
    """

    def refuse(message: str):
        raise argparse.ArgumentError(None, message)

    parser.exit_on_error = False
    parser.error = refuse
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentError as err:
        action = next((a for a in parser._actions if err.argument_name in a.option_strings), None)
        if action is not None and action.choices is not None and err.message.startswith("invalid choice"):
            given = err.message.split(": ", 1)[1].split(" (choose from", 1)[0]
            error(f"{err.argument_name} must be one of {', '.join(map(str, action.choices))}, got {given}")
        else:
            error(f"{err} (see --help)")
        return None


def debugging(args=None) -> bool:
    """Whether ``--debug`` was given or ``PORTING_DEBUG`` is set."""
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def error(message: str) -> None:
    """Print the one ``error:`` line of a failed command (the message on one line)."""
    text = " ".join(str(message).split("\n")).strip() or "unknown error"
    print(f"error: {text}", file=sys.stderr, flush=True)


def describe_os_error(err: OSError) -> str:
    """An ``OSError`` as a sentence that names the path and what to do."""
    where = f" {err.filename}" if err.filename else ""
    if err.filename2:
        where += f" -> {err.filename2}"
    reason = err.strerror or str(err)
    fixes = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
        errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to",
        errno.EROFS: "choose a folder on a writable file system",
        errno.EISDIR: "give a file path, not a folder",
        errno.ENOTDIR: "give a folder path, not a file",
        errno.ENOENT: "check the path",
    }
    fix = fixes.get(err.errno)
    return f"{reason}:{where}" + (f" ({fix})" if fix else "")


def run(body: Callable[[], int], args=None, *, errors: tuple[type[BaseException], ...] = (),
        interrupted: str = "") -> int:
    """Run a command's body; every failure becomes one ``error:`` line and an exit code.

    Args:
        body: the command's work; returns its exit code.
        args: the parsed arguments (for ``--debug`` and ``--no-progress``).
        errors: the command's own bad-input exception types (exit ``EXIT_USAGE``).
        interrupted: what to tell the user after Ctrl-C, e.g. how to resume.
    """
    debug = debugging(args)
    if getattr(args, "no_progress", False):
        progress.configure(False)
    try:
        return _run_body(body, debug, errors, interrupted)
    finally:
        if getattr(args, "no_progress", False):
            progress.configure(None)  # in-process callers (tests, notebooks) get the default back


def _run_body(body: Callable[[], int], debug: bool, errors: tuple[type[BaseException], ...],
              interrupted: str) -> int:
    try:
        return body()
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("interrupted; nothing half-written" + (f"; {interrupted}" if interrupted else ""),
              file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (``| head``): not an error of ours
        _silence_stdout()
        return util.EXIT_OK
    except (util.UsageError, *errors) as err:
        if debug:
            traceback.print_exc()
        error(str(err))
        return util.EXIT_USAGE
    except OSError as err:
        if debug:
            traceback.print_exc()
        error(describe_os_error(err))
        return util.EXIT_USAGE
    except MemoryError:
        if debug:
            traceback.print_exc()
        error("out of memory: use a smaller size or batch, or a machine with more memory")
        return util.EXIT_USAGE
    except Exception as err:  # noqa: BLE001  (the last line of defence: one line, not a traceback)
        if debug:
            traceback.print_exc()
        error(f"{type(err).__name__}: {err} (rerun with --debug for the traceback)")
        return util.EXIT_USAGE


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
