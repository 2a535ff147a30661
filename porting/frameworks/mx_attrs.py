"""One parser for the attributes of an MXNet symbol's JSON (``symbol.tojson()``).

MXNet stores every operator attribute as a string: ``"(3, 3)"``, ``"True"``, ``"1e-05"``,
``"valid"``. Everything that reads a symbol (the reader, the lint, the training heads,
the serving rewrites) parses them here, so ``"true"``, ``"1"`` and ``"True"`` mean the
same thing everywhere. No MXNet import: the input is the JSON text or its dicts.
"""
from __future__ import annotations

import ast
import json
import os

from porting.core.graph_walk import consumer_map, reachable

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def parse(value):
    """An attribute string as a Python value: a literal where it is one, else the stripped text."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        text = value.strip()
        lowered = text.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        if lowered == "none":
            return None
        return text


def as_tuple(value, default: tuple[int, ...], ndim: int = 2) -> tuple[int, ...]:
    """``"(3, 3)"`` -> ``(3, 3)``; ``"3"`` -> ``(3,) * ndim``; missing or empty -> ``default``."""
    if value is None:
        return default
    parsed = parse(value)
    if isinstance(parsed, int):
        return (parsed,) * ndim
    parsed = tuple(int(v) for v in parsed)
    return parsed if parsed else default


def as_flag(value, default: bool | None = None) -> bool | None:
    """``"True"``/``"true"``/``"1"`` -> True, ``"False"``/``"0"`` -> False; missing -> ``default``."""
    if value is None:
        return default
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        parsed = parse(value)
        return bool(parsed) if parsed is not None else default
    return bool(value)


def as_float(value, default: float | None = None) -> float | None:
    """A number attribute; missing or not a number -> ``default``."""
    if value is None:
        return default
    try:
        return float(parse(value))
    except (TypeError, ValueError):
        return default


def attrs_of(entry: dict | None) -> dict:
    """The attribute dict of one node of the symbol JSON (``{}`` when it has none).

    MXNet writes ``attrs``; JSON saved by MXNet before 0.9 has ``param`` (operator
    arguments) or ``attr`` (variable attributes such as ``__lr_mult__``) instead.
    """
    entry = entry or {}
    return entry.get("attrs") or entry.get("param") or entry.get("attr") or {}


def symbol_graph(symbol_or_json) -> dict:
    """The symbol's JSON graph as a dict (``nodes``, ``heads``, ``arg_nodes``)."""
    text = symbol_or_json if isinstance(symbol_or_json, str) else symbol_or_json.tojson()
    return json.loads(text)


def read_counts(graph: dict) -> dict[int, int]:
    """Node index -> how many edges read any of its outputs (a head counts: its value is returned)."""
    nodes = graph["nodes"]
    reads = {index: len(readers) for index, readers in consumer_map(
        nodes, inputs_of=lambda node: (entry[0] for entry in node["inputs"]), key_of=lambda node: node["name"],
        unique=False).items()}
    for entry in graph["heads"]:
        reads[entry[0]] = reads.get(entry[0], 0) + 1
    return reads


def scaled_convolutions(graph: dict, reads: dict[int, int]) -> dict[int, int]:
    """Convolution index -> index of the ``_mul_scalar`` scaling its output 0, where nothing else reads the
    convolution (Inception-ResNet-v2's ``net + scale * conv(mixed)``): the scale can move onto its parameters."""
    nodes = graph["nodes"]
    scaled = {}
    for index, node in enumerate(nodes):
        if node["op"] == "_mul_scalar":
            source, output = node["inputs"][0][:2]
            if nodes[source]["op"] == "Convolution" and output == 0 and reads.get(source, 0) == 1:
                scaled[source] = index
    return scaled


def rebuilt_graph(graph: dict, drop: set[int], new_bias: dict[int, str] | None = None) -> dict:
    """The graph with single-input nodes ``drop`` removed (their readers read their input),
    a bias variable ``new_bias[conv]`` added to those convolutions (``no_bias`` cleared),
    and the nodes no output depends on any more left out."""
    nodes = graph["nodes"]
    new_bias = new_bias or {}

    def resolve(entry):
        while entry[0] in drop:
            entry = nodes[entry[0]]["inputs"][0]
        return entry

    heads = [resolve(entry) for entry in graph["heads"]]
    live = reachable((entry[0] for entry in heads),
                     lambda i: () if i in drop else (resolve(entry)[0] for entry in nodes[i]["inputs"]))
    index: dict = {}
    kept: list[dict] = []
    for old, node in enumerate(nodes):
        if old not in live:
            continue
        node = dict(node)
        node["inputs"] = [[index[entry[0]], *entry[1:]] for entry in map(resolve, node["inputs"])]
        if old in new_bias:
            kept.append({"op": "null", "name": new_bias[old], "inputs": []})
            node["inputs"].append([len(kept) - 1, 0, 0])
            attrs_key = "attrs" if "attrs" in node else "param" if "param" in node else "attrs"
            node[attrs_key] = {**attrs_of(node), "no_bias": "False"}
        index[old] = len(kept)
        kept.append(node)
    result = dict(graph)
    result["nodes"] = kept
    result["heads"] = [[index[entry[0]], *entry[1:]] for entry in heads]
    result["arg_nodes"] = [i for i, node in enumerate(kept) if node["op"] == "null"]
    result.pop("node_row_ptr", None)  # recomputed by the loader
    return result


#: What ``--mx`` takes as an MXNet model file rather than a builder (``porting.frameworks.mx_files``).
MODEL_FILE_SUFFIXES = (".json", ".onnx")


def is_model_file(value) -> bool:
    """Whether an MX side names a model file (``-symbol.json`` / ``.json`` / ``.onnx``), not a builder."""
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(MODEL_FILE_SUFFIXES)
