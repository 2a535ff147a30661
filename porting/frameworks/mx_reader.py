"""Read an MXNet symbol into framework-neutral layer records.

The MX builder contract: ``fn(num_classes) -> mx.sym.Symbol`` whose input
variable is ``data`` (NCHW). Shapes come from ``infer_shape`` over
``get_internals()``, so every intermediate layer has one, not only the outputs.

Each node of the symbol's JSON on the data path becomes a ``graph_walk.Node`` filled by
the reader registered for its op (``mx_op_readers/<family>.py``), from attributes parsed
by ``mx_attrs``; patterns that span several nodes are folded here: pass-through ops, the
masked average pool of ``mx_ops.pool2d`` and transpose(0, 2, 3, 1) + flatten.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass, field

from porting import compat
from porting.core.graph_walk import Node, consumer_map, fold, reachable
from porting.core.records import Kind, LayerRecord
from porting.frameworks.errors import SymbolError
from porting.frameworks.mx_attrs import as_flag, as_float, attrs_of, is_model_file, symbol_graph
from porting.frameworks.mx_op_readers import MX_READERS

mx = compat.import_mx()

#: Ops that forward their input unchanged: the reader sees through them.
_PASSTHROUGH = {"_copy", "identity", "BlockGrad", "stop_gradient", "MakeLoss", "make_loss"}
#: Ops read through when they keep the shape (converters write reshapes to the tensor's own shape).
_RESHAPES = {"Reshape", "reshape"}
_TRANSPOSES = {"transpose", "Transpose"}


@dataclass
class MxGraph:
    """An MXNet symbol and its records."""

    symbol: object
    records: list[LayerRecord]
    outputs: dict = field(default_factory=dict)  # record name -> internal output name
    nodes: list = field(default_factory=list)  # the symbol's JSON nodes
    arg_shapes: dict = field(default_factory=dict)
    aux_shapes: dict = field(default_factory=dict)
    #: The model's own ``(arg_params, aux_params)`` as numpy dicts: read from a file or a Gluon
    #: block (``mx_files``); None for a builder's symbol, whose values come from the TF side.
    params: tuple | None = None
    source: str = ""  # what the MX side was read from, for the report (empty: a builder)
    #: Converter forms the reader read through (no-op reshapes, transpose pairs), one line each.
    notes: list = field(default_factory=list)


def build_symbol(builder, num_classes: int, allow_gluon: bool = False):
    """Call the MX builder and check the contract (``allow_gluon``: a ``HybridBlock`` is returned as is)."""
    try:
        symbol = builder(num_classes)
    except Exception as error:
        raise SymbolError(f"the MX builder raised {type(error).__name__}: {error}") from error
    if allow_gluon and isinstance(symbol, mx.gluon.HybridBlock):
        return symbol
    if not isinstance(symbol, mx.sym.Symbol):
        raise SymbolError(f"the MX builder must return an mx.sym.Symbol, got {type(symbol).__name__} "
                          "(a Gluon HybridBlock is accepted too)")
    if "data" not in symbol.list_arguments():
        raise SymbolError("the MX builder's symbol has no input variable named 'data' "
                          f"(arguments start with {symbol.list_arguments()[:3]})")
    return symbol


def read_symbol(builder_or_symbol, size: tuple[int, int], num_classes: int, batch: int = 1,
                params=None) -> MxGraph:
    """Build (or take) the MX side and reduce it to layer records.

    ``builder_or_symbol``: a builder (returning a Symbol, or a Gluon ``HybridBlock``), a Symbol,
    an ``mx_files.MxModel``, or a model file (``-symbol.json`` / ``.onnx``, with ``params`` the
    ``.params`` file of a symbol JSON). File and Gluon sides carry their own parameters.
    """
    from porting.frameworks import mx_files

    model = None
    if isinstance(builder_or_symbol, mx_files.MxModel):
        model = builder_or_symbol
    elif is_model_file(builder_or_symbol):
        model = mx_files.load(builder_or_symbol, params)
    elif isinstance(builder_or_symbol, mx.sym.Symbol):
        symbol, what = builder_or_symbol, "the MXNet symbol"
    elif mx_files.is_gluon_block(builder_or_symbol):
        model = mx_files.from_gluon(builder_or_symbol, size, batch)
    else:
        built = build_symbol(builder_or_symbol, num_classes, allow_gluon=True)
        if mx_files.is_gluon_block(built):
            model = mx_files.from_gluon(built, size, batch)
        symbol, what = built, f"the MX builder {builder_name(builder_or_symbol)!r}"
    if model is not None:
        graph = records_from_symbol(model.symbol, (batch, 3, size[0], size[1]), f"the MXNet model {model.source}")
        graph.params, graph.source = model.params, model.source
        for record in graph.records:  # a converter's folded forms are plausible only where weights were stored
            record.attrs["stored_weights"] = True
        _read_stored_scales(graph)
        return graph
    return records_from_symbol(symbol, (batch, 3, size[0], size[1]), what)


def _read_stored_scales(graph: MxGraph) -> None:
    """A scale stored as a one-element parameter (a converter's residual scale) gets its value as ``scale``."""
    args, aux = graph.params
    for record in graph.records:
        name = record.attrs.get("weight_param")
        if record.kind != Kind.SCALE or record.attrs.get("scale") is not None or name is None:
            continue
        value = args.get(name, aux.get(name))
        if value is not None and value.size == 1:
            stored = float(value.reshape(()))
            if record.attrs.get("inverse"):  # x / stored
                if stored == 0.0:
                    continue
                stored = 1.0 / stored
            record.attrs["scale"] = stored
            record.attrs["scale_source"] = f"parameter {name}"


def builder_name(builder) -> str:
    """A builder's name for messages: its function name (through ``functools.partial``)."""
    while hasattr(builder, "func") and not hasattr(builder, "__name__"):
        builder = builder.func
    return getattr(builder, "__name__", type(builder).__name__)


def learnable_parameter_count(graph: MxGraph) -> int:
    """Elements of the symbol's learnable arguments, counted as slim counts trainable variables.

    Every argument except the inputs (``data``, names ending in ``label``), arguments
    frozen with ``lr_mult`` 0, and the gammas that BatchNorm pins at 1 (``fix_gamma``,
    MXNet's default), which the framework creates but never updates.
    """
    entries = graph.nodes
    skipped = {"data"}
    for entry in entries:
        attrs = attrs_of(entry)
        if entry["op"] == "null" and as_float(attrs.get("__lr_mult__"), 1.0) == 0.0:
            skipped.add(entry["name"])
        if entry["op"] == "BatchNorm" and as_flag(attrs.get("fix_gamma"), True) and len(entry["inputs"]) > 1:
            skipped.add(entries[entry["inputs"][1][0]]["name"])
    return sum(math.prod(int(dim) for dim in shape) for name, shape in graph.arg_shapes.items()
               if shape is not None and name not in skipped and not name.endswith("label"))


def infer_shape_quietly(symbol, **shapes):
    """``symbol.infer_shape(**shapes)`` without MXNet's prints and warnings; returns (result, their text).

    MXNet 1.9.1's Python ``infer_shape`` prints "infer_shape error. Arguments: ..." on
    stdout when inference fails (which would corrupt a JSON report on stdout) and warns
    "Cannot decide shape for the following arguments" when it is incomplete. Both are
    captured here and returned, so the caller can fold them into one error message.

    Raises:
        Whatever ``infer_shape`` raises (``MXNetError``); the captured text is on its
        ``porting_output`` attribute.
    """
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = symbol.infer_shape(**shapes)
        except Exception as error:
            error.porting_output = _captured(printed.getvalue(), caught)
            raise
    return result, _captured(printed.getvalue(), caught)


def _captured(printed: str, caught) -> str:
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    lines += [" ".join(str(warning.message).split()) for warning in caught]
    return "; ".join(lines)


def _infer(symbol, data_shape):
    internals = symbol.get_internals()
    try:
        (arg_shapes, out_shapes, aux_shapes), said = infer_shape_quietly(internals, data=data_shape)
    except Exception as error:  # MXNetError carries the failing op in its text
        first = str(error).strip().splitlines()
        extra = _other_arguments(getattr(error, "porting_output", ""))
        raise SymbolError(f"MXNet shape inference failed for input {data_shape}: "
                          f"{first[0] if first else error}{extra}") from error
    if out_shapes is None:
        detail = said.split("Consider providing them as input:")[-1].strip(" :;") if said else ""
        raise SymbolError(f"MXNet shape inference is incomplete for input {data_shape}"
                          + (f": no shape for {detail}" if detail else "")
                          + "; every argument besides 'data' must get its shape from the layers (give the "
                            "variables a shape, or feed them from 'data')")
    shapes = {}
    for name, shape in zip(internals.list_outputs(), out_shapes):
        shapes[name] = tuple(shape)
    args = dict(zip(internals.list_arguments(), arg_shapes))
    aux = dict(zip(internals.list_auxiliary_states(), aux_shapes))
    return shapes, args, aux


def _other_arguments(printed: str) -> str:
    """The arguments MXNet printed besides ``data`` (whose shape the message already names)."""
    parts = [part for part in printed.split("; ")
             if part and not part.startswith("infer_shape error") and not part.startswith("data:")]
    return f" (arguments given: {', '.join(parts)})" if parts else ""


def _output_shape(shapes: dict, node_name: str, index: int):
    for key in (f"{node_name}_output{index}", f"{node_name}_output" if index == 0 else None, node_name):
        if key is not None and key in shapes:
            return shapes[key]
    return None


def _node(entry: dict, inputs: list[str], shape, in_shape) -> Node:
    """One symbol node on the data path as a ``Node``: shapes and inputs here, the rest by its op reader."""
    node = Node(name=entry["name"], scope=entry["name"], kind=Kind.OTHER, op=entry["op"], inputs=inputs,
                shape=tuple(shape or ()), in_shape=tuple(in_shape) if in_shape else None)
    reader = MX_READERS.lookup(entry["op"])
    if reader is not None:
        reader(node, attrs_of(entry))
    return node


def _fold_masked_avg(nodes: list[Node], by_name: dict) -> list[Node]:
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


def _fold_transpose_pairs(nodes: list[Node], alias: dict, notes: list) -> list[Node]:
    """transpose(a) → transpose(b) with b undoing a is no op at all (a converter's NHWC/NCHW round trip).

    ``alias`` gains the pair's output -> its input, so the heads follow too.
    """
    by_name = {node.name: node for node in nodes}
    readers = consumer_map(nodes)
    rename: dict[str, str] = {}
    drop: set[str] = set()
    for node in nodes:
        first = by_name.get(node.inputs[0]) if node.op in _TRANSPOSES and len(node.inputs) == 1 else None
        if first is None or first.op not in _TRANSPOSES or first.name in drop or len(first.inputs) != 1 \
                or readers.get(first.name) != [node.name]:
            continue
        a, b = first.attrs.get("axes") or (), node.attrs.get("axes") or ()
        if not a or len(a) != len(b) or any(a[b[i]] != i for i in range(len(b))):
            continue
        drop.update((first.name, node.name))
        rename[node.name] = rename.get(first.inputs[0], first.inputs[0])
        notes.append(f"MX {first.name} + {node.name}: transpose {a} then {b} cancel: read through")
    if not drop:
        return nodes
    for key, value in list(alias.items()):
        alias[key] = rename.get(value, value)
    alias.update({name: target for name, target in rename.items()})
    kept = [node for node in nodes if node.name not in drop]
    for node in kept:
        node.inputs = [rename.get(name, name) for name in node.inputs]
    return kept


def records_from_symbol(symbol, data_shape, what: str = "the MXNet symbol") -> MxGraph:
    """Records of every layer between ``data`` and the symbol's outputs.

    ``what`` names the symbol in errors (e.g. "the MX builder 'build'").
    """
    graph = symbol_graph(symbol)
    entries = graph["nodes"]
    names = [entry["name"] for entry in entries]
    data_index = next((i for i, entry in enumerate(entries) if entry["op"] == "null" and entry["name"] == "data"), None)
    if data_index is None:
        raise SymbolError("the symbol has no input variable named 'data'")
    # Forward from data, backward from the heads: the data path.
    def sources(index: int) -> list[int]:
        return [src for src, *_ in entries[index]["inputs"]]

    readers = consumer_map(range(len(entries)), inputs_of=sources, key_of=lambda index: index)
    forward = reachable([data_index], lambda index: readers.get(index, []))
    detached = [names[head[0]] for head in graph["heads"] if head[0] not in forward]
    if detached:
        raise SymbolError(f"{what}'s output {', '.join(detached)} does not depend on the input variable 'data'; "
                          "expected a network computed from mx.sym.Variable('data') (NCHW images)")
    shapes, args, aux = _infer(symbol, data_shape)
    backward = reachable([head[0] for head in graph["heads"]], sources, within=forward)
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    notes: list[str] = []
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
        in_shape = _output_shape(shapes, names[data_inputs[0][0]], data_inputs[0][1]) if data_inputs else None
        if entry["op"] in _RESHAPES and len(data_inputs) == 1 and in_shape is not None \
                and tuple(in_shape) == tuple(_output_shape(shapes, entry["name"], 0) or ()):
            # A converter's reshape to the shape the tensor already has (tf2onnx writes them around
            # a batch norm on a 1x1 map): the same data, so the layers on both sides of it fold.
            alias[entry["name"]] = alias.get(names[data_inputs[0][0]], names[data_inputs[0][0]])
            notes.append(f"MX {entry['name']}: {entry['op']} to its own shape {'x'.join(map(str, in_shape))} "
                         "keeps the data as it is: read through")
            continue
        node = _node(entry, [alias.get(names[src], names[src]) for src, _ in data_inputs],
                     _output_shape(shapes, entry["name"], 0), in_shape)
        if node.attrs.get("inverse") and entries[entry["inputs"][0][0]]["op"] == "null":
            node.kind = Kind.OTHER  # stored / x is no scale: only x / stored is
            del node.attrs["inverse"]
        weights = [names[src] for src, *_ in entry["inputs"] if src not in backward and entries[src]["op"] == "null"]
        if weights and node.kind in (Kind.SCALE, Kind.FC, Kind.BIAS):
            node.attrs["weight_param"] = weights[0]  # a scale, dense weight or bias stored as a parameter
        nodes.append(node)
    # The transpose fold reads the readers from before the masked-average fold rewired its nodes.
    consumers = consumer_map(nodes)
    nodes = _fold_nhwc_flatten(_fold_masked_avg(nodes, {node.name: node for node in nodes}), consumers)
    nodes = _fold_transpose_pairs(nodes, alias, notes)
    keep = {alias.get(names[head[0]], names[head[0]]) for head in graph["heads"]}
    records = fold(nodes, consumer_map(nodes), keep)
    outputs = {}
    for record in records:
        node_name = record.attrs["output_node"]
        outputs[record.name] = f"{node_name}_output" if f"{node_name}_output" in shapes else node_name
    return MxGraph(symbol, records, outputs, entries, args, aux, notes=notes)
