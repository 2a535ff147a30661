"""The readers' error types, importable without loading a framework.

A command catches them to print one ``error:`` line (``porting.cli.common.run``) before
TensorFlow or MXNet is imported; ``tf_reader`` and ``mx_reader`` raise them and re-export
them under their old names (``tf_reader.BuilderError``, ``mx_reader.SymbolError``).
"""
from __future__ import annotations


class BuilderError(Exception):
    """The TF builder could not be called or broke its contract."""


class SymbolError(Exception):
    """The MX builder could not be called, broke its contract, or its shapes do not infer."""
