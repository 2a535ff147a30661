"""What the benchmark scripts share: argument checks, where reports go, running children and their errors.

No framework is imported here (``porting.compat`` loads none by itself).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from porting import compat, util  # noqa: E402  (shims only; no framework import)

#: The committed full-run reports.
REPORTS = ROOT / "reports" / "bench"
#: Where a smoke (``--quick``) or partial run writes without ``--out``: never over a committed report.
SMOKE_REPORTS = Path(tempfile.gettempdir()) / "porting-bench-quick"


class UsageError(Exception):
    """Bad command-line input: one line for stderr, exit code 2."""


class ChildFailed(RuntimeError):
    """A measurement's process failed; the message is one line with the child's own error."""


def parse_repeats(text: str, named: dict[str, tuple[int, int, int]]) -> tuple[int, int, int]:
    """a preset name (as ``named`` defines them: 'full', 'reduced', 'small') or 'A,B,C': blocks per stage."""
    if text in named:
        return named[text]
    try:
        repeats = tuple(int(part) for part in text.split(","))
    except ValueError:
        repeats = ()
    if len(repeats) != 3 or min(repeats) < 1:
        raise UsageError(f"--repeats must be {', '.join(named)} or A,B,C (three positive integers), got {text!r}")
    return repeats


def settle(args, quick: dict, positive: tuple[str, ...]) -> None:
    """Apply the --quick settings when asked, then require each ``positive`` flag to be >= 1."""
    if getattr(args, "quick", False):
        for key, value in quick.items():
            setattr(args, key, value)
    for flag in positive:
        value = getattr(args, flag)
        if value < 1:
            raise UsageError(f"--{flag} must be a positive integer, got {value}")


def report_path(out: str | None, name: str, smoke: bool) -> Path:
    """Where a bench writes its JSON: ``--out`` when given, else ``reports/bench/<name>.json``
    for a full run and ``$TMPDIR/porting-bench-quick/<name>.json`` for a smoke or partial run,
    so a quick check never replaces the committed full-run report. Checked before any work.

    Raises:
        UsageError: the path cannot be written (a folder, under a file, not writable).
    """
    path = Path(out) if out else (SMOKE_REPORTS if smoke else REPORTS) / f"{name}.json"
    try:
        return util.check_output_file(path, "--out")
    except util.UsageError as error:
        raise UsageError(str(error)) from None


def out_help(name: str, smoke: str = "--quick") -> str:
    """The ``--out`` help text of a bench named ``name``."""
    return (f"JSON report (default reports/bench/{name}.json; with {smoke}: "
            f"{SMOKE_REPORTS / (name + '.json')}, never the committed report)")


_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failed)): ?(.*)")


def child_error(stderr: str, stdout: str = "") -> str:
    """A failed child's own error as one line.

    Its ``error:`` line when it printed one; else the exception of its traceback (the last
    unindented line, module path dropped: ``TrainError: --gpus 0: ...``; for a C++ abort,
    ``terminate called ...`` with its ``what():`` line); else its last line of output.
    Framework start-up lines (``porting.compat.NOISE_PATTERNS``) never count.
    """
    lines = [line.rstrip() for line in (stderr or "").splitlines()
             if line.strip() and not compat.is_noise(line)]
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: "):].strip()
    unindented = [index for index, line in enumerate(lines) if not line[:1].isspace()]
    if unindented:
        index = unindented[-1]
        text = lines[index]
        match = _EXCEPTION_LINE.fullmatch(text)
        if match:
            text = f"{match.group(1)}: {match.group(2)}".rstrip(": ")
        details = [line.strip() for line in lines[index + 1:] if not line.strip().startswith("File ")]
        return " ".join([text, *details])[:1000]
    rest = [line.strip() for line in (stdout or "").splitlines() if line.strip()]
    return (lines[-1].strip() if lines else rest[-1] if rest else "no output")[:1000]


def child_failure(what: str, returncode: int | None, stderr: str, stdout: str = "") -> str:
    """One line: ``<what> failed (exit N): <the child's error>`` (or ``was killed by SIGxxx``)."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory?)" if returncode == -signal.SIGKILL else ""
        how = f"was killed by {name}{hint}"
    else:
        how = f"failed (exit {returncode})"
    return f"{what} {how}: {child_error(stderr, stdout)}"


def run_python(args: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """``python ARGS`` in a fresh interpreter at the repository root, TF's logs off.

    Returns:
        (wall seconds, stdout).

    Raises:
        ChildFailed: the child exited with a code outside ``ok_codes`` (its error in the message).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in ok_codes:
        what = "benchmark child `python " + " ".join(arg if len(arg) < 60 else "..." for arg in args) + "`"
        raise ChildFailed(child_failure(what, done.returncode, done.stderr, done.stdout))
    return wall, done.stdout


#: The line a measurement child answers on (its JSON follows).
RESULT_PREFIX = "RESULT "


def run_result_child(command: list[str], env: dict, what: str, timeout: float) -> tuple[dict, list[str]]:
    """Run one measurement child: (the JSON of its last ``RESULT`` line, every line of its stdout).

    Raises:
        ChildFailed: it ran past ``timeout`` seconds, failed or printed no result (its own error in the message).
    """
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise ChildFailed(f"{what}: no result within {timeout:.0f} s") from error
    lines = done.stdout.splitlines()
    results = [line for line in lines if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not results:
        raise ChildFailed(child_failure(what, done.returncode, done.stderr, done.stdout))
    return json.loads(results[-1][len(RESULT_PREFIX):]), lines


def tagged_json(stdout: str, tag: str = "BENCH ") -> dict:
    """The JSON a child printed on its line starting with ``tag``.

    Raises:
        ChildFailed: no such line.
    """
    line = next((line for line in stdout.splitlines() if line.startswith(tag)), None)
    if line is None:
        raise ChildFailed(f"the benchmark child printed no {tag.strip()} line: {child_error('', stdout)}")
    return json.loads(line[len(tag):])


def step_times(step, steps: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step`` after ``warmup`` untimed ones (first-call allocation,
    oneDNN primitive creation, onnxruntime's arena happen in the warm-up)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


def publish(report: dict, out: Path, indent: int = 2) -> None:
    """Print the report's table and write the report as JSON to ``out`` (atomically: a committed result is
    never half-replaced), then say where."""
    from porting.util import atomic_write_text

    sys.stdout.write(report["table"])
    atomic_write_text(out, json.dumps(report, indent=indent) + "\n", parents=True)
    print(f"wrote {out}")


def run_bench(prepare, measure, failures: tuple = (ChildFailed,)) -> int:
    """A bench's parent process: ``prepare() -> (state, out)`` checks the arguments (a ``UsageError`` is one
    error line, exit 2), ``measure(state) -> report`` runs the children (one of ``failures``: one error line,
    exit 1), then the report is published to ``out`` (exit 0)."""
    try:
        state, out = prepare()
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = measure(state)
    except failures as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    publish(report, out)
    return 0

