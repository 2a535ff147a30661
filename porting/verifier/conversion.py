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
from porting.frameworks.models import get_model, load_builder, mx_builder, parse_size, tf_builder


def _sides(model: str | None, tf: str | None, mx: str | None, size, classes: int | None, need_mx: bool = True):
    """(TF builder, MX builder or None, (H, W), classes) from a registered model or builder files."""
    custom = tf and (mx or not need_mx)
    spec = get_model(model) if model else (None if custom else get_model("inception_resnet_v2"))
    size = parse_size(size) if isinstance(size, str) else (size, size) if isinstance(size, int) else \
        tuple(size) if size else (spec.size if spec else (299, 299))
    classes = classes or (spec.classes if spec else 1001)
    tf_fn = load_builder(tf, "tf") if tf else tf_builder(spec)
    mx_fn = None if not need_mx else load_builder(mx, "mx") if mx else mx_builder(spec, size)
    return tf_fn, mx_fn, size, classes


def _tf_graph(tf_fn, size, classes):
    from porting.frameworks import tf_reader

    return tf_reader.read_graph(tf_fn, size, classes, 1, False)  # inference: BN reads its moving statistics


def tf_to_mx(checkpoint: str, out: str, *, model: str | None = None, tf: str | None = None, mx: str | None = None,
             size=None, classes: int | None = None, epoch: int = 0, allow_missing=(), allow_unexpected=(),
             tf_graph=None, symbol=None):
    """Convert a TF checkpoint into ``<out>-symbol.json`` and ``<out>-<epoch>.params``.

    Returns:
        the ``weights.TransferReport``.

    Raises:
        porting.verifier.weights.WeightTransferError: problems that were not allowed (nothing is written).
        FileNotFoundError: no checkpoint at ``checkpoint``.
    """
    from porting.frameworks import mx_reader
    from porting.verifier import weights
    from porting.core.match import match

    mxnet = compat.import_mx()
    tf_fn, mx_fn, size, classes = _sides(model, tf, mx, size, classes)
    values = weights.CheckpointValues(checkpoint)
    tf_graph = tf_graph or _tf_graph(tf_fn, size, classes)
    mx_graph = mx_reader.read_symbol(symbol if symbol is not None else mx_fn, size, classes)
    plan = weights.plan_transfer(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records))
    arg_params, aux_params, report = weights.transfer(plan, values, allow_missing=allow_missing,
                                                      allow_unexpected=allow_unexpected)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    mxnet.model.save_checkpoint(str(out), epoch, mx_graph.symbol,
                                {name: mxnet.nd.array(value) for name, value in arg_params.items()},
                                {name: mxnet.nd.array(value) for name, value in aux_params.items()})
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
    from porting.core.match import match

    mxnet = compat.import_mx()
    symbol_file, params_file = Path(f"{prefix}-symbol.json"), Path(f"{prefix}-{epoch:04d}.params")
    for path in (symbol_file, params_file):
        if not path.is_file():
            raise FileNotFoundError(f"MXNet checkpoint file {path} not found")
    tf_fn, _, size, classes = _sides(model, tf, None, size, classes, need_mx=False)
    symbol, arg_params, aux_params = mxnet.model.load_checkpoint(str(prefix), epoch)
    tf_graph = tf_graph or _tf_graph(tf_fn, size, classes)
    mx_graph = mx_reader.read_symbol(symbol, size, classes)
    plan = weights.plan_transfer(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records))
    values, report = weights.reverse_transfer(plan, arg_params, aux_params, allow_missing=allow_missing,
                                              allow_unexpected=allow_unexpected)
    written = weights.write_tf_checkpoint(tf_graph, values, out_checkpoint)
    return written, report
