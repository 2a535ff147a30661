"""Read a TensorFlow graph into framework-neutral layer records.

Each op on the data path becomes a ``graph_walk.Node`` filled by the reader registered
for its op type (``tf_op_readers/<family>.py``); patterns that span several ops are
handled here: pass-through ops, dropout scopes (one dropout node per scope) and
``nn.convolution``'s SpaceToBatchND -> conv -> BatchToSpaceND dilation. Then
``graph_walk.fold`` groups the nodes into records.

The TF builder contract: ``fn(images, num_classes) -> (logits, end_points)``,
called inside a fresh ``tf.Graph`` in graph mode with an NHWC float32
placeholder. If it accepts ``is_training`` it is passed explicitly, so the
caller chooses inference (numeric parity) or training (dropout and batch-norm
decay become visible to the lint).

This is the only module that converts NHWC shapes to NCHW.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from porting import compat
from porting.core.graph_walk import Node, collapse_scope, consumer_map, fold
from porting.core.records import Kind, LayerRecord, nhwc_to_nchw
from porting.frameworks import keras_models, tf_variables
from porting.frameworks.errors import BuilderError
from porting.frameworks.tf_graph_facts import const_value, data_ops, dropout_scope, is_float, scope_of
from porting.frameworks.tf_op_readers import TF_READERS
from porting.padding import same_pads

tf = compat.import_tf()

#: Ops that forward their input unchanged: the reader sees through them.
_PASSTHROUGH = {"Identity", "StopGradient", "PreventGradient", "Snapshot", "EnsureShape", "CheckNumerics"}


@dataclass
class TfGraph:
    """A built TF graph and its records."""

    graph: object
    images: object  # the input placeholder
    logits: object
    end_points: dict  # end-point name -> tensor
    records: list[LayerRecord]
    tensors: dict = field(default_factory=dict)  # record name -> output tensor name
    end_point_records: dict = field(default_factory=dict)  # end-point name -> record name
    is_training: bool | None = None
    #: True for a TF side read from a model file (``tf_files``): its weights are the graph's
    #: frozen constants, which numeric parity runs with instead of seeded values.
    own_weights: bool = False


def build_graph(builder, size: tuple[int, int], num_classes: int, batch: int = 1,
                is_training: bool | None = False):
    """Call the builder in a fresh graph; return (graph, images, logits, end_points, is_training)."""
    graph = tf.Graph()
    kwargs = {}
    try:
        accepts = "is_training" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts and is_training is not None:
        kwargs["is_training"] = is_training
    with graph.as_default(), compat.fast_graph_building(), keras_models.learning_phase(is_training):
        images = tf.compat.v1.placeholder(tf.float32, [batch, size[0], size[1], 3], name="images")
        try:
            result = builder(images, num_classes, **kwargs)
        except Exception as error:  # the user's code: report it with context
            raise BuilderError(f"the TF builder raised {type(error).__name__}: {error}") from error
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise BuilderError("the TF builder must return (logits, end_points) with end_points a dict; "
                           f"got {type(result).__name__}")
    logits, end_points = result
    if not isinstance(logits, tf.Tensor):
        raise BuilderError(f"the TF builder's logits must be a tf.Tensor, got {type(logits).__name__}")
    _check_depends_on_images(builder, images, logits)
    return graph, images, logits, end_points, (kwargs.get("is_training") if accepts else None)


def _check_depends_on_images(builder, images, logits) -> None:
    """The contract's core: the logits are computed from the ``images`` placeholder's values."""
    name = getattr(builder, "__name__", type(builder).__name__)
    expected = ("expected fn(images, num_classes) -> (logits, end_points) to build the network on the "
                "`images` placeholder it is given")
    if logits.graph is not images.graph:
        raise BuilderError(f"the TF builder {name!r} returned logits from another graph than the one it was "
                           f"called in; {expected}")
    if not _reads(logits, images.op):
        raise BuilderError(f"the TF builder {name!r} returned logits ({logits.op.name}) that do not depend on "
                           f"`images`; {expected}")


def _reads(tensor, source_op) -> bool:
    """Whether ``tensor`` is computed from ``source_op``'s values (a walk back along float inputs)."""
    seen, stack = set(), [tensor.op]
    while stack:
        op = stack.pop()
        if op is source_op:
            return True
        if op not in seen:
            seen.add(op)
            stack.extend(t.op for t in op.inputs if is_float(t))
    return False


def read_graph(builder, size: tuple[int, int], num_classes: int, batch: int = 1,
               is_training: bool | None = False) -> TfGraph:
    """Build the TF side and reduce it to layer records."""
    graph, images, logits, end_points, mode = build_graph(builder, size, num_classes, batch, is_training)
    outputs = [logits] + [t for t in end_points.values() if isinstance(t, tf.Tensor)]
    records, tensors, owner = records_from_graph(graph, images, outputs)
    end_point_records = {}
    for key, tensor in end_points.items():
        if isinstance(tensor, tf.Tensor) and tensor.op.name in owner:
            end_point_records[key] = owner[tensor.op.name]
    return TfGraph(graph, images, logits, end_points, records, tensors, end_point_records, mode)


def trainable_parameter_count(graph: TfGraph) -> int:
    """Elements of the graph's trainable variables (what slim's model summary counts).

    A frozen graph has no variables: its weight constants count, less the batch norms'
    moving statistics (which are not trained).
    """
    if graph.own_weights:
        moving = {tf_variables.variable_name(op.inputs[index]) for op in graph.graph.get_operations()
                  if op.type.startswith("FusedBatchNorm") for index in (3, 4)}
        return sum(int(np.prod(shape)) for name, shape in tf_variables.graph_variables(graph.graph).items()
                   if name not in moving)
    variables = graph.graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
    return sum(int(np.prod(variable.shape.as_list())) for variable in variables)


def _node(op, data, in_nchw) -> Node:
    """One TF op on the data path as a ``Node``: shapes and inputs here, the rest by its op reader."""
    data_inputs = [t.op.name for t in op.inputs if t.op in data and is_float(t)]
    shape = nhwc_to_nchw(op.outputs[0].shape.as_list()) if op.outputs and op.outputs[0].shape.rank is not None else ()
    node = Node(name=op.name, scope=scope_of(op), kind=Kind.OTHER, op=op.type, inputs=data_inputs, shape=shape,
                in_shape=in_nchw)
    reader = TF_READERS.lookup(op.type)
    if reader is not None:
        reader(node, op, data)
    return node


#: Additions of a constant that leave their input unchanged when the constant is zero. (Not
#: ``x * 1``: a residual scale of 1.0, slim's last block8, is a layer both sides write.)
_NEUTRAL = {"Add": 0.0, "AddV2": 0.0, "Sub": 0.0}


def _neutral_arithmetic(op, data) -> bool:
    """``x + 0`` or ``x - 0`` with a constant zero (not a weight): a pass-through.

    Keras' ``Rescaling(scale, offset=0.0)`` adds its zero offset as an op of its own.
    """
    if op.type not in _NEUTRAL or len(op.inputs) != 2:
        return False
    data_inputs = [index for index, tensor in enumerate(op.inputs) if tensor.op in data and is_float(tensor)]
    if len(data_inputs) != 1 or (op.type == "Sub" and data_inputs != [0]):
        return False
    operand, other = op.inputs[data_inputs[0]], op.inputs[1 - data_inputs[0]]
    if tf_variables.reads_variable(other) or operand.shape != op.outputs[0].shape:
        return False
    value = const_value(other)
    return value is not None and bool(np.all(value == _NEUTRAL[op.type]))


def _dropout_node(scope: str, ops: list, data) -> Node:
    inside = set(ops)
    inputs = []
    for op in ops:
        for tensor in op.inputs:
            if tensor.op in data and tensor.op not in inside and is_float(tensor):
                if tensor.op.name not in inputs:
                    inputs.append(tensor.op.name)
    last = ops[-1]
    keep_prob = None
    graph = last.graph
    for op in graph.get_operations():
        if op.name.startswith(scope + "/") and op.type == "GreaterEqual":
            rate = const_value(op.inputs[1])
            if rate is not None:
                keep_prob = float(round(1.0 - float(rate), 10))
    node = Node(name=last.name, scope=collapse_scope(scope), kind=Kind.DROPOUT, op="Dropout",
                inputs=inputs, shape=nhwc_to_nchw(last.outputs[0].shape.as_list()))
    node.attrs["keep_prob"] = keep_prob
    node.attrs["visible"] = keep_prob is not None
    node.attrs["members"] = [op.name for op in ops]
    return node


def _undo_space_to_batch(op, nodes_by_name, alias) -> bool:
    """Give the dilated conv inside SpaceToBatchND/BatchToSpaceND its real shape and pads."""
    source = alias.get(op.inputs[0].op.name, op.inputs[0].op.name)
    node = nodes_by_name.get(source)
    if node is None or "space_to_batch_pads" not in node.attrs:
        return False
    node.shape = nhwc_to_nchw(op.outputs[0].shape.as_list())
    befores = node.attrs.pop("space_to_batch_pads")
    pads = []
    for axis in range(2):
        size, out = node.in_shape[2 + axis], node.shape[2 + axis]
        span = (node.kernel[axis] - 1) * node.dilation[axis] + 1
        pads += [befores[axis], max((out - 1) * node.stride[axis] + span - size - befores[axis], 0)]
    node.pads = tuple(pads)
    same = all(same_pads(node.in_shape[2 + a], node.kernel[a], node.stride[a], node.dilation[a])
               == (pads[2 * a], pads[2 * a + 1]) for a in range(2))
    node.attrs["padding"] = "SAME" if same else "VALID" if not any(pads) else "EXPLICIT"
    alias[op.name] = node.name
    return True


def records_from_graph(graph, images, outputs):
    """Records of every layer between ``images`` and ``outputs``.

    Returns:
        (records, tensors, owner): records in canonical order; record name →
        output tensor name; op name → record name.
    """
    ops = data_ops(images, outputs)
    data = set(ops)
    nodes: list[Node] = []
    alias: dict[str, str] = {}  # passthrough op → the op it forwards
    dropout_groups: dict[str, list] = {}
    for op in ops:
        scope = dropout_scope(op)
        if scope is not None and op.type != "Placeholder":
            dropout_groups.setdefault(scope, []).append(op)
    dropout_members = {op.name: scope for scope, members in dropout_groups.items() for op in members}
    emitted_dropouts: set[str] = set()
    space_to_batch: dict[str, object] = {}
    nodes_by_name: dict[str, Node] = {}
    for op in ops:
        if op.name in dropout_members:
            scope = dropout_members[op.name]
            if scope not in emitted_dropouts:
                emitted_dropouts.add(scope)
                node = _dropout_node(scope, dropout_groups[scope], data)
                node.inputs = [alias.get(name, name) for name in node.inputs]
                nodes.append(node)
                for member in dropout_groups[scope]:
                    if member.name != node.name:
                        alias[member.name] = node.name
            continue
        if op.type in _PASSTHROUGH or op.type == "SpaceToBatchND" or _neutral_arithmetic(op, data):
            source = [t.op.name for t in op.inputs if t.op in data]
            if source:
                alias[op.name] = alias.get(source[0], source[0])
                if op.type == "SpaceToBatchND":
                    space_to_batch[op.name] = op
                continue
        if op.type == "BatchToSpaceND" and _undo_space_to_batch(op, nodes_by_name, alias):
            continue
        first = next((t for t in op.inputs if t.op in data and is_float(t)), None)
        in_nchw = nhwc_to_nchw(first.shape.as_list()) if first is not None and first.shape.rank is not None else None
        if first is not None and first.op.name in space_to_batch:
            # nn.convolution's dilation: SpaceToBatchND → Conv2D → BatchToSpaceND.
            outer = space_to_batch[first.op.name].inputs[0]
            in_nchw = nhwc_to_nchw(outer.shape.as_list())
        node = _node(op, data, in_nchw)
        if first is not None and first.op.name in space_to_batch:
            block = const_value(space_to_batch[first.op.name].inputs[1])
            paddings = const_value(space_to_batch[first.op.name].inputs[2])
            node.dilation = tuple(int(v) for v in block)
            node.attrs["space_to_batch_pads"] = (int(paddings[0][0]), int(paddings[1][0]))
        node.inputs = [alias.get(name, name) for name in node.inputs]
        nodes.append(node)
        nodes_by_name[node.name] = node
    keep = {alias.get(t.op.name, t.op.name) for t in outputs}
    records = fold(nodes, consumer_map(nodes), keep)
    node_owner = {}
    for record in records:
        for part in record.parts:
            node_owner[part.name] = record.name
    owner = {}
    for op in ops:
        target = alias.get(op.name, op.name)
        while target in alias:
            target = alias[target]
        if target in node_owner:
            owner[op.name] = node_owner[target]
    tensors = {record.name: graph.get_operation_by_name(record.attrs["output_node"]).outputs[0].name
               for record in records}
    return records, tensors, owner
