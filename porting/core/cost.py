"""Per-layer parameter and multiply-add counts from the verifier's layer records.

Pure arithmetic over ``LayerRecord`` (no TensorFlow, no MXNet), so both sides of a
port are costed by the same code and a port that adds or drops a parameter shows a
different total. Conventions:

* **Parameters** are counted as slim counts *trainable* variables:

  - conv / depthwise conv: ``k_h * k_w * in_channels / groups * out_channels``
    (TF's ``weight_shape`` attribute is used when the record has it);
  - fully connected: ``in_features * out_features``;
  - a bias (TF: a folded ``BiasAdd`` part; MXNet: ``has_bias``): ``out_channels``;
  - batch norm: beta when it centers (MXNet's BatchNorm always has one), gamma only
    when it scales (TF ``scale=True``, MXNet ``fix_gamma=False``). MXNet creates a
    gamma argument even with ``fix_gamma=True``, but it stays 1 and gets no gradient,
    so it is not counted (slim's IRv2 has no gamma variables);
  - the moving mean and variance are counted apart (``moving``), never as trainable.

* **Multiply-adds (MACs)** are per image, for the forward pass, and count only the
  products of weights and activations:

  - conv: ``out_h * out_w * out_channels * k_h * k_w * in_channels / groups``;
  - fully connected: ``in_features * out_features``;
  - everything else (pooling, batch norm, bias, activation, residual add and scale,
    concat, softmax) is 0 MACs: these are memory-bound element-wise ops, listed by
    their output size (``out_elems``) instead. This is the convention of the papers'
    "multiply-adds" and of per-layer summary tools.

  A training step costs about 3x the forward MACs (forward, gradient with respect to
  the inputs, gradient with respect to the weights); FLOPs are 2x MACs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from porting.core.records import Kind, LayerRecord

#: Kinds whose MACs are counted (weights times activations).
COUNTED = frozenset({Kind.CONV, Kind.DWCONV, Kind.FC})


@dataclass(frozen=True)
class LayerCost:
    """Cost of one record.

    Attributes:
        name, kind: the record's.
        weights: conv or FC weight count.
        bias: bias count.
        bn: trainable batch-norm parameters (beta, plus gamma when it scales).
        moving: batch-norm moving mean + variance (not trainable).
        macs: forward multiply-adds per image.
        out_elems: output elements per image (activation size; x4 for float32 bytes).
    """

    name: str
    kind: str
    weights: int = 0
    bias: int = 0
    bn: int = 0
    moving: int = 0
    macs: int = 0
    out_elems: int = 0

    @property
    def params(self) -> int:
        """Trainable parameters (slim's counting)."""
        return self.weights + self.bias + self.bn


@dataclass(frozen=True)
class Totals:
    """Sums over a list of ``LayerCost``."""

    params: int
    weights: int
    bias: int
    bn: int
    moving: int
    macs: int
    out_elems: int
    layers: int

    def as_dict(self) -> dict:
        return {"params": self.params, "weights": self.weights, "bias": self.bias, "bn": self.bn,
                "moving": self.moving, "macs": self.macs, "out_elems": self.out_elems, "layers": self.layers}


def _per_image(shape) -> int:
    """Elements of one image's tensor: the product of the shape without the batch axis."""
    if not shape or len(shape) < 2:
        return 0
    return math.prod(int(dim) for dim in shape[1:])


def _in_channels(record: LayerRecord) -> int | None:
    return int(record.in_shape[1]) if record.in_shape and len(record.in_shape) >= 2 else None


def _groups(record: LayerRecord, in_channels: int | None) -> int:
    groups = record.attrs.get("num_group")
    if groups:
        return int(groups)
    if record.kind == Kind.DWCONV and in_channels:  # TF depthwise: one group per input channel
        return in_channels
    return 1


def _has_bias(record: LayerRecord) -> bool:
    """TF folds a BiasAdd into the record as a part; MXNet marks it on the op."""
    return bool(record.attrs.get("has_bias")) or Kind.BIAS in record.part_kinds()


def _bn_counts(attrs: dict, prefix: str, channels: int) -> tuple[int, int]:
    """(trainable, moving) of a batch norm over ``channels``, from its attributes."""
    center = attrs.get(f"{prefix}center", True)  # MXNet's BatchNorm always has a beta
    scale = attrs.get(f"{prefix}scale")
    if scale is None:
        scale = not attrs.get(f"{prefix}fix_gamma", True)
    trainable = channels * (int(bool(center)) + int(bool(scale)))
    has_moving = attrs.get(f"{prefix}has_moving_stats", True)
    return trainable, 2 * channels if has_moving else 0


def _in_per_group(record: LayerRecord) -> int:
    """Input channels each output channel reads: in_c / groups."""
    weight_shape = record.attrs.get("weight_shape")
    if weight_shape and len(weight_shape) == 4:
        # TF HWIO: a grouped Conv2D's I is already in_c / groups; a depthwise filter reads 1.
        return 1 if record.kind == Kind.DWCONV else int(weight_shape[2])
    in_channels = _in_channels(record) or 0
    return in_channels // _groups(record, in_channels)


def conv_weights(record: LayerRecord) -> int:
    """Weight count of a conv or depthwise conv record: k_h * k_w * in_c / groups * out_c."""
    kh, kw = record.kernel or (1, 1)
    return kh * kw * _in_per_group(record) * int(record.shape[1])


def conv_macs(record: LayerRecord) -> int:
    """Forward multiply-adds per image: out_h * out_w * out_c * k_h * k_w * in_c / groups.

    0 when the output shape is not known as NCHW.
    """
    if len(record.shape) != 4:
        return 0
    _, out_c, out_h, out_w = (int(dim) for dim in record.shape)
    kh, kw = record.kernel or (1, 1)
    return out_h * out_w * out_c * kh * kw * _in_per_group(record)


def fc_shape(record: LayerRecord) -> tuple[int, int]:
    """(in_features, out_features) of a fully connected record."""
    weight_shape = record.attrs.get("weight_shape")
    out_features = int(record.shape[-1])
    if weight_shape and len(weight_shape) == 2:
        first, second = (int(dim) for dim in weight_shape)
        # TF MatMul weights are (in, out), or (out, in) with transpose_b.
        return (second, first) if record.attrs.get("transpose_b") else (first, second)
    return _per_image(record.in_shape), out_features


def layer_cost(record: LayerRecord) -> LayerCost:
    """The cost of one record (see the module docstring for the conventions)."""
    kind = record.kind
    out_elems = _per_image(record.shape)
    weights = bias = bn = moving = macs = 0
    channels = int(record.shape[1]) if len(record.shape) >= 2 else 0
    if kind in (Kind.CONV, Kind.DWCONV):
        weights = conv_weights(record)
        macs = conv_macs(record)
    elif kind == Kind.FC:
        in_features, out_features = fc_shape(record)
        weights = in_features * out_features
        macs = weights
        channels = out_features
    elif kind == Kind.BN:
        bn, moving = _bn_counts(record.attrs, "", channels)
    elif kind == Kind.BIAS and record.op == "BiasAdd":  # a BiasAdd reads a variable; an Add may not
        bias = channels
    if kind in COUNTED:
        if _has_bias(record):
            bias = channels
        if Kind.BN in record.part_kinds():
            bn, moving = _bn_counts(record.attrs, "bn.", channels)
    return LayerCost(record.name, str(kind), weights, bias, bn, moving, macs, out_elems)


def layer_costs(records) -> list[LayerCost]:
    """One ``LayerCost`` per record, in the records' order."""
    return [layer_cost(record) for record in records]


def totals(costs) -> Totals:
    """Sums of a list of ``LayerCost`` (or of records, which are costed first)."""
    costs = [cost if isinstance(cost, LayerCost) else layer_cost(cost) for cost in costs]
    return Totals(params=sum(c.params for c in costs), weights=sum(c.weights for c in costs),
                  bias=sum(c.bias for c in costs), bn=sum(c.bn for c in costs),
                  moving=sum(c.moving for c in costs), macs=sum(c.macs for c in costs),
                  out_elems=sum(c.out_elems for c in costs), layers=len(costs))


@dataclass(frozen=True)
class CostColumns:
    """Per-row (params, macs) aligned with a comparison's ``rows``, and both sides' totals.

    Attributes:
        rows: one ``(params, macs)`` per row of ``result.rows``, from the TF record (the
            reference) or, for a row only MXNet has, from the MX record; ``None`` cells
            for a row without a record (render them as ``--``).
        tf: totals over every TF record; mx: over every MX record.
        disagree: indexes of rows whose TF and MX records cost differently (a port
            that adds, drops or resizes a parameter or a product).
        mx_rows: the MX record's ``(params, macs)`` per row (``None`` without one), to
            show both sides where they disagree.
    """

    rows: list[tuple[int | None, int | None]]
    tf: Totals
    mx: Totals
    disagree: tuple[int, ...] = ()
    mx_rows: list[tuple[int, int] | None] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.disagree and (self.tf.params, self.tf.macs) == (self.mx.params, self.mx.macs)


def cost_columns(result) -> CostColumns:
    """Cost columns for a ``porting.compare.CompareResult`` (rows with ``.tf`` / ``.mx`` sides)."""
    tf_records = list(result.tf_graph.records) if result.tf_graph is not None else []
    mx_records = list(result.mx_graph.records) if result.mx_graph is not None else []
    tf_costs = {record.name: layer_cost(record) for record in tf_records}
    mx_costs = {record.name: layer_cost(record) for record in mx_records}
    cells: list[tuple[int | None, int | None]] = []
    mx_cells: list[tuple[int, int] | None] = []
    disagree = []
    for index, row in enumerate(result.rows):
        tf_cost = tf_costs.get(row.tf.name) if row.tf is not None else None
        mx_cost = mx_costs.get(row.mx.name) if row.mx is not None else None
        chosen = tf_cost or mx_cost
        cells.append((chosen.params, chosen.macs) if chosen is not None else (None, None))
        mx_cells.append((mx_cost.params, mx_cost.macs) if mx_cost is not None else None)
        if tf_cost is not None and mx_cost is not None and \
                (tf_cost.params, tf_cost.macs) != (mx_cost.params, mx_cost.macs):
            disagree.append(index)
    return CostColumns(cells, totals(tf_costs.values()), totals(mx_costs.values()), tuple(disagree), mx_cells)


def human(count: int | float | None, unit: str = "") -> str:
    """'59.18M', '13.17G', '960' (SI prefixes, 4 significant digits); '--' for None."""
    if count is None:
        return "--"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= factor:
            return f"{count / factor:.4g}{prefix}{unit}"
    return f"{count:g}{unit}"
