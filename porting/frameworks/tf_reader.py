"""Read a TensorFlow graph into framework-neutral layer records.

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
from porting.core.graph_walk import Node, collapse_scope, fold
from porting.padding import PaddingError, same_pads
from porting.core.records import Kind, LayerRecord, nhwc_to_nchw

tf = compat.import_tf()

_ACTIVATIONS = {"Relu": "relu", "Relu6": "relu6", "Elu": "elu", "Selu": "selu", "Sigmoid": "sigmoid",
                "Tanh": "tanh", "LeakyRelu": "leaky_relu", "Softplus": "softrelu", "Softsign": "softsign"}
_PASSTHROUGH = {"Identity", "StopGradient", "PreventGradient", "Snapshot", "EnsureShape", "CheckNumerics"}
_OP_SUFFIXES = {"Conv2D", "MaxPool", "AvgPool", "MatMul", "BiasAdd", "FusedBatchNormV3", "FusedBatchNorm",
                "DepthwiseConv2dNative", "depthwise", "Squeeze", "Reshape", "Softmax", "LRN", "Pad"}


class BuilderError(Exception):
    """The TF builder could not be called or broke its contract."""


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
    with graph.as_default(), compat.fast_graph_building():
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
    return graph, images, logits, end_points, (kwargs.get("is_training") if accepts else None)


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
    """Elements of the graph's trainable variables (what slim's model summary counts)."""
    variables = graph.graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
    return sum(int(np.prod(variable.shape.as_list())) for variable in variables)


def _is_float(tensor) -> bool:
    return tensor.dtype.base_dtype.is_floating


def _data_ops(images, outputs) -> list:
    """Ops on a float path from the input placeholder to the outputs, in creation order."""
    forward = {images.op}
    stack = [images.op]
    while stack:
        op = stack.pop()
        for tensor in op.outputs:
            if not _is_float(tensor):
                continue
            for reader in tensor.consumers():
                if reader not in forward and any(_is_float(o) for o in reader.outputs):
                    forward.add(reader)
                    stack.append(reader)
    backward = set()
    stack = [t.op for t in outputs]
    while stack:
        op = stack.pop()
        if op in backward or op not in forward:
            continue
        backward.add(op)
        stack.extend(t.op for t in op.inputs)
    return [op for op in images.graph.get_operations() if op in backward]


def _const(tensor):
    """The value of a tensor computed from constants only, or None."""
    value = tf.get_static_value(tensor)
    if value is not None:
        return np.asarray(value)
    op = tensor.op
    if op.type in ("Identity", "ReadVariableOp") and op.inputs:
        return _const(op.inputs[0]) if op.type == "Identity" else None
    if op.type in ("Sub", "Mul", "AddV2", "Add", "RealDiv") and len(op.inputs) == 2:
        a, b = _const(op.inputs[0]), _const(op.inputs[1])
        if a is None or b is None:
            return None
        return {"Sub": np.subtract, "Mul": np.multiply, "AddV2": np.add, "Add": np.add,
                "RealDiv": np.divide}[op.type](a, b)
    return None


def _variable_scope(tensor) -> str | None:
    """'Net/Conv2d_1a_3x3' for the weights variable read by this tensor, if any."""
    op = tensor.op
    for _ in range(4):
        if op.type in ("VarHandleOp", "VariableV2", "Variable"):
            return op.name.rsplit("/", 1)[0]
        if not op.inputs:
            return None
        op = op.inputs[0].op
    return None


def _scope_of(op, data_inputs) -> str:
    weights = None
    if op.type in ("Conv2D", "DepthwiseConv2dNative", "MatMul") and len(op.inputs) > 1:
        weights = _variable_scope(op.inputs[1])
    if weights:
        return weights
    parts = op.name.split("/")
    if len(parts) > 1 and (parts[-1] in _OP_SUFFIXES or parts[-1].split("_")[0] in _OP_SUFFIXES):
        parts = parts[:-1]
    return collapse_scope("/".join(parts))


def _dropout_scope(op) -> str | None:
    parts = op.name.split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower().startswith("dropout"):
            return "/".join(parts[: index + 1])
    return None


def _pair(values) -> tuple[int, int]:
    return int(values[1]), int(values[2])


def _conv_pads(op, in_nchw, kernel, stride, dilation) -> tuple[int, int, int, int] | None:
    padding = op.get_attr("padding").decode()
    if padding == "VALID":
        return (0, 0, 0, 0)
    if padding == "EXPLICIT":
        explicit = list(op.get_attr("explicit_paddings"))
        return tuple(int(v) for v in explicit[2:6])
    try:
        top, bottom = same_pads(in_nchw[2], kernel[0], stride[0], dilation[0])
        left, right = same_pads(in_nchw[3], kernel[1], stride[1], dilation[1])
    except PaddingError:
        return None
    return (top, bottom, left, right)


def _node(op, data, in_nchw) -> Node:
    """Classify one TF op on the data path."""
    data_inputs = [t.op.name for t in op.inputs if t.op in data and _is_float(t)]
    shape = nhwc_to_nchw(op.outputs[0].shape.as_list()) if op.outputs and op.outputs[0].shape.rank is not None else ()
    node = Node(name=op.name, scope=_scope_of(op, data_inputs), kind=Kind.OTHER, op=op.type,
                inputs=data_inputs, shape=shape, in_shape=in_nchw)
    kind = op.type
    if kind == "Placeholder":
        node.kind = Kind.INPUT
    elif kind in ("Conv2D", "DepthwiseConv2dNative"):
        filt = op.inputs[1].shape.as_list()
        node.kind = Kind.CONV if kind == "Conv2D" else Kind.DWCONV
        node.kernel = (int(filt[0]), int(filt[1]))
        node.stride = _pair(op.get_attr("strides"))
        node.dilation = _pair(op.get_attr("dilations"))
        node.pads = _conv_pads(op, in_nchw, node.kernel, node.stride, node.dilation)
        node.attrs.update(padding=op.get_attr("padding").decode(), data_format=op.get_attr("data_format").decode(),
                          weight_shape=tuple(int(v) for v in filt), has_bias=False)
        if kind == "DepthwiseConv2dNative":
            node.attrs["multiplier"] = int(filt[3])
    elif kind in ("MaxPool", "AvgPool"):
        node.kind = Kind.POOL_MAX if kind == "MaxPool" else Kind.POOL_AVG
        node.kernel = _pair(op.get_attr("ksize"))
        node.stride = _pair(op.get_attr("strides"))
        node.dilation = (1, 1)
        node.pads = _conv_pads(op, in_nchw, node.kernel, node.stride, node.dilation)
        padding = op.get_attr("padding").decode()
        node.attrs.update(padding=padding, data_format=op.get_attr("data_format").decode())
        if kind == "AvgPool":
            node.attrs["count_include_pad"] = False  # TF never counts padded cells
        else:
            node.attrs["pad_value"] = float("-inf")
    elif kind in ("FusedBatchNormV3", "FusedBatchNorm", "FusedBatchNormV2"):
        node.kind = Kind.BN
        gamma = _const(op.inputs[1])
        beta = _const(op.inputs[2])
        node.attrs.update(eps=float(op.get_attr("epsilon")), is_training=bool(op.get_attr("is_training")),
                          scale=not (gamma is not None and np.all(gamma == 1)),
                          center=not (beta is not None and np.all(beta == 0)),
                          momentum=_bn_decay(op))
        node.attrs["has_moving_stats"] = _reads_variable(op.inputs[3]) or node.attrs["momentum"] is not None
    elif kind in _ACTIVATIONS:
        node.kind = Kind.ACT
        node.attrs["act"] = _ACTIVATIONS[kind]
        if kind == "LeakyRelu":
            node.attrs["alpha"] = float(op.get_attr("alpha"))
    elif kind == "MatMul":
        node.kind = Kind.FC
        node.attrs.update(transpose_b=bool(op.get_attr("transpose_b")),
                          weight_shape=tuple(op.inputs[1].shape.as_list()), has_bias=False)
    elif kind == "BiasAdd":
        node.kind = Kind.BIAS
    elif kind in ("ConcatV2", "Concat"):
        node.kind = Kind.CONCAT
        axis = _const(op.inputs[-1] if kind == "ConcatV2" else op.inputs[0])
        rank = op.outputs[0].shape.rank
        node.attrs["axis"] = _nchw_axis(int(axis), rank) if axis is not None else None
    elif kind in ("AddV2", "Add", "AddN"):
        node.kind = Kind.ADD if len(data_inputs) >= 2 else Kind.BIAS
    elif kind == "Mul":
        if len(data_inputs) >= 2:
            node.kind = Kind.MUL
        else:
            other = [t for t in op.inputs if t.op not in data]
            value = _const(other[0]) if other else None
            node.kind = Kind.SCALE
            node.attrs["scale"] = float(value) if value is not None and np.size(value) == 1 else None
    elif kind in ("Pad", "PadV2", "MirrorPad"):
        node.kind = Kind.PAD
        paddings = _const(op.inputs[1])
        if paddings is not None and paddings.shape == (4, 2):
            node.pads = (int(paddings[1][0]), int(paddings[1][1]), int(paddings[2][0]), int(paddings[2][1]))
        value = _const(op.inputs[2]) if kind == "PadV2" else np.float32(0)
        node.attrs["pad_value"] = float(value) if value is not None else None
        node.attrs["mode"] = op.get_attr("mode").decode().lower() if kind == "MirrorPad" else "constant"
    elif kind in ("Reshape", "Squeeze"):
        node.kind = Kind.FLATTEN if len(shape) == 2 else Kind.RESHAPE
        if in_nchw is not None and len(in_nchw) == 4:
            node.attrs["source_layout"] = "NHWC"
            node.attrs["spatial"] = in_nchw[2] * in_nchw[3] > 1
    elif kind == "Mean":
        axes = _const(op.inputs[1])
        rank = op.inputs[0].shape.rank
        node.kind = Kind.MEAN
        node.attrs["axis"] = tuple(sorted(_nchw_axis(int(a), rank) for a in np.atleast_1d(axes))) if axes is not None else None
        node.attrs["keepdims"] = bool(op.get_attr("keep_dims"))
    elif kind in ("Softmax", "LogSoftmax"):
        node.kind = Kind.SOFTMAX
        rank = op.outputs[0].shape.rank
        node.attrs["axis"] = _nchw_axis(rank - 1, rank)
        node.attrs["log"] = kind == "LogSoftmax"
    elif kind == "LRN":
        node.kind = Kind.LRN
        node.attrs.update(depth_radius=int(op.get_attr("depth_radius")), bias=float(op.get_attr("bias")),
                          alpha=float(op.get_attr("alpha")), beta=float(op.get_attr("beta")))
    return node


def _nchw_axis(axis: int, rank: int | None) -> int:
    if rank != 4:
        return axis if axis >= 0 or rank is None else axis + rank
    axis = axis + 4 if axis < 0 else axis
    return {0: 0, 1: 2, 2: 3, 3: 1}[axis]


def _reads_variable(tensor) -> bool:
    return _variable_scope(tensor) is not None


def _bn_decay(op) -> float | None:
    """slim's batch-norm decay, visible only in a training graph (moving-average updates)."""
    for reader in op.outputs[1].consumers():
        # moving_mean -= (moving_mean - batch_mean) * (1 - decay)
        for mul in reader.outputs[0].consumers() if reader.outputs else ():
            if mul.type != "Mul":
                continue
            for tensor in mul.inputs:
                if tensor.op is reader:
                    continue
                one_minus = _const(tensor)
                if one_minus is not None and np.size(one_minus) == 1:
                    return float(round(1.0 - float(one_minus), 10))
    return None


def _dropout_node(scope: str, ops: list, data) -> Node:
    inside = set(ops)
    inputs = []
    for op in ops:
        for tensor in op.inputs:
            if tensor.op in data and tensor.op not in inside and _is_float(tensor):
                if tensor.op.name not in inputs:
                    inputs.append(tensor.op.name)
    last = ops[-1]
    keep_prob = None
    graph = last.graph
    for op in graph.get_operations():
        if op.name.startswith(scope + "/") and op.type == "GreaterEqual":
            rate = _const(op.inputs[1])
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
    ops = _data_ops(images, outputs)
    data = set(ops)
    nodes: list[Node] = []
    alias: dict[str, str] = {}  # passthrough op → the op it forwards
    dropout_groups: dict[str, list] = {}
    for op in ops:
        scope = _dropout_scope(op)
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
        if op.type in _PASSTHROUGH or op.type == "SpaceToBatchND":
            source = [t.op.name for t in op.inputs if t.op in data]
            if source:
                alias[op.name] = alias.get(source[0], source[0])
                if op.type == "SpaceToBatchND":
                    space_to_batch[op.name] = op
                continue
        if op.type == "BatchToSpaceND" and _undo_space_to_batch(op, nodes_by_name, alias):
            continue
        first = next((t for t in op.inputs if t.op in data and _is_float(t)), None)
        in_nchw = nhwc_to_nchw(first.shape.as_list()) if first is not None and first.shape.rank is not None else None
        if first is not None and first.op.name in space_to_batch:
            # nn.convolution's dilation: SpaceToBatchND → Conv2D → BatchToSpaceND.
            outer = space_to_batch[first.op.name].inputs[0]
            in_nchw = nhwc_to_nchw(outer.shape.as_list())
        node = _node(op, data, in_nchw)
        if first is not None and first.op.name in space_to_batch:
            block = _const(space_to_batch[first.op.name].inputs[1])
            paddings = _const(space_to_batch[first.op.name].inputs[2])
            node.dilation = tuple(int(v) for v in block)
            node.attrs["space_to_batch_pads"] = (int(paddings[0][0]), int(paddings[1][0]))
        node.inputs = [alias.get(name, name) for name in node.inputs]
        nodes.append(node)
        nodes_by_name[node.name] = node
    keep = {alias.get(t.op.name, t.op.name) for t in outputs}
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for name in node.inputs:
            consumers.setdefault(name, [])
            if node.name not in consumers[name]:
                consumers[name].append(node.name)
    records = fold(nodes, consumers, keep)
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
