"""The training form of a translated symbol, with the hand port's conventions.

The translated symbol is plain MXNet (inference outputs: logits, predictions,
auxiliary logits). For training, like ``mx_impl``'s ``for_training=True`` and
``porting.training.build_symbol``: every logits output gets a ``SoftmaxOutput``
with the label ``softmax_label`` (the first is the main head; others, such as
AuxLogits, are weighted by ``aux_weight``), the softmax prediction outputs are
dropped, betas, gammas and biases get ``wd_mult=0`` (slim decays weights only),
and the batch-norm momentum can be set.
"""
from __future__ import annotations

import json

from porting import compat

mx = compat.import_mx()

#: The hand port's label name and auxiliary-loss weight (mx_impl/inception_resnet_v2.py).
LABEL_NAME = "softmax_label"
AUX_LOSS_WEIGHT = 0.4
NO_DECAY_SUFFIXES = ("_beta", "_gamma", "_bias")
_SHAPE_OPS = {"Reshape", "reshape", "Flatten", "flatten", "_copy", "identity"}
_SOFTMAX_OPS = {"softmax", "log_softmax", "SoftmaxActivation", "SoftmaxOutput"}


def _is_prediction(nodes: list[dict], index: int) -> bool:
    """True when an output is a softmax (through reshapes): slim's Predictions."""
    for _ in range(8):
        node = nodes[index]
        if node["op"] in _SOFTMAX_OPS:
            return True
        if node["op"] not in _SHAPE_OPS or not node["inputs"]:
            return False
        index = node["inputs"][0][0]
    return False


def training_symbol(symbol, *, label_smoothing: float = 0.0, num_classes: int | None = None,
                    aux_weight: float = AUX_LOSS_WEIGHT, bn_momentum: float | None = None):
    """``SoftmaxOutput`` head(s) on a translated inference symbol.

    Args:
        symbol: the translated symbol (a Group of its outputs, logits first).
        label_smoothing: TF's ``ls``; needs ``num_classes`` (MXNet's ``smooth_alpha`` is
            ``ls * (K - 1) / K``, PITFALLS #11a).
        aux_weight: gradient scale of the logits heads after the first (slim's 0.4 for AuxLogits).
        bn_momentum: override every BatchNorm momentum (None: keep the translated TF decay).

    Returns:
        The main head alone, or a Group with the main head first.
    """
    if label_smoothing and not num_classes:
        raise ValueError("label_smoothing needs num_classes (MXNet's smooth_alpha = ls * (K - 1) / K)")
    alpha = smooth_alpha(label_smoothing, num_classes) if label_smoothing else 0.0
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    outputs = [symbol[i] for i in range(len(symbol.list_outputs()))]
    logits = [out for out, head in zip(outputs, graph["heads"]) if not _is_prediction(nodes, head[0])]
    if not logits:
        raise ValueError("the symbol has no logits output (every output is a softmax)")
    label = mx.sym.Variable(LABEL_NAME)
    heads = []
    for index, out in enumerate(logits):
        name = out.name
        flat = mx.sym.flatten(out, name=f"{name}/flatten")
        heads.append(mx.sym.SoftmaxOutput(flat, label=label, smooth_alpha=alpha,
                                          grad_scale=1.0 if index == 0 else float(aux_weight),
                                          name=f"{name}/softmax"))
    sym = heads[0] if len(heads) == 1 else mx.sym.Group(heads)
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:
        attrs = node.setdefault("attrs", {})
        if node["op"] == "null" and node["name"].endswith(NO_DECAY_SUFFIXES):
            attrs.setdefault("__wd_mult__", "0.0")
        elif node["op"] == "BatchNorm" and bn_momentum is not None:
            attrs["momentum"] = repr(float(bn_momentum))
    return mx.sym.load_json(json.dumps(graph))


def smooth_alpha(label_smoothing: float, num_classes: int) -> float:
    """MXNet's ``smooth_alpha`` for TF's label smoothing ``ls`` over K classes: ``ls * (K - 1) / K``."""
    return float(label_smoothing) * (num_classes - 1) / num_classes
