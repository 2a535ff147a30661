"""Shared machinery of the corpus of independent MXNet ports (``tests/support/ports/<net>.py``).

A port module declares ``SLIM``/``ARG_SCOPE`` (``"tf_slim.nets.<module>:<function>"``), ``SIZE``,
``CLASSES``, ``build(num_classes)`` and ``weights_from_tf(tf_values)``; this module runs both sides:

* ``slim_builder(slim, arg_scope, **kwargs)`` -> ``tf_build(images, num_classes, is_training=False)``,
  the TF builder contract of ``porting.compare --tf`` (opens slim's arg_scope, calls the slim net);
* ``run_slim(tf_build, size, num_classes, seed, input_seed)`` -> ``SlimRun``: builds the graph once
  (TF graph mode, inference), gives every variable a seeded random value (``seeded_value``) and
  returns the variables' values, the NHWC input and slim's logits; ``SlimRun.run(images)`` evaluates
  the same graph on another input;
* ``run_mx(symbol, arg_params, aux_params, images_nhwc)`` -> the logits of an MXNet port: the input
  of its final ``SoftmaxOutput`` (``logits_symbol``), inference mode (``is_train=False``);
* ``random_images(size, seed)``, ``max_abs_diff(a, b)``, ``tolerance(reference)`` and
  ``assert_matches(reference, actual)``: the corpus's comparison (rtol 1e-4, atol 1e-4 x range).

numpy, TF and MXNet only; nothing here knows a particular network. Function signatures are
stable (helper ports of other networks use them).
"""
from __future__ import annotations

import importlib
import json
import zlib
from dataclasses import dataclass

import numpy as np

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

#: The corpus's comparison: rtol, and atol as a fraction of the reference's range.
RTOL = 1e-4
ATOL_OF_RANGE = 1e-4


def load_callable(spec: str):
    """``"package.module:function"`` -> the function (e.g. ``"tf_slim.nets.vgg:vgg_16"``)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def slim_builder(slim_spec: str, arg_scope_spec: str, **slim_kwargs):
    """A TF builder ``tf_build(images, num_classes, is_training=False) -> (logits, end_points)``.

    Opens ``arg_scope_spec()`` and calls ``slim_spec(images, num_classes=..., is_training=...,
    **slim_kwargs)``; slim's nets default to training mode, so inference is passed explicitly.
    """
    def tf_build(images, num_classes, is_training=False):
        net = load_callable(slim_spec)
        scope = load_callable(arg_scope_spec)
        with slim.arg_scope(scope()):
            return net(images, num_classes=num_classes, is_training=is_training, **slim_kwargs)

    tf_build.__doc__ = f"slim's {slim_spec} under {arg_scope_spec}() with {slim_kwargs or 'its defaults'}."
    return tf_build


def seeded_value(name: str, shape, seed: int = 0) -> np.ndarray:
    """A deterministic random value for a slim variable, by its role (read from the name).

    ``.../weights`` (conv HWIO or dense (in, out)) ~ He-uniform over fan_in = prod(shape[:-1]);
    ``gamma`` and ``moving_variance`` ~ U(0.5, 1.5); everything else (beta, biases, moving_mean)
    ~ N(0, 0.1). Each variable has its own stream seeded by (seed, name).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])
    leaf = name.split(":")[0].rsplit("/", 1)[-1]
    shape = tuple(int(d) for d in shape)
    if leaf in ("weights", "kernel", "depthwise_weights", "pointwise_weights"):
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        bound = np.sqrt(6.0 / max(fan_in, 1))
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if leaf in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return (rng.standard_normal(shape) * 0.1).astype(np.float32)


def random_images(size, batch: int = 1, seed: int = 1) -> np.ndarray:
    """A seeded NHWC float32 input in [-1, 1) (slim's preprocessing range); size N or (H, W)."""
    height, width = (size, size) if np.isscalar(size) else size
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, height, width, 3)).astype(np.float32)


@dataclass
class SlimRun:
    """A slim graph built once, its seeded variable values, one input and its logits."""

    graph: object
    session: object
    images_tensor: object
    logits_tensor: object
    values: dict  # slim variable name (no ":0") -> np.ndarray
    images: np.ndarray  # NHWC
    logits: np.ndarray  # (batch, -1): slim's logits (the softmax input), see flat_logits

    def run(self, images: np.ndarray) -> np.ndarray:
        """slim's logits for another NHWC input of the same shape, as ``(batch, -1)``."""
        return flat_logits(self.session.run(self.logits_tensor, {self.images_tensor: images}))

    def close(self) -> None:
        self.session.close()


def run_slim(tf_build, size, num_classes: int, seed: int = 0, input_seed: int = 1,
             batch: int = 1) -> SlimRun:
    """Build ``tf_build`` in a fresh graph (inference), seed its variables, evaluate one input."""
    height, width = (size, size) if np.isscalar(size) else size
    graph = tf.Graph()
    with graph.as_default(), compat.fast_graph_building():
        images_tensor = tf.compat.v1.placeholder(tf.float32, [batch, height, width, 3], name="images")
        logits_tensor, _ = tf_build(images_tensor, num_classes, is_training=False)
        variables = tf.compat.v1.global_variables()
        holders, assigns, values = {}, [], {}
        for variable in variables:
            name = variable.op.name
            values[name] = seeded_value(name, variable.shape.as_list(), seed)
            holder = tf.compat.v1.placeholder(tf.float32, values[name].shape)
            holders[holder] = values[name]
            assigns.append(tf.compat.v1.assign(variable, holder))
    session = tf.compat.v1.Session(graph=graph)
    session.run(assigns, holders)
    images = random_images((height, width), batch, input_seed)
    logits = flat_logits(session.run(logits_tensor, {images_tensor: images}))
    return SlimRun(graph, session, images_tensor, logits_tensor, values, images, logits)


def flat_logits(logits: np.ndarray) -> np.ndarray:
    """TF logits as ``(batch, -1)`` in MXNet's order: a 4-D NHWC map (slim's resnets keep their
    1x1 logits map, ``spatial_squeeze`` or not) is read NCHW first, as an MXNet ``Flatten`` would."""
    logits = np.asarray(logits)
    if logits.ndim == 4:
        logits = logits.transpose(0, 3, 1, 2)
    return logits.reshape(logits.shape[0], -1)


def logits_symbol(symbol):
    """The input of the symbol's last ``SoftmaxOutput`` (its logits); the symbol itself if none."""
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    head = nodes[graph["heads"][0][0]]
    if head["op"] != "SoftmaxOutput":
        return symbol
    source, index, _ = head["inputs"][0]
    internals = symbol.get_internals()
    producer = nodes[source]
    outputs = internals.list_outputs()
    wanted = f"{producer['name']}_output" if producer["op"] != "null" else producer["name"]
    candidates = [o for o in outputs if o == wanted or o.startswith(f"{producer['name']}_output")]
    return internals[candidates[index] if len(candidates) > index else wanted]


def run_mx(symbol, arg_params: dict, aux_params: dict, images_nhwc: np.ndarray) -> np.ndarray:
    """The logits of an MXNet port (the input of its SoftmaxOutput), NCHW input, inference mode.

    ``arg_params``/``aux_params`` hold numpy arrays (or NDArrays); a parameter the symbol needs
    and the dicts lack is an error, and so is one the symbol does not have.
    """
    logits = logits_symbol(symbol)
    data = mx.nd.array(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
    needed_args = [n for n in logits.list_arguments() if n != "data"]
    needed_aux = logits.list_auxiliary_states()
    missing = [n for n in needed_args if n not in arg_params] + [n for n in needed_aux if n not in aux_params]
    if missing:
        raise KeyError(f"parameters missing from the port's weights: {missing[:8]}")
    args = {"data": data}
    args.update({n: mx.nd.array(np.asarray(arg_params[n])) for n in needed_args})
    aux = {n: mx.nd.array(np.asarray(aux_params[n])) for n in needed_aux}
    executor = logits.bind(mx.cpu(), args, grad_req="null", aux_states=aux)
    output = executor.forward(is_train=False)[0].asnumpy()
    return output.reshape(output.shape[0], -1)


def check_params(symbol, arg_params: dict, aux_params: dict, data_shape=None) -> list[str]:
    """Problems between a symbol's parameters and the given ones (names, shapes); empty if none.

    Without ``data_shape`` (NCHW) only the shapes the symbol fixes by itself are compared.
    """
    shapes = {}
    known = {"data": tuple(data_shape)} if data_shape is not None else {}
    arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**known)
    for name, shape in zip(symbol.list_arguments(), arg_shapes):
        shapes[name] = shape
    for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes):
        shapes[name] = shape
    problems = []
    given = {**arg_params, **aux_params}
    for name, shape in shapes.items():
        if name in ("data", "softmax_label"):
            continue
        if name not in given:
            problems.append(f"missing {name}")
        elif shape and tuple(np.shape(given[name])) != tuple(shape):
            problems.append(f"{name}: symbol {tuple(shape)}, given {tuple(np.shape(given[name]))}")
    problems += [f"unexpected {name}" for name in given if name not in shapes]
    return problems


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference, in float64 (inf when the shapes differ)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)))


def tolerance(reference: np.ndarray) -> float:
    """The corpus's atol for a reference: ``ATOL_OF_RANGE`` x its range (max - min)."""
    reference = np.asarray(reference, np.float64)
    return ATOL_OF_RANGE * float(reference.max() - reference.min())


def assert_matches(reference: np.ndarray, actual: np.ndarray) -> None:
    """``assert_allclose(rtol=RTOL, atol=tolerance(reference))``: the port computes slim's logits."""
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(reference, np.float64),
                               rtol=RTOL, atol=tolerance(reference))


# -- layout transforms (numpy; slim's layouts -> MXNet's) --

def conv_weight(w: np.ndarray) -> np.ndarray:
    """Conv HWIO (kh, kw, in, out) -> OIHW (out, in, kh, kw)."""
    return np.ascontiguousarray(np.asarray(w).transpose(3, 2, 0, 1))


def conv_head_to_fc(w: np.ndarray) -> np.ndarray:
    """A k x k VALID conv head HWIO -> FullyConnected (out, C*k*k) after an NCHW ``Flatten``."""
    w = np.asarray(w)
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1).reshape(w.shape[3], -1))


def batch_norm(tf_values: dict, scope: str, name: str, scale: bool = True):
    """slim's ``<scope>/BatchNorm/{gamma,beta,moving_mean,moving_variance}`` -> MXNet's names.

    ``scope`` is the conv's scope (slim's ``normalizer_fn`` adds ``/BatchNorm``) or the scope of a
    ``batch_norm`` called directly (resnet_v2's ``preact``, ``postnorm``: no ``/BatchNorm``).
    Returns ``(args, aux)``: ``<name>_gamma`` (ones when slim has no gamma, scale=False),
    ``<name>_beta``; aux ``<name>_moving_mean``, ``<name>_moving_var``.
    """
    prefix = f"{scope}/BatchNorm" if f"{scope}/BatchNorm/beta" in tf_values else scope
    beta = tf_values[f"{prefix}/beta"]
    gamma = tf_values[f"{prefix}/gamma"] if scale else np.ones_like(beta)
    args = {f"{name}_gamma": gamma, f"{name}_beta": beta}
    aux = {f"{name}_moving_mean": tf_values[f"{prefix}/moving_mean"],
           f"{name}_moving_var": tf_values[f"{prefix}/moving_variance"]}
    return args, aux
