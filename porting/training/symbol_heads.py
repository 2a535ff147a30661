"""The training form of a translated symbol, with the hand port's conventions.

The translated symbol is plain MXNet (inference outputs: logits, predictions,
auxiliary logits). For training, like ``mx_impl``'s ``for_training=True`` and
``porting.training.network.build_symbol``: every logits output gets a ``SoftmaxOutput``
with the label ``softmax_label`` (the first is the main head; others, such as
AuxLogits, are weighted by ``aux_weight``), the softmax prediction outputs are
dropped, betas, gammas and biases get ``wd_mult=0`` (slim decays weights only),
and the batch-norm momentum can be set.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from porting import compat
from porting.frameworks.mx_attrs import as_tuple, attrs_of, parse, symbol_graph

mx = compat.import_mx()

# Every training head follows the hand port's conventions: the label name of its SoftmaxOutput
# heads (Module's default) and slim's weight of the AuxLogits loss for the heads after the first.
# They are defined once, in the port; porting.training and porting.serving take them from here.
from mx_impl.inception_resnet_v2 import AUX_LOSS_WEIGHT, LABEL_NAME  # noqa: E402
#: Suffixes of the parameters slim does not regularise (MXNet names; PITFALLS 5d, 19).
NO_DECAY_SUFFIXES = ("_beta", "_gamma", "_bias")
_SHAPE_OPS = {"Reshape", "reshape", "Flatten", "flatten", "_copy", "identity"}
_SOFTMAX_OPS = {"softmax", "log_softmax", "SoftmaxActivation", "SoftmaxOutput"}


def infer_shape(symbol, **shapes):
    """``symbol.infer_shape(**shapes)`` without MXNet's ``infer_shape error. Arguments:`` lines on stdout.

    MXNet 1.9 prints them (``print``) before it raises; on stdout they would corrupt the
    output of a command (``porting.predict --json``). The ``MXNetError`` still says what is wrong.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        return symbol.infer_shape(**shapes)


def is_prediction(nodes: list[dict], index: int) -> bool:
    """True when an output is a softmax (through reshapes): slim's Predictions."""
    for _ in range(8):
        node = nodes[index]
        if node["op"] in _SOFTMAX_OPS:
            return True
        if node["op"] not in _SHAPE_OPS or not node["inputs"]:
            return False
        index = node["inputs"][0][0]
    return False


def training_symbol(symbol, *, label_smoothing: float = 0.0, num_classes: int | None = None,
                    aux_weight: float = AUX_LOSS_WEIGHT, bn_momentum: float | None = None):
    """``SoftmaxOutput`` head(s) on a translated inference symbol.

    Args:
        symbol: the translated symbol (a Group of its outputs, logits first).
        label_smoothing: TF's ``ls``; needs ``num_classes`` (MXNet's ``smooth_alpha`` is
            ``ls * (K - 1) / K``, PITFALLS #11a).
        aux_weight: gradient scale of the logits heads after the first (slim's 0.4 for AuxLogits).
        bn_momentum: override every BatchNorm momentum (None: keep the translated TF decay).

    Returns:
        The main head alone, or a Group with the main head first.
    """
    if label_smoothing and not num_classes:
        raise ValueError("label_smoothing needs num_classes (MXNet's smooth_alpha = ls * (K - 1) / K)")
    alpha = smooth_alpha(label_smoothing, num_classes) if label_smoothing else 0.0
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    outputs = [symbol[i] for i in range(len(symbol.list_outputs()))]
    logits = [out for out, head in zip(outputs, graph["heads"]) if not is_prediction(nodes, head[0])]
    if not logits:
        raise ValueError("the symbol has no logits output (every output is a softmax)")
    label = mx.sym.Variable(LABEL_NAME)
    heads = []
    for index, out in enumerate(logits):
        name = out.name
        flat = mx.sym.flatten(out, name=f"{name}/flatten")
        heads.append(mx.sym.SoftmaxOutput(flat, label=label, smooth_alpha=alpha,
                                          grad_scale=1.0 if index == 0 else float(aux_weight),
                                          name=f"{name}/softmax"))
    sym = heads[0] if len(heads) == 1 else mx.sym.Group(heads)
    graph = symbol_graph(sym)
    for node in graph["nodes"]:
        attrs = node.setdefault("attrs", {})
        if node["op"] == "null" and node["name"].endswith(NO_DECAY_SUFFIXES):
            attrs.setdefault("__wd_mult__", "0.0")
        elif node["op"] == "BatchNorm" and bn_momentum is not None:
            attrs["momentum"] = repr(float(bn_momentum))
    return mx.sym.load_json(json.dumps(graph))


#: Layers that compute logits, and the attribute holding their width (the number of classes).
_LAYER_WIDTH = {"FullyConnected": "num_hidden", "Convolution": "num_filter"}
#: Ops between a logits layer and a logits output that keep its classes axis as it is.
_THROUGH_OPS = _SHAPE_OPS | {"transpose", "squeeze", "expand_dims", "Dropout", "elemwise_add", "broadcast_add",
                             "add_n", "ElementWiseSum", "_plus_scalar", "_minus_scalar", "_mul_scalar",
                             "_div_scalar", "SoftmaxOutput"}


def _logits_walk(graph: dict) -> tuple[list[int], list[int], list[str]]:
    """``(layer nodes, reshape nodes, blockers)`` between the logits outputs and their layers.

    Starts at every logits output (a training head's ``SoftmaxOutput`` counts as its
    logits; softmax predictions do not) and walks back through :data:`_THROUGH_OPS` to the
    ``FullyConnected``/``Convolution`` layers that compute them. Blockers: what the walk
    met that a new number of classes could not be carried through (other ops, parameters
    used elementwise, grouped convolutions).
    """
    nodes = graph["nodes"]
    stack = [head[0] for head in graph["heads"]
             if nodes[head[0]]["op"] == "SoftmaxOutput" or not is_prediction(nodes, head[0])]
    layers, reshapes, blockers, seen = [], [], [], set()
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        node = nodes[index]
        op, attrs = node["op"], node.get("attrs", {})
        if op in _LAYER_WIDTH and int(parse(attrs.get("num_group", "1"))) == 1:
            layers.append(index)
            continue
        if op == "null":
            if node["name"] not in ("data", LABEL_NAME):
                blockers.append(f"parameter {node['name']}")
            continue
        if op not in _THROUGH_OPS:
            blockers.append(f"{node['name']} ({op})")
            continue
        if op in ("Reshape", "reshape"):
            reshapes.append(index)
        inputs = node["inputs"][:1] if op == "SoftmaxOutput" else node["inputs"]
        stack.extend(source for source, *_ in inputs)
    return sorted(layers), reshapes, blockers


def logits_params(symbol) -> list[str]:
    """Parameters of the layers that compute the logits (the head a new class count replaces)."""
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    layers, _, _ = _logits_walk(graph)
    return sorted(nodes[source]["name"] for index in layers for source, *_ in nodes[index]["inputs"]
                  if nodes[source]["op"] == "null" and nodes[source]["name"] != "data")


def logits_width(symbol) -> int:
    """The number of classes of the symbol's logits layers.

    Raises:
        ValueError: no logits layer found, or layers of different widths.
    """
    graph = symbol_graph(symbol)
    layers, _, blockers = _logits_walk(graph)
    widths = {int(parse(attrs_of(graph["nodes"][i])[_LAYER_WIDTH[graph["nodes"][i]["op"]]])) for i in layers}
    if len(widths) != 1:
        found = ", ".join(f"{graph['nodes'][i]['name']}" for i in layers) or "none"
        raise ValueError(f"cannot tell the number of classes: logits layers found: {found}"
                         + (f"; the walk stopped at {', '.join(blockers[:4])}" if blockers else ""))
    return widths.pop()


def resize_logits(symbol, num_classes: int):
    """The symbol with its logits layers (and reshapes after them) made ``num_classes`` wide.

    The parameters of those layers (:func:`logits_params`) lose their fixed shapes and
    must be initialised fresh; a symbol already ``num_classes`` wide is returned as is.

    Raises:
        ValueError: the logits layers cannot be found, or the classes axis passes through
            something other than reshapes, dropout and additions of activations.
    """
    old = logits_width(symbol)
    if old == num_classes:
        return symbol
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    layers, reshapes, blockers = _logits_walk(graph)
    if blockers:
        raise ValueError(f"cannot resize the logits from {old} to {num_classes} classes: between the logits "
                         f"layers and the outputs are {', '.join(blockers[:4])}")
    for index in layers:
        key = _LAYER_WIDTH[nodes[index]["op"]]
        for node in [nodes[index]] + [nodes[s] for s, *_ in nodes[index]["inputs"] if nodes[s]["op"] == "null"]:
            attrs = node.setdefault("attrs", {})
            if node["op"] != "null" or key in attrs:  # variables carry a copy of their layer's attributes
                attrs[key] = str(num_classes)
            if node["op"] == "null":
                attrs.pop("__shape__", None)
    for index in reshapes:
        attrs = nodes[index]["attrs"]
        shape = list(as_tuple(attrs["shape"], (), ndim=1))
        attrs["shape"] = str(tuple(num_classes if v == old else v for v in shape))
    return mx.sym.load_json(json.dumps(graph))


def input_problem(symbol, data_shape: tuple[int, ...]) -> str | None:
    """Why the symbol cannot take ``(1, *data_shape)`` as ``data``, or None when it can.

    Besides MXNet's shape inference this checks every ``Reshape`` with a fixed target
    (a translated flatten or squeeze) for the element count: MXNet 1.9's inference does
    not, and a mismatch only shows as corrupted memory at run time.
    """
    shapes = {"data": (1, *data_shape)}
    if LABEL_NAME in symbol.list_arguments():
        shapes[LABEL_NAME] = (1,)
    internals = symbol.get_internals()
    try:
        _, out_shapes, _ = infer_shape(internals, **shapes)
    except mx.base.MXNetError as error:
        return str(error).strip().splitlines()[0]
    if out_shapes is None:
        return "MXNet cannot infer the shapes"
    known = dict(zip(internals.list_outputs(), out_shapes))
    for node in symbol_graph(symbol)["nodes"]:
        if node["op"] not in ("Reshape", "reshape"):
            continue
        reshape = internals[f"{node['name']}_output"]
        source = reshape.get_children().list_outputs()[0]
        have, want = known.get(source), known.get(f"{node['name']}_output")
        if have is not None and want is not None and np.prod(have) != np.prod(want):
            return (f"{node['name']} reshapes {tuple(have)} to {tuple(want)} (shape {node['attrs']['shape']}, "
                    f"fixed at translation)")
    return None


def smooth_alpha(label_smoothing: float, num_classes: int) -> float:
    """MXNet's ``smooth_alpha`` for TF's label smoothing ``ls`` over K classes: ``ls * (K - 1) / K``."""
    return float(label_smoothing) * (num_classes - 1) / num_classes
