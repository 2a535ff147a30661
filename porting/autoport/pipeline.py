"""autoport end to end: build TF, translate, load weights, verify, write the files.

1. Build the TF graph once, in inference mode (``tf_reader.read_graph``).
2. Optionally build the training-mode graph too (``hints``): it shows the dropout
   rates and batch-norm decays an inference graph hides, the symbol is verified
   against it as well (the lint then checks those), and with random weights one
   forward of it calibrates the batch-norm moving statistics.
3. Translate the data path into one MXNet symbol (``translate``).
4. Verify it with the verifier on that same TF graph: per-layer shapes and the
   semantic lint (``porting.verifier.api.verify(tf_graph=...)``).
5. Put weights into the TF session (a checkpoint, or seeded random values from
   ``porting.verifier.weights`` with calibrated moving statistics), read the translator's
   parameters from that session, and
   check them against the verifier's own pairing-based transfer (``porting.verifier.weights``).
6. Numeric parity of every paired layer, MXNet running the translator's parameters
   (``porting.verifier.parity``).
7. Write ``PREFIX-symbol.json``, ``PREFIX-0000.params``, ``PREFIX-report.md`` and
   ``PREFIX-report.json`` (together: all four or none, each renamed into place complete).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from porting import compat, progress, util
from porting.autoport.errors import CheckpointError
from porting.autoport.files import output_paths
from porting.core import layouts, memory
from porting.verifier import parity
from porting.frameworks import tf_graph_facts, tf_reader
from porting.verifier import weights as weights_lib
from porting.autoport.hints import training_graph, training_hints
from porting.autoport.translate import Translation, variable_name, translate_graph
from porting.core.graph_walk import collapse_scope
from porting.util import atomic_write_text
from porting.verifier import arguments

tf = compat.import_tf()
mx = compat.import_mx()


@dataclass
class AutoportResult:
    """A translated network and the proof that it equals the TF one; truthy when proven."""

    name: str
    size: tuple[int, int]
    classes: int
    translation: Translation
    compare: object  # porting.compare.CompareResult, numeric parity included
    training_compare: object = None  # the same symbol against the training-mode TF graph (shapes, lint)
    arg_params: dict = field(default_factory=dict, repr=False)
    aux_params: dict = field(default_factory=dict, repr=False)
    weights: str = ""
    cross_check: dict = field(default_factory=dict)
    hints: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    deployed: list = field(default_factory=list)  # outputs of the plain symbol (MKLDNN fusion on) vs TF
    tf_values: dict = field(default_factory=dict, repr=False)  # TF variable name -> value used
    images: object = field(default=None, repr=False)  # the NHWC parity input
    tf_outputs: dict = field(default_factory=dict, repr=False)  # MXNet output name -> TF value (NCHW)
    mx_outputs: dict = field(default_factory=dict, repr=False)  # MXNet output name -> MXNet value

    def __bool__(self) -> bool:
        return self.passed

    @property
    def passed(self) -> bool:
        return (bool(self.compare) and self.compare.numeric is not None and not self.cross_check.get("differ")
                and (self.training_compare is None or bool(self.training_compare))
                and bool(self.deployed) and all(check["passed"] for check in self.deployed))

    @property
    def parameters(self) -> int:
        """Values MXNet takes from TF variables (TF's trainable parameters; frozen constants excluded)."""
        sources = self.translation.params
        return int(sum(np.size(value) for name, value in self.arg_params.items() if sources[name].variable))

    @property
    def layers(self) -> int:
        """Rows of the verifier's comparison (one per layer record)."""
        return len(self.compare.rows)

    @property
    def max_abs_error(self) -> float | None:
        numeric = self.compare.numeric or {}
        return numeric.get("max_abs")

    def verdict_line(self) -> str:
        line = self.compare.verdict_line()
        if self.training_compare is not None and not self.training_compare:
            line = line.replace("PASSED", "FAILED") + "; training-mode check failed"
        if self.cross_check.get("differ"):
            line = line.replace("PASSED", "FAILED") + "; parameters differ from the pairing-based transfer"
        if not all(check["passed"] for check in self.deployed):
            line = line.replace("PASSED", "FAILED") + "; the deployed symbol's outputs differ from TF"
        numeric = self.compare.numeric or {}
        if numeric.get("max_abs") is not None:
            line += (f"; numeric parity over {numeric.get('layers', 0)} layers: max abs error "
                     f"{numeric['max_abs']:.2e}, at most {numeric.get('min_atol_range') or 0:.1e} of a layer's range")
        return line

    def summary(self) -> dict:
        numeric = self.compare.numeric or {}
        return {
            "network": self.name, "size": list(self.size), "classes": self.classes, "passed": self.passed,
            "verdict": self.verdict_line(), "layers": self.layers, "parameters": self.parameters,
            "mx_params": {"arg": len(self.arg_params), "aux": len(self.aux_params)},
            "ops_translated": dict(sorted(self.translation.op_counts.items())),
            "outputs": [{"name": head.name, "tf": head.tensor, "role": head.role}
                        for head in self.translation.heads],
            "weights": self.weights, "cross_check": self.cross_check, "deployed": self.deployed,
            "numeric": {key: numeric.get(key) for key in ("passed", "layers", "failed", "max_abs", "min_tol",
                                                          "min_atol_range", "rtol", "atol", "atol_range")},
            "hints": {key: len(value) for key, value in self.hints.items()},
            "training_check": (self.training_compare.verdict_line() if self.training_compare is not None
                               else None),
            "notes": list(self.translation.notes),
            "timings": {key: round(value, 3) for key, value in self.timings.items()},
            "files": self.files,
        }

    def markdown(self) -> str:
        """The autoport section, then the verifier's full Markdown report."""
        summary = self.summary()
        lines = [f"# autoport: {self.name} at {self.size[0]}x{self.size[1]}, {self.classes} classes", "",
                 f"**{self.verdict_line()}**", "",
                 "## Translation", "",
                 f"- {self.layers} layers, {self.parameters:,} parameters from TF variables "
                 f"({len(self.arg_params)} MXNet arguments, {len(self.aux_params)} auxiliary states)",
                 f"- weights: {self.weights}",
                 f"- parameters vs the verifier's pairing-based transfer (porting.verifier.weights): "
                 f"{_cross_check_line(self.cross_check)}",
                 "- outputs: " + ", ".join(f"`{head.name}` ({head.role})" for head in self.translation.heads),
                 "- outputs of the symbol as deployed (one bind, MKLDNN fusion on) vs TF: "
                 + (", ".join(f"{c['output']} max abs {c['max_abs']:.2e} {'pass' if c['passed'] else 'FAIL'}"
                              for c in self.deployed) or "not run"),
                 f"- training hints: {_hints_line(self.hints)}; training-mode check: "
                 f"{self.training_compare.verdict_line() if self.training_compare is not None else 'not run'}",
                 "- timings (s): " + ", ".join(f"{key} {value:.1f}" for key, value in self.timings.items()), ""]
        table = [[f"`{op}`", count] for op, count in summary["ops_translated"].items()]
        lines += [tabulate(table, headers=["TF op", "count"], tablefmt="github"), ""]
        if self.translation.notes:
            lines += ["Notes:", ""] + [f"- {note}" for note in self.translation.notes] + [""]
        lines.append(_demote(self.compare.report("markdown")))
        if self.training_compare is not None:
            lines += ["", "# Training-mode check", "",
                      "The same symbol against the builder's `is_training=True` graph, so the lint sees "
                      "the dropout rates and batch-norm momenta an inference graph hides "
                      "(numeric parity is not run there: TF would use batch statistics and random dropout).",
                      "", _demote(self.training_compare.report("markdown", only_problems=True))]
        return "\n".join(lines).rstrip() + "\n"

    def json(self) -> str:
        data = {"autoport": self.summary(), "compare": json.loads(self.compare.report("json"))}
        if self.training_compare is not None:
            data["training_compare"] = json.loads(self.training_compare.report("json", only_problems=True))
        return json.dumps(data, indent=2, default=_json_default) + "\n"


def _demote(markdown: str) -> str:
    """The verifier's Markdown report with its title one level down."""
    return "#" + markdown if markdown.startswith("# ") else markdown


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _cross_check_line(check: dict) -> str:
    if not check:
        return "not run"
    text = f"{check['equal']}/{check['compared']} bit-identical"
    if check.get("differ"):
        text += f"; DIFFER: {', '.join(check['differ'][:5])}"
    if check.get("only_autoport"):
        text += f"; {len(check['only_autoport'])} set by the translator only (constants the pairing does not place)"
    return text


def _hints_line(hints: dict) -> str:
    if not hints:
        return "none read (inference graph only: dropout rates and batch-norm decays are not visible)"
    return f"{len(hints.get('dropout', {}))} dropout rates, {len(hints.get('bn_decay', {}))} batch-norm decays"


# ------------------------------------------------------------------ steps

def _outputs(tf_graph) -> list:
    tensors = [tf_graph.logits] + [tensor for tensor in tf_graph.end_points.values()
                                   if isinstance(tensor, tf.Tensor)]
    return list(dict.fromkeys(tensors))


def load_tf_values(session, tf_graph, checkpoint: str | None, seed: int, plan) -> tuple[dict, str]:
    """Put every TF variable's value into the session; returns (values, description)."""
    if checkpoint is None:
        values = weights_lib.seeded_values(plan, seed)
        source = f"seeded random values (seed {seed}, porting.verifier.weights.seeded_values)"
    else:
        try:
            stored = weights_lib.CheckpointValues(checkpoint)
        except FileNotFoundError as error:
            raise CheckpointError(str(error)) from error
        absent = [name for name in plan.tf_variables if name not in stored]
        if absent:
            raise CheckpointError(f"checkpoint {checkpoint} lacks {len(absent)} of the graph's "
                                  f"{len(plan.tf_variables)} variables: {', '.join(absent[:8])}"
                                  f"{', ...' if len(absent) > 8 else ''}")
        values = {name: stored[name] for name in plan.tf_variables}
        wrong = [f"{name} {values[name].shape} vs {tuple(shape)}" for name, shape in plan.tf_variables.items()
                 if tuple(values[name].shape) != tuple(shape)]
        if wrong:
            raise CheckpointError(f"checkpoint {checkpoint} has other shapes than the graph for "
                                  f"{len(wrong)} variables: {'; '.join(wrong[:5])}")
        source = f"checkpoint {stored.prefix}"
    weights_lib.assign_values(session, tf_graph.graph, values)
    return values, source


def calibrate_batch_norm(train_graph, tf_graph, values: dict, images) -> tuple[dict, int]:
    """Moving statistics := the batch statistics of one training-mode forward of ``images``.

    With random weights and random moving statistics nothing normalizes the activations,
    so a deep residual network's grow by orders of magnitude per stage (ResNet-200:
    ~1e16), and an additive defect (a missing beta, a bias) would vanish below float32
    noise there. In the training-mode graph every batch norm normalizes with the batch's
    own statistics, so one forward gives each layer realistic moving statistics at once
    (the layers before it normalize the same way); each variance is floored at half the
    layer's mean variance. Layers whose map is 1x1 (no variance over one value) keep
    their random statistics.

    Returns:
        (values with the calibrated moving statistics, number of batch norms calibrated).
    """
    ours = {}
    for op in tf_graph.graph.get_operations():
        if op.type.startswith("FusedBatchNorm") and len(op.inputs) >= 5:
            mean, variance = variable_name(op.inputs[3]), variable_name(op.inputs[4])
            if mean in values and variance in values:
                ours[collapse_scope(tf_graph_facts.scope_of(op))] = (mean, variance)
    statistics = {}
    for op in train_graph.graph.get_operations():
        key = collapse_scope(tf_graph_facts.scope_of(op)) if op.type.startswith("FusedBatchNorm") else None
        if key in ours and op.get_attr("is_training"):
            statistics[key] = (op.outputs[1], op.outputs[2])
    if not statistics:
        return values, 0
    train_variables = weights_lib.tf_variables(train_graph.graph)
    with tf.compat.v1.Session(graph=train_graph.graph) as session:
        weights_lib.assign_values(session, train_graph.graph,
                                  {name: value for name, value in values.items() if name in train_variables})
        fetched = session.run(statistics, feed_dict={train_graph.images: images})
    values = dict(values)
    calibrated = 0
    for key, (mean, variance) in fetched.items():
        count = int(np.prod(statistics[key][0].op.inputs[0].shape.as_list()[:3]))
        if count < 2 or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance))):
            continue
        mean_name, variance_name = ours[key]
        values[mean_name] = mean.astype(np.float32)
        # A channel that is nearly constant over a small map would get a gain of 1/sqrt(eps)
        # and amplify float32 noise a hundredfold: floor it at half the layer's mean variance.
        values[variance_name] = (variance + 0.5 * float(np.mean(variance))).astype(np.float32)
        calibrated += 1
    return values, calibrated


def read_params(session, translation: Translation) -> tuple[dict, dict]:
    """The translator's parameters, read from the TF session in one run and put in MXNet's layouts."""
    graph = session.graph
    fetches = {name: graph.get_tensor_by_name(source.tensor) for name, source in translation.params.items()}
    values = session.run(fetches) if fetches else {}
    arg_params, aux_params = {}, {}
    for name, source in translation.params.items():
        (aux_params if source.kind == "aux" else arg_params)[name] = source.to_mx(values[name])
    return arg_params, aux_params


def cross_check(plan, values: dict, arg_params: dict, aux_params: dict) -> dict:
    """Compare the translator's parameters with ``porting.verifier.weights.transfer`` of the same TF values."""
    theirs_arg, theirs_aux, report = weights_lib.transfer(plan, values, strict=False)
    theirs = {**theirs_arg, **theirs_aux}
    mine = {**arg_params, **aux_params}
    shared = sorted(set(mine) & set(theirs))
    differ = [name for name in shared
              if mine[name].shape != theirs[name].shape or not np.array_equal(mine[name], theirs[name])]
    return {"compared": len(shared), "equal": len(shared) - len(differ), "differ": differ,
            "only_autoport": sorted(set(mine) - set(theirs)), "only_transfer": sorted(set(theirs) - set(mine)),
            "transfer_problems": [problem.line() for problem in report.problems]}


def deployed_outputs(session, tf_graph, outcome: "AutoportResult", seed: int, rtol: float, atol: float | None,
                     atol_range: float) -> list[dict]:
    """The translated symbol's outputs as deployed (one plain inference bind, MKLDNN fusion on) vs TF."""
    translation = outcome.translation
    images = outcome.images = parity.seeded_input(tf_graph.images.shape.as_list(), seed)
    fetches = [session.graph.get_tensor_by_name(head.tensor) for head in translation.heads]
    expected = session.run(fetches, feed_dict={tf_graph.images: images})
    symbol = translation.symbol
    context = mx.cpu()
    args = {name: mx.nd.array(outcome.arg_params[name], ctx=context)
            for name in symbol.list_arguments() if name != "data"}
    args["data"] = mx.nd.array(layouts.nhwc_to_nchw(images), ctx=context)
    aux = {name: mx.nd.array(outcome.aux_params[name], ctx=context) for name in symbol.list_auxiliary_states()}
    executor = symbol.bind(context, args=args, aux_states=aux, grad_req="null")
    outputs = executor.forward(is_train=False)
    results = []
    for head, value, reference in zip(translation.heads, outputs, expected):
        outcome.tf_outputs[head.name] = layouts.nhwc_to_nchw(reference)
        outcome.mx_outputs[head.name] = value.asnumpy()
        check = parity.compare_arrays(outcome.tf_outputs[head.name], outcome.mx_outputs[head.name], rtol, atol,
                                      head.name, atol_range)
        results.append({"output": head.name, "passed": check.passed, "max_abs": check.max_abs,
                        "min_tol": check.min_tol})
    return results


def autoport(builder, *, size: tuple[int, int], classes: int, name: str | None = None,
             checkpoint: str | None = None, seed: int = 0, rtol: float | None = None, atol: float | None = None,
             hints: bool = True, numeric: bool = True, calibrate: bool = True) -> AutoportResult:
    """Translate a TF builder's network to MXNet and prove it (see the module docstring).

    Args:
        builder: ``fn(images, num_classes[, is_training]) -> (logits, end_points)``.
        size, classes: input size (H, W) and logits width.
        checkpoint: TF checkpoint for the weights; None: seeded random values.
        seed: of the random weights and of the parity input.
        rtol, atol: parity tolerances (None: ``porting.verifier.parity``'s defaults, atol relative to each
            layer's range).
        hints: read dropout rates and batch-norm decays from a training graph.
        numeric: run numeric parity (False: shapes and lint only; the result then fails).
        calibrate: with random weights and a training graph (``hints``), set the batch-norm
            moving statistics to realistic values (:func:`calibrate_batch_norm`).

    Raises:
        UnsupportedOps: every op that cannot be translated, listed at once.
        CheckpointError: the checkpoint lacks a variable or has another shape.
        porting.frameworks.tf_reader.BuilderError: the builder raised or broke its contract.
    """
    from porting.verifier.api import verify

    name = name or getattr(builder, "__name__", "network")
    size = arguments.size(size)
    classes = arguments.positive_int(classes, "--classes")
    arguments.input_fits(1, size)
    timings: dict[str, float] = {}
    steps = (["build TF graph"] + ["build training graph"] * hints + ["translate", "verify shapes and lint"]
             + ["verify the training graph"] * hints + ["weights"]
             + ["numeric parity", "deployed outputs"] * numeric)
    with progress.steps(steps, desc=f"autoport {name}") as step:
        step("build TF graph")
        started = time.perf_counter()
        tf_graph = tf_reader.read_graph(builder, size, classes, 1, is_training=False)
        timings["tf_graph"] = time.perf_counter() - started
        facts, train_graph, notes = {}, None, []
        if hints:
            step("build training graph")
            started = time.perf_counter()
            try:
                train_graph = training_graph(builder, size, classes)
            except tf_reader.BuilderError as error:  # the inference graph is what matters: go on without
                notes.append(f"no training-mode graph (dropout rates, batch-norm decays unknown): {error}")
            facts = training_hints(train_graph.graph) if train_graph is not None else {}
            timings["training_graph"] = time.perf_counter() - started
        step("translate")
        started = time.perf_counter()
        translation = translate_graph(tf_graph.graph, tf_graph.images, _outputs(tf_graph), facts)
        translation.size, translation.classes = size, classes
        translation.notes[:0] = notes
        timings["translate"] = time.perf_counter() - started
        step("verify shapes and lint")
        started = time.perf_counter()
        result = verify(tf=builder, mx=lambda num_classes: translation.symbol, tf_graph=tf_graph, size=size,
                        classes=classes, is_training=False, title=f"autoport {name}")
        timings["verify_shapes"] = time.perf_counter() - started
        outcome = AutoportResult(name, size, classes, translation, result, hints=facts, timings=timings)
        if hints:
            step("verify the training graph")
        if train_graph is not None:
            started = time.perf_counter()
            outcome.training_compare = verify(tf=builder, mx=lambda num_classes: translation.symbol,
                                              tf_graph=train_graph, size=size, classes=classes, is_training=True,
                                              title=f"autoport {name} (training-mode TF graph)")
            timings["verify_training"] = time.perf_counter() - started
        step("weights")
        # Weights, both sides' activations of every layer and the calibration forward: refused
        # here, before the first big allocation, when they cannot fit.
        memory.check_fits(memory.numeric_estimate(tf_graph.records, result.mx_graph.records, 1, size),
                          fix="use a smaller --size")
        started = time.perf_counter()
        plan = weights_lib.plan_transfer(tf_graph, result.mx_graph, result.pairs)
        with tf.compat.v1.Session(graph=tf_graph.graph) as session:
            values, outcome.weights = load_tf_values(session, tf_graph, checkpoint, seed, plan)
            if checkpoint is None and calibrate and train_graph is not None:
                images = parity.seeded_input(tf_graph.images.shape.as_list(), seed)
                values, count = calibrate_batch_norm(train_graph, tf_graph, values, images)
                if count:
                    weights_lib.assign_values(session, tf_graph.graph, values)
                    outcome.weights += (f"; moving statistics of {count} batch norms calibrated to the batch "
                                        "statistics of the parity input (one training-mode forward)")
            outcome.tf_values = values
            outcome.arg_params, outcome.aux_params = read_params(session, translation)
            outcome.cross_check = cross_check(plan, values, outcome.arg_params, outcome.aux_params)
            timings["weights"] = time.perf_counter() - started
            if numeric:
                step("numeric parity")
                started = time.perf_counter()
                with compat.no_subgraph_fusion():
                    parity.apply(result, seed=seed, rtol=rtol, atol=atol, session=session,
                                 mx_params=(outcome.arg_params, outcome.aux_params))
                result.numeric["weights"] = result.numeric_report.weights = outcome.weights
                timings["verify_numeric"] = time.perf_counter() - started
                step("deployed outputs")
                started = time.perf_counter()
                report = result.numeric_report
                outcome.deployed = deployed_outputs(session, tf_graph, outcome, seed, report.rtol, report.atol,
                                                    report.atol_range)
                timings["verify_deployed"] = time.perf_counter() - started
    return outcome


# ------------------------------------------------------------------ files

def _save_params(arg_params: dict, aux_params: dict):
    """A writer of MXNet's ``arg:``/``aux:`` parameter file (for ``util.write_together``)."""
    blob = {f"arg:{name}": mx.nd.array(value) for name, value in arg_params.items()}
    blob.update({f"aux:{name}": mx.nd.array(value) for name, value in aux_params.items()})
    return lambda tmp: mx.nd.save(tmp, blob)


def _text(text: str):
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return write


def write_outputs(outcome: AutoportResult, prefix: str | os.PathLike) -> dict[str, Path]:
    """Write the symbol, the parameters and both reports, together (``util.write_together``)."""
    paths = output_paths(prefix)
    outcome.files = {key: str(path) for key, path in paths.items()}
    # All four appear together (mode 0644, params too), or none of them does.
    util.write_together([(paths["params"], _save_params(outcome.arg_params, outcome.aux_params)),
                    (paths["symbol"], _text(outcome.translation.symbol.tojson())),
                    (paths["report_md"], _text(outcome.markdown())),
                    (paths["report_json"], _text(outcome.json()))])
    return paths


def write_unsupported(error, prefix: str | os.PathLike, name: str) -> dict[str, Path]:
    """Reports for a network that cannot be translated (no symbol, no parameters)."""
    paths = output_paths(prefix)
    text = f"# autoport: {name}\n\n**FAILED | untranslatable ops**\n\n```\n{error.describe(max_layers=50)}\n```\n"
    atomic_write_text(paths["report_md"], text, parents=True)
    report = {"autoport": {"network": name, "passed": False, "unsupported": error.as_dict()}}
    atomic_write_text(paths["report_json"], json.dumps(report, indent=2) + "\n", parents=True)
    return paths
