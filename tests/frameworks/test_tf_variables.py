"""tf_variables: the one TF variable tracer, on slim (reference) and resource (Keras-style) variables."""
from __future__ import annotations

import pytest

from porting import compat
from porting.frameworks import tf_variables

tf = compat.import_tf()
slim = compat.import_slim()


def graph_with(build):
    graph = tf.Graph()
    with graph.as_default():
        result = build()
    return graph, result


@pytest.mark.parametrize("use_resource, read_op, variable_op", [(False, "Identity", "VariableV2"),
                                                                 (True, "ReadVariableOp", "VarHandleOp")],
                         ids=["slim", "resource"])
def test_a_weights_read_is_traced_to_its_variable(use_resource, read_op, variable_op):
    def build():
        with tf.compat.v1.variable_scope("Net/Conv2d_1a_3x3"):
            weights = tf.compat.v1.get_variable("weights", [3, 3, 3, 4], use_resource=use_resource)
        images = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3])
        return tf.nn.conv2d(images, weights, 1, "SAME")

    graph, conv = graph_with(build)
    read = conv.op.inputs[1]
    assert read.op.type == read_op
    assert tf_variables.variable_op(read).type == variable_op
    assert tf_variables.variable_name(read) == "Net/Conv2d_1a_3x3/weights"
    assert tf_variables.variable_scope(read) == "Net/Conv2d_1a_3x3"
    assert tf_variables.reads_variable(read)
    assert tf_variables.graph_variables(graph) == {"Net/Conv2d_1a_3x3/weights": (3, 3, 3, 4)}
    readers = list(tf_variables.variable_readers(graph.get_operation_by_name("Net/Conv2d_1a_3x3/weights")))
    assert conv.op in readers


def test_slim_layers_read_their_variables():
    def build():
        images = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3])
        return slim.conv2d(images, 4, 3, normalizer_fn=slim.batch_norm, scope="Conv")

    graph, _ = graph_with(build)
    conv = graph.get_operation_by_name("Conv/Conv2D")
    batch_norm = next(op for op in graph.get_operations() if op.type.startswith("FusedBatchNorm"))
    assert tf_variables.variable_name(conv.inputs[1]) == "Conv/weights"
    assert tf_variables.variable_name(batch_norm.inputs[2]) == "Conv/BatchNorm/beta"
    assert tf_variables.variable_name(batch_norm.inputs[3]) == "Conv/BatchNorm/moving_mean"
    assert tf_variables.variable_name(batch_norm.inputs[1]) is None  # slim's gamma is a constant 1 here


def test_snapshot_and_enter_are_read_ops():
    def build():
        variable = tf.compat.v1.get_variable("v", [2], use_resource=False)
        snapshot = tf.raw_ops.Snapshot(input=variable.value())
        entered = tf.raw_ops.Enter(data=snapshot, frame_name="loop")
        return snapshot, entered

    _, (snapshot, entered) = graph_with(build)
    assert tf_variables.variable_name(snapshot) == "v"
    assert tf_variables.variable_name(entered) == "v"


def test_computed_values_and_constants_read_no_variable():
    def build():
        variable = tf.compat.v1.get_variable("v", [2], use_resource=True)
        return tf.constant([1.0, 2.0]), variable * 2.0

    _, (constant, product) = graph_with(build)
    assert tf_variables.variable_op(constant) is None
    assert tf_variables.variable_name(product) is None and tf_variables.variable_scope(product) is None
    assert not tf_variables.reads_variable(product)


def test_a_trace_passes_a_bounded_number_of_read_ops():
    def build():
        value = tf.compat.v1.get_variable("v", [2], use_resource=False).value()
        chain = [value]
        for _ in range(tf_variables.MAX_READ_STEPS):
            chain.append(tf.identity(chain[-1]))
        return chain

    _, chain = graph_with(build)
    assert tf_variables.variable_name(chain[tf_variables.MAX_READ_STEPS - 2]) == "v"
    assert tf_variables.variable_name(chain[-1]) is None
