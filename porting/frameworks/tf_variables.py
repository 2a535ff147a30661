"""The one TF variable tracer: which variable a tensor reads, and who reads a variable.

A layer reads its weights through read ops: ``VariableV2 -> Identity`` (slim's
reference variables), ``VarHandleOp -> ReadVariableOp`` (resource variables, Keras
style), ``Snapshot``, and ``Enter`` inside a ``tf.while_loop``. A model file read as a frozen
graph (``tf_files``) holds its weights as ``Const`` ops instead; the ones :func:`mark_frozen`
names there are variables here too, so a frozen conv, batch norm or dense reads like a slim one.
Everything that asks
"is this a variable, and which?" asks here: the TF reader (layer scopes, whether a
batch norm keeps moving statistics), the weight transfer (the source of every MXNet
parameter) and autoport (trainable parameters versus frozen constants).

No import of TensorFlow itself: the functions take ``tf.Tensor``/``tf.Operation`` objects.
"""
from __future__ import annotations

from collections.abc import Iterator

#: Op types that hold a variable.
VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
#: Op types that pass a variable's value on unchanged (followed from a reader back to the variable).
READ_OPS = frozenset({"Identity", "ReadVariableOp", "Snapshot", "Enter"})
#: How many read ops a trace may pass; slim and Keras graphs need two at most.
MAX_READ_STEPS = 6
#: The graph collection that names a frozen graph's weight constants (``mark_frozen``).
FROZEN_COLLECTION = "porting_frozen_variables"


def mark_frozen(graph, names) -> None:
    """Record that the ``Const`` ops ``names`` of a frozen graph were variables (its weights)."""
    graph.add_to_collection(FROZEN_COLLECTION, frozenset(names))


def frozen_names(graph) -> frozenset:
    """The ``Const`` ops of ``graph`` that :func:`mark_frozen` named (empty for a graph with variables)."""
    marked = graph.get_collection(FROZEN_COLLECTION)
    return marked[0] if len(marked) == 1 else frozenset().union(*marked)


def _is_variable(op) -> bool:
    return op.type in VARIABLE_OPS or (op.type == "Const" and op.name in frozen_names(op.graph))


def variable_op(tensor):
    """The variable op whose value ``tensor`` is (through read ops only), or None."""
    op = tensor.op
    for _ in range(MAX_READ_STEPS):
        if _is_variable(op):
            return op
        if op.type not in READ_OPS or not op.inputs:
            return None
        op = op.inputs[0].op
    return None


def variable_name(tensor) -> str | None:
    """``'Net/Conv2d_1a_3x3/weights'`` for the variable ``tensor`` reads, or None."""
    op = variable_op(tensor)
    return op.name if op is not None else None


def variable_scope(tensor) -> str | None:
    """``'Net/Conv2d_1a_3x3'``: the scope of the variable ``tensor`` reads, or None."""
    name = variable_name(tensor)
    return name.rsplit("/", 1)[0] if name is not None else None


def reads_variable(tensor) -> bool:
    """Whether ``tensor`` is the value of a variable."""
    return variable_op(tensor) is not None


def variable_readers(variable) -> Iterator:
    """Ops that read a variable op's value, directly or through read ops, depth first, each once."""
    stack = list(variable.outputs[0].consumers())
    seen: set[str] = set()
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        yield op
        if op.type in READ_OPS:
            stack.extend(op.outputs[0].consumers())


def graph_variables(graph) -> dict[str, tuple[int, ...]]:
    """Every variable op of a TF graph (and frozen weight constant) -> its shape."""
    result = {}
    frozen = frozen_names(graph)
    for op in graph.get_operations():
        if op.name in frozen and op.type == "Const":
            result[op.name] = tuple(int(v) for v in op.outputs[0].shape.as_list())
        elif op.type in VARIABLE_OPS:
            shape = op.get_attr("shape")
            dims = [dim.size for dim in shape.dim] if hasattr(shape, "dim") else list(shape)
            result[op.name] = tuple(int(v) for v in dims)
    return result
