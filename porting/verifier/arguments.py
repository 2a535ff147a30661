"""Checks of the arguments of ``verify()`` and of the commands built on it, before any framework loads.

``verify()`` and ``python -m porting.compare`` / ``convert`` / ``autoport`` call the same
checks, so a bad argument gives the same one-line ``UsageError`` whether it came from
Python or from the command line (the messages name the command-line flag, which is also
the keyword's name). Nothing here imports TensorFlow or MXNet: a bad ``--size`` is refused
in a fraction of a second, not after both frameworks have loaded.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from porting import util
from porting.core import memory
from porting.frameworks import tf_files
from porting.frameworks.models import ModelSpec, available, get_model
from porting.frameworks.mx_attrs import is_model_file as is_mx_file
from porting.util import UsageError

#: The TF builder contract and the MX builder contract, as the messages spell them.
TF_CONTRACT = ("path/to/file.py:function, fn(images, num_classes) -> (logits, end_points), or a model file "
               "(checkpoint PREFIX with .meta, frozen .pb, SavedModel directory, Keras .h5 / .keras)")
MX_CONTRACT = "path/to/file.py:function, fn(num_classes) -> Symbol with input 'data'"
#: What ``--mx`` takes besides a builder: MXNet model files (``porting.frameworks.mx_files``).
MX_FILES = "PREFIX-symbol.json (with --mx-params or PREFIX-NNNN.params beside it) or model.onnx"


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value, flag: str) -> int:
    """``value`` as an int >= 1 (an int, not a float or a bool)."""
    if not _is_int(value) or value < 1:
        raise UsageError(f"{flag} must be a positive integer, got {value!r}")
    return int(value)


def classes(value) -> int | None:
    """The number of classes, or None for the model's default."""
    return None if value is None else positive_int(value, "--classes")


def size(value, flag: str = "--size") -> tuple[int, int]:
    """An input size as (H, W): ``299``, ``'299'``, ``'150x149'`` or ``(150, 149)``."""
    if isinstance(value, str):
        try:
            return util.parse_size(value)
        except ValueError:
            pass
    elif _is_int(value) and value >= 1:
        return int(value), int(value)
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(_is_int(dim) and dim >= 1 for dim in value)):
        return int(value[0]), int(value[1])
    raise UsageError(f"{flag} must be N or HxW with positive integers, e.g. 299 or 150x149 "
                     f"(verify() also takes (H, W)), got {value!r}")


def seed(value) -> int:
    if not _is_int(value):
        raise UsageError(f"--seed must be an integer, got {value!r}")
    return int(value)


def tolerance(value, flag: str) -> float | None:
    """A numeric tolerance: None (the default) or a non-negative number."""
    if value is None:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value) or value < 0:
        raise UsageError(f"{flag} must be a non-negative number, got {value!r}")
    return float(value)


def flag(value, name: str, allow_none: bool = False) -> bool | None:
    """A True/False keyword (``is_training`` may also be None)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be True or False{' or None' if allow_none else ''}, got {value!r}")
    return value



def mx_file(value) -> None:
    """An MXNet model file that exists (it is read later)."""
    if not Path(value).is_file():
        raise UsageError(f"--mx: no such file {str(value)!r} (expected {MX_FILES})")


def mx_params(value, mx) -> str | None:
    """``--mx-params``: a ``.params`` file that exists, given only with a ``-symbol.json`` ``--mx``."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"--mx-params must be a path to PREFIX-NNNN.params, got {value!r}")
    if not (is_mx_file(mx) and str(mx).lower().endswith(".json")):
        raise UsageError("--mx-params goes with --mx PREFIX-symbol.json (a builder's or an .onnx model's "
                         "weights come from elsewhere)")
    if not Path(value).is_file():
        raise UsageError(f"--mx-params: no such file {str(value)!r} (expected PREFIX-NNNN.params)")
    return str(value)


def cache_mode(value) -> str:
    """``verify(cache=...)``: True/'on', False/'off' or 'refresh' -> 'on', 'off' or 'refresh'."""
    modes = {True: "on", False: "off", "on": "on", "off": "off", "refresh": "refresh"}
    if isinstance(value, (bool, str)) and value in modes:
        return modes[value]
    raise UsageError(f"cache must be True, False, 'on', 'off' or 'refresh', got {value!r}")


def builder(value, side: str) -> None:
    """A builder argument: None, a callable, or 'path/to/file.py:function' (loaded later).

    ``--mx`` also takes a model file (:func:`is_mx_file`).
    """
    if value is None or callable(value):
        return
    if side == "mx" and is_mx_file(value):
        mx_file(value)
        return
    contract = TF_CONTRACT if side == "tf" else MX_CONTRACT
    if side == "tf" and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise UsageError(f"--{side} must be {contract} (or the function itself in verify()), "
                         f"got {type(value).__name__} {value!r}")
    if side == "tf" and is_tf_file(value):
        tf_files.check_model_file(value)
        return
    path_text, sep, function_name = value.rpartition(":")
    if not sep or not path_text or not function_name:
        also = f" or {MX_FILES}" if side == "mx" else ""
        raise UsageError(f"--{side} must be path/to/file.py:function{also}, got {value!r}")
    if not Path(path_text).is_file():
        raise UsageError(f"--{side}: builder file {path_text} does not exist or is not a file")


def is_tf_file(value) -> bool:
    """Whether a ``--tf`` value names a model file rather than a builder ``file.py:function``."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        return False
    path_text, sep, function_name = value.rpartition(":")
    if sep and path_text.endswith(".py") and function_name:
        return False
    path = Path(value)
    return (tf_files.file_kind(value) is not None or path.suffix in tf_files.MODEL_SUFFIXES or path.is_dir()
            or Path(f"{value}.index").is_file())


def tf_file_options(tf, tf_input, tf_output, trust_keras_code, keras_objects, weights=None) -> None:
    """The TF-file keywords: names are strings, the trust flag a bool, and they need a model file
    (which carries its own weights: no ``--weights`` with it)."""
    if weights is not None and is_tf_file(tf):
        raise UsageError(f"--weights applies to a TF builder; the model file {tf} carries its own weights "
                         "(--numeric runs them)")
    for name, value in (("--tf-input", tf_input), ("--tf-output", tf_output), ("--keras-objects", keras_objects)):
        if value is not None and (not isinstance(value, str) or not value):
            raise UsageError(f"{name} must be a non-empty string, got {value!r}")
        if value is not None and not is_tf_file(tf):
            raise UsageError(f"{name} applies to a TF model file given as --tf, not to a builder")
    flag(trust_keras_code, "trust_keras_code")


def sides(model, tf, mx, tf_graph_given: bool = False) -> ModelSpec | None:
    """The registered model whose sides fill in what ``tf`` / ``mx`` do not give.

    Without a model, both sides must be given (the TF side as ``tf`` or an already built
    ``tf_graph``); with neither side nor model, the default is Inception-ResNet-v2.
    """
    builder(tf, "tf")
    builder(mx, "mx")
    if model is not None:
        if not isinstance(model, str):
            raise UsageError(f"model must be a registered name, got {model!r}. Available: {available()}")
        return get_model(model)
    has_tf = tf is not None or tf_graph_given
    if has_tf and mx is None:
        given = "--tf" if tf is not None else "tf_graph"
        raise UsageError(f"{given} without --mx: give the MXNet side to compare with (--mx {MX_CONTRACT}), "
                         f"or a registered model to take it from ({available()})")
    if mx is not None and not has_tf:
        raise UsageError(f"--mx without --tf: give the TF side to compare with (--tf {TF_CONTRACT}), "
                         f"or a registered model to take it from ({available()})")
    return None if has_tf else get_model("inception_resnet_v2")


def checkpoint_exists(path) -> bool:
    """A TF checkpoint prefix (PREFIX.index) or a directory with a 'checkpoint' state file."""
    target = Path(path)
    return Path(f"{path}.index").is_file() or (target.is_dir() and (target / "checkpoint").is_file())


def checkpoint(value, flag_name: str = "--weights") -> str:
    """A TF checkpoint that exists (its files are read later)."""
    if not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"{flag_name} must be a TF checkpoint path, got {value!r}")
    if not checkpoint_exists(value):
        raise UsageError(f"{flag_name}: no TF checkpoint at {str(value)!r} (expected PREFIX.index and "
                         "PREFIX.data-* files, or a directory holding a 'checkpoint' file)")
    return str(value)


def input_fits(batch: int, hw: tuple[int, int]) -> None:
    """Refuse a size or batch whose input alone does not fit in memory (before any graph is built)."""
    memory.check_fits(memory.input_estimate(batch, hw))
