"""Elementwise arithmetic (add, sub, mul, div, max, min) and concatenation.

Two activations: ``elemwise_*`` when the shapes agree, ``broadcast_*`` otherwise.
An activation and a scalar constant: the ``_*_scalar`` ops (``x * 0.17`` is
``_mul_scalar``, as in the hand port's residual scaling). An activation and a
non-scalar constant or variable: a Variable moved to NCHW when it broadcasts
against a 4-D tensor.
"""
from __future__ import annotations

from porting import compat
from porting.autoport.registry import NotTranslatable, translates
from porting.autoport.translators.pool import nchw_axes

mx = compat.import_mx()

# op type → (elementwise op, broadcast op, scalar op, reversed scalar op)
_BINARY = {
    "Add": ("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
    "AddV2": ("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
    "Sub": ("elemwise_sub", "broadcast_sub", "_minus_scalar", "_rminus_scalar"),
    "Mul": ("elemwise_mul", "broadcast_mul", "_mul_scalar", "_mul_scalar"),
    "RealDiv": ("elemwise_div", "broadcast_div", "_div_scalar", "_rdiv_scalar"),
    "Maximum": ("broadcast_maximum", "broadcast_maximum", "_maximum_scalar", "_maximum_scalar"),
    "Minimum": ("broadcast_minimum", "broadcast_minimum", "_minimum_scalar", "_minimum_scalar"),
}


def _op(name: str):
    return getattr(mx.sym, name, None) or getattr(mx.sym._internal, name)


@translates(*_BINARY)
def binary(ctx, op):
    """`elemwise_*` / `broadcast_*` of two activations; `_*_scalar` with a scalar constant."""
    elementwise, broadcast, scalar, reversed_scalar = _BINARY[op.type]
    shapes = [ctx.shape(tensor) for tensor in op.inputs]
    data = [ctx.is_data(tensor) for tensor in op.inputs]
    rank4 = any(len(shape) == 4 and is_data for shape, is_data in zip(shapes, data))
    name = ctx.name(op)
    left = ctx.operand(op, 0, f"{name}/x", rank4)
    right = ctx.operand(op, 1, f"{name}/y", rank4)
    if isinstance(left, float) and isinstance(right, float):
        raise NotTranslatable("both operands are constants")
    if isinstance(right, float):
        return _op(scalar)(left, scalar=right, name=name)
    if isinstance(left, float):
        return _op(reversed_scalar)(right, scalar=left, name=name)
    if all(data) and len(shapes[0]) != len(shapes[1]):
        raise NotTranslatable(f"operands of rank {len(shapes[0])} and {len(shapes[1])}: broadcasting "
                              "across layouts is not supported")
    if all(data) and shapes[0] == shapes[1]:
        return _op(elementwise)(left, right, name=name)
    return _op(broadcast)(left, right, name=name)


@translates("AddN")
def add_n(ctx, op):
    """`add_n` of activations of one shape."""
    if not all(ctx.is_data(tensor) for tensor in op.inputs):
        raise NotTranslatable("AddN with a constant operand")
    return mx.sym.add_n(*(ctx.input(op, i) for i in range(len(op.inputs))), name=ctx.name(op))


@translates("ConcatV2")
def concat(ctx, op):
    """`concat` along the same axis in NCHW (channels: 3 → 1)."""
    axis = ctx.const(op.inputs[-1])
    if axis is None:
        raise NotTranslatable("the concat axis is not constant")
    values = op.inputs[:-1]
    if not all(ctx.is_data(tensor) for tensor in values):
        raise NotTranslatable("concatenates a constant")
    rank = len(ctx.shape(values[0]))
    (dim,) = nchw_axes(axis, rank)
    return mx.sym.concat(*(ctx.input(op, i) for i in range(len(values))), dim=dim, name=ctx.name(op))
