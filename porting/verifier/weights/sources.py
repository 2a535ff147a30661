"""Where the values of a layer pair live: TF tensors of a record's ops, MXNet parameters of a node's inputs.

TF side: the conv or matmul weight input, the BiasAdd's bias, the FusedBatchNorm's
scale, offset, mean and variance inputs, each traced to its variable
(``porting.frameworks.tf_variables``) or constant. MXNet side: the parameter inputs of
``Convolution``, ``FullyConnected`` and ``BatchNorm`` nodes, in the order the ops take them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from porting import compat
from porting.core.records import Kind, LayerRecord
from porting.frameworks import tf_variables
from porting.frameworks.mx_attrs import as_flag, attrs_of
from porting.verifier.weights.mapping import ARG, AUX, SOURCE_CONSTANT, SOURCE_VARIABLE, to_shape

#: Parameter roles, in the order MXNet ops take them as inputs.
_MX_INPUT_ROLES = {
    "Convolution": ("weight", "bias"),
    "Deconvolution": ("weight", "bias"),
    "FullyConnected": ("weight", "bias"),
    "BatchNorm": ("gamma", "beta", "moving_mean", "moving_var"),
}
_TF_BN_ROLES = ("gamma", "beta", "moving_mean", "moving_var")  # FusedBatchNorm inputs 1..4


# ------------------------------------------------------------------ TF side

@dataclass(frozen=True)
class TfSource:
    """A TF value of a layer: a variable, a constant, or 'unknown' (neither)."""

    source: str
    tf_name: str | None
    tf_shape: tuple[int, ...] | None
    tensor: str
    constant: np.ndarray | None = None
    pre_transpose: bool = False


def tf_source(tensor) -> TfSource:
    """The variable or constant behind a tensor a layer op reads."""
    variable = tf_variables.variable_op(tensor)
    if variable is not None:
        shape = tensor.shape.as_list() if tensor.shape.rank is not None else None
        return TfSource(SOURCE_VARIABLE, variable.name, to_shape(shape) if shape else None, tensor.name)
    tf = compat.import_tf()
    value = tf.get_static_value(tensor)
    if value is not None:
        return TfSource(SOURCE_CONSTANT, None, to_shape(np.shape(value)), tensor.name,
                         np.asarray(value, dtype=np.float32))
    return TfSource("unknown", None, None, tensor.name)


def tf_roles(graph, record: LayerRecord) -> dict[str, TfSource]:
    """role -> TF source, from the ops folded into a TF record."""
    roles: dict[str, TfSource] = {}
    for part in record.parts:
        try:
            op = graph.get_operation_by_name(part.name)
        except (KeyError, ValueError):
            continue
        if part.kind in (Kind.CONV, Kind.DWCONV) and len(op.inputs) > 1:
            roles["weight"] = tf_source(op.inputs[1])
        elif part.kind == Kind.FC and op.type == "MatMul" and len(op.inputs) > 1:
            source = tf_source(op.inputs[1])
            if op.get_attr("transpose_b"):
                source = TfSource(**{**source.__dict__, "pre_transpose": True})
            roles["weight"] = source
        elif part.kind == Kind.BIAS and len(op.inputs) > 1:
            if op.type == "BiasAdd":
                roles["bias"] = tf_source(op.inputs[1])
            else:  # x + b with b a variable or constant
                for tensor in op.inputs:
                    source = tf_source(tensor)
                    if source.source in (SOURCE_VARIABLE, SOURCE_CONSTANT):
                        roles["bias"] = source
                        break
        elif part.kind == Kind.BN and op.type.startswith("FusedBatchNorm") and len(op.inputs) >= 5:
            for role, tensor in zip(_TF_BN_ROLES, op.inputs[1:5]):
                roles[role] = tf_source(tensor)
    return roles


def flat_geometry(records_by_name: dict[str, LayerRecord], record: LayerRecord, layout: str):
    """(H, W, C) when ``record``'s output is a spatial flatten in ``layout`` (through dropouts); else None.

    Only a flatten in ``layout`` (NHWC on TF, NCHW on MXNet) counts; an MXNet flatten
    of a transposed (NHWC) tensor is already in TF's order.
    """
    current = record
    for _ in range(8):
        if current.kind in (Kind.DROPOUT, Kind.ACT):
            if not current.inputs or current.inputs[0] not in records_by_name:
                return None
            current = records_by_name[current.inputs[0]]
            continue
        if current.kind in (Kind.FLATTEN, Kind.RESHAPE) and current.in_shape is not None \
                and len(current.in_shape) == 4 and len(current.shape) == 2:
            if not current.attrs.get("spatial") or current.attrs.get("source_layout") != layout:
                return None
            producer = records_by_name.get(current.inputs[0]) if current.inputs else None
            if layout == "NCHW" and producer is not None and producer.op in ("transpose", "Transpose"):
                return None
            _, channels, height, width = current.in_shape
            return height, width, channels
        return None
    return None


def tf_owner(graph, tf_records: dict, variable: str) -> str | None:
    """The TF record that reads a variable (through its read ops), or None."""
    for reader in tf_variables.variable_readers(graph.get_operation_by_name(variable)):
        for record in tf_records.values():
            if any(part.name == reader.name for part in record.parts):
                return record.name
    return None


# ------------------------------------------------------------------ MXNet side

def mx_index(mx_graph) -> dict[str, dict]:
    """Operator nodes of the symbol by name."""
    return {entry["name"]: entry for entry in mx_graph.nodes if entry.get("op") != "null"}


def is_mx_label(name: str) -> bool:
    """An MXNet argument that is a label (``softmax_label``): an input of the loss, never a parameter."""
    return name == "label" or name.endswith("_label")


def _mx_input_names(mx_graph) -> set[str]:
    """Arguments that are inputs, not parameters: 'data' and labels."""
    return {name for name in mx_graph.arg_shapes if name == "data" or is_mx_label(name)}


def mx_parameters(mx_graph) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every MXNet parameter of the symbol -> (kind, shape); inputs excluded."""
    inputs = _mx_input_names(mx_graph)
    params = {name: (ARG, to_shape(shape)) for name, shape in mx_graph.arg_shapes.items() if name not in inputs}
    params.update({name: (AUX, to_shape(shape)) for name, shape in mx_graph.aux_shapes.items()})
    return params


def mx_roles(mx_graph, index: dict[str, dict], record: LayerRecord) -> dict[str, tuple[str, str]]:
    """role -> (MXNet parameter name, op) from the nodes folded into an MXNet record."""
    roles: dict[str, tuple[str, str]] = {}
    nodes = mx_graph.nodes
    for part in record.parts:
        entry = index.get(part.name)
        if entry is None or entry["op"] not in _MX_INPUT_ROLES:
            continue
        for role, (src, *_rest) in zip(_MX_INPUT_ROLES[entry["op"]], entry["inputs"][1:]):
            source = nodes[src]
            if source.get("op") == "null":
                roles[role] = (source["name"], entry["op"])
    return roles


def fix_gamma(index: dict[str, dict], record: LayerRecord) -> bool:
    """Whether the BatchNorm of an MXNet record ignores its gamma (MXNet's default ``fix_gamma=True``)."""
    for part in record.parts:
        entry = index.get(part.name)
        if entry is not None and entry["op"] == "BatchNorm":
            return as_flag(attrs_of(entry).get("fix_gamma"), True)
    return False


def mx_owner(mx_graph, index: dict, param: str) -> str | None:
    """The MXNet record (else the node) that reads a parameter, or None."""
    nodes = mx_graph.nodes
    position = next((i for i, entry in enumerate(nodes) if entry["name"] == param and entry["op"] == "null"), None)
    if position is None:
        return None
    for entry in index.values():
        if any(src == position for src, *_ in entry["inputs"]):
            for record in mx_graph.records:
                if any(part.name == entry["name"] for part in record.parts):
                    return record.name
            return entry["name"]
    return None
