"""Training-mode facts an inference graph does not show: dropout rates and batch-norm decays.

slim builds dropout as an identity and the batch-norm moving averages not at all
when ``is_training=False``; the translated symbol still needs them to train like
the TF network. They are read from a second graph of the same builder built with
``is_training=True`` (never run: only its ops are inspected), which the pipeline
also verifies the translated symbol against (the lint then checks dropout rates
and batch-norm momenta).
"""
from __future__ import annotations

import inspect

from porting.frameworks import tf_graph_facts, tf_reader
from porting.core.graph_walk import collapse_scope



def accepts_is_training(builder) -> bool:
    try:
        return "is_training" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def training_graph(builder, size: tuple[int, int], classes: int):
    """The builder's training-mode ``tf_reader.TfGraph``, or None when it has one mode only."""
    if not accepts_is_training(builder):
        return None
    return tf_reader.read_graph(builder, size, classes, 1, is_training=True)


def training_hints(graph) -> dict:
    """``{"dropout": {scope: keep_prob}, "bn_decay": {scope: decay}}`` read from a training graph."""
    dropout: dict[str, float] = {}
    decay: dict[str, float] = {}
    for op in graph.get_operations():
        if op.type.startswith("FusedBatchNorm"):
            value = tf_graph_facts.bn_decay(op)
            if value is not None:  # computed from a float32 (1 - decay): keep 7 digits
                decay[collapse_scope(tf_graph_facts.scope_of(op))] = round(value, 7)
        elif op.type == "GreaterEqual":
            scope = tf_graph_facts.dropout_scope(op)
            rate = tf_graph_facts.const_value(op.inputs[1]) if scope else None
            if rate is not None and rate.size == 1:
                # a float32 rate: 7 digits are all there is (0.3f is 0.30000001)
                dropout[collapse_scope(scope)] = round(1.0 - float(rate), 7)
    return {"dropout": dropout, "bn_decay": decay}
