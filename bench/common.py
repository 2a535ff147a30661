"""Command-line checks the benchmark scripts share (no framework import)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input: one line for stderr, exit code 2."""


def parse_repeats(text: str, named: dict[str, tuple[int, int, int]]) -> tuple[int, int, int]:
    """'full', 'reduced' (as ``named`` defines them) or 'A,B,C': blocks per stage."""
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
