"""Pair TF layer records with MXNet layer records.

First by name (slim scope names are the join key, compared through
``graph_walk.name_key``), then, for what is left, by structural alignment of the
two sides' ``graph_walk.dataflow_order``: a global sequence alignment (like a
diff) in which only layers of a compatible kind may pair and similar layers (same
output shape, kernel, stride, channels) score higher; layers that exist on one
side only become gaps.

Pairing on the dataflow graph: the sequences aligned are not the records in
creation order but a topological order computed the same way on both sides, in
which the inputs of every merge (add, concat) are visited in the order of a
structural signature of the branch feeding them (the chain of conv/pool/dense
kinds, kernels, strides and channels back to the branch point). A ResNet shortcut
created before or after its residual branch, ``a + b`` or ``b + a``, Inception
branches in any order: the same sequence on both sides, so the layers inside the
branches pair with their counterparts. The records keep their argument-order
inputs, so a concat whose inputs are permuted is still reported (by the inputs
check in ``diff``). Rows still follow the TF records' order (``canonical_order``).

Cost: name pairing O(N); ``dataflow_order`` O(N + E) plus a sort of each merge's
inputs; the alignment O(n·m) time and memory over the n TF and m MXNet records
left after name pairing (none for our own pair, whose names agree).
"""
from __future__ import annotations

from dataclasses import dataclass

from porting.core.graph_walk import dataflow_order, name_key
from porting.core.records import Kind, LayerRecord

BY_NAME = "name"
BY_STRUCTURE = "structure"
BY_INPUT = "input"

_COMPATIBLE = {
    Kind.MEAN: {Kind.MEAN, Kind.POOL_AVG},
    # A max pool where the other side averages is one layer with another operation (diff's
    # check_operation), not a layer missing on one side and an extra one on the other.
    Kind.POOL_AVG: {Kind.POOL_AVG, Kind.MEAN, Kind.POOL_MAX},
    Kind.POOL_MAX: {Kind.POOL_MAX, Kind.POOL_AVG},
    Kind.FLATTEN: {Kind.FLATTEN, Kind.RESHAPE},
    Kind.RESHAPE: {Kind.RESHAPE, Kind.FLATTEN},
}


def compatible(tf_kind: Kind, mx_kind: Kind) -> bool:
    """Whether two kinds may be the same layer (a global mean and a global average pool are; so are
    a max and an average pool, one substituted for the other)."""
    return mx_kind in _COMPATIBLE.get(tf_kind, {tf_kind})


@dataclass(frozen=True)
class Pair:
    """One row of the comparison: a TF record, an MX record, or both."""

    tf: LayerRecord | None
    mx: LayerRecord | None
    matched_by: str | None = None
    note: str = ""


def _similarity(tf: LayerRecord, mx: LayerRecord) -> float:
    score = 2.0
    if tf.shape == mx.shape:
        score += 2.0
    elif len(tf.shape) == len(mx.shape) and tf.shape[1:2] == mx.shape[1:2]:
        score += 1.0
    if tf.kernel == mx.kernel:
        score += 1.0
    if tf.stride == mx.stride:
        score += 1.0
    if tf.kind == mx.kind:
        score += 0.5
    if len(tf.inputs) == len(mx.inputs):
        score += 0.5
    return score


def _align(tf_list: list[LayerRecord], mx_list: list[LayerRecord]) -> list[tuple[int | None, int | None]]:
    """Needleman-Wunsch over two record lists; returns aligned index pairs in order."""
    rows, cols = len(tf_list), len(mx_list)
    gap = -1.0
    # score[i][j]: best score aligning tf_list[:i] with mx_list[:j]
    score = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    move = [[0] * (cols + 1) for _ in range(rows + 1)]  # 1 diag, 2 up (tf only), 3 left (mx only)
    for i in range(1, rows + 1):
        score[i][0] = i * gap
        move[i][0] = 2
    for j in range(1, cols + 1):
        score[0][j] = j * gap
        move[0][j] = 3
    mx_kinds = [record.kind for record in mx_list]
    for i in range(1, rows + 1):
        tf_record = tf_list[i - 1]
        row, prev = score[i], score[i - 1]
        moves = move[i]
        for j in range(1, cols + 1):
            best, how = prev[j] + gap, 2
            left = row[j - 1] + gap
            if left > best:
                best, how = left, 3
            if compatible(tf_record.kind, mx_kinds[j - 1]):
                diag = prev[j - 1] + _similarity(tf_record, mx_list[j - 1])
                if diag >= best:
                    best, how = diag, 1
            row[j] = best
            moves[j] = how
    pairs: list[tuple[int | None, int | None]] = []
    i, j = rows, cols
    while i > 0 or j > 0:
        how = move[i][j]
        if how == 1:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif how == 2:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    pairs.reverse()
    return pairs


def _describe_structural(tf: LayerRecord, mx: LayerRecord) -> str:
    same = [label for label, ok in (("kind", tf.kind == mx.kind), ("kernel", tf.kernel == mx.kernel),
                                    ("stride", tf.stride == mx.stride), ("output shape", tf.shape == mx.shape))
            if ok]
    return (f"names differ ('{tf.name}' vs '{mx.name}'): paired by position in the layer order"
            + (f", same {', '.join(same)}" if same else ""))


def match(tf_records: list[LayerRecord], mx_records: list[LayerRecord]) -> list[Pair]:
    """Pair the two record lists; rows follow the TF order with MX-only rows in place."""
    pairs_by_tf: dict[str, Pair] = {}
    mx_taken: dict[str, str] = {}  # mx name -> tf name
    tf_inputs = [r for r in tf_records if r.kind == Kind.INPUT]
    mx_inputs = [r for r in mx_records if r.kind == Kind.INPUT]
    if len(tf_inputs) == 1 and len(mx_inputs) == 1:
        pairs_by_tf[tf_inputs[0].name] = Pair(tf_inputs[0], mx_inputs[0], BY_INPUT)
        mx_taken[mx_inputs[0].name] = tf_inputs[0].name

    mx_by_key: dict[str, list[LayerRecord]] = {}
    for record in mx_records:
        if record.name not in mx_taken:
            mx_by_key.setdefault(name_key(record.name), []).append(record)
    for record in tf_records:
        if record.name in pairs_by_tf:
            continue
        candidates = mx_by_key.get(name_key(record.name), [])
        candidates = [c for c in candidates if c.name not in mx_taken and compatible(record.kind, c.kind)]
        if len(candidates) == 1:
            pairs_by_tf[record.name] = Pair(record, candidates[0], BY_NAME)
            mx_taken[candidates[0].name] = record.name

    tf_left = [r for r in tf_records if r.name not in pairs_by_tf]
    mx_left = [r for r in mx_records if r.name not in mx_taken]
    only_mx: list[LayerRecord] = []
    if tf_left and mx_left:
        tf_left = [r for r in dataflow_order(tf_records) if r.name not in pairs_by_tf]
        mx_left = [r for r in dataflow_order(mx_records) if r.name not in mx_taken]
        for i, j in _align(tf_left, mx_left):
            if i is not None and j is not None:
                tf_record, mx_record = tf_left[i], mx_left[j]
                pairs_by_tf[tf_record.name] = Pair(tf_record, mx_record, BY_STRUCTURE,
                                                   _describe_structural(tf_record, mx_record))
                mx_taken[mx_record.name] = tf_record.name
            elif j is not None:
                only_mx.append(mx_left[j])
    else:
        only_mx = mx_left

    # Place MX-only records after the row of the MX record that precedes them.
    after: dict[str | None, list[LayerRecord]] = {}
    previous_tf: str | None = None
    only_names = {record.name for record in only_mx}
    for record in mx_records:
        if record.name in only_names:
            after.setdefault(previous_tf, []).append(record)
        elif record.name in mx_taken:
            previous_tf = mx_taken[record.name]
    rows: list[Pair] = [Pair(None, record) for record in after.get(None, [])]
    for record in tf_records:
        rows.append(pairs_by_tf.get(record.name, Pair(record, None)))
        rows.extend(Pair(None, extra) for extra in after.get(record.name, []))
    return rows
