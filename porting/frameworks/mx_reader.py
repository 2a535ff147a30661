"""Read an MXNet symbol into framework-neutral layer records.

The MX builder contract: ``fn(num_classes) -> mx.sym.Symbol`` whose input
variable is ``data`` (NCHW). Shapes come from ``infer_shape`` over
``get_internals()``, so every intermediate layer has one, not only the outputs.
"""
from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field

from porting import compat
from porting.core.graph_walk import Node, fold
from porting.core.records import Kind, LayerRecord

mx = compat.import_mx()

_PASSTHROUGH = {"_copy", "identity", "BlockGrad", "stop_gradient", "MakeLoss", "make_loss"}
_ADD = {"elemwise_add", "_Plus", "_plus", "broadcast_add", "add_n", "ElementWiseSum", "_add"}
_MUL = {"elemwise_mul", "broadcast_mul", "_Mul", "_mul"}
_SCALE = {"_mul_scalar", "_MulScalar"}
_SOFTMAX = {"softmax", "SoftmaxOutput", "SoftmaxActivation", "log_softmax", "Softmax"}


class SymbolError(Exception):
    """The MX builder could not be called, broke its contract, or its shapes do not infer."""


@dataclass
class MxGraph:
    """An MXNet symbol and its records."""

    symbol: object
    records: list[LayerRecord]
    outputs: dict = field(default_factory=dict)  # record name -> internal output name
    nodes: list = field(default_factory=list)  # the symbol's JSON nodes
    arg_shapes: dict = field(default_factory=dict)
    aux_shapes: dict = field(default_factory=dict)


def build_symbol(builder, num_classes: int):
    """Call the MX builder and check the contract."""
    try:
        symbol = builder(num_classes)
    except Exception as error:
        raise SymbolError(f"the MX builder raised {type(error).__name__}: {error}") from error
    if not isinstance(symbol, mx.sym.Symbol):
        raise SymbolError(f"the MX builder must return an mx.sym.Symbol, got {type(symbol).__name__}")
    if "data" not in symbol.list_arguments():
        raise SymbolError("the MX builder's symbol has no input variable named 'data' "
                          f"(arguments start with {symbol.list_arguments()[:3]})")
    return symbol


def read_symbol(builder_or_symbol, size: tuple[int, int], num_classes: int, batch: int = 1) -> MxGraph:
    """Build (or take) the MX symbol and reduce it to layer records."""
    if isinstance(builder_or_symbol, mx.sym.Symbol):
        symbol = builder_or_symbol
    else:
        symbol = build_symbol(builder_or_symbol, num_classes)
    return records_from_symbol(symbol, (batch, 3, size[0], size[1]))


def learnable_parameter_count(graph: MxGraph) -> int:
    """Elements of the symbol's learnable arguments, counted as slim counts trainable variables.

    Every argument except the inputs (``data``, names ending in ``label``), arguments
    frozen with ``lr_mult`` 0, and the gammas that BatchNorm pins at 1 (``fix_gamma``,
    MXNet's default), which the framework creates but never updates.
    """
    entries = graph.nodes
    skipped = {"data"}
    for entry in entries:
        attrs = entry.get("attrs") or entry.get("attr") or {}
        if entry["op"] == "null" and float(_parse(str(attrs.get("__lr_mult__", "1")))) == 0.0:
            skipped.add(entry["name"])
        if entry["op"] == "BatchNorm" and _flag(attrs, "fix_gamma", True) and len(entry["inputs"]) > 1:
            skipped.add(entries[entry["inputs"][1][0]]["name"])
    return sum(math.prod(int(dim) for dim in shape) for name, shape in graph.arg_shapes.items()
               if shape is not None and name not in skipped and not name.endswith("label"))


def _parse(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        lowered = value.strip()
        if lowered in ("True", "true"):
            return True
        if lowered in ("False", "false"):
            return False
        if lowered in ("None", "none"):
            return None
        return lowered


def _tuple(value, default, ndim=2) -> tuple[int, ...]:
    if value is None:
        return default
    parsed = _parse(value) if isinstance(value, str) else value
    if isinstance(parsed, int):
        return (parsed,) * ndim
    parsed = tuple(int(v) for v in parsed)
    return parsed if parsed else default


def _flag(attrs: dict, key: str, default: bool) -> bool:
    if key not in attrs:
        return default
    value = _parse(attrs[key])
    return bool(value) if value is not None else default


def _float(attrs: dict, key: str, default: float | None) -> float | None:
    return float(_parse(attrs[key])) if key in attrs else default


def _infer(symbol, data_shape):
    internals = symbol.get_internals()
    try:
        arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=data_shape)
    except Exception as error:  # MXNetError carries the failing op in its text
        first = str(error).strip().splitlines()
        raise SymbolError(f"MXNet shape inference failed for input {data_shape}: "
                          f"{first[0] if first else error}") from error
    if out_shapes is None:
        raise SymbolError(f"MXNet shape inference is incomplete for input {data_shape}")
    shapes = {}
    for name, shape in zip(internals.list_outputs(), out_shapes):
        shapes[name] = tuple(shape)
    args = dict(zip(internals.list_arguments(), arg_shapes))
    aux = dict(zip(internals.list_auxiliary_states(), aux_shapes))
    return shapes, args, aux


def _output_shape(shapes: dict, node_name: str, index: int):
    for key in (f"{node_name}_output{index}", f"{node_name}_output" if index == 0 else None, node_name):
        if key is not None and key in shapes:
            return shapes[key]
    return None


def _windowed(node: Node, attrs: dict, in_shape, op: str) -> None:
    node.kernel = _tuple(attrs.get("kernel"), (1, 1))
    node.stride = _tuple(attrs.get("stride"), (1, 1))
    node.dilation = _tuple(attrs.get("dilate"), (1, 1))
    pad = _tuple(attrs.get("pad"), (0, 0))
    if op == "Pooling" and _flag(attrs, "global_pool", False) and in_shape is not None:
        node.kernel = tuple(in_shape[2:4])
        node.stride = (1, 1)
        pad = (0, 0)
    pads = [pad[0], pad[0], pad[1], pad[1]]
    if in_shape is not None and len(node.shape) == 4 and op == "Pooling":
        # 'full' convention reaches past the symmetric pad: count those cells too.
        for axis in range(2):
            span = (node.kernel[axis] - 1) * node.dilation[axis] + 1
            needed = (node.shape[2 + axis] - 1) * node.stride[axis] + span
            extra = needed - (in_shape[2 + axis] + 2 * pad[axis])
            if extra > 0:
                pads[2 * axis + 1] += extra
    node.pads = tuple(pads)


def _node(index: int, entry: dict, names: list[str], shapes: dict, input_entries) -> Node:
    op = entry["op"]
    attrs = entry.get("attrs", entry.get("param", {})) or {}
    name = entry["name"]
    shape = _output_shape(shapes, name, 0) or ()
    in_shape = None
    if input_entries:
        src, out_index = input_entries[0]
        in_shape = _output_shape(shapes, names[src], out_index)
    node = Node(name=name, scope=name, kind=Kind.OTHER, op=op, inputs=[], shape=tuple(shape),
                in_shape=tuple(in_shape) if in_shape else None)
    if op == "Convolution":
        node.kind = Kind.CONV
        _windowed(node, attrs, in_shape, op)
        groups = int(_parse(attrs.get("num_group", "1")))
        if groups > 1 and in_shape is not None and groups == in_shape[1]:
            node.kind = Kind.DWCONV
            node.attrs["multiplier"] = int(_parse(attrs["num_filter"])) // groups
        node.attrs.update(num_group=groups, has_bias=not _flag(attrs, "no_bias", False),
                          layout=attrs.get("layout", "None"))
    elif op == "Pooling":
        pool_type = attrs.get("pool_type", "max")
        node.kind = {"max": Kind.POOL_MAX, "avg": Kind.POOL_AVG}.get(pool_type, Kind.OTHER)
        _windowed(node, attrs, in_shape, op)
        node.attrs.update(pool_type=pool_type, pooling_convention=attrs.get("pooling_convention", "valid"),
                          global_pool=_flag(attrs, "global_pool", False))
        if pool_type == "avg":
            node.attrs["count_include_pad"] = _flag(attrs, "count_include_pad", True)
        else:
            node.attrs["pad_value"] = float("-inf")  # MXNet's max pooling ignores its own pad cells
    elif op == "BatchNorm":
        node.kind = Kind.BN
        node.attrs.update(eps=_float(attrs, "eps", 1e-3), momentum=_float(attrs, "momentum", 0.9),
                          fix_gamma=_flag(attrs, "fix_gamma", True),
                          use_global_stats=_flag(attrs, "use_global_stats", False),
                          axis=int(_parse(attrs.get("axis", "1"))))
        node.attrs["scale"] = not node.attrs["fix_gamma"]
    elif op in ("Activation", "relu", "sigmoid", "tanh", "LeakyReLU", "clip"):
        node.kind = Kind.ACT
        if op == "Activation":
            node.attrs["act"] = attrs.get("act_type", "relu")
        elif op == "LeakyReLU":
            node.attrs["act"] = {"leaky": "leaky_relu"}.get(attrs.get("act_type", "leaky"), attrs.get("act_type"))
            node.attrs["alpha"] = _float(attrs, "slope", 0.25)
        elif op == "clip":
            low, high = _float(attrs, "a_min", None), _float(attrs, "a_max", None)
            node.attrs["act"] = "relu6" if (low, high) == (0.0, 6.0) else f"clip({low},{high})"
        else:
            node.attrs["act"] = op
    elif op == "FullyConnected":
        node.kind = Kind.FC
        node.attrs.update(has_bias=not _flag(attrs, "no_bias", False), flatten=_flag(attrs, "flatten", True),
                          num_hidden=int(_parse(attrs["num_hidden"])))
    elif op == "Concat" or op == "concat":
        node.kind = Kind.CONCAT
        node.attrs["axis"] = int(_parse(attrs.get("dim", "1")))
    elif op in _ADD:
        node.kind = Kind.ADD
    elif op in _SCALE:
        node.kind = Kind.SCALE
        node.attrs["scale"] = _float(attrs, "scalar", None)
    elif op in _MUL:
        # A product with a constant (a variable off the data path) is a scale, as in TF.
        node.kind = Kind.MUL if len(input_entries) >= 2 else Kind.SCALE
    elif op == "Dropout":
        node.kind = Kind.DROPOUT
        node.attrs.update(p=_float(attrs, "p", 0.5), mode=attrs.get("mode", "training"))
        node.attrs["keep_prob"] = round(1.0 - node.attrs["p"], 10)
    elif op in ("Flatten", "flatten"):
        node.kind = Kind.FLATTEN
        if in_shape is not None and len(in_shape) == 4:
            node.attrs["source_layout"] = "NCHW"
            node.attrs["spatial"] = in_shape[2] * in_shape[3] > 1
    elif op in ("Reshape", "reshape"):
        node.kind = Kind.FLATTEN if len(shape) == 2 else Kind.RESHAPE
        if in_shape is not None and len(in_shape) == 4:
            node.attrs["source_layout"] = "NCHW"
            node.attrs["spatial"] = in_shape[2] * in_shape[3] > 1
    elif op in ("Pad", "pad"):
        node.kind = Kind.PAD
        width = _tuple(attrs.get("pad_width"), (0,) * 8, 8)
        if len(width) == 8:
            node.pads = tuple(width[4:8])
        node.attrs.update(pad_value=_float(attrs, "constant_value", 0.0), mode=attrs.get("mode", "constant"))
    elif op == "mean":
        node.kind = Kind.MEAN
        axis = _parse(attrs.get("axis", "None"))
        node.attrs["axis"] = tuple(sorted(axis if isinstance(axis, tuple) else (axis,))) if axis is not None else None
        node.attrs["keepdims"] = _flag(attrs, "keepdims", False)
    elif op in _SOFTMAX:
        node.kind = Kind.SOFTMAX
        if op == "SoftmaxOutput":
            node.attrs["axis"] = 1
            node.attrs["multi_output"] = _flag(attrs, "multi_output", False)
        elif op == "SoftmaxActivation":
            node.attrs["axis"] = 1
        else:
            axis = int(_parse(attrs.get("axis", "-1")))
            node.attrs["axis"] = axis + len(shape) if axis < 0 else axis
        node.attrs["log"] = op == "log_softmax"
    elif op in ("transpose", "Transpose"):
        node.attrs["axes"] = _tuple(attrs.get("axes"), (), 4)
    elif op == "LRN":
        node.kind = Kind.LRN
        node.attrs.update(nsize=int(_parse(attrs["nsize"])), alpha=_float(attrs, "alpha", 1e-4),
                          beta=_float(attrs, "beta", 0.75), knorm=_float(attrs, "knorm", 2.0))
    return node


def _fold_masked_avg(nodes: list[Node], by_name: dict, consumers: dict) -> list[Node]:
    """avg(pad(x)) / avg(pad(ones_like(x))) is one SAME average pool that excludes pads."""
    drop: set[str] = set()
    for node in nodes:
        if node.op not in ("broadcast_div", "elemwise_div", "_div") or len(node.inputs) != 2:
            continue
        summed, counted = (by_name.get(name) for name in node.inputs)
        if not (summed and counted and summed.kind == Kind.POOL_AVG and counted.kind == Kind.POOL_AVG):
            continue
        mask_chain = [counted]
        current = counted
        while current.inputs and by_name.get(current.inputs[0]) is not None:
            current = by_name[current.inputs[0]]
            mask_chain.append(current)
            if current.op == "ones_like":
                break
        if current.op != "ones_like":
            continue
        pad = by_name.get(summed.inputs[0]) if summed.inputs else None
        node.kind = Kind.POOL_AVG
        node.op = "Pooling(masked avg)"
        node.kernel, node.stride, node.dilation = summed.kernel, summed.stride, summed.dilation
        pads = summed.pads or (0, 0, 0, 0)
        source = summed
        if pad is not None and pad.kind == Kind.PAD and pad.pads is not None:
            pads = tuple(a + b for a, b in zip(pad.pads, pads))
            drop.add(pad.name)
            source = pad
        node.pads = pads
        node.in_shape = source.in_shape
        node.inputs = list(source.inputs)
        node.attrs = {"count_include_pad": False, "pooling_convention": "valid", "masked": True}
        drop.add(summed.name)
        drop.update(member.name for member in mask_chain)
    return [node for node in nodes if node.name not in drop]


def _fold_nhwc_flatten(nodes: list[Node], consumers: dict) -> list[Node]:
    """transpose(0,2,3,1) → flatten is one flatten in TF's (H, W, C) order (PITFALLS #7)."""
    by_name = {node.name: node for node in nodes}
    drop: set[str] = set()
    for node in nodes:
        if node.op not in ("transpose", "Transpose") or node.attrs.get("axes") != (0, 2, 3, 1):
            continue
        readers = consumers.get(node.name, [])
        reader = by_name.get(readers[0]) if len(readers) == 1 else None
        if reader is None or reader.kind not in (Kind.FLATTEN, Kind.RESHAPE) or len(reader.shape) != 2:
            continue
        reader.inputs = list(node.inputs)
        reader.in_shape = node.in_shape
        reader.attrs["source_layout"] = "NHWC"
        reader.attrs["spatial"] = bool(node.in_shape and node.in_shape[2] * node.in_shape[3] > 1)
        drop.add(node.name)
    return [node for node in nodes if node.name not in drop]


def records_from_symbol(symbol, data_shape) -> MxGraph:
    """Records of every layer between ``data`` and the symbol's outputs."""
    shapes, args, aux = _infer(symbol, data_shape)
    graph = json.loads(symbol.tojson())
    entries = graph["nodes"]
    names = [entry["name"] for entry in entries]
    data_index = next((i for i, entry in enumerate(entries) if entry["op"] == "null" and entry["name"] == "data"), None)
    if data_index is None:
        raise SymbolError("the symbol has no input variable named 'data'")
    # Forward from data, backward from the heads: the data path.
    readers: dict[int, list[int]] = {}
    for index, entry in enumerate(entries):
        for src, _, *_ in entry["inputs"]:
            readers.setdefault(src, []).append(index)
    forward = {data_index}
    stack = [data_index]
    while stack:
        index = stack.pop()
        for reader in readers.get(index, []):
            if reader not in forward:
                forward.add(reader)
                stack.append(reader)
    backward = set()
    stack = [head[0] for head in graph["heads"]]
    while stack:
        index = stack.pop()
        if index in backward or index not in forward:
            continue
        backward.add(index)
        stack.extend(src for src, _, *_ in entries[index]["inputs"])
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for index, entry in enumerate(entries):
        if index not in backward:
            continue
        data_inputs = [(src, out) for src, out, *_ in entry["inputs"] if src in backward or src == data_index]
        if entry["op"] == "null":
            nodes.append(Node(name=entry["name"], scope=entry["name"], kind=Kind.INPUT, op="data", inputs=[],
                              shape=tuple(shapes.get(entry["name"], data_shape))))
            continue
        if entry["op"] in _PASSTHROUGH and data_inputs:
            alias[entry["name"]] = alias.get(names[data_inputs[0][0]], names[data_inputs[0][0]])
            continue
        node = _node(index, entry, names, shapes, data_inputs)
        node.inputs = [alias.get(names[src], names[src]) for src, _ in data_inputs]
        nodes.append(node)
    by_name = {node.name: node for node in nodes}
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node.name)
    nodes = _fold_nhwc_flatten(_fold_masked_avg(nodes, by_name, consumers), consumers)
    consumers = {}
    for node in nodes:
        for name in node.inputs:
            consumers.setdefault(name, [])
            if node.name not in consumers[name]:
                consumers[name].append(node.name)
    keep = {alias.get(names[head[0]], names[head[0]]) for head in graph["heads"]}
    records = fold(nodes, consumers, keep)
    outputs = {}
    for record in records:
        node_name = record.attrs["output_node"]
        outputs[record.name] = f"{node_name}_output" if f"{node_name}_output" in shapes else node_name
    return MxGraph(symbol, records, outputs, entries, args, aux)
