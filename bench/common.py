"""Command-line checks the benchmark scripts share (no framework import)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


class UsageError(Exception):
    """Bad command-line input: one line for stderr, exit code 2."""


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


def run_python(args: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """``python ARGS`` in a fresh interpreter at the repository root, TF's logs off.

    Returns:
        (wall seconds, stdout).

    Raises:
        SystemExit: the child exited with a code outside ``ok_codes`` (with its stderr's tail).
    """
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(root))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in ok_codes:
        raise SystemExit(f"benchmark child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def tagged_json(stdout: str, tag: str = "BENCH ") -> dict:
    """The JSON a child printed on its line starting with ``tag``."""
    line = next(line for line in stdout.splitlines() if line.startswith(tag))
    return json.loads(line[len(tag):])
