"""The MXNet side from what users hold: ``PREFIX-symbol.json`` + ``.params``, a Gluon ``HybridBlock``, an ``.onnx`` file.

Each form becomes the pair the reader works on: a symbol whose image input is named ``data``
(NCHW) and the model's own parameters as numpy dicts ``(arg_params, aux_params)``, so numeric
parity can run the MXNet side with its own weights. Reading a file never runs code from it:
``-symbol.json``, ``.params`` and ``.onnx`` are data (the builder that returns a Gluon block is
code the user chose to run).

* ``-symbol.json``: its parameters from ``mx_params`` or the newest ``PREFIX-NNNN.params``
  beside it; every argument but the input and labels, and every auxiliary state, must be there.
* Gluon: hybridised, run once on zeros (which also fixes deferred shapes), exported to a
  symbol and its parameters, read back like a ``-symbol.json``.
* ONNX: imported by MXNet's own importer (``mx.contrib.onnx``, ``compat.import_onnx_to_mx``),
  after the rewrite the importer needs (every initialiser also a graph input). An NHWC image
  input (a TF model converted by tf2onnx without ``inputs_as_nchw``) gets a transpose in front,
  so the symbol still takes NCHW ``data``.
"""
from __future__ import annotations

import json
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from porting import compat
from porting.frameworks.errors import SymbolError
from porting.util import UsageError

mx = compat.import_mx()

#: ``PREFIX-symbol.json`` and ``PREFIX-0012.params``, as ``HybridBlock.export`` / ``Module.save_checkpoint`` write them.
SYMBOL_SUFFIX = "-symbol.json"
_PARAMS = re.compile(r"^(?P<prefix>.*)-(?P<epoch>\d{4,})\.params$")


@dataclass
class MxModel:
    """An MXNet side read from a file or a Gluon block: its symbol (input 'data') and its own parameters."""

    symbol: object
    arg_params: dict  # name -> np.ndarray
    aux_params: dict
    source: str  # what it was read from, for the report

    @property
    def params(self) -> tuple[dict, dict]:
        return self.arg_params, self.aux_params



def load(value, params=None) -> MxModel:
    """The MXNet side in ``value`` (a ``.json`` symbol or an ``.onnx`` file) with its parameters.

    Raises:
        UsageError: a missing or unreadable file, no parameters found, names that do not fit.
    """
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"--mx: no such file {str(path)!r} (expected PREFIX-symbol.json or a .onnx file)")
    if path.suffix.lower() == ".onnx":
        if params is not None:
            raise UsageError("--mx-params is for a -symbol.json; an .onnx file carries its own weights")
        return load_onnx(path)
    return load_symbol_file(path, params)


# ------------------------------------------------------------------ -symbol.json + .params

def newest_params(symbol_path: Path) -> Path:
    """``PREFIX-NNNN.params`` with the highest epoch beside ``PREFIX-symbol.json``."""
    name = symbol_path.name
    prefix = name[:-len(SYMBOL_SUFFIX)] if name.endswith(SYMBOL_SUFFIX) else symbol_path.stem
    found = []
    for candidate in symbol_path.parent.glob(f"{glob_escape(prefix)}-*.params"):
        match = _PARAMS.match(candidate.name)
        if match and match.group("prefix") == prefix:
            found.append((int(match.group("epoch")), candidate))
    if not found:
        raise UsageError(f"--mx: no parameters for {symbol_path}: expected {prefix}-NNNN.params beside it "
                         "(or name the file with --mx-params)")
    return max(found)[1]


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def load_params_file(path) -> tuple[dict, dict]:
    """``(arg_params, aux_params)`` as numpy from a ``.params`` file (``arg:``/``aux:`` keys, or bare names)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--mx-params: no such file {str(path)!r} (expected PREFIX-NNNN.params)")
    try:
        loaded = mx.nd.load(str(path))
    except Exception as error:  # MXNetError (its text is a C++ stack trace): not an NDArray file
        raise UsageError(f"--mx-params: {path} is not an MXNet .params file ({_mx_reason(error)})") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"--mx-params: {path} holds unnamed arrays; expected named parameters "
                         "(as HybridBlock.export or Module.save_checkpoint write them)")
    args, aux = {}, {}
    for key, value in loaded.items():
        kind, _, name = key.partition(":")
        target = aux if kind == "aux" else args
        target[name if _ else key] = value.asnumpy()
    return args, aux


def load_symbol_file(path: Path, params=None) -> MxModel:
    """A ``-symbol.json`` and its parameters (``params``, else the newest epoch beside it)."""
    try:
        text = path.read_text()
        json.loads(text)
        symbol = mx.sym.load_json(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UsageError(f"--mx: {path} is not an MXNet symbol JSON ({str(error).splitlines()[0]})") from None
    except Exception as error:  # MXNetError: JSON, but not a symbol
        raise UsageError(f"--mx: {path} is not an MXNet symbol JSON ({_mx_reason(error)})") from None
    params_path = Path(params) if params is not None else newest_params(path)
    args, aux = load_params_file(params_path)
    symbol = _input_as_data(symbol, args, str(path))
    _check_names(symbol, args, aux, params_path)
    return MxModel(symbol, args, aux, f"{path.name} + {params_path.name}")


def _mx_reason(error) -> str:
    """The one telling line of an MXNet error (its text is a C++ stack trace around a 'Check failed')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    telling = [line for line in lines if "Check failed" in line or line.startswith(("MXNetError", "Error"))]
    reason = (telling or [line for line in lines if not line.startswith(("Traceback", "File", "["))] or
              [type(error).__name__])[-1]
    return reason[:200]


def _is_label(name: str) -> bool:
    return name.endswith("label")


def _input_as_data(symbol, args: dict, what: str):
    """The symbol with its one image input named ``data`` (the argument without a stored value)."""
    inputs = [name for name in symbol.list_arguments() if name not in args and not _is_label(name)]
    if "data" in inputs:
        return symbol
    if len(inputs) != 1:
        raise UsageError(f"--mx: cannot tell the image input of {what}: "
                         + (f"arguments without a value: {', '.join(inputs[:6])}" if inputs else
                            "every argument has a stored value")
                         + "; expected exactly one (named 'data')")
    return rename_variable(symbol, inputs[0], "data")


def rename_variable(symbol, old: str, new: str):
    """The symbol with its variable ``old`` renamed ``new`` (through its JSON)."""
    graph = json.loads(symbol.tojson())
    for node in graph["nodes"]:
        if node["op"] == "null" and node["name"] == old:
            node["name"] = new
    return mx.sym.load_json(json.dumps(graph))


def _check_names(symbol, args: dict, aux: dict, params_path) -> None:
    wanted_args = [name for name in symbol.list_arguments() if name != "data" and not _is_label(name)]
    missing = [name for name in wanted_args if name not in args]
    missing += [name for name in symbol.list_auxiliary_states() if name not in aux]
    if missing:
        stored = sorted(args)[:3]
        raise UsageError(f"--mx-params: {params_path} does not fit the symbol: {len(missing)} of its parameters "
                         f"are not in the file ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); "
                         f"the file has {len(args)} arguments ({', '.join(stored)}{', ...' if len(args) > 3 else ''})")


# ------------------------------------------------------------------ Gluon

def is_gluon_block(value) -> bool:
    return isinstance(value, mx.gluon.HybridBlock)


def from_gluon(block, size: tuple[int, int], batch: int = 1) -> MxModel:
    """A ``HybridBlock`` hybridised and exported: its symbol (input renamed 'data') and parameters.

    Parameters not yet initialised are initialised with MXNet's defaults (so a freshly built
    block can be compared structurally); the block runs once on zeros to fix deferred shapes.
    """
    if not isinstance(block, mx.gluon.HybridBlock):
        raise SymbolError(f"the MX builder returned a {type(block).__name__}; a Gluon block must be a HybridBlock "
                          "(a plain Block cannot be exported to a symbol)")
    try:
        with warnings.catch_warnings():  # "already initialized": those keep their values
            warnings.simplefilter("ignore")
            block.collect_params().initialize()
        block.hybridize()
        block(mx.nd.zeros((batch, 3, *size)))
        with tempfile.TemporaryDirectory(prefix="porting-gluon-") as folder:
            prefix = str(Path(folder) / "block")
            block.export(prefix, epoch=0)
            symbol = mx.sym.load(f"{prefix}{SYMBOL_SUFFIX}")
            args, aux = load_params_file(f"{prefix}-0000.params")
    except (UsageError, SymbolError):
        raise
    except Exception as error:
        first = str(error).strip().splitlines()
        raise SymbolError(f"the Gluon block {type(block).__name__} could not be hybridised and exported for input "
                          f"{(batch, 3, *size)}: {first[0] if first else type(error).__name__}") from error
    symbol = _input_as_data(symbol, args, f"the Gluon block {type(block).__name__}")
    return MxModel(symbol, args, aux, f"Gluon block {type(block).__name__}")


# ------------------------------------------------------------------ ONNX

def load_onnx(path: Path) -> MxModel:
    """An ``.onnx`` file through MXNet's importer (with the initialiser rewrite), its input as NCHW 'data'."""
    onnx = compat.import_onnx()
    try:
        model = onnx.load_model(str(path))
    except Exception as error:  # DecodeError and friends: not a protobuf
        raise UsageError(f"--mx: {path} is not an ONNX model ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'cannot parse'})") from None
    if not model.graph.node:
        raise UsageError(f"--mx: {path} is not an ONNX model (no graph nodes)")
    try:
        symbol, args, aux = compat.import_onnx_to_mx(model)
    except Exception as error:
        first = str(error).strip().splitlines()
        raise SymbolError(f"MXNet's ONNX importer cannot import {path}: {type(error).__name__}: "
                          f"{first[0] if first else ''}") from error
    args = {name: value.asnumpy() for name, value in args.items()}
    aux = {name: value.asnumpy() for name, value in aux.items()}
    inputs = [name for name in symbol.list_arguments() if name not in args]
    if len(inputs) != 1:
        raise UsageError(f"--mx: {path} has {len(inputs)} inputs without a stored value "
                         f"({', '.join(inputs[:6])}); expected one image input")
    shape = _onnx_input_shape(model, inputs[0])
    if inputs[0] != "data":
        symbol = rename_variable(symbol, inputs[0], "data")
    if shape is not None and len(shape) == 4 and shape[-1] == 3 and shape[1] != 3:
        # An NHWC input: NCHW 'data' transposed in front, so both sides get the same NCHW images.
        nhwc = mx.sym.transpose(mx.sym.var("data"), axes=(0, 2, 3, 1), name="data_nchw_to_nhwc")
        symbol = _substitute_data(symbol, nhwc)
    return MxModel(symbol, args, aux, f"{path.name} (ONNX, MXNet importer)")


def _onnx_input_shape(model, name: str):
    for value in model.graph.input:
        if value.name == name:
            dims = value.type.tensor_type.shape.dim
            return tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in dims)
    return None


def _substitute_data(symbol, replacement):
    """``symbol`` with its 'data' variable replaced by ``replacement`` (a symbol over a new 'data')."""
    return symbol(data=replacement)


def save_checkpoint(prefix, symbol, arg_params: dict, aux_params: dict, epoch: int = 0) -> tuple[Path, Path]:
    """Write ``PREFIX-symbol.json`` and ``PREFIX-EPOCH.params`` (as ``Module.save_checkpoint`` does)."""
    symbol_path, params_path = Path(f"{prefix}{SYMBOL_SUFFIX}"), Path(f"{prefix}-{epoch:04d}.params")
    symbol.save(str(symbol_path))
    stored = {f"arg:{name}": mx.nd.array(np.asarray(value)) for name, value in arg_params.items()}
    stored.update({f"aux:{name}": mx.nd.array(np.asarray(value)) for name, value in aux_params.items()})
    mx.nd.save(str(params_path), stored)
    return symbol_path, params_path
