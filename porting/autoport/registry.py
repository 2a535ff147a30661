"""Bookkeeping of TF op translators: one registry keyed by TF op type.

Translators live in ``porting/autoport/translators/<family>.py``, one module per op
family (``FAMILY_MODULES``, loaded as ``porting.autoport.translators.<family>``), and
register with::

    @translates("Conv2D")
    def conv2d(ctx, op):
        ...

A translator receives the translation context and the ``tf.Operation`` and
returns the MXNet symbol for the op's first output (or None after it has
mapped the output itself). It raises :class:`NotTranslatable` when this
particular op's attributes have no exact MXNet form (e.g. MirrorPad
SYMMETRIC); the walk collects those with the unsupported op types and reports
all of them at once.

Registering an op type twice is an error: two translators for one op would make
the result depend on import order. The supported-op list in
``docs/supported_ops.md`` is rendered from this registry (:func:`render_markdown`).
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

#: Modules of ``porting.autoport.translators`` holding the translators, one per family, in
#: the order the supported-op table lists them (imported by :func:`load_all`).
FAMILY_MODULES = ("conv", "pool", "norm", "activation", "dense", "elementwise", "shape")


class DuplicateTranslator(ValueError):
    """An op type registered by two translators."""


class NotTranslatable(ValueError):
    """This op's attributes have no exact MXNet equivalent (the op type itself is supported)."""


@dataclass(frozen=True)
class Translator:
    """One registered translator."""

    op_type: str
    family: str
    function: Callable
    summary: str

    @property
    def qualname(self) -> str:
        return f"{self.function.__module__}.{self.function.__qualname__}"


_REGISTRY: dict[str, Translator] = {}


def _family_of(module_name: str) -> str:
    """``porting.autoport.translators.conv`` -> ``conv``."""
    return module_name.rsplit(".", 1)[-1]


def translates(*op_types: str, family: str | None = None):
    """Register the decorated function as the translator of ``op_types``.

    Raises:
        DuplicateTranslator: an op type already has a translator.
        ValueError: no op type given.
    """
    if not op_types:
        raise ValueError("translates() needs at least one TF op type")

    def register(function: Callable) -> Callable:
        doc = inspect.getdoc(function) or ""
        summary = doc.splitlines()[0] if doc else function.__name__
        group = family or _family_of(function.__module__)
        for op_type in op_types:
            existing = _REGISTRY.get(op_type)
            if existing is not None:
                raise DuplicateTranslator(
                    f"TF op type {op_type!r} is already translated by {existing.qualname}; "
                    f"{function.__module__}.{function.__qualname__} cannot register it too")
        for op_type in op_types:
            _REGISTRY[op_type] = Translator(op_type, group, function, summary)
        return function

    return register


def unregister(*op_types: str) -> None:
    """Remove registrations (for tests that register throwaway translators)."""
    for op_type in op_types:
        _REGISTRY.pop(op_type, None)


def load_all() -> None:
    """Import every translator module (idempotent: Python imports each module once)."""
    for family in FAMILY_MODULES:
        importlib.import_module(f"porting.autoport.translators.{family}")


def lookup(op_type: str) -> Translator | None:
    """The translator for a TF op type, or None."""
    load_all()
    return _REGISTRY.get(op_type)


def supported_ops() -> list[Translator]:
    """Every registered translator, by family order then op type."""
    load_all()
    order = {family: index for index, family in enumerate(FAMILY_MODULES)}
    return sorted(_REGISTRY.values(), key=lambda t: (order.get(t.family, len(order)), t.family, t.op_type))


def render_markdown() -> str:
    """The supported-op table for ``docs/supported_ops.md``."""
    translators = supported_ops()
    lines = [
        "# TF ops supported by `python -m porting.autoport`",
        "",
        "Generated from the translator registry (`porting/autoport/registry.py`) by",
        "`python -m porting.autoport --list-ops > docs/supported_ops.md`; do not edit by hand.",
        "A test checks that this file equals the generated text.",
        "",
        f"{len(translators)} op types in {len({t.family for t in translators})} families.",
        "",
        "| TF op type | family | MXNet translation |",
        "|---|---|---|",
    ]
    for translator in translators:
        lines.append(f"| `{translator.op_type}` | {translator.family} | {translator.summary} |")
    return "\n".join(lines) + "\n"
