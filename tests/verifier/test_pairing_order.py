"""Pairing on the dataflow graph: tiny TF/MXNet pairs written in another order than slim's.

slim creates a ResNet projection shortcut before the residual branch; an MXNet user often
creates it after, writes ``branch + shortcut``, and lets MXNet name the layers. Pairing must
not depend on either (``porting.core.graph_walk.dataflow_order``). A concat whose inputs are
permuted computes something else (its channels are permuted) and must still be reported,
while the layers inside its branches pair with their counterparts.
"""
from __future__ import annotations

import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.core.diff import Status  # noqa: E402  (after the shims)
from porting.core.match import BY_STRUCTURE  # noqa: E402
from porting.verifier.api import verify  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def tf_projection_unit(images, num_classes, is_training=True):
    """A ResNet v1 projection unit in slim's order: the shortcut conv first, then the branch."""
    with tf.compat.v1.variable_scope("Unit"):
        shortcut = slim.conv2d(images, 16, [1, 1], activation_fn=None, scope="shortcut")
        net = slim.conv2d(images, 4, [1, 1], scope="conv1")
        net = slim.conv2d(net, 4, [3, 3], scope="conv2")
        net = slim.conv2d(net, 16, [1, 1], activation_fn=None, scope="conv3")
        net = tf.nn.relu(shortcut + net)
    return net, {"unit": net}


def mx_projection_unit(shortcut_first: bool, shortcut_on_left: bool):
    """The same unit in MXNet with automatic names, the shortcut created before or after the branch."""

    def build(num_classes):
        with mx.name.NameManager():  # automatic names counted from 0 whatever other tests built
            data = mx.sym.Variable("data")

            def shortcut():
                return mx.sym.Convolution(data, num_filter=16, kernel=(1, 1))

            def branch():
                net = mx.sym.Activation(mx.sym.Convolution(data, num_filter=4, kernel=(1, 1)), act_type="relu")
                net = mx.sym.Activation(mx.sym.Convolution(net, num_filter=4, kernel=(3, 3), pad=(1, 1)),
                                        act_type="relu")
                return mx.sym.Convolution(net, num_filter=16, kernel=(1, 1))

            if shortcut_first:
                short = shortcut()
                residual = branch()
            else:
                residual = branch()
                short = shortcut()
            total = short + residual if shortcut_on_left else residual + short
            return mx.sym.Activation(total, act_type="relu")

    return build


@pytest.fixture(scope="module")
def unit_graph():
    return verify(tf=tf_projection_unit, mx=mx_projection_unit(True, True), size=8, classes=4).tf_graph


@pytest.mark.parametrize("shortcut_first,shortcut_on_left", [(True, True), (False, False), (False, True),
                                                             (True, False)])
def test_a_projection_unit_passes_whatever_order_the_port_writes_it_in(unit_graph, shortcut_first,
                                                                         shortcut_on_left):
    result = verify(tf=tf_projection_unit, mx=mx_projection_unit(shortcut_first, shortcut_on_left),
                    tf_graph=unit_graph, classes=4)
    assert result, result.report()
    kernels = {row.tf.name: (row.mx.name, row.mx.geometry) for row in result.rows
               if row.tf is not None and row.tf.kind == "conv"}
    assert kernels["Unit/shortcut"][1] == kernels["Unit/conv1"][1] == kernels["Unit/conv3"][1] == "1x1"
    assert kernels["Unit/conv2"][1] == "3x3 pads (1,1,1,1)"
    # The shortcut pairs with the MXNet conv that reads the data and has 16 channels, whichever was created first.
    shortcut = next(row for row in result.rows if row.tf is not None and row.tf.name == "Unit/shortcut")
    assert shortcut.matched_by == BY_STRUCTURE and shortcut.mx.shape == shortcut.tf.shape == (1, 16, 8, 8)


def tf_inception_module(images, num_classes, is_training=True):
    """Two branches concatenated: a 1x1 conv (4 channels), and a 1x1 -> 3x3 (6 channels)."""
    with tf.compat.v1.variable_scope("Mixed"):
        branch_0 = slim.conv2d(images, 4, [1, 1], scope="Branch_0/Conv2d_0a_1x1")
        branch_1 = slim.conv2d(images, 3, [1, 1], scope="Branch_1/Conv2d_0a_1x1")
        branch_1 = slim.conv2d(branch_1, 6, [3, 3], scope="Branch_1/Conv2d_0b_3x3")
        net = tf.concat([branch_0, branch_1], 3)
    return net, {"mixed": net}


def mx_inception_module(branch_1_first: bool, permuted: bool):
    def build(num_classes):
        with mx.name.NameManager():
            data = mx.sym.Variable("data")

            def branch_0():
                return mx.sym.Activation(mx.sym.Convolution(data, num_filter=4, kernel=(1, 1)), act_type="relu")

            def branch_1():
                net = mx.sym.Activation(mx.sym.Convolution(data, num_filter=3, kernel=(1, 1)), act_type="relu")
                return mx.sym.Activation(mx.sym.Convolution(net, num_filter=6, kernel=(3, 3), pad=(1, 1)),
                                         act_type="relu")

            if branch_1_first:
                second = branch_1()
                first = branch_0()
            else:
                first = branch_0()
                second = branch_1()
            parts = [second, first] if permuted else [first, second]
            return mx.sym.concat(*parts, dim=1)

    return build


@pytest.fixture(scope="module")
def module_graph():
    return verify(tf=tf_inception_module, mx=mx_inception_module(False, False), size=8, classes=4).tf_graph


@pytest.mark.parametrize("branch_1_first", [False, True])
def test_branches_created_in_another_order_pass(module_graph, branch_1_first):
    result = verify(tf=tf_inception_module, mx=mx_inception_module(branch_1_first, False), tf_graph=module_graph,
                    classes=4)
    assert result, result.report()


@pytest.mark.parametrize("branch_1_first", [False, True])
def test_a_permuted_concat_is_reported_and_its_branches_still_pair(module_graph, branch_1_first):
    result = verify(tf=tf_inception_module, mx=mx_inception_module(branch_1_first, True), tf_graph=module_graph,
                    classes=4)
    assert not result
    problems = [row for row in result.rows if row.status != Status.MATCH]
    (row,) = problems  # the concat, nothing else: the convs inside the branches pair with their counterparts
    assert row.tf.kind == "concat" and row.status == Status.ATTR_MISMATCH
    assert "concat inputs in a different order" in row.note, row.note
    (defect,) = row.defects
    assert "the output channels are permuted" in defect.explanation and "in TF's order" in defect.fix, defect
