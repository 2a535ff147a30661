"""Numeric parity: the same weights and the same input through both sides, every layer compared.

Weights are a TF checkpoint or seeded random values created on the TF side that exercise
everything (non-trivial batch-norm moving statistics and betas, non-zero biases); they
reach MXNet through ``porting.verifier.weights`` (the layer pairing, never names). Both graphs
run once in inference mode with every paired layer's output fetched (TF: one
``session.run``; MXNet: one forward of the grouped internals), and each pair is compared
in float64 (TF, NHWC, transposed to NCHW, is the reference).

An element fails only if its error exceeds both ``atol`` and ``rtol * |reference|``;
NaN always fails. A :class:`ParityResult` is truthy when the layer passed and carries
its evidence: max and mean absolute error, max relative error, and the smallest
tolerance that would have passed.

Default tolerances: ``rtol = 1e-4`` and, per layer, ``atol = 3e-5 x max(1, max |TF output|)``
(``DEFAULT_RTOL``, ``DEFAULT_ATOL_RANGE``; ``--atol A`` fixes an absolute atol instead).
Why the absolute part follows the layer's range: float32 accumulation error scales with
the magnitude of the values a layer sums, so near the end of Inception-ResNet-v2, where
activations reach ~100, an output element near 0 carries ~1e-4 of error like its large
neighbours; a fixed ``atol = 1e-4`` passes the faithful port with a margin of only 1.2x,
while every semantic defect is at least ~5e-4 of its layer's range. Measured on this CPU
stack (TF 2.21 oneDNN vs MXNet 1.9.1 MKLDNN, float32, batch 1, seeded random weights):

======================================  ======  =========  ============  ===============
network                                 layers  max abs    atol needed   share of the
                                                           (x range)     default used
======================================  ======  =========  ============  ===============
IRv2 299 with AuxLogits, seeds 0/1/2    422     1.0e-4     1.7-2.2e-6    6-7 %
IRv2 299 without AuxLogits, seed 0      417     1.0e-4     1.8e-6        6 %
IRv2 align_feature_maps 150 (full)      422     8.5e-5     2.2e-6        7 %
IRv2 output_stride=8 139 (full)         313     3.6e-5     1.8e-6        6 %
defect: batch-norm eps 1e-5 vs 1e-3     --      8.8e-4     6.6e-4        2200 %
defect: other catalogue defects         --      0.3-2.8    0.2-1.8       > 7000 %
======================================  ======  =========  ============  ===============

So the default sits ~14x above the float32 noise of the deepest faithful layer and ~22x
below the smallest defect (PITFALLS.md #14: ~1e-6 per layer, growing with depth; #5: eps).
Relax it (``--rtol/--atol``) for TF32 or float16 runs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from porting import compat
from porting.core import layouts
from porting.core.records import Kind

#: Defaults: see the module docstring for the measurement behind them.
DEFAULT_RTOL = 1e-4
#: With no explicit atol, a layer's atol is this times its range, max |TF output| (at least 1).
DEFAULT_ATOL_RANGE = 3e-5


class ParityError(Exception):
    """Numeric parity could not run (training-mode graph, unreadable weights, no input)."""


@dataclass(frozen=True)
class ParityResult:
    """One layer's comparison; truthy when every element is within tolerance.

    Attributes:
        max_abs, mean_abs: absolute error |MX - TF| (NaN when an output is NaN).
        max_rel: max |MX - TF| / |TF| over elements with |TF| > atol (smaller
            references are judged by atol alone).
        min_tol: the smallest t for which ``rtol = atol = t`` passes.
        min_atol: the smallest atol that passes at this rtol; min_rtol likewise.
        range: max |TF output|, the scale a default atol is relative to.
        atol: the absolute tolerance used (explicit, or ``atol_range * max(1, range)``).
        failed: elements over tolerance (NaN included); size: elements compared.
        worst: NCHW index of the largest error, with the two values there.
        border_only: every failing element lies on the outer ring of a 4-D map.
    """

    name: str
    passed: bool
    rtol: float
    atol: float
    max_abs: float
    max_rel: float
    mean_abs: float
    min_tol: float
    min_atol: float
    min_rtol: float
    failed: int
    size: int
    range: float = 0.0
    nan: int = 0
    worst: tuple[int, ...] = ()
    worst_tf: float = 0.0
    worst_mx: float = 0.0
    border_only: bool = False
    note: str = ""

    def __bool__(self) -> bool:
        return self.passed

    @property
    def used(self) -> float:
        """The share of the absolute tolerance this layer needs at its rtol (> 1: it failed)."""
        if not math.isfinite(self.min_atol):
            return math.inf
        return self.min_atol / self.atol if self.atol else (math.inf if self.min_atol else 0.0)

    @property
    def min_atol_range(self) -> float:
        """The smallest atol, relative to the layer's range, that passes at this rtol."""
        return self.min_atol / max(1.0, self.range) if math.isfinite(self.min_atol) else math.inf

    def as_dict(self) -> dict:
        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
            return list(value) if isinstance(value, tuple) else value

        data = {key: clean(value) for key, value in self.__dict__.items()}
        data["min_atol_range"] = clean(self.min_atol_range)
        data["used"] = clean(self.used)
        return data

    def line(self) -> str:
        verdict = "pass" if self.passed else f"FAIL ({self.failed}/{self.size} elements)"
        return (f"{self.name}: max abs {_g(self.max_abs)}, max rel {_g(self.max_rel)}, mean abs {_g(self.mean_abs)}, "
                f"smallest passing tolerance {_g(self.min_tol)}: {verdict}" + (f"; {self.note}" if self.note else ""))


def _g(value: float) -> str:
    if value is None:
        return "--"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.2e}" if value else "0"


def compare_arrays(reference, candidate, rtol: float = DEFAULT_RTOL, atol: float | None = None,
                   name: str = "", atol_range: float = DEFAULT_ATOL_RANGE) -> ParityResult:
    """Compare ``candidate`` (MXNet) against ``reference`` (TF) in float64.

    ``atol=None``: the absolute tolerance is ``atol_range * max(1, max |reference|)``,
    because float32 accumulation error in a layer scales with the magnitude of the
    values it sums, so an output near zero in a layer whose values reach 100 carries the
    error of its large neighbours.
    """
    fixed = atol
    ref = np.array(reference, dtype=np.float64)  # copies: the buffers are reused below
    out = np.array(candidate, dtype=np.float64)
    if ref.shape != out.shape:
        return ParityResult(name, False, rtol, atol if atol is not None else math.nan, math.inf, math.inf, math.inf, math.inf, math.inf, math.inf,
                            max(ref.size, out.size), max(ref.size, out.size),
                            note=f"shapes differ: TF {ref.shape}, MXNet {out.shape}")
    size = ref.size
    if size == 0:
        return ParityResult(name, True, rtol, atol or 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)
    diff = np.subtract(out, ref)
    np.abs(diff, out=diff)
    nan_mask = np.isnan(diff) if np.isnan(diff.max()) else None
    nan_count = int(nan_mask.sum()) if nan_mask is not None else 0
    if nan_count:
        diff[nan_mask] = np.inf
    flat = int(np.argmax(diff))
    worst = tuple(int(i) for i in np.unravel_index(flat, ref.shape))
    worst_tf, worst_mx = float(ref.flat[flat]), float(out.flat[flat])
    magnitude = np.abs(ref, out=out)  # ``out`` is not needed any more: reuse its memory
    value_range = float(magnitude.max())
    if not math.isfinite(value_range):  # NaN or inf in the reference: the range of the finite values
        value_range = float(np.where(np.isfinite(magnitude), magnitude, 0.0).max())
    atol = fixed if fixed is not None else atol_range * max(1.0, value_range)
    scratch = np.multiply(magnitude, rtol)
    over_rel = diff > scratch
    over_abs = diff > atol
    failing = over_abs & over_rel
    if nan_count:
        failing |= nan_mask  # NaN always fails, even where the reference itself is NaN
    failed = int(np.count_nonzero(failing))
    max_abs = float(diff.flat[flat])
    mean_abs = float(diff.mean())
    big = magnitude > atol
    with np.errstate(divide="ignore", invalid="ignore"):
        max_rel = float(np.divide(diff, magnitude, out=scratch, where=big).max(initial=0.0, where=big))
        np.maximum(magnitude, 1.0, out=scratch)
        min_tol = float(np.divide(diff, scratch, out=scratch).max())
        min_atol = float(diff.max(initial=0.0, where=over_rel))
        min_rtol = float(np.divide(diff, magnitude, out=scratch, where=over_abs).max(initial=0.0, where=over_abs))
    border_only = False
    if failed and ref.ndim == 4 and ref.shape[2] > 2 and ref.shape[3] > 2:
        border_only = not failing[:, :, 1:-1, 1:-1].any()
    if nan_count:
        max_abs = mean_abs = max_rel = math.nan
        min_tol = min_atol = min_rtol = math.inf
    return ParityResult(name, failed == 0, rtol, atol, max_abs, max_rel, mean_abs, min_tol, min_atol, min_rtol,
                        failed, size, value_range, nan_count, worst, worst_tf, worst_mx, border_only)


# ------------------------------------------------------------------ running both sides

def seeded_input(shape_nhwc, seed: int = 0) -> np.ndarray:
    """An image batch (N, H, W, 3) ~ U(-1, 1), the range of slim's inception preprocessing."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x1A9E])
    return rng.uniform(-1.0, 1.0, tuple(shape_nhwc)).astype(np.float32)


def run_tf(tf_graph, session, names, images: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the named TF records (NCHW for 4-D), in one ``session.run``."""
    fetches = {name: tf_graph.graph.get_tensor_by_name(tf_graph.tensors[name]) for name in names}
    values = session.run(fetches, feed_dict={tf_graph.images: images})
    return {name: layouts.nhwc_to_nchw(value) for name, value in values.items()}


def run_mx(mx_graph, arg_params: dict, aux_params: dict, names, data: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the named MXNet records, from one inference forward of the grouped internals."""
    mx = compat.import_mx()
    internals = mx_graph.symbol.get_internals()
    wanted = list(dict.fromkeys(mx_graph.outputs[name] for name in names))
    group = mx.sym.Group([internals[output] for output in wanted])
    context = mx.cpu()

    def array(value):
        return value if isinstance(value, mx.nd.NDArray) else mx.nd.array(value, ctx=context, dtype=np.float32)

    args = {}
    for name in group.list_arguments():
        if name == "data":
            args[name] = mx.nd.array(data, ctx=context)
        elif name in arg_params:
            args[name] = array(arg_params[name])
        else:
            raise ParityError(f"MXNet argument {name!r} has no value (the weight transfer did not set it)")
    aux = {}
    for name in group.list_auxiliary_states():
        if name not in aux_params:
            raise ParityError(f"MXNet auxiliary state {name!r} has no value (the weight transfer did not set it)")
        aux[name] = array(aux_params[name])
    with compat.no_subgraph_fusion():  # see compat: internals around conv+bn+add do not bind fused
        executor = group.bind(context, args=args, aux_states=aux, grad_req="null")
        outputs = executor.forward(is_train=False)
    by_output = {output: value.asnumpy() for output, value in zip(wanted, outputs)}
    return {name: by_output[mx_graph.outputs[name]] for name in names}


# ------------------------------------------------------------------ the whole comparison

@dataclass
class LayerParity:
    """One compared pair: the TF and MXNet record names, their kind, and the result."""

    tf: str
    mx: str
    kind: str
    result: ParityResult


@dataclass
class NumericReport:
    """Every compared layer, in canonical order, and what was run."""

    layers: list[LayerParity]
    rtol: float
    atol: float | None  # None: atol_range times each layer's range
    weights: str
    seed: int
    atol_range: float = DEFAULT_ATOL_RANGE
    transfer: object = None  # weights.TransferReport
    error: str | None = None
    seconds: dict = field(default_factory=dict)
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.layers) and all(layer.result for layer in self.layers)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def first_divergence(self) -> LayerParity | None:
        return next((layer for layer in self.layers if not layer.result), None)

    @property
    def worst(self) -> LayerParity | None:
        """The layer that uses the largest share of its tolerance."""
        if not self.layers:
            return None
        return max(self.layers, key=lambda layer: layer.result.used)

    def tolerance_text(self) -> str:
        atol = (f"atol {self.atol:g}" if self.atol is not None
                else f"atol {self.atol_range:g} x the layer's range (max |TF output|, at least 1)")
        return f"rtol {self.rtol:g}, {atol}; an element fails only when over both"

    def layer(self, name: str) -> LayerParity | None:
        return next((layer for layer in self.layers if name in (layer.tf, layer.mx)), None)

    def summary(self) -> dict:
        first, worst = self.first_divergence, self.worst
        data = {"passed": self.passed, "rtol": self.rtol, "atol": self.atol,
                "atol_range": self.atol_range if self.atol is None else None, "tolerance": self.tolerance_text(),
                "weights": self.weights, "seed": self.seed, "input": f"U(-1, 1), seed {self.seed}",
                "layers": len(self.layers), "failed": sum(1 for layer in self.layers if not layer.result),
                "max_abs": max((layer.result.max_abs for layer in self.layers), default=0.0),
                "min_tol": max((layer.result.min_tol for layer in self.layers), default=0.0),
                "min_atol_range": max((layer.result.min_atol_range for layer in self.layers), default=0.0),
                "tolerance_used": max((layer.result.used for layer in self.layers), default=0.0),
                "first_divergence": _layer_dict(first, self.hint) if first else None,
                "worst": _layer_dict(worst) if worst else None,
                "seconds": {key: round(value, 3) for key, value in self.seconds.items()}}
        if self.transfer is not None:
            data["transfer"] = self.transfer.as_dict()
        if self.error:
            data["error"] = self.error
        return {key: (None if isinstance(value, float) and math.isnan(value)
                      else "inf" if isinstance(value, float) and math.isinf(value) else value)
                for key, value in data.items()}


def _layer_dict(layer: LayerParity, hint: str = "") -> dict:
    data = {"layer": layer.tf, "mx_layer": layer.mx, "kind": layer.kind, **layer.result.as_dict()}
    data.pop("name", None)
    if hint:
        data["hint"] = hint
    return data


def _check_inference(tf_graph) -> None:
    if tf_graph.is_training:
        raise ParityError("numeric parity needs the TF graph in inference mode: verify(..., is_training=False) "
                          "(a training graph normalizes with batch statistics and applies dropout)")
    for record in tf_graph.records:
        if record.attrs.get("bn.is_training") or (record.kind == Kind.BN and record.attrs.get("is_training")):
            raise ParityError(f"layer {record.name}: the TF batch norm runs in training mode (batch statistics); "
                              "build the TF side with is_training=False for numeric parity")


def numeric_parity(tf_graph, mx_graph, pairs=None, *, weights=None, tf_values=None, mx_params=None, seed: int = 0,
                   rtol: float = DEFAULT_RTOL, atol: float | None = None,
                   atol_range: float = DEFAULT_ATOL_RANGE, images: np.ndarray | None = None,
                   mx_input: np.ndarray | None = None, session=None, allow_missing=(),
                   allow_unexpected=()) -> NumericReport:
    """Run both sides on one seeded input and compare every paired layer.

    Args:
        tf_graph, mx_graph: from ``tf_reader.read_graph`` (inference mode) and ``mx_reader.read_symbol``.
        pairs: the layer pairing (computed when omitted).
        weights: a TF checkpoint path; else ``tf_values``; else seeded random values.
        tf_values: TF variable name -> array, every variable of the graph.
        mx_params: ``(arg_params, aux_params)`` to run MXNet with instead of the
            transferred values (e.g. read back from a converted ``.params`` file).
        seed: of the random weights and of the input.
        rtol, atol: tolerances; ``atol=None`` uses ``atol_range`` times each layer's range.
        images: the NHWC input (default: :func:`seeded_input`).
        mx_input: the NCHW input MXNet gets instead of ``images`` transposed
            (to model a preprocessing difference such as BGR on one side).
        session: a TF session of ``tf_graph.graph`` whose variables already hold the
            values (then ``weights`` / ``tf_values`` are read from it).
        allow_missing, allow_unexpected: patterns for ``weights.transfer`` (e.g. an
            MXNet side built without the AuxLogits head: ``allow_unexpected=['AuxLogits/*']``).
    """
    from porting.verifier import weights as transfer_lib
    from porting.core.match import match

    tf = compat.import_tf()
    _check_inference(tf_graph)
    if pairs is None:
        pairs = match(tf_graph.records, mx_graph.records)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    plan = transfer_lib.plan_transfer(tf_graph, mx_graph, pairs)
    if weights is not None:
        values = transfer_lib.CheckpointValues(weights)
        source = f"checkpoint {values.prefix}"
    elif tf_values is not None:
        values, source = tf_values, "given TF values"
    elif session is not None:
        values, source = None, "live TF session"
    else:
        values, source = transfer_lib.seeded_values(plan, seed), f"random (seed {seed})"
    report = NumericReport([], rtol, atol, source, seed, atol_range)
    own_session = session is None
    if own_session:
        session = tf.compat.v1.Session(graph=tf_graph.graph)
    try:
        if values is not None:
            absent = [name for name in plan.tf_variables if name not in values]
            if absent:
                report.error = (f"the weights lack {len(absent)} variable{'s' if len(absent) != 1 else ''} of the TF "
                                f"graph: {', '.join(absent[:8])}{', ...' if len(absent) > 8 else ''}")
                return report
            loaded = {name: values[name] for name in plan.tf_variables}
            try:
                transfer_lib.assign_values(session, tf_graph.graph, loaded)
            except (ValueError, tf.errors.InvalidArgumentError) as error:
                report.error = f"cannot load the weights into the TF graph: {str(error).splitlines()[0]}"
                return report
            values = loaded
        else:
            values = transfer_lib.values_from_session(session, tf_graph, plan)
        seconds["weights"] = time.perf_counter() - started
        started = time.perf_counter()
        if mx_params is None:
            arg_params, aux_params, report.transfer = transfer_lib.transfer(
                plan, values, strict=False, allow_missing=allow_missing, allow_unexpected=allow_unexpected)
            if not report.transfer.ok:
                report.error = "the weight transfer is incomplete:\n" + report.transfer.text()
                return report
        else:
            arg_params, aux_params = mx_params
        seconds["transfer"] = time.perf_counter() - started
        compared = [pair for pair in pairs if pair.tf is not None and pair.mx is not None
                    and pair.tf.name in tf_graph.tensors and pair.mx.name in mx_graph.outputs]
        if images is None:
            images = seeded_input(tf_graph.images.shape.as_list(), seed)
        started = time.perf_counter()
        tf_out = run_tf(tf_graph, session, [pair.tf.name for pair in compared], images)
        seconds["tf_forward"] = time.perf_counter() - started
    finally:
        if own_session:
            session.close()
    started = time.perf_counter()
    data = mx_input if mx_input is not None else layouts.nhwc_to_nchw(images)
    try:
        mx_out = run_mx(mx_graph, arg_params, aux_params, [pair.mx.name for pair in compared], data)
    except ParityError as error:
        report.error = str(error)
        return report
    seconds["mx_forward"] = time.perf_counter() - started
    started = time.perf_counter()
    tf_records = {record.name: record for record in tf_graph.records}
    mx_records = {record.name: record for record in mx_graph.records}
    for pair in compared:
        tf_value = tf_out[pair.tf.name]
        tf_flat = transfer_lib.flat_geometry(tf_records, pair.tf, "NHWC")
        if tf_flat is not None and transfer_lib.flat_geometry(mx_records, pair.mx, "NCHW") is not None:
            tf_value = layouts.nhwc_flat_to_nchw_flat(tf_value, *tf_flat)  # TF flattens (H,W,C), MXNet (C,H,W)
        tf_out[pair.tf.name] = tf_value
        result = compare_arrays(tf_value, mx_out[pair.mx.name], rtol, atol, pair.tf.name, atol_range)
        report.layers.append(LayerParity(pair.tf.name, pair.mx.name, pair.tf.kind, result))
        if not result and not report.hint:
            report.hint = _hint(pair, result, tf_out[pair.tf.name], mx_out[pair.mx.name])
    seconds["compare"] = time.perf_counter() - started
    report.seconds = seconds
    return report


def _per_channel_affine(tf_value: np.ndarray, mx_value: np.ndarray) -> float | None:
    """max |a_c - 1| when MXNet = a_c * TF + b_c per channel explains the error (ReLU zeros left out)."""
    if tf_value.ndim != 4 or tf_value.shape[2] * tf_value.shape[3] * tf_value.shape[0] < 4:
        return None
    x = np.moveaxis(tf_value, 1, 0).reshape(tf_value.shape[1], -1).astype(np.float64)
    y = np.moveaxis(mx_value, 1, 0).reshape(mx_value.shape[1], -1).astype(np.float64)
    error = np.abs(y - x).max()
    worst_residual, worst_scale = 0.0, 0.0
    for xc, yc in zip(x, y):
        keep = (xc != 0) & (yc != 0)  # a ReLU clips where the two affine maps have different signs
        if keep.sum() < 3 or np.ptp(xc[keep]) == 0:
            continue
        design = np.stack([xc[keep], np.ones(int(keep.sum()))], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, yc[keep], rcond=None)
        worst_residual = max(worst_residual, float(np.abs(yc[keep] - a * xc[keep] - b).max()))
        worst_scale = max(worst_scale, abs(float(a) - 1.0))
    if error == 0 or worst_scale == 0 or worst_residual > 0.05 * error:
        return None
    return worst_scale


def _hint(pair, result: ParityResult, tf_value: np.ndarray, mx_value: np.ndarray) -> str:
    """What the shape of the error suggests, for the first divergent layer."""
    kind = pair.tf.kind
    if not math.isfinite(result.max_abs):
        return "non-finite values on one side" if result.nan else result.note
    if tf_value.ndim == 4 and tf_value.shape[1] == 3 and np.array_equal(tf_value[:, ::-1], mx_value):
        return "MXNet's input is TF's with the channels reversed: BGR on one side, RGB on the other (PITFALLS.md #12a)"
    if kind == Kind.INPUT:
        return "the two sides were given different inputs (preprocessing, channel order)"
    if result.border_only:
        if kind == Kind.POOL_AVG:
            return ("only border cells diverge: the average counts padded cells on one side "
                    "(count_include_pad, PITFALLS.md #3)")
        return "only border cells diverge: padding differs (values or pads) at the edges of the map"
    if kind in (Kind.CONV, Kind.DWCONV, Kind.BN):
        scale = _per_channel_affine(tf_value, mx_value)
        if scale is not None:
            return (f"MXNet's output is TF's times a per-channel scale (off by up to {scale:.2g}) plus a shift: "
                    "the batch norm's parameters differ (eps PITFALLS.md #5, gamma / fix_gamma #5a, "
                    "moving statistics #5d)")
        if kind != Kind.BN:
            return ("not a per-channel scale: the convolution itself differs: window alignment (pads, "
                    "PITFALLS.md #1), weight layout (#8, #8a) or its inputs")
    hints = {
        Kind.DWCONV: "depthwise convolution: weight layout (PITFALLS.md #8a) or pads",
        Kind.BN: "batch norm: eps (PITFALLS.md #5) or gamma / fix_gamma (#5a)",
        Kind.FC: "dense layer: weight layout; after a spatial flatten the rows need the NHWC -> NCHW reorder "
                 "(PITFALLS.md #7)",
        Kind.POOL_AVG: "average pooling: padding or count_include_pad (PITFALLS.md #2, #3)",
        Kind.POOL_MAX: "max pooling: pads or the pad value (PITFALLS.md #2, #4)",
        Kind.LRN: "LRN parameters (PITFALLS.md #9)",
        Kind.SOFTMAX: "softmax axis (PITFALLS.md #11)",
    }
    return hints.get(kind, f"{kind} layer: its inputs agree, its output does not")


# ------------------------------------------------------------------ the verifier's pass

def apply(result, *, weights=None, seed: int = 0, rtol: float | None = None, atol: float | None = None,
          **kwargs) -> NumericReport:
    """Numeric parity for a ``CompareResult``: fills ``rows[].extra['numeric']``, ``result.numeric``, renderers."""
    rtol = DEFAULT_RTOL if rtol is None else rtol
    report = numeric_parity(result.tf_graph, result.mx_graph, result.pairs, weights=weights, seed=seed, rtol=rtol,
                            atol=atol, **kwargs)
    by_names = {(layer.tf, layer.mx): layer for layer in report.layers}
    first = report.first_divergence
    for row in result.rows:
        if row.tf is None or row.mx is None:
            continue
        layer = by_names.get((row.tf.name, row.mx.name))
        if layer is not None:
            data = layer.result.as_dict()
            data.pop("name", None)
            data["first_divergence"] = layer is first
            row.extra["numeric"] = data
    result.numeric = report.summary()
    result.numeric_report = report
    renderers = list(getattr(result, "section_renderers", []))
    if render_section not in renderers:
        renderers.append(render_section)
    result.section_renderers = renderers
    previous = result.extra_bug_reports

    def bug_reports():
        yield from previous()
        text = bug_report(result)
        if text:
            yield (f"numeric_{first.tf}" if first else "numeric_parity"), text

    result.extra_bug_reports = bug_reports
    return report


def render_section(result, fmt: str) -> str:
    """The numeric-parity section of a text or Markdown report."""
    from tabulate import tabulate

    report: NumericReport | None = getattr(result, "numeric_report", None)
    if report is None:
        return ""
    summary = result.numeric
    lines = ["", "Numeric parity"] if fmt == "text" else ["", "## Numeric parity", ""]
    lines.append(f"weights: {report.weights}; input {summary['input']}; tolerance {report.tolerance_text()}")
    if report.error:
        lines.append(f"NOT RUN: {report.error}")
        return "\n".join(lines)
    if report.transfer is not None:
        lines.append(report.transfer.summary_line())
    lines.append(f"{len(report.layers) - summary['failed']}/{len(report.layers)} layers within tolerance; "
                 f"smallest tolerance that passes every layer: rtol = atol = {_g(summary['min_tol'])}, or atol "
                 f"{_g(summary['min_atol_range'])} x range at rtol {report.rtol:g}")
    worst = report.worst
    if worst is not None:
        lines.append(f"worst layer: {worst.result.line()}")
    first = report.first_divergence
    lines.append(f"first divergence: {first.result.line() if first else 'none'}")
    if first is not None and report.hint:
        lines.append(f"hint: {report.hint}")
    index = {(row.tf.name, row.mx.name): row.index for row in result.rows if row.tf and row.mx}
    table = []
    for layer in report.layers:
        r = layer.result
        status = "pass" if r else ("FIRST DIVERGENCE" if layer is first else "fail")
        table.append([index.get((layer.tf, layer.mx), "--"), layer.tf, _g(r.max_abs), _g(r.max_rel),
                      _g(r.mean_abs), _g(r.min_tol), _g(r.atol), status])
    headers = ["#", "layer", "max abs", "max rel", "mean abs", "min tol", "atol used", "numeric"]
    if fmt == "text":
        lines.append(tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True))
    else:
        lines.append("")
        lines.append(tabulate([[str(c).replace("|", "\\|") for c in row] for row in table], headers=headers,
                              tablefmt="github", disable_numparse=True))
    return "\n".join(lines)


def bug_report(result) -> str:
    """A Markdown bug report for the first divergent layer (the root cause), or ''."""
    report: NumericReport | None = getattr(result, "numeric_report", None)
    if report is None or report.passed:
        return ""
    lines = [f"# Numeric parity failure: {result.title}", ""]
    if report.error:
        lines += ["Numeric parity could not run.", "", "```", report.error, "```", ""]
        return "\n".join(lines)
    first = report.first_divergence
    r = first.result
    tf_record = result.tf_record(first.tf)
    mx_record = result.mx_record(first.mx)
    lines += [f"The first layer whose output differs is **{first.tf}** ({first.kind}); every layer before it "
              "agrees, so the defect is in this layer (later layers inherit its error).", "",
              "| | TF | MXNet |", "|---|---|---|",
              f"| layer | {first.tf} | {first.mx} |",
              f"| op | {tf_record.op if tf_record else '--'} | {mx_record.op if mx_record else '--'} |",
              f"| geometry | {tf_record.geometry() if tf_record else '--'} | {mx_record.geometry() if mx_record else '--'} |",
              f"| value at worst element {list(r.worst)} (NCHW) | {r.worst_tf:.6g} | {r.worst_mx:.6g} |", "",
              f"- max abs error {_g(r.max_abs)}, max rel error {_g(r.max_rel)}, mean abs error {_g(r.mean_abs)}",
              f"- {r.failed} of {r.size} elements over tolerance (rtol {r.rtol:g}, atol {r.atol:.3g}); "
              f"smallest passing tolerance {_g(r.min_tol)}",
              f"- weights: {report.weights}; input {result.numeric['input']}"]
    if r.border_only:
        lines.append("- every failing element lies on the border of the feature map")
    if report.hint:
        lines.append(f"- likely cause: {report.hint}")
    lines += ["", "Reproduce: `python -m porting.compare --numeric --seed "
              f"{report.seed} --rtol {report.rtol:g}"
              + (f" --atol {report.atol:g}" if report.atol is not None else "") + "` on the same pair.", ""]
    return "\n".join(lines)


__all__ = ["DEFAULT_RTOL", "DEFAULT_ATOL_RANGE", "ParityResult", "ParityError", "NumericReport", "compare_arrays",
           "numeric_parity", "apply", "seeded_input", "run_tf", "run_mx", "render_section", "bug_report"]
