"""Walk a TF graph's data path and translate it op by op into one MXNet symbol.

The walk visits the ops between the input placeholder and the outputs (float
tensors only, exactly the ops ``tf_reader`` reads), in graph creation order, which
is topological. It keeps a map TF tensor name → MXNet symbol; a 4-D TF tensor
(NHWC) is held as NCHW in MXNet, every other rank in TF's own order.

Unsupported op types, and ops whose attributes have no exact MXNet form, do not
stop the walk: every one is collected, and one :class:`UnsupportedOps` error
lists them all with their counts and the layers that use them.

MXNet layers are named after the TF scopes (the same rule ``tf_reader`` uses to
name its records), so the verifier pairs the two sides by name and the
parameters follow ``porting.core.naming`` (``<scope>_weight``, ``<scope>/BatchNorm_beta``...).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from porting import compat
from porting.core import layouts
from porting.frameworks import tf_graph_facts, tf_variables
from porting.autoport import registry
from porting.autoport.registry import NotTranslatable
from porting.core.graph_walk import collapse_scope
from porting.padding import PaddingError

mx = compat.import_mx()

ARG = "arg"
AUX = "aux"


class UnsupportedOps(Exception):
    """Some TF ops cannot be translated; lists every one of them at once.

    Attributes:
        missing: op type → names of the ops of that type (no translator registered).
        problems: (op type, op name, reason) for ops whose type is supported but
            whose attributes are not.
    """

    def __init__(self, missing: dict[str, list[str]], problems: list[tuple[str, str, str]]):
        self.missing = missing
        self.problems = problems
        super().__init__(self.describe())

    @property
    def count(self) -> int:
        return sum(len(names) for names in self.missing.values()) + len(self.problems)

    def describe(self, max_layers: int = 8) -> str:
        lines = [f"{self.count} TF op{'s' if self.count != 1 else ''} cannot be translated to MXNet"]
        if self.missing:
            lines.append(f"unsupported op types ({len(self.missing)}):")
            for op_type, names in sorted(self.missing.items(), key=lambda item: (-len(item[1]), item[0])):
                shown = ", ".join(names[:max_layers]) + (f", ... ({len(names) - max_layers} more)"
                                                         if len(names) > max_layers else "")
                lines.append(f"  {op_type} x{len(names)}: {shown}")
        if self.problems:
            lines.append(f"supported op types with untranslatable attributes ({len(self.problems)}):")
            for op_type, name, reason in self.problems:
                lines.append(f"  {op_type} at {name}: {reason}")
        lines.append("supported op types: python -m porting.autoport --list-ops")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"count": self.count,
                "missing": {op_type: {"count": len(names), "layers": names}
                            for op_type, names in sorted(self.missing.items())},
                "problems": [{"op": op_type, "layer": name, "reason": reason}
                             for op_type, name, reason in self.problems]}


@dataclass(frozen=True)
class ParamSource:
    """Where one MXNet parameter's value comes from.

    Attributes:
        name: MXNet parameter name.
        kind: 'arg' or 'aux' (moving statistics).
        tensor: the TF tensor whose value it is (a variable read or a constant).
        transform: a layout transform of ``porting.core.layouts`` (or ``NHWC_BROADCAST``),
            with ``transform_args`` as its keywords.
        variable: the TF variable behind ``tensor``, if any (None: a constant).
        trainable: False for TF constants (frozen in MXNet with lr_mult=wd_mult=0).
    """

    name: str
    kind: str
    tensor: str
    transform: str = "identity"
    transform_args: tuple[tuple[str, int], ...] = ()
    variable: str | None = None
    trainable: bool = True

    def to_mx(self, value: np.ndarray) -> np.ndarray:
        """The TF value in MXNet's layout, float32."""
        if self.transform == NHWC_BROADCAST:
            value = nhwc_broadcast_to_nchw(value)
        else:
            value = layouts.to_mx(self.transform, np.asarray(value), **dict(self.transform_args))
        return np.ascontiguousarray(value, dtype=np.float32)


#: A constant broadcast against an NHWC activation, moved to broadcast against NCHW.
NHWC_BROADCAST = "nhwc_broadcast_to_nchw"


def nhwc_broadcast_to_nchw(value) -> np.ndarray:
    """A constant that broadcasts against an NHWC tensor → the same constant against NCHW.

    Numpy broadcasting aligns trailing axes, so the value is left-padded to rank 4 first.
    """
    value = np.asarray(value)
    if value.ndim > 4:
        raise ValueError(f"a constant of rank {value.ndim} cannot broadcast against a rank-4 tensor")
    return value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)


@dataclass
class Head:
    """One output of the translated symbol."""

    name: str  # MXNet output name (node name + '_output')
    tensor: str  # the TF tensor it reproduces
    role: str  # 'logits' or 'output'


@dataclass
class Translation:
    """A translated network: the symbol, where each parameter comes from, and bookkeeping."""

    symbol: object
    heads: list[Head]
    params: dict[str, ParamSource]
    op_counts: Counter
    layer_names: dict[str, str]  # TF op name → MXNet node name
    notes: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    classes: int | None = None

    def arg_params(self) -> list[str]:
        return [name for name, source in self.params.items() if source.kind == ARG]

    def aux_params(self) -> list[str]:
        return [name for name, source in self.params.items() if source.kind == AUX]


def variable_name(tensor) -> str | None:
    """Name of the TF variable a tensor reads (through read ops), or None: ``tf_variables.variable_name``."""
    return tf_variables.variable_name(tensor)


class Context:
    """State of one translation, handed to every translator."""

    def __init__(self, graph, images, ops, hints: dict | None = None):
        self.graph = graph
        self.images = images
        self.ops = ops
        self.data_ops = set(ops)
        self.hints = hints or {}
        self.sym: dict[str, object] = {}  # TF tensor name → MXNet symbol
        self.params: dict[str, ParamSource] = {}
        self.layer_names: dict[str, str] = {}
        self.used_names: set[str] = set()
        self.notes: list[str] = []
        # Producers that can still absorb a following op (conv/matmul + BiasAdd, Pad + conv).
        self.fusable: dict[str, object] = {}
        self.space_to_batch: dict[str, tuple] = {}  # SpaceToBatchND output → (input tensor, block, pads)

    # ----------------------------------------------------------- tensors

    def is_data(self, tensor) -> bool:
        """True for a float tensor produced on the data path (computed from the input)."""
        return tensor.op in self.data_ops and tensor.dtype.base_dtype.is_floating

    def input(self, op, index: int = 0):
        """The MXNet symbol of ``op.inputs[index]`` (a data-path tensor)."""
        tensor = op.inputs[index]
        if tensor.name in self.space_to_batch:
            raise NotTranslatable(f"reads the SpaceToBatchND output {tensor.name} directly; only a "
                                  "Conv2D/DepthwiseConv2dNative between SpaceToBatchND and BatchToSpaceND "
                                  "(a dilated convolution) is supported")
        if not self.is_data(tensor):
            raise NotTranslatable(f"input {index} ({tensor.name}) is not computed from the network input")
        return self.sym[tensor.name]

    def consumers(self, tensor) -> list:
        """Data-path ops that read ``tensor``."""
        return [reader for reader in tensor.consumers() if reader in self.data_ops]

    @staticmethod
    def shape(tensor) -> tuple[int, ...]:
        """TF's static shape (NHWC for 4-D); raises NotTranslatable when unknown."""
        if tensor.shape.rank is None or any(dim is None for dim in tensor.shape.as_list()):
            raise NotTranslatable(f"tensor {tensor.name} has no fully known static shape "
                                  f"({tensor.shape}); build the graph with a fixed input size")
        return tuple(int(dim) for dim in tensor.shape.as_list())

    def spatial(self, tensor) -> tuple[int, int]:
        shape = self.shape(tensor)
        if len(shape) != 4:
            raise NotTranslatable(f"expected a 4-D NHWC tensor, {tensor.name} has shape {shape}")
        return shape[1], shape[2]

    @staticmethod
    def const(tensor):
        """The value of a tensor computed from constants only, or None."""
        return tf_graph_facts.const_value(tensor)

    # ------------------------------------------------------------- names

    def name(self, op, scope: str | None = None) -> str:
        """A unique MXNet layer name for ``op``: its TF scope, as ``tf_reader`` names records."""
        candidates = [scope] if scope else []
        candidates += [tf_graph_facts.scope_of(op), collapse_scope(op.name)]
        for candidate in candidates:
            if candidate and candidate not in self.used_names:
                break
        else:
            base, index = collapse_scope(op.name), 1
            while f"{base}_{index}" in self.used_names:
                index += 1
            candidate = f"{base}_{index}"
        self.used_names.add(candidate)
        self.layer_names[op.name] = candidate
        return candidate

    # ------------------------------------------------------------ params

    def param(self, name: str, tensor, transform: str = "identity", kind: str = ARG, **transform_args) -> None:
        """Record that MXNet parameter ``name`` takes the (transformed) value of ``tensor``."""
        if name in self.params:
            raise NotTranslatable(f"parameter {name} is produced twice (layer names collide)")
        variable = variable_name(tensor)
        self.params[name] = ParamSource(name, kind, tensor.name, transform, tuple(sorted(transform_args.items())),
                                        variable, trainable=variable is not None)

    def variable(self, name: str, tensor, transform: str = "identity", kind: str = ARG):
        """An MXNet Variable holding the value of ``tensor``; frozen when TF has a constant there."""
        self.param(name, tensor, transform, kind)
        shape = self.shape(tensor)
        if transform == NHWC_BROADCAST:
            shape = nhwc_broadcast_to_nchw(np.empty(shape, dtype=np.uint8)).shape
        if not self.params[name].trainable:
            return mx.sym.Variable(name, shape=shape, lr_mult=0.0, wd_mult=0.0)
        return mx.sym.Variable(name, shape=shape)

    def operand(self, op, index: int, name: str, rank4: bool):
        """Input ``index`` of an elementwise op: a symbol, or a Python float for a scalar constant.

        A non-scalar constant or variable becomes an MXNet Variable named ``name``; broadcast
        against an NHWC tensor (``rank4``) it is moved to NCHW.
        """
        tensor = op.inputs[index]
        if self.is_data(tensor):
            return self.input(op, index)
        value = self.const(tensor)
        if value is not None and np.size(value) == 1 and variable_name(tensor) is None:
            return float(np.asarray(value).reshape(()))
        self.shape(tensor)  # a constant of unknown shape cannot be placed
        return self.variable(name, tensor, NHWC_BROADCAST if rank4 else "identity")


def translate_graph(graph, images, outputs, hints: dict | None = None) -> Translation:
    """Translate the ops between ``images`` and ``outputs`` into one MXNet symbol.

    Args:
        graph: the tf.Graph.
        images: the NHWC input placeholder (becomes the MXNet variable ``data``).
        outputs: TF tensors to reproduce; the first is the logits. The symbol's
            outputs are the logits and every other requested tensor that no other
            requested op consumes (predictions, auxiliary logits).
        hints: training-mode facts an inference graph does not show:
            ``{"dropout": {scope: keep_prob}, "bn_decay": {scope: decay}}``.

    Raises:
        UnsupportedOps: listing every op that could not be translated.
    """
    registry.load_all()
    ops = tf_graph_facts.data_ops(images, outputs)
    ctx = Context(graph, images, ops, hints)
    missing: dict[str, list[str]] = {}
    problems: list[tuple[str, str, str]] = []
    counts: Counter = Counter()
    for op in ops:
        translator = registry.lookup(op.type)
        if translator is None:
            missing.setdefault(op.type, []).append(collapse_scope(op.name))
            continue
        for tensor in op.inputs:
            if ctx.is_data(tensor) and tensor.name not in ctx.sym:
                # Downstream of an op that failed: go on with a stand-in, so that this op's own
                # attribute problems are reported too (the symbol is discarded anyway).
                ctx.sym[tensor.name] = mx.sym.Variable(f"untranslated:{tensor.name}")
        try:
            result = translator.function(ctx, op)
        except (NotTranslatable, PaddingError) as error:
            problems.append((op.type, collapse_scope(op.name), str(error)))
            continue
        if result is not None:
            ctx.sym[op.outputs[0].name] = result
        counts[op.type] += 1
    if missing or problems:
        raise UnsupportedOps(missing, problems)
    heads = _heads(ctx, outputs)
    symbols = [ctx.sym[head.tensor] for head in heads]
    symbol = symbols[0] if len(symbols) == 1 else mx.sym.Group(symbols)
    for head, output in zip(heads, symbol.list_outputs()):
        head.name = output
    used = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    params = {name: source for name, source in ctx.params.items() if name in used}
    absent = sorted(used - set(params) - {"data"})
    if absent:  # a translator forgot to record a parameter: a bug here, not in the user's graph
        raise AssertionError(f"MXNet parameters without a TF source: {absent[:5]}")
    return Translation(symbol, heads, params, counts, ctx.layer_names, ctx.notes)


def _heads(ctx: Context, outputs) -> list[Head]:
    requested = [t for t in outputs if ctx.is_data(t)]
    if not requested:
        raise NotTranslatable("none of the outputs is computed from the input")
    heads = [Head("", requested[0].name, "logits")]
    seen = {requested[0].name}
    for tensor in requested[1:]:
        if tensor.name in seen:
            continue
        seen.add(tensor.name)
        if not ctx.consumers(tensor):
            heads.append(Head("", tensor.name, "output"))
    return heads
