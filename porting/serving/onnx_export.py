"""Export a verified MXNet model to ONNX, and run an ONNX file with onnxruntime.

:func:`export_onnx` writes ``symbol`` + params as an ``.onnx`` file with MXNet 1.9.1's own
exporter (``mx.onnx.export_model``), after the rewrites that make the file compute what
MXNet computes:

* ``BatchNorm(fix_gamma=True)`` ignores its stored gamma in MXNet (gamma is 1), but the
  exporter writes the stored gamma into ONNX's ``BatchNormalization``: with gammas != 1
  stored the ONNX model is silently wrong. The exported gammas of those batch norms are 1.
* A max pool whose pads are not smaller than its kernel (onnxruntime refuses it: "Pad should
  be smaller than kernel") becomes an explicit -inf ``Pad`` node and the pool with no pads;
  such an average pool is refused with the layer's name (see :func:`explicit_pool_pads`).
  MXNet's CPU backend refuses those pools too; the padded forms our ports use (symmetric
  pads, ``pooling_convention='full'``, which the exporter writes as ``ceil_mode=1``, explicit
  pad ops, the masked average) export as they are and are proven numerically in the tests.
* Parameters are ONNX initialisers, not graph inputs as well (so onnxruntime may fold them).

The batch axis of the file is dynamic. The file is written atomically (``porting.util``).
:class:`OnnxSession` runs a file in onnxruntime, on the GPU when ``onnxruntime-gpu`` is
installed (``CUDAExecutionProvider`` first), else on the CPU. Which comparison proves a
file right is the caller's business (``porting.verifier.conversion`` compares with MXNet
and TF); :func:`mx_outputs` gives MXNet's side.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from porting import compat, util
from porting.frameworks.mx_attrs import as_flag, attrs_of, symbol_graph

#: The onnx release MXNet 1.9.1's exporter works with (pyproject.toml pins it; newer ones
#: break the exporter, whose error then says "Onnx and protobuf need to be installed").
ONNX_VERSION = "1.16.2"
#: The onnxruntime release pinned with it (``onnxruntime-gpu`` of the same version serves on a GPU).
ONNXRUNTIME_VERSION = "1.20.1"
#: Execution providers in order of preference; the first one installed is used.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
#: MXNet names its outputs ``<layer>_output``; the exporter names them ``<layer>``.
MX_OUTPUT_SUFFIX = "_output"


class OnnxExportError(util.UsageError):
    """The model cannot be exported or run as ONNX here; the message says why and what is needed."""


def installed_version(*distributions: str) -> str | None:
    """The installed release of the first of ``distributions`` found (None: none is installed)."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def check_onnx_version(found: str | None) -> None:
    """Raise :class:`OnnxExportError` unless ``found`` is the onnx release MXNet 1.9.1's exporter works with.

    Without it the exporter fails with the misleading "Onnx and protobuf need to be installed".
    """
    if found != ONNX_VERSION:
        have = f"onnx {found} is installed" if found else "onnx is not installed"
        raise OnnxExportError(f"ONNX export needs onnx=={ONNX_VERSION} (the release MXNet 1.9.1's exporter works "
                              f"with); {have}: pip install onnx=={ONNX_VERSION}")


def import_onnx():
    """``onnx``, checked to be the release MXNet 1.9.1's exporter works with (:func:`check_onnx_version`)."""
    check_onnx_version(installed_version("onnx"))
    import onnx

    return onnx


def import_onnxruntime():
    """``onnxruntime`` (or ``onnxruntime-gpu``), or an error naming the pinned release."""
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxExportError(f"running ONNX needs onnxruntime=={ONNXRUNTIME_VERSION} (or onnxruntime-gpu on a "
                              f"GPU machine): pip install onnxruntime=={ONNXRUNTIME_VERSION} ({error})") from None
    return onnxruntime


# -- what MXNet computes that the exporter does not write -------------------------------------

def fixed_gamma_names(symbol) -> list[str]:
    """The gamma parameters of the symbol's ``BatchNorm(fix_gamma=True)`` layers (MXNet's default)."""
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    names = []
    for node in nodes:
        if node["op"] == "BatchNorm" and as_flag(attrs_of(node).get("fix_gamma"), True):
            gamma = nodes[node["inputs"][1][0]]
            if gamma["op"] == "null":
                names.append(gamma["name"])
    return names


def _as_numpy(value) -> np.ndarray:
    return value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)


def export_params(symbol, arg_params: dict, aux_params: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """The parameters as the ONNX file must hold them, and the gammas pinned to 1.

    MXNet's forward treats the gamma of a ``fix_gamma=True`` batch norm as 1 whatever is
    stored; the exporter copies the stored value, so it is replaced by ones here.
    """
    params = {name: _as_numpy(value).astype(np.float32, copy=False)
              for name, value in {**arg_params, **aux_params}.items()}
    pinned = []
    for name in fixed_gamma_names(symbol):
        if name in params and not np.all(params[name] == 1.0):
            pinned.append(name)
        if name in params:
            params[name] = np.ones_like(params[name])
    return params, pinned


# -- the ONNX graph rewrites ------------------------------------------------------------------

def _attribute(node, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            from onnx import helper

            return helper.get_attribute_value(attribute)
    return default


def _replace(container, messages) -> None:
    """Make a repeated protobuf field hold ``messages`` (copied first: clearing a field may free its items)."""
    copies = []
    for message in messages:
        copy = type(message)()
        copy.CopyFrom(message)
        copies.append(copy)
    del container[:]
    container.extend(copies)


def _set_ints(node, name: str, values) -> None:
    """Replace the values of an ints attribute in place (its message stays where it is)."""
    for attribute in node.attribute:
        if attribute.name == name:
            attribute.ints[:] = list(values)
            return
    raise KeyError(f"{node.name} has no attribute {name!r}")


def explicit_pool_pads(model) -> list[str]:
    """Move pads that are not smaller than the kernel out of MaxPool/AveragePool into a ``Pad`` node.

    onnxruntime refuses such a pool ("Pad should be smaller than kernel"). A max pool ignores padded cells, so it becomes a -inf ``Pad`` and the pool without pads.
    An average pool has no such form: onnxruntime's optimiser fuses a zero ``Pad`` back
    into a following ``AveragePool`` (whatever its ``count_include_pad``), restoring the
    pads it refuses. MXNet (MKLDNN) refuses such pools too, so no model verified here has one.
    Returns the pools rewritten.

    Raises:
        OnnxExportError: an average pool has pads not smaller than its kernel.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    rewritten, nodes = [], []
    for node in graph.node:
        pads = list(_attribute(node, "pads", []) or [])
        kernel = list(_attribute(node, "kernel_shape", []) or [])
        half = len(pads) // 2
        too_big = node.op_type in ("MaxPool", "AveragePool") and pads and any(
            pads[axis] >= kernel[axis] or pads[axis + half] >= kernel[axis] for axis in range(half))
        if not too_big:
            nodes.append(node)
            continue
        if node.op_type == "AveragePool":
            raise OnnxExportError(f"layer {node.name}: an average pool with pads {pads} not smaller than its kernel "
                                  f"{kernel} has no ONNX form onnxruntime runs (it refuses the pads, and fuses an "
                                  "explicit Pad node back into them)")
        # ONNX Pad (opset >= 11) takes pads for every axis: none on N and C.
        all_pads = np.array([0, 0, *pads[:half], 0, 0, *pads[half:]], dtype=np.int64)
        pads_name, value_name, padded = (f"{node.name}/pad_pads", f"{node.name}/pad_value", f"{node.name}/pad")
        graph.initializer.extend([numpy_helper.from_array(all_pads, pads_name),
                                  numpy_helper.from_array(np.array(-np.inf, np.float32), value_name)])
        nodes.append(helper.make_node("Pad", [node.input[0], pads_name, value_name], [padded], name=padded,
                                      mode="constant"))
        node.input[0] = padded
        _set_ints(node, "pads", [0] * len(pads))
        nodes.append(node)
        rewritten.append(node.name)
    _replace(graph.node, nodes)
    return rewritten


def initializers_not_inputs(model) -> None:
    """Drop parameters from the graph inputs (MXNet's exporter lists them as both)."""
    initialisers = {initializer.name for initializer in model.graph.initializer}
    _replace(model.graph.input, [value for value in model.graph.input if value.name not in initialisers])


def export_onnx(symbol, arg_params: dict, aux_params: dict, input_shape, path) -> Path:
    """Export ``symbol`` with its params to ``path`` (ONNX, batch axis dynamic); returns the path.

    Args:
        symbol: the inference symbol (input ``data``, NCHW); a Group exports every output.
        arg_params, aux_params: name -> ``mx.nd.NDArray`` or numpy array.
        input_shape: ``(N, C, H, W)`` of ``data`` (N is only an example; the file takes any batch).
        path: the ``.onnx`` file to write (atomically: a failed export leaves nothing).

    Raises:
        OnnxExportError: onnx is missing or not the pinned release, or the model has a form
            that no ONNX file onnxruntime runs can hold.
    """
    onnx = import_onnx()
    mx = compat.import_mx()
    input_shape = tuple(int(size) for size in input_shape)
    symbol = compat.fully_connected_flatten_written(symbol)  # else the exporter's dense layer does not import
    params, _ = export_params(symbol, arg_params, aux_params)
    nd_params = {name: mx.nd.array(value) for name, value in params.items()}

    def write(temporary: str) -> None:
        # The exporter wants a file name it can write; the rewrites then load, fix and save it.
        staged = f"{temporary}.mx.onnx"
        try:
            try:
                with compat.quiet_native_stderr():
                    mx.onnx.export_model(symbol, nd_params, [input_shape], [np.float32], staged, verbose=False,
                                         dynamic=True, dynamic_input_shapes=[(None, *input_shape[1:])])
            except (AttributeError, NotImplementedError) as error:  # the exporter's "no conversion for op X"
                raise OnnxExportError(f"MXNet {mx.__version__}'s ONNX exporter cannot export this model: "
                                      f"{error}") from error
            model = onnx.load(staged)
        finally:
            Path(staged).unlink(missing_ok=True)
        initializers_not_inputs(model)
        explicit_pool_pads(model)
        onnx.checker.check_model(model)
        onnx.save(model, temporary)

    path = Path(path)
    util.atomic_write_via(path, write)
    return path


# -- running a file ---------------------------------------------------------------------------

def installed_onnxruntime() -> str:
    """The installed onnxruntime release (``onnxruntime`` or ``onnxruntime-gpu``)."""
    return installed_version("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml") or "(unknown version)"


def onnx_output_name(mx_output: str) -> str:
    """The exporter's name for an MXNet output: ``<layer>_output`` -> ``<layer>``."""
    return mx_output[:-len(MX_OUTPUT_SUFFIX)] if mx_output.endswith(MX_OUTPUT_SUFFIX) else mx_output


def available_providers(preferred=PREFERRED_PROVIDERS) -> list[str]:
    """The providers an :class:`OnnxSession` uses: CUDA first where ``onnxruntime-gpu`` offers it."""
    installed = set(import_onnxruntime().get_available_providers())
    return [provider for provider in preferred if provider in installed]


class OnnxSession:
    """An ``.onnx`` file loaded in onnxruntime; :meth:`run` maps a batch to named outputs."""

    def __init__(self, path, providers=None):
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: its warnings are about the exporter's style, errors are raised
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=list(providers or available_providers()))
        except Exception as error:  # onnxruntime raises its own types; the file or a layer is named inside
            raise OnnxExportError(f"onnxruntime cannot load {self.path}: {error}") from error
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.providers = self.session.get_providers()

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs by ONNX name (MXNet's output names without ``_output``), in the model's order."""
        values = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(self.output_names, values))


def run_onnx(path, batch: np.ndarray, providers=None) -> dict[str, np.ndarray]:
    """Run ``batch`` (``N, C, H, W``) through the ONNX file at ``path``; outputs by name."""
    return OnnxSession(path, providers).run(batch)


def mx_outputs(symbol, arg_params: dict, aux_params: dict, batch: np.ndarray) -> dict[str, np.ndarray]:
    """MXNet's outputs of ``batch`` in inference mode, named as in the ONNX file (no ``_output``)."""
    mx = compat.import_mx()
    batch = np.asarray(batch, np.float32)
    args = {name: mx.nd.array(_as_numpy(value)) for name, value in arg_params.items()}
    args["data"] = mx.nd.array(batch)
    aux = {name: mx.nd.array(_as_numpy(value)) for name, value in aux_params.items()}
    executor = symbol.simple_bind(mx.cpu(), data=batch.shape, grad_req="null")
    executor.copy_params_from(args, aux, allow_extra_params=True)
    values = executor.forward(is_train=False, data=args["data"])
    return {onnx_output_name(name): value.asnumpy() for name, value in zip(symbol.list_outputs(), values)}

