"""Weight conversion between a TF checkpoint and an MXNet checkpoint, through the verified layer pairing.

:func:`tf_to_mx` writes ``<out>-symbol.json`` and ``<out>-<epoch>.params`` (loadable with
``mx.model.load_checkpoint``); :func:`mx_to_tf` writes a TF checkpoint back from them. Both
pair the two graphs with ``porting.core.match`` and move values with
``porting.verifier.weights``, so ports with automatic MXNet names convert too. The command
line is ``porting.cli.convert`` (``python -m porting.convert``).
"""
from __future__ import annotations

from pathlib import Path

from porting import compat  # noqa: F401  (shims before any framework import)
from porting import progress, util
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


def tf_to_mx(checkpoint: str, out: str, *, model: str | None = None, tf: str | None = None, mx: str | None = None,
             size=None, classes: int | None = None, epoch: int = 0, allow_missing=(), allow_unexpected=(),
             tf_graph=None, symbol=None):
    """Convert a TF checkpoint into ``<out>-symbol.json`` and ``<out>-<epoch>.params``.

    Both files are written to temporary names and renamed into place once both are
    complete (``util.write_together``), so an interrupted or failed conversion leaves no
    file that claims it.

    Returns:
        the ``weights.TransferReport``.

    Raises:
        porting.verifier.weights.WeightTransferError: problems that were not allowed (nothing is written).
        FileNotFoundError: no checkpoint at ``checkpoint``.
    """
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
        plan = weights.plan_transfer(tf_graph, mx_graph)  # the pairing of verify(), equivalences included
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
    return report


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
