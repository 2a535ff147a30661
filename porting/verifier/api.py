"""``verify()``: compare a TF builder with an MXNet builder, layer by layer, and its result type.

The public API for users' own CI suites (``python -m porting.compare`` is its command)::

    from porting import verify
    result = verify(tf="nets/mynet_tf.py:build", mx="nets/mynet_mx.py:build", size=224, classes=1000)
    assert result, result.report()

Exit codes: 0 the port matches, 1 it does not, 2 bad usage or input.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from porting import compat  # noqa: F401  (shims before any framework import)
from porting import progress
from porting.core import memory
from porting.core.equivalences import normalise
from porting.core.diff import LayerDiff, Status, compare_pairs, summarize, verdict_line
from porting.core.match import match
from porting.core.records import Kind, LayerRecord
from porting.frameworks.models import UsageError, load_builder, mx_builder, tf_builder
from porting.verifier import arguments, reference_cache

if TYPE_CHECKING:  # the passes import both frameworks: loaded only when they run
    from porting.frameworks.models import ModelSpec
    from porting.verifier.lint import LintResult
    from porting.verifier.parity import NumericReport

FORMATS = ("text", "markdown", "json")


@dataclass(slots=True)
class CompareResult:
    """Everything a comparison found; truthy when the port matches.

    The shape comparison fills the rows; each pass that ran attaches its own typed result
    to a field declared here (``lint``, ``numeric_report``), and the verdict and every
    rendering derive from these fields. ``slots``: nothing can attach anything else.
    """

    title: str
    rows: list[LayerDiff]
    end_points: list[dict]
    tf_graph: object = None
    mx_graph: object = None
    pairs: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    #: Parameter counts the frameworks themselves report ({"tf": trainable variables,
    #: "mx": learnable arguments}), to check the report's per-layer cost columns against.
    framework_params: dict = field(default_factory=dict)
    #: The registered model compared; None for builders given by the caller. The lint reads
    #: its nominal size and options.
    spec: ModelSpec | None = None
    #: The lint pass's result; None when it did not run.
    lint: LintResult | None = None
    #: The numeric pass's result; None when it did not run.
    numeric_report: NumericReport | None = None
    #: What ``porting.core.equivalences.normalise`` rewrote before pairing (one line each; empty: nothing).
    equivalences: list[str] = field(default_factory=list)
    #: What the reference cache did: the TF side ('off', 'hit', 'miss, stored', 'stale (...), rebuilt'...), then
    #: the MX side ('; MX side hit'...) when the cache is on.
    reference_cache: str = "off"

    def __bool__(self) -> bool:
        return self.passed

    @property
    def findings(self) -> list:
        """The lint findings, errors first (empty when the lint did not run)."""
        return list(self.lint.findings) if self.lint is not None else []

    @property
    def numeric(self) -> dict | None:
        """The numeric-parity summary (``NumericReport.summary()``); None when the pass did not run."""
        return self.numeric_report.summary() if self.numeric_report is not None else None

    @property
    def passed(self) -> bool:
        return (summarize(self.rows)["verdict"] == "match" and self._lint_errors() == 0
                and (self.numeric_report is None or self.numeric_report.passed))

    def _lint_errors(self) -> int:
        return self.lint.errors if self.lint is not None else 0

    def summary(self) -> dict:
        data = summarize(self.rows)
        if not self.passed and data["verdict"] == "match":
            data["verdict"] = "mismatch"
        return data

    def verdict_line(self) -> str:
        line = verdict_line(self.rows)
        errors = self._lint_errors()
        if errors:
            line = line.replace("PASSED", "FAILED") + f"; {errors} lint error{'s' if errors != 1 else ''}"
        if self.numeric_report is not None and not self.numeric_report.passed:
            line = line.replace("PASSED", "FAILED") + "; numeric parity failed"
        return line

    def tf_record(self, name: str) -> LayerRecord | None:
        return next((r for r in self.tf_graph.records if r.name == name), None) if self.tf_graph else None

    def mx_record(self, name: str) -> LayerRecord | None:
        return next((r for r in self.mx_graph.records if r.name == name), None) if self.mx_graph else None

    def report(self, fmt: str = "text", only_problems: bool = False, end_points: bool = False) -> str:
        """Render as 'text', 'markdown' or 'json' (``porting.verifier.render``)."""
        from porting.verifier import render

        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if fmt == "markdown":
            return render.render_markdown(self, only_problems, end_points)
        if fmt == "json":
            return render.render_json(self, only_problems, end_points)
        return render.render_text(self, only_problems, end_points)


def _end_points(tf_graph, rows_pairs, mx_graph) -> list[dict]:
    tf_to_mx = {p.tf.name: p.mx for p in rows_pairs if p.tf is not None and p.mx is not None}
    paired_tf = {p.tf.name: p.tf for p in rows_pairs if p.tf is not None}
    by_name = {record.name: record for record in tf_graph.records}
    result = []
    for key, record_name in tf_graph.end_point_records.items():
        tf_record = by_name.get(record_name)
        mx_record = tf_to_mx.get(record_name)
        source = tf_record
        while mx_record is None and record_name not in paired_tf and source is not None and source.inputs \
                and source.kind in (Kind.FLATTEN, Kind.RESHAPE):  # an identity the equivalences dropped
            source = by_name.get(source.inputs[0])
            mx_record = tf_to_mx.get(source.name) if source is not None else None
        if mx_record is not None and tf_record is not None and source is not tf_record \
                and math.prod(mx_record.shape) != math.prod(tf_record.shape):
            mx_record = None
        tf_record = paired_tf.get(record_name, tf_record)  # as normalised by the equivalences
        tf_shape = list(tf_record.shape) if tf_record else None
        mx_shape = list(mx_record.shape) if mx_record else None
        status = (Status.MATCH if tf_shape == mx_shape else
                  Status.ONLY_TF if mx_shape is None else Status.SHAPE_MISMATCH).value
        result.append({"name": key, "tf_layer": record_name, "mx_layer": mx_record.name if mx_record else None,
                       "tf": tf_shape, "mx": mx_shape, "status": status})
    return result


def verify(model: str | None = None, *, tf=None, mx=None, size=None, classes: int | None = None, batch: int = 1,
           is_training: bool | None = None, lint: bool = True, title: str | None = None,
           tf_graph=None, numeric: bool = False, weights: str | None = None, seed: int = 0,
           rtol: float | None = None, atol: float | None = None, tf_input: str | None = None,
           tf_output: str | None = None, trust_keras_code: bool = False,
           keras_objects: str | None = None, mx_params: str | None = None,
           cache: bool | str = False) -> CompareResult:
    """Compare a TF builder with an MX builder, layer by layer.

    Args:
        model: a registered pair (``porting.frameworks.models.MODELS``); its sides are
            replaced by ``tf`` / ``mx`` when those are given. Without a model both sides
            are needed (``tf`` or ``tf_graph``, and ``mx``); with no side and no model, the
            pair is Inception-ResNet-v2.
        tf: ``fn(images, num_classes) -> (logits, end_points)``, 'file.py:function', or a model
            file (``porting.frameworks.tf_files``: checkpoint PREFIX with its .meta, frozen .pb,
            SavedModel directory, Keras .h5 / .keras), read as a frozen graph with its own weights.
        tf_input, tf_output: for a model file, the input placeholder and the logits op when
            they are not found unambiguously.
        trust_keras_code: let a Keras file's Lambda layers' saved Python code run (refused
            by default: a model file is data).
        keras_objects: a Python file defining a Keras file's custom layers.
        mx: ``fn(num_classes) -> Symbol`` (or a Gluon ``HybridBlock``), 'file.py:function', or an
            MXNet model file: ``PREFIX-symbol.json`` or ``model.onnx`` (``porting.frameworks.mx_files``).
            File and Gluon sides carry their own weights: with ``numeric`` each side runs its own.
        mx_params: the ``PREFIX-EPOCH.params`` of a ``-symbol.json`` (default: the newest epoch beside it).
        size: int, (H, W) or 'HxW'; classes, batch: as fed to both builders.
        is_training: mode for TF builders that accept ``is_training``; default
            True (dropout and batch-norm decay visible), False for numeric parity.
        lint: run the semantic lint pass (``porting.verifier.lint``).
        numeric: also transfer weights and compare every paired layer's output
            (``porting.verifier.parity``); implies ``is_training=False``.
        weights: a TF checkpoint for numeric parity (default: seeded random weights).
        seed, rtol, atol: the seed of the random weights and input, and the
            tolerances (default ``porting.core.tolerances.DEFAULT_RTOL``, and an atol of
            ``DEFAULT_ATOL_RANGE`` times each layer's range).
        tf_graph: a ``tf_reader.TfGraph`` already built (e.g. ``result.tf_graph``
            of an earlier call) to use instead of calling the TF builder, so one
            TF reference can be checked against many MX candidates; ``size``
            then defaults to its input size, and ``size`` / ``batch`` must agree
            with it.
        cache: read and write both sides through ``porting.verifier.reference_cache``
            (``$PORTING_CACHE``): True, False (the default: a library call builds the live
            graphs, which conversions and autoport need) or 'refresh' (rebuild and rewrite
            the entries). A hit gives a ``CachedTfGraph`` as ``result.tf_graph`` and a
            ``CachedMxGraph`` as ``result.mx_graph`` (the MX side is read live for a model file
            or a Gluon block); numeric parity reads both forwards' stored outputs when it can.

    Raises:
        UsageError: a bad argument (unknown model, a size that is not N, HxW or (H, W), classes
            or batch below 1, one side without the other and no model, a tf_graph that is not
            a TfGraph, a missing checkpoint, an unreadable builder), or work that would not fit
            in memory (``porting.core.memory``), each with one message naming it.
        porting.frameworks.errors.BuilderError / SymbolError: a builder raised or broke its
            contract (e.g. logits that do not depend on ``images``).
    """
    spec = arguments.sides(model, tf, mx, tf_graph is not None)
    arguments.tf_file_options(tf, tf_input, tf_output, trust_keras_code, keras_objects, weights)
    classes = arguments.classes(classes)
    batch = arguments.positive_int(batch, "--batch")
    seed = arguments.seed(seed)
    rtol, atol = arguments.tolerance(rtol, "--rtol"), arguments.tolerance(atol, "--atol")
    is_training = arguments.flag(is_training, "is_training", allow_none=True)
    lint, numeric = arguments.flag(lint, "lint"), arguments.flag(numeric, "numeric")
    cache = arguments.cache_mode(cache)
    if weights is not None:
        weights = arguments.checkpoint(weights)
    mx_params = arguments.mx_params(mx_params, mx)
    if size is not None:
        size = arguments.size(size)
    if title is not None and not isinstance(title, str):
        raise UsageError(f"title must be a string, got {title!r}")

    if tf_graph is not None and not isinstance(tf_graph, reference_cache.CachedTfGraph):
        from porting.frameworks import tf_reader

        if not isinstance(tf_graph, tf_reader.TfGraph):
            raise UsageError(f"tf_graph must be a TfGraph (e.g. result.tf_graph of an earlier verify()), "
                             f"got {type(tf_graph).__name__} {tf_graph!r:.60}")
    timings, name_tf = {}, None
    if tf_graph is None and arguments.is_tf_file(tf):  # a model file: its graph is the TF side (not cached)
        from porting.frameworks import tf_files

        started = time.perf_counter()
        options = tf_files.LoadOptions(tf_input, tf_output, trust_keras_code, keras_objects)
        tf_graph = tf_files.read_model_file(str(tf), size, batch, options)
        timings["tf_file"] = time.perf_counter() - started
        name_tf = Path(str(tf)).name
    numeric = numeric or weights is not None
    if numeric and isinstance(tf_graph, reference_cache.CachedTfGraph):
        raise UsageError("tf_graph is a cached TF side (no tf.Graph) and numeric parity runs the TF graph: give the "
                         "builder with cache=True instead (its TF forward is cached too), or a live TfGraph")
    if numeric and is_training is None:
        is_training = False
    if size is None:
        size = _graph_size(tf_graph) if tf_graph is not None else spec.size if spec else (299, 299)
    arguments.input_fits(batch, size)
    if name_tf is not None and not classes:  # the MX builder gets the file's number of classes
        classes = tf_graph.logits.shape.as_list()[-1]
    classes = classes or (spec.classes if spec else 1001)
    build_training = True if is_training is None else is_training
    started = time.perf_counter()
    reference = (reference_cache.Reference.open(cache, spec, tf, size, classes, batch, build_training)
                 if tf_graph is None else reference_cache.Reference("off", None, None))
    timings["tf_cache_read"] = time.perf_counter() - started

    def load_tf():  # None: tf_graph is the TF side
        return (load_builder(tf, "tf") if isinstance(tf, str) else tf if tf is not None else
                tf_builder(spec) if spec is not None else None)

    started = time.perf_counter()
    with reference.tracking():  # the modules the builder imports are sources of the cache entry
        tf_fn = None if reference.graph is not None or tf_graph is not None else load_tf()
    timings["tf_load"] = time.perf_counter() - started
    started = time.perf_counter()
    mx_side = reference_cache.MxSide.open(cache, spec, mx, size, classes, batch)
    timings["mx_cache_read"] = time.perf_counter() - started

    def load_mx():
        return (str(mx) if arguments.is_mx_file(mx) else load_builder(mx, "mx") if isinstance(mx, str) else
                mx if mx is not None else mx_builder(spec, size))

    mx_fn = None
    if mx_side.graph is None:  # read live: MXNet and the MX builder are loaded (a hit needs neither)
        started = time.perf_counter()
        from porting.frameworks import mx_reader

        timings["mx_import"] = time.perf_counter() - started
        started = time.perf_counter()
        with mx_side.tracking():
            mx_fn = load_mx()
        timings["mx_load"] = time.perf_counter() - started
    steps = ["build TF graph", "read MXNet symbol", "match"] + ["lint"] * lint + ["numeric parity"] * numeric
    with progress.steps(steps, desc="compare") as step:
        step("build TF graph")
        started = time.perf_counter()
        if reference.graph is not None:
            tf_graph = reference.graph
        elif tf_graph is None:
            tf_graph = reference.build(tf_fn)
        elif (batch, *size) != _graph_size(tf_graph, with_batch=True):
            built = "x".join(map(str, _graph_size(tf_graph, with_batch=True)))
            raise UsageError(f"tf_graph was built for batch x H x W {built}, not {batch}x{size[0]}x{size[1]}")
        timings["tf"] = time.perf_counter() - started + timings.pop("tf_file", 0.0)
        step("read MXNet symbol")
        started = time.perf_counter()
        if mx_side.graph is not None:
            mx_graph, mx_count = mx_side.graph, mx_side.graph.parameter_count
        else:
            with mx_side.tracking():
                mx_graph = mx_reader.read_symbol(mx_fn, size, classes, batch, params=mx_params)
            mx_count = mx_reader.learnable_parameter_count(mx_graph)
            mx_side.built(mx_fn, mx_graph, mx_count)
        timings["mx"] = time.perf_counter() - started
        step("match")
        started = time.perf_counter()
        tf_records, mx_records, equivalences = normalise(tf_graph.records, mx_graph.records)
        equivalences = list(getattr(mx_graph, "notes", [])) + equivalences
        pairs = match(tf_records, mx_records)
        rows = compare_pairs(pairs)
        timings["match"] = time.perf_counter() - started
        name = title or (spec.name if spec and not (tf or mx) else
                         f"{name_tf or _builder_name(tf_fn, reference)} vs "
                         f"{mx_graph.source or _mx_builder_name(mx_fn, mx_side)}")
        result = CompareResult(title=f"{name} at {size[0]}x{size[1]}, {classes} classes, batch {batch}",
                               rows=rows, end_points=_end_points(tf_graph, pairs, mx_graph), tf_graph=tf_graph,
                               mx_graph=mx_graph, pairs=pairs, timings=timings,
                               framework_params={"tf": _tf_parameter_count(tf_graph),
                                                 "mx": mx_count},
                               spec=spec if spec is not None and not tf else None, equivalences=equivalences,
                               reference_cache=_cache_status(reference, mx_side))
        if lint:
            step("lint")
            started = time.perf_counter()
            from porting.verifier import lint as lint_pass

            result.lint = _with_numbers_warning(lint_pass.run_pass(result), pairs, numeric)
            timings["lint"] = time.perf_counter() - started
        if numeric:
            step("numeric parity")
            from porting.verifier import parity

            memory.check_fits(memory.numeric_estimate(tf_graph.records, mx_graph.records, batch, size))
            started = time.perf_counter()
            own = _own_weights(tf_graph, mx_graph, weights)
            if own and isinstance(tf_graph, reference_cache.CachedTfGraph):  # each side's own weights: a live TF graph
                result.tf_graph = reference.live_graph(load_tf)
            options = own or {**reference.numeric_options(load_tf),
                              **mx_side.numeric_options(load_mx, reference)}
            result.numeric_report = parity.run_pass(result, weights=weights, seed=seed, rtol=rtol, atol=atol,
                                                    **options)
            if result.numeric_report.error and mx_graph.params is not None and not own:
                result.numeric_report.error += ("\n(the MXNet side carries its own weights: give the TF side's "
                                                "too, --weights CKPT, to run each side with its own)")
            result.reference_cache = _cache_status(reference, mx_side)
            timings["numeric"] = time.perf_counter() - started
    return result


def _with_numbers_warning(lint_result, pairs, numeric: bool):
    """The lint result plus one warning when forms taken as equivalent need numbers that did not run.

    A converter's folded form (``porting.core.equivalences``: a batch norm folded into a conv, a
    scale stored as a weight) is the same computation only if its stored values are right; only
    ``--numeric`` (with each side's weights) can tell. Without it the verdict says so.
    """
    if numeric:
        return lint_result
    from dataclasses import replace as replaced

    from porting.verifier.lint.base import Finding, Severity

    layers = [pair.tf.name for pair in pairs if pair.tf is not None and pair.mx is not None
              and (pair.tf.attrs.get("needs_numbers") or pair.mx.attrs.get("needs_numbers"))]
    if not layers:
        return lint_result
    shown = ", ".join(layers[:3]) + (f", … ({len(layers) - 3} more)" if len(layers) > 3 else "")
    warning = Finding(shown, "equivalent_if_numbers_agree", Severity.WARNING, "slim form", "converter's form",
                      f"{len(layers)} layer{'s' if len(layers) != 1 else ''} in a converter's form (a batch norm "
                      "folded into the conv, a scale stored as a weight) are the same computation only if the "
                      "stored values are right: structure cannot tell, the numbers were not compared",
                      "run with --numeric and the weights of both sides (--weights CKPT; the MXNet file's own "
                      "parameters)")
    return replaced(lint_result, findings=tuple(lint_result.findings) + (warning,))


def _own_weights(tf_graph, mx_graph, weights) -> dict:
    """Numeric parity's keywords for sides that carry their own weights.

    When the MX side has its own parameters (a model file, a Gluon block) and the TF side has
    weights too (``weights=`` a checkpoint, or a TF side read from a file: ``own_weights``),
    each side runs with its own: nothing is transferred. Otherwise today's transfer of the TF
    values into MXNet stays (the MX side's own parameters are then not used).
    """
    tf_has = weights is not None or getattr(tf_graph, "own_weights", False)
    return {"mx_params": mx_graph.params, "own_weights": True} if mx_graph.params is not None and tf_has else {}


def _builder_name(tf_fn, reference) -> str:
    """The TF builder's name for the title (a cache hit loads no builder: the entry recorded it)."""
    return reference.graph.builder_name if reference.graph is not None else getattr(tf_fn, "__name__", "tf")


def _cache_status(reference, mx_side) -> str:
    """``CompareResult.reference_cache``: the TF side's status, then the MX side's ('off' when neither is cached)."""
    if mx_side.status == "off":
        return reference.status
    return f"{reference.status}; MX side {mx_side.status}"


def _mx_builder_name(mx_fn, mx_side) -> str:
    """The MX builder's name for the title (a cache hit loads no builder: the entry recorded it)."""
    return mx_side.graph.builder_name if mx_side.graph is not None else getattr(mx_fn, "__name__", "mx")


def _tf_parameter_count(tf_graph) -> int:
    if isinstance(tf_graph, reference_cache.CachedTfGraph):
        return tf_graph.parameter_count
    from porting.frameworks import tf_reader

    return tf_reader.trainable_parameter_count(tf_graph)


def _graph_size(tf_graph, with_batch: bool = False) -> tuple[int, ...]:
    """(H, W) of a built TF graph's NHWC input, or (N, H, W)."""
    n, h, w, _ = (int(dim) for dim in tf_graph.images.shape.as_list())
    return (n, h, w) if with_batch else (h, w)

