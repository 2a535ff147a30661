"""autoport's own error types, importable without loading a framework (the command catches them)."""
from __future__ import annotations


class CheckpointError(ValueError):
    """The checkpoint cannot provide the TF graph's variables."""
