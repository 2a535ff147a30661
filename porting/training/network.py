"""The network a run trains, as a training symbol, and the metrics read from its main head.

* :func:`build_symbol` is ``mx_impl.inception_resnet_v2.get_symbol(for_training=True)``
  at the data's input size, with two attributes written into the symbol (and saved with
  it): the batch-norm moving-average momentum when overridden, and ``__wd_mult__ = 0``
  on every ``*_beta``, ``*_gamma`` and ``*_bias`` variable
  (``symbol_heads.NO_DECAY_SUFFIXES``), which MXNet's ``Optimizer.set_wd_mult`` reads, so
  weight decay reaches the weights only (slim regularises ``weights`` only; PITFALLS 19).
* :func:`translated_symbol` is the same for ``--symbol PREFIX``, a network translated by
  ``python -m porting.autoport``: its ``PREFIX-symbol.json`` with the heads of
  ``porting.training.symbol_heads.training_symbol``, started from ``PREFIX-0000.params``
  through the fine-tuning path of ``checkpoint.load_pretrained`` (new logits layers for
  another number of classes); everything after the symbol is the same as for the hand port.
* :func:`network_symbol` picks one of the two for a config, and turns an input too small
  for the network into an error that names the smallest size and the ways out.

Batch-norm moving statistics: MXNet 1.x updates them in the *backward* pass (a forward
with ``is_train=True`` alone leaves them unchanged), with the symbol's ``momentum``.
slim's 0.9997 averages over ~3000 updates; in a run of a few hundred updates the
statistics still describe the early weights and inference-mode accuracy collapses.
Short runs should pass ``--bn-momentum 0.9`` (or lower); the value is saved in the symbol.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from porting import compat, util
from porting.frameworks.mx_attrs import read_counts, scaled_convolutions, symbol_graph
from porting.training.config import TrainConfig, TrainError, initial_params

mx = compat.import_mx()

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402
from porting.padding import PaddingError  # noqa: E402
from porting.training import symbol_heads  # noqa: E402  (MXNet only, no TF)
from porting.training.checkpoint import load_params_file, param_shapes  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME, NO_DECAY_SUFFIXES  # noqa: E402

log = logging.getLogger("porting.train")

#: Parameter name endings MXNet's initializers know (others need values from a params file).
INIT_SUFFIXES = ("weight", "bias", "gamma", "beta", "moving_mean", "moving_var", "moving_inv_var", "moving_avg")


def build_symbol(num_classes: int, image_size: tuple[int, int], *, repeats=irv2.DEFAULT_REPEATS,
                 align_feature_maps: bool = False, aux_logits: bool = False, dropout_keep_prob: float = 0.8,
                 label_smoothing: float = 0.0, bn_momentum: float = irv2.BN_MOMENTUM):
    """The training symbol: mx_impl's SoftmaxOutput head(s), with wd_mult and BN momentum attributes.

    Raises:
        PaddingError: a feature map vanishes at this input size.
    """
    sym = irv2.get_symbol(num_classes, create_aux_logits=aux_logits, align_feature_maps=align_feature_maps,
                          dropout_keep_prob=dropout_keep_prob, repeats=tuple(repeats),
                          image_size=tuple(image_size), for_training=True, label_smoothing=label_smoothing)
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:
        attrs = node.setdefault("attrs", {})
        if node["op"] == "null" and node["name"].endswith(NO_DECAY_SUFFIXES):
            attrs["__wd_mult__"] = "0.0"
        # Variables created by BatchNorm carry a copy of its attributes in the JSON; keep them equal.
        if "momentum" in attrs and (node["op"] == "BatchNorm" or "/BatchNorm_" in node["name"]):
            attrs["momentum"] = repr(float(bn_momentum))
    return mx.sym.load_json(json.dumps(graph))


def scale_residuals_in_weights(sym):
    """The same network with each residual scale applied to its convolution's weight and bias, not its output.

    Inception-ResNet-v2's residual is ``net + scale * conv(mixed)``. In training on CPU,
    MXNet 1.9.1 runs that ``_mul_scalar`` outside oneDNN: its input (the convolution's
    output, in oneDNN's blocked layout) and, in backward, its gradient are copied into
    default-layout arrays that stay allocated from one step to the next (storage fallback), about
    three activations per block (1.0 GB of the full network's peak at 299, batch 8;
    ``bench/train_memory.py``). ``scale * (W x + b) = (scale W) x + scale b``: computing the
    convolution with ``scale * W`` and ``scale * b`` (a ``_mul_scalar`` on each parameter)
    gives the same outputs and, through the chain rule, the same gradients for ``W`` and
    ``b`` (float rounding apart). The parameters, their names and order, their attributes
    (weight decay, learning-rate multipliers) and the outputs are unchanged, so checkpoints
    and optimizer states are those of ``sym``. Unlike ``porting.serving.rewrites.
    fold_residual_scales`` (inference: the scale moves into the parameter values), the
    trained parameters stay those of the verified network.

    A ``_mul_scalar`` is moved when its input is output 0 of a ``Convolution`` that no
    other node reads.
    """
    graph = symbol_graph(sym)
    nodes = graph["nodes"]
    # convolution index -> the _mul_scalar node scaling its output
    scaled = {conv: nodes[mul] for conv, mul in scaled_convolutions(graph, read_counts(graph)).items()}
    if not scaled:
        return sym
    moved = {id(node): conv for conv, node in scaled.items()}
    index: dict[int, int] = {}
    kept: list[dict] = []

    def entry_of(entry):
        return [index[entry[0]], *entry[1:]]

    for old, node in enumerate(nodes):
        if id(node) in moved:  # readers of the scaled output read the convolution (now scaled) instead
            index[old] = index[moved[id(node)]]
            continue
        node = dict(node, inputs=[entry_of(e) for e in node["inputs"]])
        if old in scaled:
            mul = scaled[old]
            for k in range(1, len(node["inputs"])):  # weight, then bias when there is one
                parameter = nodes[nodes[old]["inputs"][k][0]]["name"]
                kept.append({"op": "_mul_scalar", "name": f"{parameter}_scaled", "attrs": dict(mul.get("attrs", {})),
                             "inputs": [node["inputs"][k]]})
                node["inputs"][k] = [len(kept) - 1, 0, 0]
        index[old] = len(kept)
        kept.append(node)
    graph["nodes"] = kept
    graph["heads"] = [entry_of(e) for e in graph["heads"]]
    graph["arg_nodes"] = [i for i, node in enumerate(kept) if node["op"] == "null"]
    graph.pop("node_row_ptr", None)  # recomputed by the loader
    return mx.sym.load_json(json.dumps(graph))


def smallest_image_size(align_feature_maps: bool, aux_logits: bool) -> int:
    """Smallest square input side for which no feature map vanishes (mx_impl's own pads)."""

    def fits(size: int) -> bool:
        try:
            irv2.end_point_shapes(2, create_aux_logits=aux_logits, align_feature_maps=align_feature_maps,
                                  repeats=(0, 0, 0), image_size=size)
        except PaddingError:
            return False
        return True

    lo, hi = 1, 1024
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def network_symbol(cfg: TrainConfig, num_classes: int, image_size: tuple[int, int], channels: int = 3):
    """``(symbol, aux_logits)`` for the config at the data's input size.

    ``aux_logits=None`` turns the aux head on when the input is large enough for it.
    With ``cfg.symbol``, the translated network of :func:`translated_symbol`.

    Raises:
        TrainError: the input is too small, naming the smallest size and the ways out.
    """
    if cfg.symbol:
        return translated_symbol(cfg, num_classes, (channels, *image_size))
    kwargs = dict(repeats=cfg.repeats, align_feature_maps=cfg.align_feature_maps,
                  dropout_keep_prob=cfg.dropout_keep_prob, label_smoothing=cfg.label_smoothing,
                  bn_momentum=cfg.bn_momentum)
    h, w = image_size
    if cfg.aux_logits is None:
        try:
            return build_symbol(num_classes, image_size, aux_logits=True, **kwargs), True
        except PaddingError:
            log.info("input %dx%d is too small for the AuxLogits head (needs %d): training without it",
                     h, w, smallest_image_size(cfg.align_feature_maps, True))
    aux = bool(cfg.aux_logits)
    try:
        return build_symbol(num_classes, image_size, aux_logits=aux, **kwargs), aux
    except PaddingError as e:
        need = smallest_image_size(cfg.align_feature_maps, aux)
        what = "Inception-ResNet-v2" + (" with AuxLogits" if aux else "")
        hint = (f"rebuild the data with `python -m porting.data ... --size {need}x{need}`"
                + ("" if cfg.align_feature_maps else
                   f", or train with --align-feature-maps (slim's SAME-padded stem; smallest input "
                   f"{smallest_image_size(True, aux)})"))
        raise TrainError(f"the data's input {h}x{w} is too small for {what} "
                         f"(align_feature_maps={cfg.align_feature_maps}): {e}; the smallest is {need}x{need}: "
                         f"{hint}") from e


def _translated_size(prefix: str) -> str | None:
    """``HxW`` autoport translated ``PREFIX`` for (from ``PREFIX-report.json``), None if unknown."""
    try:
        h, w = json.loads(Path(f"{prefix}-report.json").read_text("utf-8"))["autoport"]["size"]
        return f"{int(h)}x{int(w)}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def translated_symbol(cfg: TrainConfig, num_classes: int, data_shape: tuple[int, int, int]):
    """``(symbol, aux_logits)`` for ``--symbol PREFIX``: autoport's inference symbol with training heads.

    ``porting.training.symbol_heads.training_symbol`` adds the hand port's ``SoftmaxOutput``
    head(s) (label ``softmax_label``, label smoothing as ``smooth_alpha``, aux heads at 0.4,
    no weight decay on betas, gammas and biases; ``cfg.bn_momentum`` when given). When the
    data has another number of classes than the logits layers, those layers are resized
    (their parameters then start fresh, see ``checkpoint.load_pretrained``).

    A symbol translated for another input size is refused even when its shapes still fit:
    its pads (SAME) and pooling conventions were derived for the translated size, and at
    another size its windows would be silently shifted (``PREFIX-report.json`` names the
    size; without it only the shape checks apply, with a warning).

    Raises:
        TrainError: the file is missing or unusable, the symbol was translated for another
        input size (naming both), or it does not take the data's input.
    """
    path = Path(f"{cfg.symbol}-symbol.json")
    if not path.is_file():
        raise TrainError(f"--symbol {cfg.symbol}: {path} not found (write it with "
                         f"`python -m porting.autoport ... --out {cfg.symbol}`)")
    c, h, w = data_shape
    size = _translated_size(cfg.symbol)
    if size is None:
        log.warning("--symbol %s: %s-report.json (which names the input size it was translated for) is missing; "
                    "cannot check that its pads were derived for %dx%d", cfg.symbol, cfg.symbol, h, w)
    elif size != f"{h}x{w}":
        raise TrainError(f"--symbol {cfg.symbol} was translated for {size} input, the data's input is {h}x{w}: its "
                         f"pads and pooling windows were derived for {size} and would be shifted at {h}x{w}; "
                         f"rebuild the data with `python -m porting.data ... --size {size}` (or --crop {size}), or "
                         f"autoport the network again with --size {h}x{w}")
    try:
        sym = mx.sym.load(str(path))
    except mx.base.MXNetError as e:
        raise TrainError(f"--symbol {path} is not an MXNet symbol file: {str(e).strip().splitlines()[0]}") from e
    if "data" not in sym.list_arguments():
        raise TrainError(f"--symbol {path} has no input named 'data' (arguments: "
                         f"{util.short_list(sym.list_arguments(), 4)})")
    resized = False
    try:
        try:
            width = symbol_heads.logits_width(sym)
        except ValueError:
            width = None  # not found: the output shape check below still applies
        if width is not None and width != num_classes:
            log.info("--symbol %s: logits for %d classes, the data has %d: new logits layers", cfg.symbol,
                     width, num_classes)
            sym, resized = symbol_heads.resize_logits(sym, num_classes), True
        sym = symbol_heads.training_symbol(sym, label_smoothing=cfg.label_smoothing, num_classes=num_classes,
                                           bn_momentum=cfg.bn_momentum)
    except ValueError as e:
        raise TrainError(f"--symbol {path}: {e}") from e
    problem = symbol_heads.input_problem(sym, tuple(data_shape))
    if problem is None:
        _, outs, _ = symbol_heads.infer_shape(sym, data=(1, *data_shape), **{LABEL_NAME: (1,)})
        wrong = [f"{n} {tuple(s)}" for n, s in zip(sym.list_outputs(), outs) if tuple(s) != (1, num_classes)]
        if wrong:
            problem = f"outputs {', '.join(wrong)} instead of (1, {num_classes}) for one image"
    if problem is None and initial_params(cfg) is not None:
        # A translated flatten may be MXNet's Flatten: then only the dense weights show the size.
        problem = _params_size_problem(sym, data_shape, initial_params(cfg),
                                       symbol_heads.logits_params(sym) if resized else ())
    if problem:
        hint = (f"it was translated for {size} input: rebuild the data with `python -m porting.data ... --size "
                f"{size}`, or autoport the network again with --size {h}x{w}" if size else
                f"autoport the network again with --size {h}x{w} ({cfg.symbol}-report.json, which names the "
                f"translated size, is missing)")
        raise TrainError(f"--symbol {cfg.symbol} does not take the data's input {c}x{h}x{w}: {problem}; {hint}")
    return sym, len(sym.list_outputs()) > 1


def _params_size_problem(sym, data_shape, path: Path, head) -> str | None:
    """Parameters of ``path`` whose shapes differ from ``sym``'s at this input size (a new head's rows may)."""
    arg, aux = load_params_file(path)
    want_arg, want_aux = param_shapes(sym, tuple(data_shape))
    wrong = []
    for want, have in ((want_arg, arg), (want_aux, aux)):
        for name, shape in want.items():
            got = tuple(have[name].shape) if name in have else None
            if got is not None and got != shape and not (name in head and got[1:] == shape[1:]):
                wrong.append(f"{name} (file {got}, network {shape})")
    return f"{path} does not fit it at this size: wrong shape: {util.short_list(sorted(wrong))}" if wrong else None


def check_random_init(sym, prefix: str) -> None:
    """Without ``PREFIX-0000.params`` every parameter must be one an initializer can make.

    Raises:
        TrainError: naming the frozen TF constants (``lr_mult`` 0) and the parameters of
        kinds MXNet's initializers do not know.
    """
    attrs = sym.attr_dict()
    names = [n for n in sym.list_arguments() + sym.list_auxiliary_states() if n not in ("data", LABEL_NAME)]
    bad = [n for n in names if float(attrs.get(n, {}).get("__lr_mult__", 1.0)) == 0.0
           or (not n.endswith(INIT_SUFFIXES) and "__init__" not in attrs.get(n, {}))]
    if bad:
        raise TrainError(f"--symbol {prefix}: {prefix}-0000.params not found, and these parameters cannot start "
                         f"from random values (TF constants, or kinds no initializer knows): "
                         f"{util.short_list(bad)}; autoport writes the params file next to the symbol")
    log.info("--symbol %s: no %s-0000.params, every parameter starts from random values", prefix, prefix)


# ------------------------------------------------------------------ metrics of the main head

def main_output(sym) -> str:
    """Name of the main head's output (the first of the group)."""
    return sym.list_outputs()[0]


def make_metric(sym, num_classes: int):
    """Top-1, top-5 and cross-entropy of the main head only (not the aux head)."""
    names = dict(output_names=[main_output(sym)], label_names=[LABEL_NAME])
    metrics = [mx.metric.Accuracy(name="top1", **names)]
    if num_classes > 5:  # with 5 classes or fewer top-5 is always 1
        metrics.append(mx.metric.TopKAccuracy(top_k=5, name="top", **names))  # MXNet names it top_5
    metrics.append(mx.metric.CrossEntropy(name="ce", **names))
    return mx.metric.CompositeEvalMetric(metrics, **names)


def metric_values(metric) -> dict[str, float]:
    """``{"top1": ..., "top5": ..., "ce": ...}`` of a :func:`make_metric` metric."""
    return {name.replace("top_5", "top5"): float(value) for name, value in zip(*metric.get())}
