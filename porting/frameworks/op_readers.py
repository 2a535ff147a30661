"""Bookkeeping of op readers: one registry per framework, keyed by the framework's op type.

A reader turns one framework op into the attributes of its ``graph_walk.Node``
(kind, kernel, pads, batch-norm eps...). Readers are grouped by family in
``tf_op_readers/<family>.py`` and ``mx_op_readers/<family>.py`` and register with::

    @reads("Conv2D", "DepthwiseConv2dNative")
    def convolution(node, op, data):
        ...

Registering an op type twice is an error: two readers for one op would make the
records depend on import order. An op type no reader registers is read as
``Kind.OTHER`` (its shape and inputs still count).
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass


class DuplicateReader(ValueError):
    """An op type registered by two readers."""


@dataclass(frozen=True)
class Reader:
    """One registered reader."""

    op_type: str
    family: str
    function: Callable
    summary: str  # the first line of the reader's docstring

    @property
    def qualname(self) -> str:
        return f"{self.function.__module__}.{self.function.__qualname__}"


class ReaderRegistry:
    """The readers of one framework's ops, keyed by op type.

    Args:
        framework: 'TF' or 'MXNet' (for messages).
        package: the package holding one module per family.
        families: the family modules of ``package``, imported by :meth:`load_all`.
    """

    def __init__(self, framework: str, package: str, families: tuple[str, ...]):
        self.framework = framework
        self.package = package
        self.families = families
        self._readers: dict[str, Reader] = {}

    def reads(self, *op_types: str):
        """Register the decorated function as the reader of ``op_types``.

        Raises:
            DuplicateReader: an op type already has a reader.
            ValueError: no op type given.
        """
        if not op_types:
            raise ValueError(f"reads() needs at least one {self.framework} op type")

        def register(function: Callable) -> Callable:
            doc = inspect.getdoc(function) or ""
            summary = doc.splitlines()[0] if doc else function.__name__
            family = function.__module__.rsplit(".", 1)[-1]
            for op_type in op_types:
                existing = self._readers.get(op_type)
                if existing is not None:
                    raise DuplicateReader(
                        f"{self.framework} op type {op_type!r} is already read by {existing.qualname}; "
                        f"{function.__module__}.{function.__qualname__} cannot register it too")
            for op_type in op_types:
                self._readers[op_type] = Reader(op_type, family, function, summary)
            return function

        return register

    def unregister(self, *op_types: str) -> None:
        """Remove registrations (for tests that register throwaway readers)."""
        for op_type in op_types:
            self._readers.pop(op_type, None)

    def load_all(self) -> None:
        """Import every family module (idempotent: Python imports each module once)."""
        for family in self.families:
            importlib.import_module(f"{self.package}.{family}")

    def lookup(self, op_type: str) -> Callable | None:
        """The reader function of an op type, or None (the op is read as ``Kind.OTHER``)."""
        reader = self._readers.get(op_type)
        return reader.function if reader is not None else None

    def readers(self) -> list[Reader]:
        """Every registered reader, by family order then op type."""
        self.load_all()
        order = {family: index for index, family in enumerate(self.families)}
        return sorted(self._readers.values(), key=lambda r: (order.get(r.family, len(order)), r.family, r.op_type))

    def op_types(self) -> list[str]:
        """Every op type a reader is registered for, sorted."""
        self.load_all()
        return sorted(self._readers)
