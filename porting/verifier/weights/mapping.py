"""What a weight transfer maps: every MXNet parameter's TF source, and what cannot be placed.

``Mapping`` is one MXNet parameter and its source (a TF variable, a constant of the TF
graph, or a fill TF has by construction); ``Problem`` is one parameter that cannot be
transferred as is; ``TransferPlan`` holds both for a pair of graphs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from porting.core import layouts
from porting.core.records import Kind

if TYPE_CHECKING:
    from collections.abc import Mapping as MappingABC

    from porting.verifier.weights.transfer import TransferReport

ARG = "arg"
AUX = "aux"

#: Where a mapped MXNet value comes from.
SOURCE_VARIABLE = "variable"  # a TF variable
SOURCE_CONSTANT = "constant"  # a constant of the TF graph (slim's gamma = ones when scale=False)
SOURCE_FILL = "fill"  # TF has no such value by construction (zero bias, gamma = 1)


class WeightTransferError(Exception):
    """Parameters would be missing, left unused or shaped wrongly; ``report`` lists them all."""

    def __init__(self, message: str, report: "TransferReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Mapping:
    """One MXNet parameter and where its value comes from on the TF side.

    Attributes:
        mx_name, mx_kind, mx_shape: the MXNet parameter ('arg' or 'aux') and its shape.
        role: 'weight', 'bias', 'gamma', 'beta', 'moving_mean' or 'moving_var'.
        layer: the TF record of the pair; mx_layer: the MXNet record.
        layer_kind: the record kind (conv, dwconv, fc, bn...), for initialization.
        source: SOURCE_VARIABLE, SOURCE_CONSTANT or SOURCE_FILL.
        tf_name, tf_shape: the TF variable (no ':0') and its shape, for variables.
        tf_tensor: the tensor of the TF graph that reads the value (for sessions).
        transform: a name in ``layouts.TRANSFORMS``; transform_args its keywords.
        pre_transpose: TF's matmul reads the kernel transposed (``transpose_b``).
        constant: the value for constants and fills (float32 array).
        note: why a fill or a reorder applies.
    """

    mx_name: str
    mx_kind: str
    mx_shape: tuple[int, ...]
    role: str
    layer: str
    mx_layer: str
    layer_kind: Kind
    source: str
    tf_name: str | None = None
    tf_shape: tuple[int, ...] | None = None
    tf_tensor: str | None = None
    transform: str = "identity"
    transform_args: tuple[tuple[str, int], ...] = ()
    pre_transpose: bool = False
    constant: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)
    note: str = ""

    def to_mx(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if self.pre_transpose:
            value = value.T
        return layouts.to_mx(self.transform, value, **dict(self.transform_args))

    def from_mx(self, value: np.ndarray) -> np.ndarray:
        value = layouts.from_mx(self.transform, np.asarray(value), **dict(self.transform_args))
        return np.ascontiguousarray(value.T) if self.pre_transpose else value

    def mx_value(self, tf_values: MappingABC | None = None) -> np.ndarray:
        """The MXNet value: transformed TF variable, or the constant / fill."""
        if self.source == SOURCE_VARIABLE:
            return self.to_mx(tf_values[self.tf_name]).astype(np.float32, copy=False)
        return np.broadcast_to(self.constant, self.mx_shape).astype(np.float32)

    def describe(self) -> str:
        if self.source == SOURCE_VARIABLE:
            return f"{self.tf_name} --{self.transform}--> {self.mx_name}"
        return f"{self.mx_name} = {self.note}"


@dataclass(frozen=True)
class Problem:
    """One parameter that cannot be transferred as is, named on both sides where known."""

    kind: str  # 'missing', 'unexpected', 'mismatched', 'lost'
    name: str  # the parameter the problem is about (MXNet name for missing/lost, TF name for unexpected)
    reason: str
    layer: str | None = None
    tf_name: str | None = None
    mx_name: str | None = None
    tf_shape: tuple[int, ...] | None = None
    mx_shape: tuple[int, ...] | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.name, self.tf_name, self.mx_name, self.layer) if n)

    def as_dict(self) -> dict:
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in self.__dict__.items() if value is not None}

    def line(self) -> str:
        shapes = ""
        if self.tf_shape is not None or self.mx_shape is not None:
            shapes = (f" (TF {'x'.join(map(str, self.tf_shape)) if self.tf_shape else '--'}, "
                      f"MXNet {'x'.join(map(str, self.mx_shape)) if self.mx_shape else '--'})")
        return f"{self.kind}: {self.name}{shapes}: {self.reason}"


@dataclass
class TransferPlan:
    """Every MXNet parameter's source, and what the pairing could not place."""

    mappings: list[Mapping]
    problems: list[Problem]  # structural: missing / unexpected / mismatched
    warnings: list[str]
    tf_variables: dict[str, tuple[int, ...]]  # every variable of the TF graph -> shape
    mx_params: dict[str, tuple[str, tuple[int, ...]]]  # every MXNet parameter -> (kind, shape)
    fix_gamma_layers: set[str] = field(default_factory=set)  # MXNet records whose BatchNorm ignores gamma

    def by_mx_name(self) -> dict[str, Mapping]:
        return {mapping.mx_name: mapping for mapping in self.mappings}

    def tf_names(self) -> list[str]:
        """TF variables some MXNet parameter takes, in mapping order, each once."""
        seen: dict[str, None] = {}
        for mapping in self.mappings:
            if mapping.source == SOURCE_VARIABLE:
                seen.setdefault(mapping.tf_name, None)
        return list(seen)

    def roles(self) -> dict[str, tuple[str, str, Mapping]]:
        """TF variable -> (role, layer kind, mapping) of its first use."""
        result = {}
        for mapping in self.mappings:
            if mapping.source == SOURCE_VARIABLE and mapping.tf_name not in result:
                result[mapping.tf_name] = (mapping.role, mapping.layer_kind, mapping)
        return result


def to_shape(values) -> tuple[int, ...]:
    """A shape as a tuple of Python ints."""
    return tuple(int(v) for v in values)


def shape_text(shape) -> str:
    """'3x3x32', or '--' when there is none."""
    return "x".join(map(str, shape)) if shape else "--"
