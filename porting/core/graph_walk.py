"""Graph bookkeeping shared by tf_reader and mx_reader: data paths, consumer maps, grouping, canonical order.

Both sides describe a graph as ``Node``s (one per framework op on the data
path); this module folds them into ``LayerRecord``s the same way for both, so
a conv + batch norm + activation declared as one slim layer becomes one record
on each side. :func:`reachable` and :func:`consumer_map` are the one home of
graph reachability and reader maps, for TF ops, MXNet JSON nodes and records alike.
:func:`canonical_order` is the row order of the reports (inputs in argument order);
:func:`dataflow_order` is the order structural pairing aligns, in which the branches of
every merge are visited by a structural signature (:func:`branch_signature`), so it does
not depend on creation order, names or argument order.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from porting.core.records import Kind, LayerRecord, Part

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

_ANCHOR_SUFFIXES = {
    "conv2d", "convolution", "depthwise", "depthwiseconv2dnative", "maxpool", "avgpool",
    "pooling", "matmul", "biasadd", "fusedbatchnormv3", "fusedbatchnorm", "batchnorm",
    "fullyconnected", "fwd", "output",
    "flatten",  # slim.flatten's op sits in 'Flatten/flatten' (tf.layers' own scope inside slim's)
}


@dataclass
class Node:
    """One op on the data path, as a side reads it from its graph."""

    name: str  # the op's own name
    scope: str  # the layer scope it belongs to (used as the record name)
    kind: Kind
    op: str
    inputs: list[str]  # names of data-path nodes feeding it, argument order
    shape: tuple[int, ...]
    in_shape: tuple[int, ...] | None = None
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    dilation: tuple[int, ...] | None = None
    pads: tuple[int, int, int, int] | None = None
    attrs: dict = field(default_factory=dict)


def reachable(starts: Iterable[T], neighbours: Callable[[T], Iterable[T]],
              within: set | None = None) -> set[T]:
    """Every node reachable from ``starts`` (themselves included) by following ``neighbours``.

    Args:
        starts: where the walk begins.
        neighbours: node -> the nodes one step away (readers for a forward walk,
            inputs for a backward one).
        within: when given, nodes outside it are neither entered nor followed
            (a backward walk restricted to what a forward walk reached).
    """
    seen: set[T] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node in seen or (within is not None and node not in within):
            continue
        seen.add(node)
        stack.extend(neighbours(node))
    return seen


def _inputs(node) -> Iterable:
    return node.inputs


def _name(node):
    return node.name


def consumer_map(nodes: Iterable[T], inputs_of: Callable[[T], Iterable[K]] = _inputs,
                 key_of: Callable[[T], object] = _name, unique: bool = True) -> dict[K, list]:
    """Input key -> the keys of the nodes that read it, in node order.

    Args:
        nodes: the nodes (``Node``s and ``LayerRecord``s by default: ``.name`` and ``.inputs``).
        inputs_of: node -> the keys of what it reads.
        key_of: node -> the key listed as a reader.
        unique: list a reader once even if it reads the same input twice
            (``False``: once per input edge, for counting edges).
    """
    readers: dict = {}
    for node in nodes:
        key = key_of(node)
        for source in inputs_of(node):
            listed = readers.setdefault(source, [])
            if not unique or key not in listed:
                listed.append(key)
    return readers


# Which part may follow which when folding a chain into one record.
_FOLLOWERS = {
    Kind.CONV: (Kind.BIAS, Kind.BN, Kind.ACT),
    Kind.DWCONV: (Kind.BIAS, Kind.BN, Kind.ACT),
    Kind.FC: (Kind.BIAS, Kind.BN, Kind.ACT),
}


def fold(nodes: list[Node], consumers: dict[str, list[str]], keep: set[str]) -> list[LayerRecord]:
    """Fold chains (pad→conv→bias→bn→act) into records; keep creation order.

    Args:
        nodes: data-path nodes in a topological order.
        consumers: node name → names of data-path nodes that read its output.
        keep: node names whose output must stay visible (end points, outputs):
            a chain is never folded past them... except into the node itself.
    """
    by_name = {node.name: node for node in nodes}
    owner: dict[str, str] = {}
    records: list[LayerRecord] = []
    used_names: set[str] = set()

    def single_consumer(name: str) -> Node | None:
        readers = consumers.get(name, [])
        if len(readers) != 1 or name in keep:
            return None
        reader = by_name[readers[0]]
        return reader if reader.inputs and reader.inputs[0] == name else None

    folded_pads: dict[str, Node] = {}
    for node in nodes:
        if node.kind == Kind.PAD and node.pads is not None:
            reader = single_consumer(node.name)
            if reader is not None and reader.kind in (Kind.CONV, Kind.DWCONV, Kind.POOL_MAX, Kind.POOL_AVG) \
                    and reader.attrs.get("accepts_pad", True):
                folded_pads[reader.name] = node
                owner[node.name] = reader.name  # provisional, fixed below

    for node in nodes:
        if node.name in owner:
            continue
        parts = []
        chain = [node]
        pad = folded_pads.get(node.name)
        if pad is not None:
            parts.append(Part(Kind.PAD, pad.name, pad.op))
        parts.append(Part(node.kind, node.name, node.op))
        allowed = list(_FOLLOWERS.get(node.kind, ()))
        tail = node
        while allowed:
            reader = single_consumer(tail.name)
            if reader is None or reader.kind not in allowed:
                break
            allowed = allowed[allowed.index(reader.kind) + 1:]
            parts.append(Part(reader.kind, reader.name, reader.op))
            chain.append(reader)
            tail = reader
        name = node.scope
        if name in used_names:
            name = node.name if node.name not in used_names else f"{node.name}#{len(records)}"
        used_names.add(name)
        attrs = dict(node.attrs)
        for member in chain[1:]:
            attrs.update({f"{member.kind}.{key}": value for key, value in member.attrs.items()})
        if pad is not None:
            attrs.update({f"pad.{key}": value for key, value in pad.attrs.items()})
        attrs["output_node"] = tail.name
        pads = node.pads
        in_shape = node.in_shape
        if pad is not None:
            pads = tuple(a + b for a, b in zip(pad.pads, node.pads or (0, 0, 0, 0)))
            in_shape = pad.in_shape
        members = ([pad] if pad is not None else []) + chain
        for member in members:
            owner[member.name] = name
        head_inputs = pad.inputs if pad is not None else node.inputs
        records.append(LayerRecord(
            name=name, kind=node.kind, op=node.op, inputs=tuple(head_inputs), shape=tail.shape,
            in_shape=in_shape, kernel=node.kernel, stride=node.stride, dilation=node.dilation,
            pads=pads, attrs=attrs, parts=tuple(parts)))

    # Inputs named nodes; rename them to the records that own those nodes.
    renamed = []
    for record in records:
        inputs = tuple(owner.get(name, name) for name in record.inputs)
        renamed.append(_replace_inputs(record, inputs))
    return canonical_order(renamed)


def _replace_inputs(record: LayerRecord, inputs: tuple[str, ...]) -> LayerRecord:
    return replace(record, inputs=inputs)


def _post_order(sinks, inputs_of, by_name: dict[str, LayerRecord]) -> list[LayerRecord]:
    """Post-order DFS from each sink in turn, inputs in ``inputs_of(name)`` order (iterative: deep nets)."""
    ordered: list[LayerRecord] = []
    seen: set[str] = set()
    for sink in sinks:
        stack = [(sink, 0)]
        while stack:
            name, next_input = stack.pop()
            if name in seen:
                continue
            inputs = inputs_of(name)
            if next_input < len(inputs):
                stack.append((name, next_input + 1))
                if inputs[next_input] not in seen:
                    stack.append((inputs[next_input], 0))
                continue
            seen.add(name)
            ordered.append(by_name[name])
    return ordered


def canonical_order(records: list[LayerRecord]) -> list[LayerRecord]:
    """A topological order that does not depend on how the source was written.

    Post-order DFS from the sinks, the deepest sink first, visiting inputs in
    argument order: the trunk comes out in data-flow order, branches of a concat
    in concat order, and side heads (AuxLogits) after the trunk on both sides.
    """
    by_name = {record.name: record for record in records}
    readers: dict[str, int] = {record.name: 0 for record in records}
    for record in records:
        for name in record.inputs:
            if name in readers:
                readers[name] += 1
    depth: dict[str, int] = {}
    for record in records:  # creation order is topological
        depth[record.name] = 1 + max((depth.get(name, 0) for name in record.inputs), default=0)
    position = {record.name: index for index, record in enumerate(records)}
    sinks = sorted((name for name, count in readers.items() if count == 0),
                   key=lambda name: (-depth[name], position[name]))
    return _post_order(sinks, lambda name: [n for n in by_name[name].inputs if n in by_name], by_name)


#: Kinds that make up a branch's structural signature (the weighted and windowed layers);
#: batch norms, activations, dropouts and the like are walked through but not counted, so a
#: side that keeps them as records of their own orders its branches like a side that folds them.
_SIGNATURE_KINDS = frozenset({Kind.CONV, Kind.DWCONV, Kind.FC, Kind.POOL_MAX, Kind.POOL_AVG, Kind.MEAN, Kind.LRN})


def _chain_signature(record: LayerRecord, by_name: dict[str, LayerRecord],
                     readers: dict[str, int]) -> tuple[tuple, LayerRecord | None]:
    """The signature of the chain that ends at ``record``, and the fork it starts from (None: a merge or the input)."""
    geometry: list[tuple] = []
    channels: list[int] = []
    stop: tuple = ()
    fork: LayerRecord | None = None
    current: LayerRecord | None = record
    while current is not None:
        inputs = [name for name in current.inputs if name in by_name]
        if current is not record and readers.get(current.name, 0) > 1:
            fork = current  # the branch point: shared with the other branches
            break
        if len(inputs) > 1:
            stop = (str(current.kind), len(inputs))
            break
        if current.kind in _SIGNATURE_KINDS:
            geometry.append((str(current.kind), tuple(current.kernel or ()), tuple(current.stride or ())))
            channels.append(current.channels or 0)
        current = by_name[inputs[0]] if inputs else None
    geometry.reverse()
    channels.reverse()
    return (len(geometry), tuple(geometry), stop, tuple(channels)), fork


def branch_signature(record: LayerRecord, by_name: dict[str, LayerRecord], readers: dict[str, int],
                     levels: int = 2) -> tuple:
    """A sort key for one input of a merge (add, concat, mul...): the branch that feeds it.

    Walks back from ``record`` (always included: the merge reads it) while each record
    is read once and reads one record (a chain no other layer shares), stopping before
    a fork (the branch point) or at a merge, and describes what it walked, from the
    branch point forward: the number of signature layers, then their (kind, kernel,
    stride), then the merge it stopped at, if any, then their channels. Ties (two
    branches of one conv each, e.g. a 1x3 after a 1x1 and a 1x3 after a 3x3) are broken
    by the signature of the chain ending at the fork, up to ``levels`` forks back. A
    shortcut with no layer of its own sorts first, a projection (one 1x1 conv) before a
    3-conv residual branch; channels come after the geometry so a wrong filter count
    rarely reorders the branches. Cost: the length of the chains walked.
    """
    key, fork = _chain_signature(record, by_name, readers)
    keys = [key]
    while fork is not None and levels > 0:
        key, fork = _chain_signature(fork, by_name, readers)
        keys.append(key)
        levels -= 1
    return tuple(keys)


def _merge_inputs(record: LayerRecord, by_name: dict[str, LayerRecord],
                  readers: dict[str, int]) -> tuple[list[str], list[str]]:
    """A merge's inputs to visit: (its branches, nested merges of its kind read only here, flattened).

    ``concat(a, concat(b, c))`` and ``concat(a, b, c)`` are then visited in the same order
    (the nested merge itself after its inputs): slim's Inception-v3 nests, ports write it flat.
    """
    flat: list[str] = []
    nested: list[str] = []
    for name in record.inputs:
        if name not in by_name:
            continue
        inner = by_name[name]
        if inner.kind == record.kind and readers.get(name, 0) == 1 \
                and len([n for n in inner.inputs if n in by_name]) > 1:
            inner_flat, inner_nested = _merge_inputs(inner, by_name, readers)
            flat.extend(inner_flat)
            nested.extend(inner_nested + [name])
        else:
            flat.append(name)
    return flat, nested


def dataflow_order(records: list[LayerRecord]) -> list[LayerRecord]:
    """A topological order that depends on the dataflow graph only: not on creation order, names or argument order.

    Like :func:`canonical_order` (post-order DFS from the sinks, deepest sink first), but
    at every merge the inputs are visited in the order of :func:`branch_signature`,
    ties kept in argument order, a nested merge of the same kind read only by it
    flattened into its inputs (``_merge_inputs``). Both sides of a port computed this way list the layers
    of a residual unit (shortcut created before or after its branch, ``a + b`` or
    ``b + a``) and of an Inception module (any branch order) in the same sequence, which
    is what the structural alignment in ``match`` needs. Records keep their own
    ``inputs`` (argument order), so a permuted concat is still reported by the inputs
    check. Cost: O(N + E) for the walk plus the chains behind each merge input (each
    record lies on at most one chain, so O(N) in all) and a sort of each merge's inputs.
    """
    by_name = {record.name: record for record in records}
    readers: dict[str, int] = {record.name: 0 for record in records}
    for record in records:
        for name in set(record.inputs):
            if name in readers:
                readers[name] += 1
    order: dict[str, list[str]] = {}
    for record in records:
        inputs = [name for name in record.inputs if name in by_name]
        if len(inputs) > 1:
            branches, nested = _merge_inputs(record, by_name, readers)
            keys = {name: branch_signature(by_name[name], by_name, readers) for name in branches}
            inputs = sorted(branches, key=keys.__getitem__) + nested  # stable: ties keep argument order
        order[record.name] = inputs
    depth: dict[str, int] = {}
    for record in canonical_order(records):
        depth[record.name] = 1 + max((depth.get(name, 0) for name in order[record.name]), default=0)
    sinks = sorted((name for name, count in readers.items() if count == 0),
                   key=lambda name: (-depth[name], branch_signature(by_name[name], by_name, readers)))
    return _post_order(sinks, order.__getitem__, by_name)


def collapse_scope(name: str) -> str:
    """'Net/Net/Mixed_5b/concat' → 'Net/Mixed_5b/concat' (TF re-entered variable scopes)."""
    parts = name.split("/")
    while len(parts) > 1 and parts[0] == parts[1]:
        parts.pop(0)
    return "/".join(parts)


def name_key(name: str) -> str:
    """The normalized join key: scope separators and trailing op-type tokens ignored."""
    tokens = [token for token in re.split(r"[^A-Za-z0-9]+", collapse_scope(name)) if token]
    tokens = [token.lower() for token in tokens]
    while len(tokens) > 1 and tokens[-1] in _ANCHOR_SUFFIXES:
        tokens.pop()
    return "/".join(tokens)
