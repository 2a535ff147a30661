"""Progress bars on stderr for every step that can take more than a couple of seconds (tqdm).

Off with ``--no-progress`` (``configure(False)``), with ``PORTING_NO_PROGRESS=1``, and
whenever stderr is not a terminal (CI logs, pipes, tests), so captured output never holds
bar fragments. Library code asks for a bar and never decides whether it is shown::

    for batch in progress.bar(batches, desc="epoch 3", unit="batch"):
        ...
    with progress.steps(["build TF graph", "read MXNet symbol", "match"], desc="compare") as step:
        step("build TF graph")
        ...
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterable, Iterator

from tqdm import tqdm

#: Set to 1 to switch every bar off (like ``--no-progress``).
NO_PROGRESS_ENV = "PORTING_NO_PROGRESS"

_enabled: bool | None = None  # None: decide from the terminal


def configure(enabled: bool | None) -> None:
    """Force bars on or off for this process; ``None`` goes back to deciding from the terminal."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether bars are shown: not switched off, and stderr is a terminal."""
    if _enabled is not None:
        return _enabled
    if os.environ.get(NO_PROGRESS_ENV, "") not in ("", "0"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def bar(iterable: Iterable | None = None, *, total: int | float | None = None, desc: str = "",
        unit: str = "it", leave: bool = False) -> tqdm:
    """A tqdm bar (with ETA when the total is known) that is silent when bars are off."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not enabled(),
                file=sys.stderr, dynamic_ncols=True)


@contextlib.contextmanager
def steps(names: list[str], desc: str = "") -> Iterator:
    """A bar over named steps of unknown length: call ``step(name)`` as each one starts.

    The bar shows the running step's name, the steps done and the elapsed time; its ETA
    comes from the steps finished so far.
    """
    with bar(total=len(names), desc=desc, unit="step") as progress_bar:
        started = [False]

        def step(name: str) -> None:
            if started[0]:
                progress_bar.update(1)
            started[0] = True
            progress_bar.set_postfix_str(name, refresh=True)

        yield step
        if started[0]:
            progress_bar.update(1)
