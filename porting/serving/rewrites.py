"""Inference-only graph rewrites of a verified MXNet symbol (serving copies; the checked symbol is unchanged).

Each rewrite computes what the verified symbol computes, up to float rounding (the tests in
``tests/serving/test_rewrites.py`` compare the scores):

* :func:`fold_batch_norms`: a batch norm after a convolution becomes the convolution's
  weights and bias (moving statistics, as inference uses them).
* :func:`fold_residual_scales`: a constant scaling of a convolution's output becomes its weights.
* :func:`fuse_mkldnn`: MXNet's own MKL-DNN subgraph pass (conv + bias + ReLU + sum in one
  oneDNN primitive). MXNet 1.9.1 with MKL-DNN already applies it when it binds an
  inference executor (``MXNET_SUBGRAPH_BACKEND`` unset), so binding the result changes
  nothing there; it exists for a symbol run where that pass is off, and for the record.
* :func:`serving_graph` applies the folds in order (the symbol the serving runtimes start from).

Not for training: gradients of folded weights are not the same updates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from porting.frameworks.mx_attrs import (as_flag, as_float, attrs_of, read_counts, rebuilt_graph,
                                         scaled_convolutions, symbol_graph)

#: MXNet's BatchNorm defaults (``fix_gamma`` forces gamma to 1 in the forward pass: PITFALLS 5a).
BN_EPS, BN_FIX_GAMMA = 1e-3, True


def _mx():
    from porting import compat

    return compat.import_mx()


def _shares_weights(conv: dict, reads: dict[int, int]) -> bool:
    """Whether another node also reads the convolution's weight or bias (folding would change it too)."""
    return any(reads.get(entry[0], 0) != 1 for entry in conv["inputs"][1:])


def fold_batch_norms(symbol, arg_params: dict, aux_params: dict):
    """Fold each inference batch norm that follows a convolution into the convolution.

    With the moving statistics, ``BN(Wx + b) = s * (Wx + b - mean) + beta`` where
    ``s = gamma / sqrt(var + eps)`` per output channel, which is the convolution with
    weights ``s * W`` and bias ``s * (b - mean) + beta``. A convolution without bias gets
    one (``<conv>_bias``). ``fix_gamma=True`` (MXNet's default, slim's ``scale=False``)
    means gamma is 1 whatever the stored gamma holds. The arithmetic is done in float64
    and stored in the convolution weight's dtype.

    A ``BatchNorm`` is folded when it normalises axis 1 (channels, NCHW), does not output
    its mean and variance, is not an output itself, and reads output 0 of a
    ``Convolution`` that nothing else reads, whose weight and bias no other node reads.

    Args:
        symbol: an MXNet symbol.
        arg_params, aux_params: its parameters and auxiliary states (name -> NDArray).

    Returns:
        ``(symbol, arg_params, aux_params, folded)``: the new symbol, new parameter dicts
        without the folded batch norms' entries (the caller's dicts are not modified;
        unchanged entries are shared) and the names of the folded batch norms.
    """
    mx = _mx()
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    reads = read_counts(graph)
    heads = {entry[0] for entry in graph["heads"]}
    params, aux = dict(arg_params), dict(aux_params)
    drop: set[int] = set()
    new_bias: dict[int, str] = {}  # conv index -> the bias variable to add
    folded = []
    for index, node in enumerate(nodes):
        if node["op"] != "BatchNorm" or index in heads:
            continue
        attrs = attrs_of(node)
        source, output = node["inputs"][0][:2]
        conv = nodes[source]
        if (conv["op"] != "Convolution" or output != 0 or reads.get(source, 0) != 1 or _shares_weights(conv, reads)
                or int(as_float(attrs.get("axis"), 1)) != 1 or as_flag(attrs.get("output_mean_var"), False)):
            continue
        gamma_name, beta_name, mean_name, var_name = (nodes[entry[0]]["name"] for entry in node["inputs"][1:5])
        eps = as_float(attrs.get("eps"), BN_EPS)
        fix_gamma = as_flag(attrs.get("fix_gamma"), BN_FIX_GAMMA)
        weight_name = nodes[conv["inputs"][1][0]]["name"]
        weight = arg_params[weight_name]
        mean = aux_params[mean_name].asnumpy().astype(np.float64)
        var = aux_params[var_name].asnumpy().astype(np.float64)
        gamma = np.ones_like(mean) if fix_gamma else arg_params[gamma_name].asnumpy().astype(np.float64)
        beta = arg_params[beta_name].asnumpy().astype(np.float64)
        scale = gamma / np.sqrt(var + eps)
        w = weight.asnumpy().astype(np.float64)
        has_bias = len(conv["inputs"]) > 2 and not as_flag(attrs_of(conv).get("no_bias"), False)
        if has_bias:
            bias_name = nodes[conv["inputs"][2][0]]["name"]
            bias = arg_params[bias_name].asnumpy().astype(np.float64)
        else:
            bias_name = f"{conv['name']}_bias"
            if bias_name in arg_params or any(n["name"] == bias_name for n in nodes):
                continue  # the name is taken: leave this one alone rather than guess another
            bias = np.zeros_like(mean)
            new_bias[source] = bias_name
        dtype = weight.dtype
        params[weight_name] = mx.nd.array(w * scale.reshape(-1, *([1] * (w.ndim - 1))), dtype=dtype)
        params[bias_name] = mx.nd.array((bias - mean) * scale + beta, dtype=dtype)
        for name in (gamma_name, beta_name):
            params.pop(name, None)
        for name in (mean_name, var_name):
            aux.pop(name, None)
        drop.add(index)
        folded.append(node["name"])
    if not drop:
        return symbol, params, aux, folded
    return mx.sym.load_json(json.dumps(rebuilt_graph(graph, drop, new_bias))), params, aux, folded


def fold_residual_scales(symbol, arg_params: dict):
    """Fold each constant scaling of a convolution's output into the convolution (inference).

    Inception-ResNet-v2's residual is ``net + scale * conv(mixed)``. MXNet 1.9.1 runs the
    ``_mul_scalar`` outside MKL-DNN: the convolution's output leaves the blocked layout,
    is scaled in one more memory pass, and the following ``elemwise_add`` cannot be fused
    into the convolution as a sum post-op. ``scale * (W x + b) = (scale W) x + scale b``,
    so for inference the scale can live in the weights. Not for training: gradients of
    the scaled weights are not the same updates.

    A ``_mul_scalar`` is folded when its input is output 0 of a ``Convolution`` that no
    other node reads, whose weight and bias no other node reads.

    Args:
        symbol: an MXNet symbol (e.g. ``mx_impl.inception_resnet_v2.get_symbol()``).
        arg_params: its parameters (name -> NDArray), e.g. from ``Module.get_params()``.

    Returns:
        ``(symbol, arg_params, folded)``: the new symbol, a new parameter dict (the
        caller's is not modified; unfolded entries are shared) and the names of the
        convolutions that absorbed a scale.
    """
    mx = _mx()
    graph = symbol_graph(symbol)
    nodes = graph["nodes"]
    reads = read_counts(graph)
    params = dict(arg_params)
    drop: set[int] = set()
    folded = []
    for source, index in scaled_convolutions(graph, reads).items():
        conv, node = nodes[source], nodes[index]
        if _shares_weights(conv, reads):
            continue
        scale = as_float(attrs_of(node)["scalar"])
        for weight_entry in conv["inputs"][1:]:  # weight, then bias when there is one
            name = nodes[weight_entry[0]]["name"]
            params[name] = arg_params[name] * scale
        drop.add(index)
        folded.append(conv["name"])
    if not drop:
        return symbol, params, folded
    return mx.sym.load_json(json.dumps(rebuilt_graph(graph, drop))), params, folded


def fuse_mkldnn(symbol, arg_params: dict, aux_params: dict, data_shape: tuple, context=None):
    """MXNet's MKL-DNN subgraph pass (``Symbol.optimize_for('MKLDNN')``): fused oneDNN operators.

    The pass needs every input's shape (``data_shape`` is the batch's, NCHW): without them
    it silently fuses nothing. Returns the partitioned symbol; it is bound with the same
    ``arg_params`` and ``aux_params``. Raises ``UsageError`` when this MXNet build has no MKL-DNN.
    """
    from porting.util import UsageError

    mx = _mx()
    if not mx.runtime.Features().is_enabled("MKLDNN"):
        raise UsageError("this MXNet build has no MKL-DNN: the MKLDNN subgraph pass is not available")
    context = context or mx.cpu()
    args, aux = {**arg_params, "data": mx.nd.zeros(tuple(data_shape), ctx=context)}, dict(aux_params)
    return symbol.optimize_for("MKLDNN", args, aux, ctx=context)


@dataclass
class ServingGraph:
    """A serving copy of a symbol with its parameters and what each rewrite folded."""

    symbol: object
    arg_params: dict
    aux_params: dict
    folded: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        done = [f"{len(names)} {what}" for what, names in self.folded.items() if names]
        return ", ".join(done) if done else "no rewrite applied"


def serving_graph(symbol, arg_params: dict, aux_params: dict, fold_bn: bool = True,
                  fold_scales: bool = True) -> ServingGraph:
    """The exact inference rewrites, in order: batch norms folded, then residual scales."""
    folded: dict[str, list[str]] = {}
    if fold_bn:
        symbol, arg_params, aux_params, folded["batch norms folded"] = fold_batch_norms(
            symbol, arg_params, aux_params)
    if fold_scales:
        symbol, arg_params, folded["residual scales folded"] = fold_residual_scales(symbol, arg_params)
    return ServingGraph(symbol, dict(arg_params), dict(aux_params), folded)
