"""Numeric parity, run: the same weights and the same input through both sides, every paired layer compared.

Weights are a TF checkpoint or seeded random values created on the TF side that exercise
everything (non-trivial batch-norm moving statistics and betas, non-zero biases); they
reach MXNet through ``porting.verifier.weights`` (the layer pairing, never names). Both graphs
run once in inference mode with every paired layer's output fetched (TF: one
``session.run``; MXNet: one forward of the grouped internals), and each pair is compared
with ``porting.core.tolerances.compare_arrays`` (TF, NHWC, transposed to NCHW, is the reference).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from porting import compat, progress
from porting.core import layouts
from porting.core.records import Kind
from porting.core.tolerances import DEFAULT_ATOL_RANGE, DEFAULT_RTOL, ParityResult, compare_arrays, tolerance_text
from porting.verifier.parity.hints import hint
from porting.verifier.weights.sources import is_mx_label


#: The steps of a numeric run, as its progress bar names them.
NUMERIC_STEPS = ["weights", "weight transfer", "TF forward", "MXNet forward", "compare layers"]


class ParityError(Exception):
    """Numeric parity could not run (training-mode graph, unreadable weights, no input)."""


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
        elif is_mx_label(name):  # a SoftmaxOutput's label: its inference forward never reads it
            args[name] = mx.nd.zeros(mx_graph.arg_shapes[name], ctx=context)
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
    """Every compared layer, in canonical order, and what was run; truthy when every layer passed."""

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

    @property
    def input_text(self) -> str:
        """The input both sides ran on, in words."""
        return f"U(-1, 1), seed {self.seed}"

    def tolerance_text(self) -> str:
        return tolerance_text(self.rtol, self.atol, self.atol_range)

    def layer(self, name: str) -> LayerParity | None:
        return next((layer for layer in self.layers if name in (layer.tf, layer.mx)), None)

    def row_annotations(self) -> dict[tuple[str, str], dict]:
        """Per (TF layer, MXNet layer): the layer's evidence for a report row, and whether it diverges first."""
        first = self.first_divergence
        annotations = {}
        for key, layer in {(layer.tf, layer.mx): layer for layer in self.layers}.items():
            data = layer.result.as_dict()
            data.pop("name", None)
            data["first_divergence"] = layer is first
            annotations[key] = data
        return annotations

    def summary(self) -> dict:
        """The JSON summary: verdict, tolerances, worst and first divergent layer, transfer, timings."""
        first, worst = self.first_divergence, self.worst
        data = {"passed": self.passed, "rtol": self.rtol, "atol": self.atol,
                "atol_range": self.atol_range if self.atol is None else None, "tolerance": self.tolerance_text(),
                "weights": self.weights, "seed": self.seed, "input": self.input_text,
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


def _layer_dict(layer: LayerParity, hint_text: str = "") -> dict:
    data = {"layer": layer.tf, "mx_layer": layer.mx, "kind": layer.kind, **layer.result.as_dict()}
    data.pop("name", None)
    if hint_text:
        data["hint"] = hint_text
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
                   allow_unexpected=(), own_weights: bool = False, tf_forward=None,
                   mx_forward=None) -> NumericReport:
    """Run both sides on one seeded input and compare every paired layer.

    Args:
        tf_graph, mx_graph: from ``tf_reader.read_graph`` (inference mode) and ``mx_reader.read_symbol``.
        pairs: the layer pairing (``result.pairs``; ``weights.pair_graphs`` when omitted).
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
        own_weights: each side runs with its own weights, nothing is transferred or planned
            (``porting.verifier.parity.own_weights``): MXNet with ``mx_params``, TF with every
            variable from ``weights`` / ``tf_values``, or as it is (a TF side with its own weights).
            The question a converter's user asks: did the conversion keep the numbers?
        tf_forward: ``fn(names, images, values) -> outputs`` (as :func:`run_tf` gives them) that runs
            the TF side instead of a session of ``tf_graph.graph``: the reference cache's, for a
            ``CachedTfGraph`` (``porting.verifier.reference_cache``).
        mx_forward: ``fn(names, data, arg_params, aux_params, images, values) -> outputs`` (as
            :func:`run_mx` gives them; ``values``: the TF values the parameters came from, None when
            they did not) that runs the MXNet side instead of :func:`run_mx`: the reference cache's.
    """
    from porting.verifier import weights as transfer_lib

    with progress.steps(NUMERIC_STEPS, desc="numeric parity") as step:
        step("weights")
        _check_inference(tf_graph)
        if pairs is None:
            pairs = transfer_lib.pair_graphs(tf_graph, mx_graph)  # as verify() pairs: equivalences first
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        if own_weights:
            from porting.verifier.parity import own_weights as own

            if mx_params is None:
                raise ParityError("own_weights needs the MX side's parameters (mx_params)")
            plan, values, source = None, None, own.describe(tf_graph, weights, tf_values)
        else:
            plan = transfer_lib.plan_transfer(tf_graph, mx_graph, pairs)
            if weights is not None:
                values = transfer_lib.CheckpointValues(weights)
                source = f"checkpoint {values.prefix}"
            elif tf_values is not None:
                values, source = tf_values, "given TF values"
            elif session is not None:
                values, source = None, "live TF session"
            elif getattr(tf_graph, "own_weights", False):  # a model file's frozen weights: read from the graph, never replaced
                values, source = None, "the TF model file's own weights"
            else:
                values, source = transfer_lib.seeded_values(plan, seed), f"random (seed {seed})"
        report = NumericReport([], rtol, atol, source, seed, atol_range)
        own_session = session is None and tf_forward is None
        if own_session:
            tf = compat.import_tf()
            session = tf.compat.v1.Session(graph=tf_graph.graph)
        try:
            if own_weights:
                report.error = own.load_tf_side(session, tf_graph, weights, tf_values)
                if report.error:
                    return report
            elif values is not None:
                absent = [name for name in plan.tf_variables if name not in values]
                if absent:
                    plural = "s" if len(absent) != 1 else ""
                    report.error = (f"the weights lack {len(absent)} variable{plural} of the TF graph: "
                                    f"{', '.join(absent[:8])}{', ...' if len(absent) > 8 else ''}")
                    return report
                loaded = {name: values[name] for name in plan.tf_variables}
                if tf_forward is None:  # (the cache's forward loads them into its own live graph)
                    tf = compat.import_tf()
                    try:
                        transfer_lib.assign_values(session, tf_graph.graph, loaded)
                    except (ValueError, tf.errors.InvalidArgumentError) as error:
                        report.error = f"cannot load the weights into the TF graph: {str(error).splitlines()[0]}"
                        return report
                values = loaded
            else:
                values = transfer_lib.values_from_session(session, tf_graph, plan)
            seconds["weights"] = time.perf_counter() - started
            step("weight transfer")
            started = time.perf_counter()
            if own_weights:
                arg_params, aux_params = mx_params
            elif mx_params is None:
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
            step("TF forward")
            started = time.perf_counter()
            names = [pair.tf.name for pair in compared]
            tf_out = run_tf(tf_graph, session, names, images) if tf_forward is None else tf_forward(names, images,
                                                                                                  values)
            seconds["tf_forward"] = time.perf_counter() - started
        finally:
            if own_session:
                session.close()
        step("MXNet forward")
        started = time.perf_counter()
        data = mx_input if mx_input is not None else layouts.nhwc_to_nchw(images)
        try:
            mx_names = [pair.mx.name for pair in compared]
            if mx_forward is None:
                mx_out = run_mx(mx_graph, arg_params, aux_params, mx_names, data)
            else:  # the parameters came from the TF values unless they were given
                mx_out = mx_forward(mx_names, data, arg_params, aux_params, images,
                                    values if mx_params is None else None)
        except ParityError as error:
            report.error = str(error)
            return report
        seconds["mx_forward"] = time.perf_counter() - started
        step("compare layers")
        started = time.perf_counter()
        tf_records = {record.name: record for record in tf_graph.records}
        mx_records = {record.name: record for record in mx_graph.records}
        for pair in progress.bar(compared, desc="compare layers", unit="layer"):
            tf_value = tf_out[pair.tf.name]
            tf_flat = transfer_lib.flat_geometry(tf_records, pair.tf, "NHWC")
            if tf_flat is not None and transfer_lib.flat_geometry(mx_records, pair.mx, "NCHW") is not None:
                tf_value = layouts.nhwc_flat_to_nchw_flat(tf_value, *tf_flat)  # TF flattens (H,W,C), MXNet (C,H,W)
            tf_value = same_elements_as(tf_value, mx_out[pair.mx.name])
            tf_out[pair.tf.name] = tf_value
            result = compare_arrays(tf_value, mx_out[pair.mx.name], rtol, atol, pair.tf.name, atol_range)
            report.layers.append(LayerParity(pair.tf.name, pair.mx.name, pair.tf.kind, result))
            if not result and not report.hint:
                report.hint = hint(pair, result, tf_out[pair.tf.name], mx_out[pair.mx.name])
        seconds["compare"] = time.perf_counter() - started
        report.seconds = seconds
        return report


def same_elements_as(tf_value: np.ndarray, mx_value: np.ndarray) -> np.ndarray:
    """The TF value in the MXNet value's shape where the two forms hold the same elements in the same order.

    A conv taken as a dense layer (``porting.core.equivalences``: a conv over the whole map, a
    1x1 conv on a 1x1 map) gives (N, C, 1, 1) where the dense form gives (N, C), and slim's
    squeezed logits (N, K) face an MXNet (N, K) or (N, K, 1, 1): only unit axes after the first
    two differ, so the values pair one to one. Any other shape difference is left for
    ``compare_arrays`` to report.
    """
    if tf_value.shape == mx_value.shape or tf_value.size != mx_value.size:
        return tf_value
    if tf_value.shape[:2] == mx_value.shape[:2] and all(d == 1 for d in (*tf_value.shape[2:], *mx_value.shape[2:])):
        return tf_value.reshape(mx_value.shape)
    return tf_value


# ------------------------------------------------------------------ the verifier's pass

def run_pass(result, *, weights=None, seed: int = 0, rtol: float | None = None, atol: float | None = None,
             **kwargs) -> NumericReport:
    """The numeric pass over a ``CompareResult``'s graphs and pairing; returns its report, changes nothing.

    ``rtol=None`` is ``DEFAULT_RTOL``; the other keyword arguments go to :func:`numeric_parity`.
    """
    rtol = DEFAULT_RTOL if rtol is None else rtol
    return numeric_parity(result.tf_graph, result.mx_graph, result.pairs, weights=weights, seed=seed, rtol=rtol,
                          atol=atol, **kwargs)


def apply(result, **kwargs) -> NumericReport:
    """:func:`run_pass`, its report attached to ``result.numeric_report`` (a field ``CompareResult`` declares)."""
    report = run_pass(result, **kwargs)
    result.numeric_report = report
    return report
