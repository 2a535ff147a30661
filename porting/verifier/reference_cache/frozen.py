"""The cached sides: a TF graph and an MXNet symbol frozen into plain data (no framework object)."""
from __future__ import annotations

import functools
import json
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path


#: How deep the lint walks from the logits along first inputs (``lint.head.tf_record_of_tensor``), plus one.
_LOGITS_CHAIN = 21
#: The porting package: its files are never the builder author's (and its content is part of every key).
_PACKAGE_DIR = Path(__file__).resolve().parents[2]
_LIBRARY_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep
                       for key in ("stdlib", "platstdlib", "purelib", "platlib")})


# ------------------------------------------------------------------ the cached TF side

@dataclass(frozen=True)
class FrozenFrame:
    """One frame of the stack that created an op (what ``op.traceback`` lists)."""

    filename: str
    lineno: int
    name: str


@dataclass(eq=False)
class FrozenShape:
    """A static shape as TF inferred it; ``dims`` None when the rank is unknown."""

    dims: tuple | None

    @property
    def rank(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    def as_list(self) -> list:
        if self.dims is None:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self.dims)


@dataclass(eq=False)
class FrozenTensor:
    """A tensor of the cached graph: its name, producer, static shape and the cached ops that read it."""

    name: str
    op: FrozenOp
    shape: FrozenShape
    readers: list = field(default_factory=list)

    def consumers(self) -> list:
        return list(self.readers)


@dataclass(eq=False)
class FrozenOp:
    """An op of the cached graph, compared by identity like a ``tf.Operation``."""

    name: str
    type: str
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    frames: tuple | None = None  # None: TF kept no traceback

    @property
    def traceback(self) -> tuple:
        if self.frames is None:
            raise ValueError(f"no traceback recorded for {self.name}")
        return self.frames


class FrozenGraph:
    """The ops of a TF graph that the passes read, by name (``get_operation_by_name``).

    Pickled flat (names instead of links): the links of a deep network would take pickle's
    recursion past Python's limit.
    """

    def __init__(self, ops: dict[str, FrozenOp], tensors: dict[str, FrozenTensor]):
        self.ops, self.tensors = ops, tensors

    def __getstate__(self) -> dict:
        return {"ops": [(op.name, op.type, op.frames, [t.name for t in op.inputs], [t.name for t in op.outputs])
                        for op in self.ops.values()],
                "tensors": [(t.name, t.op.name, t.op.type, t.shape.dims, [op.name for op in t.readers])
                            for t in self.tensors.values()]}

    def __setstate__(self, state: dict) -> None:
        self.ops = {name: FrozenOp(name, kind, frames=frames) for name, kind, frames, _, _ in state["ops"]}
        stubs: dict[str, FrozenOp] = {}
        self.tensors = {}
        for name, producer, kind, dims, _ in state["tensors"]:
            op = self.ops.get(producer) or stubs.setdefault(producer, FrozenOp(producer, kind))
            self.tensors[name] = FrozenTensor(name, op, FrozenShape(None if dims is None else tuple(dims)))
        for name, _, _, _, readers in state["tensors"]:
            self.tensors[name].readers = [self.ops[reader] for reader in readers]
        for name, _, _, inputs, outputs in state["ops"]:
            self.ops[name].inputs = [self.tensors[tensor] for tensor in inputs]
            self.ops[name].outputs = [self.tensors[tensor] for tensor in outputs]

    def get_operation_by_name(self, name: str) -> FrozenOp:
        try:
            return self.ops[name]
        except KeyError:
            raise KeyError(f"the cached TF graph holds no op {name!r}") from None

    def get_tensor_by_name(self, name: str) -> FrozenTensor:
        op_name, _, index = name.rpartition(":")
        return self.get_operation_by_name(op_name).outputs[int(index)]


@dataclass
class TransferFacts:
    """What the weight-transfer plan reads from the TF graph (``porting.verifier.weights.plan``), precomputed.

    ``part_roles``: op name -> the roles that op gives its record (``sources.tf_roles`` of that
    part alone; a record's roles are its parts' in order, so records the equivalences rewrite
    still find theirs); ``variables``: ``tf_variables.graph_variables``; ``owners``: variable ->
    ``sources.tf_owner``.
    """

    part_roles: dict
    variables: dict
    owners: dict

    def roles(self, record) -> dict:
        roles = {}
        for part in record.parts:
            roles.update(self.part_roles.get(part.name, {}))
        return roles


@dataclass
class CachedTfGraph:
    """A ``tf_reader.TfGraph`` as the cache holds it: the same fields, a ``FrozenGraph`` for ``graph``.

    Everything the shape comparison, the lint and the renderers read is here; nothing can
    run it (numeric parity needs the live graph).
    """

    graph: FrozenGraph
    images: FrozenTensor
    logits: FrozenTensor
    end_points: dict
    records: list
    tensors: dict = field(default_factory=dict)
    end_point_records: dict = field(default_factory=dict)
    is_training: bool | None = None
    #: Elements of the trainable variables (``tf_reader.trainable_parameter_count``).
    parameter_count: int = 0
    #: Source file -> the input size its module declares (``DEFAULT_IMAGE_SIZE``...), for the shape-comment lint.
    nominal_sizes: dict = field(default_factory=dict)
    #: The TF builder's ``__name__`` (the report's title names it).
    builder_name: str = "tf"
    #: What the weight transfer reads from the graph (numeric parity on a cached side).
    transfer_facts: TransferFacts | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)  # the tensors by name: the graph holds them
        state["images"], state["logits"] = self.images.name, self.logits.name
        state["end_points"] = {key: tensor.name for key, tensor in self.end_points.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        tensors = state["graph"].tensors
        state["images"], state["logits"] = tensors[state["images"]], tensors[state["logits"]]
        state["end_points"] = {key: tensors[name] for key, name in state["end_points"].items()}
        self.__dict__.update(state)


def freeze(tf_graph, builder_name: str, parameter_count: int, nominal_size=None) -> CachedTfGraph:
    """The ``CachedTfGraph`` of a live ``TfGraph``.

    Args:
        tf_graph: a ``tf_reader.TfGraph``.
        builder_name: the builder's ``__name__``.
        parameter_count: ``tf_reader.trainable_parameter_count(tf_graph)``.
        nominal_size: ``fn(path) -> (H, W) | None``, the nominal input size a user source file declares.
    """
    wanted = [tf_graph.images.op, tf_graph.logits.op]
    for record in tf_graph.records:
        wanted += [part.name for part in record.parts] + list(record.attrs.get("members", []) or [])
    wanted += [tensor.op for tensor in tf_graph.end_points.values() if hasattr(tensor, "op")]
    op = tf_graph.logits.op
    for _ in range(_LOGITS_CHAIN):  # the lint finds the logits' record along first inputs
        if not op.inputs:
            break
        op = op.inputs[0].op
        wanted.append(op)
    live = {}
    for item in wanted:
        try:
            item = tf_graph.graph.get_operation_by_name(item) if isinstance(item, str) else item
        except (KeyError, ValueError):
            continue
        live.setdefault(item.name, item)
    frozen = {name: FrozenOp(name, op.type, frames=_frames(op)) for name, op in live.items()}
    tensors: dict[str, FrozenTensor] = {}

    def tensor_of(tensor) -> FrozenTensor:
        if tensor.name not in tensors:
            producer = frozen.get(tensor.op.name) or FrozenOp(tensor.op.name, tensor.op.type)
            tensors[tensor.name] = FrozenTensor(tensor.name, producer, _shape(tensor))
        return tensors[tensor.name]

    for name, op in live.items():
        frozen[name].outputs = [tensor_of(tensor) for tensor in op.outputs]
    for name, op in live.items():
        frozen[name].inputs = [tensor_of(tensor) for tensor in op.inputs]
        for tensor in op.outputs:
            tensor_of(tensor).readers = [frozen[reader.name] for reader in tensor.consumers() if reader.name in frozen]
    end_points = {key: tensor_of(tensor) for key, tensor in tf_graph.end_points.items() if hasattr(tensor, "op")}
    files = {frame.filename for op in frozen.values() for frame in (op.frames or ())}
    sizes = {path: nominal_size(path) for path in sorted(files)} if nominal_size is not None else {}
    return CachedTfGraph(FrozenGraph(frozen, tensors), tensor_of(tf_graph.images), tensor_of(tf_graph.logits),
                         end_points, list(tf_graph.records), dict(tf_graph.tensors), dict(tf_graph.end_point_records),
                         tf_graph.is_training, parameter_count, {k: v for k, v in sizes.items() if v is not None},
                         builder_name, transfer_facts(tf_graph))


def transfer_facts(tf_graph) -> TransferFacts:
    """The ``TransferFacts`` of a live ``TfGraph``."""
    from porting.core.records import LayerRecord
    from porting.frameworks import tf_variables
    from porting.verifier.weights import sources

    part_roles = {}
    for record in tf_graph.records:
        for part in record.parts:
            alone = LayerRecord(record.name, record.kind, record.op, (), (), parts=(part,))
            part_roles[part.name] = sources.tf_roles(tf_graph.graph, alone)
    variables = tf_variables.graph_variables(tf_graph.graph)
    part_owner: dict[str, str] = {}
    for record in tf_graph.records:
        for part in record.parts:
            part_owner.setdefault(part.name, record.name)
    owners = {}
    for name in variables:
        readers = tf_variables.variable_readers(tf_graph.graph.get_operation_by_name(name))
        owners[name] = next((part_owner[reader.name] for reader in readers if reader.name in part_owner), None)
    return TransferFacts(part_roles, variables, owners)


def _shape(tensor) -> FrozenShape:
    shape = tensor.shape
    return FrozenShape(None if shape.rank is None else tuple(shape.as_list()))


def _frames(op) -> tuple | None:
    """The op's creation stack from ``tf_reader.build_graph`` on (the caller's frames above it never matter),
    without the frames of TF, slim, the standard library and this package, which the lint never reads."""
    try:
        frames = list(op.traceback)
    except Exception:  # noqa: BLE001  (TF kept none)
        return None
    start = 0
    for index, frame in enumerate(frames):
        if os.path.basename(frame.filename) == "tf_reader.py" and frame.name == "build_graph":
            start = index
    return tuple(FrozenFrame(sys.intern(frame.filename), int(frame.lineno), sys.intern(frame.name))
                 for index, frame in enumerate(frames[start:]) if index == 0 or not _library_file(frame.filename))


@functools.lru_cache(maxsize=4096)
def _library_file(filename: str) -> bool:
    """A file of an installed package, the standard library or ``porting``: never the builder author's."""
    real = os.path.realpath(filename)
    return ("site-packages" in real or "dist-packages" in real or real.startswith(_LIBRARY_DIRS)
            or real.startswith(str(_PACKAGE_DIR) + os.sep))


# ------------------------------------------------------------------ the cached MX side

class FrozenSymbol:
    """An MXNet symbol as the cache holds it: its JSON graph, which is all the lint reads (``tojson``)."""

    def __init__(self, graph: dict):
        self.graph = graph

    def tojson(self) -> str:
        return json.dumps(self.graph)


@dataclass
class CachedMxGraph:
    """A ``mx_reader.MxGraph`` as the cache holds it: the same fields, a ``FrozenSymbol`` for ``symbol``.

    The shape comparison, the lint and the renderers read it as they read the live one;
    nothing can run it (numeric parity reads the MX forward's stored outputs, or reads the
    symbol live again: ``MxSide.live_graph``).
    """

    symbol: FrozenSymbol
    records: list
    outputs: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    arg_shapes: dict = field(default_factory=dict)
    aux_shapes: dict = field(default_factory=dict)
    params: None = None  # a side with its own parameters is never cached
    source: str = ""
    notes: list = field(default_factory=list)
    #: Elements of the learnable arguments (``mx_reader.learnable_parameter_count``).
    parameter_count: int = 0
    #: The MX builder's ``__name__`` (the report's title names it).
    builder_name: str = "mx"


def freeze_mx(mx_graph, builder_name: str, parameter_count: int) -> CachedMxGraph:
    """The ``CachedMxGraph`` of a live ``mx_reader.MxGraph`` read from a builder's symbol."""
    from porting.frameworks.mx_attrs import symbol_graph

    graph = symbol_graph(mx_graph.symbol)
    graph["nodes"] = mx_graph.nodes  # the same entries (parsed from the same JSON): stored once
    return CachedMxGraph(FrozenSymbol(graph), list(mx_graph.records), dict(mx_graph.outputs), mx_graph.nodes,
                         dict(mx_graph.arg_shapes), dict(mx_graph.aux_shapes), None, mx_graph.source,
                         list(mx_graph.notes), parameter_count, builder_name)

