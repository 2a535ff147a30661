"""Inference-only graph rewrites of a verified MXNet symbol (serving copies; the checked symbol is unchanged)."""
from __future__ import annotations

from porting.core.graph_walk import consumer_map
from porting.frameworks.mx_attrs import as_float, attrs_of, symbol_graph


def fold_residual_scales(symbol, arg_params: dict):
    """Fold each constant scaling of a convolution's output into the convolution (inference).

    Inception-ResNet-v2's residual is ``net + scale * conv(mixed)``. MXNet 1.9.1 runs the
    ``_mul_scalar`` outside MKL-DNN: the convolution's output leaves the blocked layout,
    is scaled in one more memory pass, and the following ``elemwise_add`` cannot be fused
    into the convolution as a sum post-op. ``scale * (W x + b) = (scale W) x + scale b``,
    so for inference the scale can live in the weights, as MKL-DNN's subgraph backend
    folds batch norms. The symbol the verifier checked is not changed: this returns a
    serving copy. Not for training: gradients of the scaled weights are not the same
    updates.

    A ``_mul_scalar`` is folded when its input is output 0 of a ``Convolution`` that no
    other node reads.

    Args:
        symbol: an MXNet symbol (e.g. ``mx_impl.inception_resnet_v2.get_symbol()``).
        arg_params: its parameters (name -> NDArray), e.g. from ``Module.get_params()``.

    Returns:
        ``(symbol, arg_params, folded)``: the new symbol, a new parameter dict (the
        caller's is not modified; unfolded entries are shared) and the names of the
        convolutions that absorbed a scale.
    """
    import json

    from porting import compat

    mx = compat.import_mx()
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    # node index -> how many edges read it (a head counts as a reader: its output is returned)
    reads = {index: len(readers) for index, readers in consumer_map(
        nodes, inputs_of=lambda node: (entry[0] for entry in node["inputs"]), key_of=lambda node: node["name"],
        unique=False).items()}
    for entry in graph["heads"]:
        reads[entry[0]] = reads.get(entry[0], 0) + 1
    params = dict(arg_params)
    drop: set[int] = set()
    folded = []
    for index, node in enumerate(nodes):
        if node["op"] != "_mul_scalar":
            continue
        source, output = node["inputs"][0][:2]
        conv = nodes[source]
        if conv["op"] != "Convolution" or output != 0 or reads.get(source, 0) != 1:
            continue
        scale = as_float(attrs_of(node)["scalar"])
        for weight_entry in conv["inputs"][1:]:  # weight, then bias when there is one
            name = nodes[weight_entry[0]]["name"]
            params[name] = arg_params[name] * scale
        drop.add(index)
        folded.append(conv["name"])
    if not drop:
        return symbol, params, folded
    return mx.sym.load_json(json.dumps(_without_nodes(graph, drop))), params, folded


def _without_nodes(graph: dict, drop: set[int]) -> dict:
    """The graph with single-input nodes ``drop`` removed (their readers read their input)."""
    nodes = graph["nodes"]

    def resolve(entry):
        while entry[0] in drop:
            entry = nodes[entry[0]]["inputs"][0]
        return entry

    index = {}
    kept = []
    for old, node in enumerate(nodes):
        if old not in drop:
            index[old] = len(kept)
            kept.append(dict(node))
    for node in kept:
        node["inputs"] = [[index[entry[0]], *entry[1:]] for entry in map(resolve, node["inputs"])]
    result = dict(graph)
    result["nodes"] = kept
    result["heads"] = [[index[entry[0]], *entry[1:]] for entry in map(resolve, graph["heads"])]
    result["arg_nodes"] = [i for i, node in enumerate(kept) if node["op"] == "null"]
    result.pop("node_row_ptr", None)  # recomputed by the loader
    return result
