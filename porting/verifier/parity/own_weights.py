"""Numeric parity with each side's own weights: the TF side's values, loaded as they are, no transfer.

A converter's output (an ONNX model imported into MXNet, a ``-symbol.json`` + ``.params``) carries
weights the converter computed (batch norms folded into conv weights, dense weights transposed):
they cannot come from the TF side through the layer pairing, and need not. The TF side gets its
own values (every variable of its graph from the checkpoint, or from the values given, or none
at all for a graph whose weights are constants), MXNet runs with its own parameters, and every
paired layer is compared as in a transfer run.
"""
from __future__ import annotations

import numpy as np

from porting import compat


def describe(tf_graph, weights, tf_values) -> str:
    """The report's 'weights' line for an own-weights run."""
    if weights is not None:
        tf_text = f"TF checkpoint {weights}"
    elif tf_values is not None:
        tf_text = "given TF values"
    else:
        tf_text = "the TF side's own weights"
    return f"each side its own: {tf_text}; MXNet's own parameters (nothing transferred)"


def _variables(graph) -> dict:
    tf = compat.import_tf()
    variables = (graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
                 + graph.get_collection(tf.compat.v1.GraphKeys.LOCAL_VARIABLES))
    return {variable.op.name: variable for variable in variables}


def load_tf_side(session, tf_graph, weights=None, tf_values=None) -> str | None:
    """Give every variable of the TF graph its value in ``session``; an error text, or None when done.

    From the checkpoint ``weights`` (by variable name), else from ``tf_values``; with neither, the
    TF side must have no variables (a frozen graph) or have them set already (a graph whose
    loader restored them: ``tf_graph.own_weights``).
    """
    from porting.verifier.weights import CheckpointValues, assign_values

    tf = compat.import_tf()
    variables = _variables(tf_graph.graph)
    if weights is None and tf_values is None:
        if not variables:
            return None
        restore = getattr(tf_graph, "restore", None)
        if callable(restore):
            restore(session)
            return None
        return (f"the TF side has {len(variables)} variables and no values for them: pass the checkpoint "
                "(--weights) or a TF side that carries its own weights")
    values = CheckpointValues(weights) if weights is not None else tf_values
    absent = [name for name in variables if name not in values]
    if absent:
        plural = "s" if len(absent) != 1 else ""
        return (f"the weights lack {len(absent)} variable{plural} of the TF graph: "
                f"{', '.join(absent[:8])}{', ...' if len(absent) > 8 else ''}")
    try:
        assign_values(session, tf_graph.graph, {name: np.asarray(values[name]) for name in variables})
    except (ValueError, tf.errors.InvalidArgumentError) as error:
        return f"cannot load the weights into the TF graph: {str(error).splitlines()[0]}"
    return None
