"""The transfer plan: every MXNet parameter mapped to its TF source, from the layer pairing.

Names are never guessed: for every layer pair the verifier matched, the TF values come
from the TF ops of the record and the MXNet parameters from the MXNet node's inputs
(``sources``). Layouts come from ``porting.core.layouts``, including the flatten-order
reorder when a dense layer reads a spatial NHWC flatten.

Across equivalent forms (``porting.core.equivalences``): where the pairing took a TF
convolution over its whole input map (slim's VGG/AlexNet ``fc6``) or a 1x1 convolution on
a 1x1 map (``fc7``, ``fc8``, Inception's logits) as the dense layer an MXNet port writes,
the kernel (kh, kw, C, O) becomes the FullyConnected weight (O, C*kh*kw) by
``layouts.conv_to_dense``: the order MXNet's ``Flatten`` reads an NCHW map in, the one
the equivalence's canonical form declares. A port that flattens in another order (a
transpose to NHWC first) then reads permuted features: the ``flatten_order`` lint
reports it, and numeric parity shows it at that dense layer. The other way round (a TF
dense layer after an NHWC flatten, an MXNet conv over the whole map) the dense kernel's
rows are laid out as the conv's (O, C, H, W) by ``layouts.dense_to_conv``. Both are
permutations, so MXNet -> TF gives every TF tensor back bit for bit.
"""
from __future__ import annotations

import numpy as np

from porting.core import layouts
from porting.core.records import Kind, LayerRecord
from porting.frameworks import tf_variables
from porting.verifier.weights.mapping import (SOURCE_CONSTANT, SOURCE_FILL, SOURCE_VARIABLE, Mapping, Problem,
                                              TransferPlan, shape_text)
from porting.verifier.weights import sources
from porting.verifier.weights.sources import TfSource, fix_gamma, flat_geometry

_FILLS = {"bias": (0.0, "0: TF has no bias here"), "gamma": (1.0, "1: TF's batch norm has no scale (gamma)")}


def pair_graphs(tf_graph, mx_graph):
    """The layer pairing ``verify`` makes: equivalent forms normalised, then matched."""
    from porting.core.equivalences import normalise
    from porting.core.match import match

    return match(*normalise(tf_graph.records, mx_graph.records)[:2])


def plan_transfer(tf_graph, mx_graph, pairs=None) -> TransferPlan:
    """Map every MXNet parameter to its TF source, using the layer pairing.

    Args:
        tf_graph: a ``tf_reader.TfGraph`` (inference mode, so batch norms read their
            moving statistics).
        mx_graph: an ``mx_reader.MxGraph``.
        pairs: the pairing of ``verify`` (``result.pairs``); :func:`pair_graphs` when omitted.
    """
    if pairs is None:
        pairs = pair_graphs(tf_graph, mx_graph)
    graph = tf_graph.graph
    facts = getattr(tf_graph, "transfer_facts", None)  # a cached TF side: read from its graph when it was built
    variables = facts.variables if facts else tf_variables.graph_variables(graph)
    params = sources.mx_parameters(mx_graph)
    index = sources.mx_index(mx_graph)
    tf_records = {record.name: record for record in tf_graph.records}
    mx_records = {record.name: record for record in mx_graph.records}
    mappings: list[Mapping] = []
    problems: list[Problem] = []
    warnings: list[str] = []
    used_tf: set[str] = set()
    placed_mx: set[str] = set()

    for pair in pairs:
        if pair.tf is None or pair.mx is None:
            continue
        # The record as read from the graph: an equivalence may have relabelled its ops (a conv as a dense).
        tf_record = tf_records.get(pair.tf.name, pair.tf)
        tf_roles = facts.roles(tf_record) if facts else sources.tf_roles(graph, tf_record)
        mx_roles = sources.mx_roles(mx_graph, index, pair.mx)
        if not tf_roles and not mx_roles:
            continue
        for role, (mx_name, mx_op) in mx_roles.items():
            if mx_name not in params:
                continue
            mx_kind, mx_shape = params[mx_name]
            base = dict(mx_name=mx_name, mx_kind=mx_kind, mx_shape=mx_shape, role=role, layer=pair.tf.name,
                        mx_layer=pair.mx.name, layer_kind=pair.tf.kind)
            if mx_name in placed_mx:
                problems.append(Problem("mismatched", mx_name, f"takes values from two TF layers (also {pair.tf.name})",
                                        layer=pair.tf.name, mx_name=mx_name))
                continue
            source = tf_roles.get(role)
            if source is None or source.source == "unknown":
                if role in _FILLS and (source is None):
                    value, note = _FILLS[role]
                    mappings.append(Mapping(**base, source=SOURCE_FILL, constant=np.float32(value), note=note))
                    placed_mx.add(mx_name)
                else:
                    what = "no" if source is None else "an untraceable (neither variable nor constant)"
                    problems.append(Problem("missing", mx_name,
                                            f"the TF layer {pair.tf.name} has {what} {role} for MXNet's {mx_op}",
                                            layer=pair.tf.name, mx_name=mx_name, mx_shape=mx_shape))
                continue
            transform, args, note = "identity", (), ""
            if source.source == SOURCE_CONSTANT:
                note = f"{role} is a constant of the TF graph ({source.tensor})"
                if role == "gamma" and _neutral(role, source.constant):
                    note = "1: TF's batch norm has no scale (its gamma is a constant 1)"
            if role == "weight":
                transform, args, note = _weight_transform(pair, source, tf_records, mx_records, mx_shape)
            if role == "gamma" and fix_gamma(index, pair.mx) and source.source == SOURCE_VARIABLE:
                warnings.append(f"{pair.tf.name}: TF learns a batch-norm gamma ({source.tf_name}) but MXNet's "
                                f"{pair.mx.name} has fix_gamma=True, which ignores it (PITFALLS.md #5a)")
            mapping = Mapping(**base, source=source.source, tf_name=source.tf_name, tf_shape=source.tf_shape,
                              tf_tensor=source.tensor, transform=transform, transform_args=args,
                              pre_transpose=source.pre_transpose, constant=source.constant, note=note)
            expected = _expected_shape(mapping, source)
            if expected is not None and tuple(expected) != tuple(mx_shape):
                problems.append(Problem("mismatched", mx_name,
                                        f"TF {source.tf_name or 'constant'} {shape_text(source.tf_shape)} becomes "
                                        f"{shape_text(expected)} by {transform}, MXNet expects {shape_text(mx_shape)}",
                                        layer=pair.tf.name, tf_name=source.tf_name, mx_name=mx_name,
                                        tf_shape=source.tf_shape, mx_shape=mx_shape))
                if source.source == SOURCE_VARIABLE:
                    used_tf.add(source.tf_name)
                placed_mx.add(mx_name)
                continue
            if source.source == SOURCE_CONSTANT and expected is None:
                problems.append(Problem("mismatched", mx_name, f"the TF constant for {role} has shape "
                                        f"{shape_text(source.tf_shape)}, MXNet expects {shape_text(mx_shape)}",
                                        layer=pair.tf.name, mx_name=mx_name, mx_shape=mx_shape))
                continue
            mappings.append(mapping)
            placed_mx.add(mx_name)
            if source.source == SOURCE_VARIABLE:
                used_tf.add(source.tf_name)
        for role, source in tf_roles.items():
            if role in mx_roles or source.source != SOURCE_VARIABLE:
                if role not in mx_roles and source.source == SOURCE_CONSTANT and not _neutral(role, source.constant):
                    warnings.append(f"{pair.tf.name}: TF applies a constant {role} that MXNet's {pair.mx.name} "
                                    "has no parameter for")
                continue
            problems.append(Problem("unexpected", source.tf_name,
                                    f"MXNet's {pair.mx.name} has no {role} parameter to take it",
                                    layer=pair.tf.name, tf_name=source.tf_name, tf_shape=source.tf_shape))
            used_tf.add(source.tf_name)

    for name, (kind, shape) in params.items():
        if name not in placed_mx and not any(p.mx_name == name for p in problems):
            owner = sources.mx_owner(mx_graph, index, name)
            reason = (f"the MXNet layer {owner} has no TF counterpart" if owner else "no paired layer reads it")
            problems.append(Problem("missing", name, reason, layer=owner, mx_name=name, mx_shape=shape))
    for name, shape in variables.items():
        if name not in used_tf:
            owner = facts.owners.get(name) if facts else sources.tf_owner(graph, tf_records, name)
            reason = (f"the TF layer {owner} has no MXNet counterpart" if owner and not _paired(pairs, owner)
                      else "no paired MXNet layer takes it")
            problems.append(Problem("unexpected", name, reason, layer=owner, tf_name=name, tf_shape=shape))
    fix_gamma_layers = {pair.mx.name for pair in pairs if pair.mx is not None and fix_gamma(index, pair.mx)}
    return TransferPlan(mappings, problems, warnings, variables, params, fix_gamma_layers)


def _neutral(role: str, value) -> bool:
    if value is None:
        return False
    return bool(np.all(value == (1.0 if role in ("gamma", "moving_var") else 0.0)))


def _paired(pairs, tf_name: str) -> bool:
    return any(p.tf is not None and p.mx is not None and p.tf.name == tf_name for p in pairs)


def _flatten_geometry(records_by_name: dict[str, LayerRecord], record: LayerRecord, layout: str):
    """(H, W, C) of the spatial flatten a dense layer reads, through dropouts; else None."""
    if not record.inputs or record.inputs[0] not in records_by_name:
        return None
    return flat_geometry(records_by_name, records_by_name[record.inputs[0]], layout)


def _weight_transform(pair, source: TfSource, tf_records, mx_records, mx_shape=None):
    """(transform name, keyword args, note) for a weight of a paired layer."""
    tf, mx = pair.tf, pair.mx
    if tf.kind == Kind.DWCONV:
        multiplier = int(source.tf_shape[3]) if source.tf_shape and len(source.tf_shape) == 4 else 1
        return "depthwise_to_mx", (("multiplier", multiplier),), ""
    if tf.kind == Kind.CONV:
        return "hwio_to_oihw", (), ""
    if tf.kind == Kind.FC and source.tf_shape is not None and len(source.tf_shape) == 4:
        # A conv taken as a dense layer (porting.core.equivalences: conv_whole_map, conv_1x1_dense).
        height, width, channels, _ = source.tf_shape
        return ("conv_to_dense", (("height", height), ("width", width), ("channels", channels)),
                f"a {height}x{width} conv over {channels} channels taken as a dense layer: its kernel read in "
                "MXNet's NCHW flatten order")
    if tf.kind == Kind.FC and mx_shape is not None and len(mx_shape) == 4:
        # The other way round: a TF dense layer, an MXNet conv over the whole map (or 1x1 on 1x1).
        _, channels, height, width = mx_shape
        tf_flat = _flatten_geometry(tf_records, tf, "NHWC")
        if tf_flat is not None and tuple(tf_flat) != (height, width, channels):
            tf_flat = None  # not the map the MXNet kernel covers: left to the shape check to report
        if tf_flat is not None or (height, width) == (1, 1):
            return ("dense_to_conv", (("height", height), ("width", width), ("channels", channels)),
                    f"reads {'an NHWC flatten of ' if tf_flat else 'a vector of '}{height}x{width}x{channels}: "
                    "rows laid out as the MXNet conv's kernel")
    if tf.kind == Kind.FC:
        tf_flat = _flatten_geometry(tf_records, tf, "NHWC")
        mx_flat = _flatten_geometry(mx_records, mx, "NCHW")
        if tf_flat is not None and mx_flat is not None and tf_flat[0] * tf_flat[1] > 1:
            height, width, channels = tf_flat
            return ("flatten_dense_to_mx", (("height", height), ("width", width), ("channels", channels)),
                    f"reads an NHWC flatten of {height}x{width}x{channels}: rows reordered to NCHW (PITFALLS.md #7)")
        return "dense_to_mx", (), ""
    return "identity", (), ""


def _expected_shape(mapping: Mapping, source: TfSource):
    if source.source == SOURCE_CONSTANT and mapping.role != "weight":
        value = source.constant
        if value.size == 1 or value.shape == tuple(mapping.mx_shape):
            return tuple(mapping.mx_shape)
        return None
    if source.tf_shape is None:
        return None
    shape = tuple(source.tf_shape)
    if mapping.pre_transpose:
        shape = shape[::-1]
    try:
        return layouts.shape_to_mx(mapping.transform, shape, **dict(mapping.transform_args))
    except layouts.LayoutError:
        return ("not " + mapping.transform,)
