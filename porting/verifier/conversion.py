"""Weight conversion between a TF checkpoint and an MXNet checkpoint, through the verified layer pairing.

:func:`tf_to_mx` writes ``<out>-symbol.json`` and ``<out>-<epoch>.params`` (loadable with
``mx.model.load_checkpoint``); :func:`mx_to_tf` writes a TF checkpoint back from them. Both
pair the two graphs with ``porting.core.match`` and move values with
``porting.verifier.weights``, so ports with automatic MXNet names convert too. The command
line is ``porting.cli.convert`` (``python -m porting.convert``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from porting import compat  # noqa: F401  (shims before any framework import)
from porting import progress, util
from porting.core import layouts
from porting.core.tolerances import DEFAULT_RTOL, ParityResult, compare_arrays, format_error, tolerance_text
from porting.frameworks.models import load_builder, mx_builder, tf_builder
from porting.verifier import arguments

#: The steps of a conversion, as its progress bar names them.
STEPS = ["read checkpoint", "build TF graph", "read MXNet symbol", "match", "transfer", "write"]


def _sides(model: str | None, tf: str | None, mx: str | None, size, classes: int | None, need_mx: bool = True):
    """(TF builder, MX builder or None, (H, W), classes) from a registered model or builder files."""
    custom = tf and (mx or not need_mx)
    spec = arguments.sides(model, None, None) if model or not custom else None
    size = arguments.size(size) if size is not None else (spec.size if spec else (299, 299))
    classes = arguments.classes(classes) or (spec.classes if spec else 1001)
    tf_fn = load_builder(tf, "tf") if tf else tf_builder(spec)
    mx_fn = None if not need_mx else load_builder(mx, "mx") if mx else mx_builder(spec, size)
    return tf_fn, mx_fn, size, classes


def _tf_graph(tf_fn, size, classes):
    from porting.frameworks import tf_reader

    return tf_reader.read_graph(tf_fn, size, classes, 1, False)  # inference: BN reads its moving statistics


def output_files(out: str, epoch: int = 0) -> tuple[Path, Path]:
    """The two files :func:`tf_to_mx` writes: ``<out>-symbol.json`` and ``<out>-<epoch>.params``."""
    return Path(f"{out}-symbol.json"), Path(f"{out}-{epoch:04d}.params")


@dataclass
class Conversion:
    """What :func:`convert_tf_to_mx` did: the report, and the graphs and values it paired and moved."""

    report: object  # weights.TransferReport
    tf_graph: object
    mx_graph: object
    pairs: list
    checkpoint: object  # weights.CheckpointValues
    tf_variables: dict = field(default_factory=dict)  # TF variable name -> shape, every one the graph has

    def tf_outputs(self, images: np.ndarray, mx_outputs) -> tuple[dict[str, np.ndarray], str]:
        """TF's values (NCHW for 4-D) of the MXNet outputs named ``mx_outputs``, on NHWC ``images``.

        The TF graph runs with the checkpoint's values. Returns (outputs by MXNet output name,
        a note on what could not be run: outputs without a TF counterpart, or a checkpoint that
        lacks variables of the graph, in which case TF runs nothing).
        """
        from porting.verifier import weights

        tf = compat.import_tf()
        absent = [name for name in self.tf_variables if name not in self.checkpoint]
        if absent:
            return {}, (f"TF not run: the checkpoint lacks {len(absent)} variable{'s' if len(absent) != 1 else ''} "
                        f"of the TF graph ({util.short_list(absent, 3)})")
        tensors = {name: self._tf_tensor(name) for name in mx_outputs}
        unpaired = [name for name, tensor in tensors.items() if tensor is None]
        fetches = {name: self.tf_graph.graph.get_tensor_by_name(tensor)
                   for name, tensor in tensors.items() if tensor is not None}
        with tf.compat.v1.Session(graph=self.tf_graph.graph) as session:
            weights.assign_values(session, self.tf_graph.graph,
                                  {name: self.checkpoint[name] for name in self.tf_variables})
            values = session.run(fetches, feed_dict={self.tf_graph.images: images})
        note = f"no TF counterpart for {', '.join(unpaired)}" if unpaired else ""
        return {name: layouts.nhwc_to_nchw(value) for name, value in values.items()}, note

    def _tf_tensor(self, mx_output: str) -> str | None:
        """The TF tensor an MXNet output ports: through the layer pairing, else the end point of the same name."""
        for pair in self.pairs:
            if (pair.tf is not None and pair.mx is not None and pair.tf.name in self.tf_graph.tensors
                    and self.mx_graph.outputs.get(pair.mx.name) == mx_output):
                return self.tf_graph.tensors[pair.tf.name]
        op_name = mx_output[:-len("_output")] if mx_output.endswith("_output") else mx_output
        for tensor in self.tf_graph.end_points.values():
            if getattr(tensor, "op", None) is not None and tensor.op.name == op_name:
                return tensor.name
        return None


def tf_to_mx(checkpoint: str, out: str, **kwargs):
    """Convert a TF checkpoint into ``<out>-symbol.json`` and ``<out>-<epoch>.params``.

    Both files are written to temporary names and renamed into place once both are
    complete (``util.write_together``), so an interrupted or failed conversion leaves no
    file that claims it. Keyword arguments: those of :func:`convert_tf_to_mx`.

    Returns:
        the ``weights.TransferReport``.

    Raises:
        porting.verifier.weights.WeightTransferError: problems that were not allowed (nothing is written).
        FileNotFoundError: no checkpoint at ``checkpoint``.
    """
    return convert_tf_to_mx(checkpoint, out, **kwargs).report


def convert_tf_to_mx(checkpoint: str, out: str, *, model: str | None = None, tf: str | None = None,
                     mx: str | None = None, size=None, classes: int | None = None, epoch: int = 0,
                     allow_missing=(), allow_unexpected=(), tf_graph=None, symbol=None) -> Conversion:
    """:func:`tf_to_mx`, returning the :class:`Conversion` (to run TF on the same weights afterwards)."""
    from porting.frameworks import mx_reader
    from porting.verifier import weights

    mxnet = compat.import_mx()
    tf_fn, mx_fn, size, classes = _sides(model, tf, mx, size, classes)
    with progress.steps(STEPS, desc="convert") as step:
        step("read checkpoint")
        values = weights.CheckpointValues(checkpoint)
        step("build TF graph")
        tf_graph = tf_graph or _tf_graph(tf_fn, size, classes)
        step("read MXNet symbol")
        mx_graph = mx_reader.read_symbol(symbol if symbol is not None else mx_fn, size, classes)
        step("match")
        pairs = weights.pair_graphs(tf_graph, mx_graph)  # the pairing of verify(), equivalences included
        plan = weights.plan_transfer(tf_graph, mx_graph, pairs)
        step("transfer")
        arg_params, aux_params, report = weights.transfer(plan, values, allow_missing=allow_missing,
                                                          allow_unexpected=allow_unexpected)
        step("write")
        symbol_file, params_file = output_files(out, epoch)
        blob = {f"arg:{name}": mxnet.nd.array(value) for name, value in arg_params.items()}
        blob.update({f"aux:{name}": mxnet.nd.array(value) for name, value in aux_params.items()})
        # The files of mx.model.save_checkpoint, both or neither.
        util.write_together([(params_file, lambda tmp: mxnet.nd.save(tmp, blob)),
                        (symbol_file, lambda tmp: mx_graph.symbol.save(tmp, remove_amp_cast=True))])
    return Conversion(report, tf_graph, mx_graph, pairs, values, dict(plan.tf_variables))


def mx_to_tf(prefix: str, out_checkpoint: str, *, epoch: int = 0, model: str | None = None, tf: str | None = None,
             size=None, classes: int | None = None, allow_missing=(), allow_unexpected=(), tf_graph=None):
    """Convert ``<prefix>-symbol.json`` + ``<prefix>-<epoch>.params`` into a TF checkpoint.

    The MXNet side is the saved symbol itself, paired with the TF builder's graph.

    Returns:
        (checkpoint prefix written, ``weights.TransferReport``).
    """
    from porting.frameworks import mx_reader
    from porting.verifier import weights

    mxnet = compat.import_mx()
    for path in input_files(prefix, epoch):
        if not path.is_file():
            raise FileNotFoundError(f"MXNet checkpoint file {path} not found")
    tf_fn, _, size, classes = _sides(model, tf, None, size, classes, need_mx=False)
    with progress.steps(STEPS, desc="convert") as step:
        step("read checkpoint")
        symbol, arg_params, aux_params = mxnet.model.load_checkpoint(str(prefix), epoch)
        step("build TF graph")
        tf_graph = tf_graph or _tf_graph(tf_fn, size, classes)
        step("read MXNet symbol")
        mx_graph = mx_reader.read_symbol(symbol, size, classes)
        step("match")
        plan = weights.plan_transfer(tf_graph, mx_graph)  # the pairing of verify(), equivalences included
        step("transfer")
        values, report = weights.reverse_transfer(plan, arg_params, aux_params, allow_missing=allow_missing,
                                                  allow_unexpected=allow_unexpected)
        step("write")
        written = weights.write_tf_checkpoint(tf_graph, values, out_checkpoint)
    return written, report


def input_files(prefix: str, epoch: int = 0) -> tuple[Path, Path]:
    """The two files :func:`mx_to_tf` reads: ``<prefix>-symbol.json`` and ``<prefix>-<epoch>.params``."""
    return Path(f"{prefix}-symbol.json"), Path(f"{prefix}-{epoch:04d}.params")


# -- proving an exported model ------------------------------------------------------------------

@dataclass(frozen=True)
class OutputCheck:
    """One output of an exported model against MXNet and TF (``None``: that side was not run)."""

    name: str
    shape: tuple[int, ...]
    against_mx: ParityResult | None
    against_tf: ParityResult | None
    mx_against_tf: ParityResult | None

    @property
    def passed(self) -> bool:
        return all(result is None or result.passed for result in (self.against_mx, self.against_tf))


@dataclass
class ExportProof:
    """The exported file's outputs compared with MXNet's and TF's on one seeded input; truthy when all pass."""

    runtime: str
    path: str
    checks: list[OutputCheck]
    rtol: float
    atol: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    def text(self) -> str:
        """A table: per output, the max abs difference to MXNet and to TF, and the verdict."""
        def cell(result):
            if result is None:
                return "--"
            if result.note and math.isnan(result.max_abs):  # no value to compare: say why
                return f"FAIL ({result.note})"
            return format_error(result.max_abs) + ("" if result.passed else " FAIL")

        rows = [[check.name, "x".join(map(str, check.shape)), cell(check.against_mx), cell(check.against_tf),
                 cell(check.mx_against_tf), "pass" if check.passed else "FAIL"] for check in self.checks]
        table = tabulate(rows, headers=["output", "shape", f"{self.runtime} vs MXNet", f"{self.runtime} vs TF",
                                        "MXNet vs TF", "verdict"], tablefmt="github")
        lines = [f"{self.path}: {self.runtime} against MXNet and TF, max abs difference per output "
                 f"({tolerance_text(self.rtol, self.atol)})", table]
        lines += [f"note: {note}" for note in self.notes]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}: {sum(check.passed for check in self.checks)}/{len(self.checks)} outputs within "
                     "tolerance")
        return "\n".join(lines)


def prove_export(runtime: str, path, exported: dict, mx_values: dict, tf_values: dict | None = None, *,
                 rtol: float = DEFAULT_RTOL, atol: float | None = None, notes=()) -> ExportProof:
    """Compare an exported model's outputs with MXNet's (and TF's, where given), output by output.

    Args:
        runtime: what ran the export (a column title, e.g. 'onnxruntime').
        exported, mx_values, tf_values: output name -> array (NCHW), from the same input;
            MXNet and TF are the references (``porting.core.tolerances.compare_arrays``).
        notes: lines the report prints under the table (e.g. the gammas pinned to 1).
    """
    tf_values = tf_values or {}
    checks = []
    notes = list(notes)
    for name, value in exported.items():
        value = np.asarray(value)
        reference = mx_values.get(name)
        against_mx = against_tf = mx_against_tf = None
        if reference is not None:
            against_mx = _compare(reference, value, rtol, atol, name)
        if name in tf_values:
            against_tf = _compare(tf_values[name], value, rtol, atol, name)
            if reference is not None:
                mx_against_tf = _compare(tf_values[name], reference, rtol, atol, name)
        checks.append(OutputCheck(name, tuple(value.shape), against_mx, against_tf, mx_against_tf))
    for name in mx_values:  # an output the export dropped fails
        if name not in exported:
            checks.append(OutputCheck(name, tuple(np.shape(mx_values[name])), _absent(name), None, None))
    return ExportProof(runtime, str(path), checks, rtol, atol, notes)


def _compare(reference, candidate, rtol, atol, name) -> ParityResult:
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        return _absent(name, f"shape {candidate.shape} instead of {reference.shape}")
    return compare_arrays(reference, candidate, rtol, atol, name)


def _absent(name: str, note: str = "missing") -> ParityResult:
    nan = float("nan")
    return ParityResult(name, False, DEFAULT_RTOL, 0.0, nan, nan, nan, nan, nan, nan, 1, 1, note=note)
