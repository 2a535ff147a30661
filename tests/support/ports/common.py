"""Shared machinery of the corpus of independent MXNet ports (``tests/support/ports/<net>.py``).

A port module declares ``SLIM``/``ARG_SCOPE`` (``"tf_slim.nets.<module>:<function>"``), ``SIZE``,
``CLASSES``, ``build(num_classes)`` and ``weights_from_tf(tf_values)``; this module runs both sides:

* ``slim_builder(slim, arg_scope, **kwargs)`` -> ``tf_build(images, num_classes, is_training=False)``,
  the TF builder contract of ``porting.compare --tf`` (opens slim's arg_scope, calls the slim net);
* ``run_slim(tf_build, size, num_classes, seed, input_seed, batch, heads=())`` -> ``SlimRun``: builds
  the graph once (TF graph mode, inference), gives every variable a seeded random value
  (``seeded_value``) and returns the variables' values, the NHWC input and slim's logits, plus the
  extra end points named in ``heads`` (e.g. Inception-v3's ``"AuxLogits"``) in ``SlimRun.heads``;
  ``SlimRun.run(images)`` evaluates the logits on another input;
* ``run_mx(symbol, arg_params, aux_params, images_nhwc)`` -> the logits of an MXNet port: the input
  of its first ``SoftmaxOutput`` (``logits_symbol``), inference mode (``is_train=False``);
  ``run_mx_heads`` -> the inputs of every ``SoftmaxOutput`` of a ``Group`` (``softmax_inputs``);
* ``check_params(symbol, arg_params, aux_params, data_shape)``: parameter names and shapes;
* ``random_images(size, seed)``, ``max_abs_diff(a, b)``, ``tolerance(reference)`` and
  ``assert_matches(reference, actual)``: the corpus's comparison (rtol 1e-4, atol 1e-4 x range);
* layout transforms slim -> MXNet: ``conv_weight``, ``conv_head_to_fc``, ``dense_from_1x1``,
  ``depthwise_weight``, ``batch_norm`` and ``conv_bn`` (one conv + batch-norm scope).

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

    Weights ~ He-uniform over their fan-in (conv HWIO and dense (in, out): prod(shape[:-1]);
    depthwise (kh, kw, C, M): kh*kw); ``gamma`` and ``moving_variance`` ~ U(0.5, 1.5);
    everything else (beta, biases, moving_mean) ~ N(0, 0.1). Each variable has its own stream
    seeded by (seed, name). Drawn in float32 (OverFeat's fc6 has 113M weights).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])
    leaf = name.split(":")[0].rsplit("/", 1)[-1]
    shape = tuple(int(d) for d in shape)
    if leaf in ("weights", "kernel", "depthwise_weights", "pointwise_weights"):
        fan_in = int(np.prod(shape[:2])) if leaf == "depthwise_weights" else int(np.prod(shape[:-1]))
        value = rng.random(shape, dtype=np.float32)
        value -= np.float32(0.5)
        value *= np.float32(2.0 * np.sqrt(6.0 / max(fan_in, 1)))
        return value
    if leaf in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)


def random_images(size, batch: int = 1, seed: int = 1) -> np.ndarray:
    """A seeded NHWC float32 input in [-1, 1) (slim's preprocessing range); size N or (H, W)."""
    height, width = (size, size) if np.isscalar(size) else size
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, height, width, 3)).astype(np.float32)


@dataclass
class SlimRun:
    """A slim graph built once, its seeded variable values, one input and its heads' outputs."""

    graph: object
    session: object
    images_tensor: object
    head_tensors: list  # [logits, *end_points[head] for the extra heads]
    values: dict  # slim variable name (no ":0") -> np.ndarray
    images: np.ndarray  # NHWC
    heads: list  # np.ndarray per head, (batch, -1) (see flat_logits); heads[0] is slim's logits

    @property
    def logits_tensor(self):
        return self.head_tensors[0]

    @property
    def logits(self) -> np.ndarray:
        """slim's logits (the softmax input) as ``(batch, -1)``."""
        return self.heads[0]

    def run(self, images: np.ndarray) -> np.ndarray:
        """slim's logits for another NHWC input of the same shape, as ``(batch, -1)``."""
        return flat_logits(self.session.run(self.logits_tensor, {self.images_tensor: images}))

    def close(self) -> None:
        self.session.close()


def run_slim(tf_build, size, num_classes: int, seed: int = 0, input_seed: int = 1,
             batch: int = 1, heads: tuple[str, ...] = ()) -> SlimRun:
    """Build ``tf_build`` in a fresh graph (inference), seed its variables, evaluate one input.

    ``heads`` names extra end points (e.g. ``"AuxLogits"``) evaluated after the logits.
    """
    height, width = (size, size) if np.isscalar(size) else size
    graph = tf.Graph()
    with graph.as_default(), compat.fast_graph_building():
        images_tensor = tf.compat.v1.placeholder(tf.float32, [batch, height, width, 3], name="images")
        logits_tensor, end_points = tf_build(images_tensor, num_classes, is_training=False)
        head_tensors = [logits_tensor] + [end_points[name] for name in heads]
        feed, assigns, values = {}, [], {}
        for variable in tf.compat.v1.global_variables():
            name = variable.op.name
            values[name] = seeded_value(name, variable.shape.as_list(), seed)
            holder = tf.compat.v1.placeholder(tf.float32, values[name].shape)
            feed[holder] = values[name]
            assigns.append(tf.compat.v1.assign(variable, holder))
    session = tf.compat.v1.Session(graph=graph)
    session.run(assigns, feed)
    del feed
    images = random_images((height, width), batch, input_seed)
    outputs = session.run(head_tensors, {images_tensor: images})
    return SlimRun(graph, session, images_tensor, head_tensors, values, images,
                   [flat_logits(out) for out in outputs])


def flat_logits(logits: np.ndarray) -> np.ndarray:
    """TF logits as ``(batch, -1)`` in MXNet's order: a 4-D NHWC map (slim's resnets keep their
    1x1 logits map, ``spatial_squeeze`` or not) is read NCHW first, as an MXNet ``Flatten`` would."""
    logits = np.asarray(logits)
    if logits.ndim == 4:
        logits = logits.transpose(0, 3, 1, 2)
    return logits.reshape(logits.shape[0], -1)


def softmax_inputs(symbol) -> list:
    """The input of each ``SoftmaxOutput`` head of the symbol (its logits), in head order.

    A head that is not a ``SoftmaxOutput`` is taken as it is.
    """
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    internals = symbol.get_internals()
    outputs = internals.list_outputs()
    result = []
    for position, (node_index, _, _) in enumerate(graph["heads"]):
        head = nodes[node_index]
        if head["op"] != "SoftmaxOutput":
            result.append(symbol[position])
            continue
        source, index, _ = head["inputs"][0]
        producer = nodes[source]
        wanted = f"{producer['name']}_output" if producer["op"] != "null" else producer["name"]
        candidates = [o for o in outputs if o == wanted or o.startswith(f"{producer['name']}_output")]
        result.append(internals[candidates[index] if len(candidates) > index else wanted])
    return result


def logits_symbol(symbol):
    """The input of the symbol's first ``SoftmaxOutput`` (its logits); the symbol itself if none."""
    graph = json.loads(symbol.tojson())
    if graph["nodes"][graph["heads"][0][0]]["op"] != "SoftmaxOutput":
        return symbol
    return softmax_inputs(symbol)[0]


def _forward(outputs, arg_params: dict, aux_params: dict, images_nhwc: np.ndarray) -> list[np.ndarray]:
    """Every output of ``outputs`` for an NHWC input (fed NCHW), inference mode, as ``(batch, -1)``."""
    data = mx.nd.array(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
    needed_args = [n for n in outputs.list_arguments() if n != "data"]
    needed_aux = outputs.list_auxiliary_states()
    missing = [n for n in needed_args if n not in arg_params] + [n for n in needed_aux if n not in aux_params]
    if missing:
        raise KeyError(f"parameters missing from the port's weights: {missing[:8]}")
    args = {"data": data}
    args.update({n: mx.nd.array(np.asarray(arg_params[n])) for n in needed_args})
    aux = {n: mx.nd.array(np.asarray(aux_params[n])) for n in needed_aux}
    executor = outputs.bind(mx.cpu(), args, grad_req="null", aux_states=aux)
    return [out.asnumpy().reshape(out.shape[0], -1) for out in executor.forward(is_train=False)]


def run_mx(symbol, arg_params: dict, aux_params: dict, images_nhwc: np.ndarray) -> np.ndarray:
    """The logits of an MXNet port (the input of its SoftmaxOutput), NCHW input, inference mode.

    ``arg_params``/``aux_params`` hold numpy arrays (or NDArrays); a parameter the symbol needs
    and the dicts lack is an error; extra entries are ignored (a mutant without a batch norm
    simply does not read that norm's parameters).
    """
    return _forward(logits_symbol(symbol), arg_params, aux_params, images_nhwc)[0]


def run_mx_heads(symbol, arg_params: dict, aux_params: dict, images_nhwc: np.ndarray) -> list[np.ndarray]:
    """``run_mx`` for every head: the inputs of all the ``SoftmaxOutput``s of a ``Group``, in order."""
    return _forward(mx.sym.Group(softmax_inputs(symbol)), arg_params, aux_params, images_nhwc)


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


def dense_from_1x1(w: np.ndarray) -> np.ndarray:
    """A 1x1 conv on a 1x1 map, HWIO (1, 1, in, out) -> FullyConnected (out, in)."""
    w = np.asarray(w)
    return np.ascontiguousarray(w.reshape(w.shape[2], w.shape[3]).T)


def depthwise_weight(w: np.ndarray) -> np.ndarray:
    """Depthwise (kh, kw, C, M) -> grouped conv (C*M, 1, kh, kw); output channel c*M + m as in TF."""
    w = np.asarray(w)
    kh, kw, channels, multiplier = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))


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


def conv_bn(tf_values: dict, scope: str, conv: str, bn: str, scale: bool = False):
    """One slim ``conv2d`` + ``batch_norm`` scope -> MXNet ``(args, aux)``.

    ``<scope>/weights`` -> ``<conv>_weight`` (OIHW, no bias: slim creates none before a norm), and
    ``batch_norm(tf_values, scope, bn, scale)``: ``<bn>_gamma`` is slim's gamma with ``scale=True``,
    else ones (MXNet's ``fix_gamma=True`` ignores it anyway).
    """
    args, aux = batch_norm(tf_values, scope, bn, scale)
    args[f"{conv}_weight"] = conv_weight(tf_values[f"{scope}/weights"])
    return args, aux
