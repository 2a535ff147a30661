"""Transitional: ``atomic_write`` for ``porting.autoport.pipeline`` until it uses ``porting.util``; then delete.

The renderers are in ``porting.verifier.render``.
"""
from __future__ import annotations

from pathlib import Path

from porting import util


def atomic_write(path: Path | str, text: str) -> None:
    """``util.atomic_write_text(path, text, parents=True)``."""
    util.atomic_write_text(path, text, parents=True)
