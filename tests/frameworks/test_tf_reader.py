"""tf_reader: tiny TF graphs built in-process, read into layer records."""
from __future__ import annotations

import pytest

from porting import compat
from porting.core.records import Kind
from porting.frameworks import tf_reader

tf = compat.import_tf()
slim = compat.import_slim()


def read(build, size=(8, 8), channels=3) -> dict:
    """Records of ``build(images)`` (one output tensor or a list), by name."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, size[0], size[1], channels], name="images")
        outputs = build(images)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    records, _, _ = tf_reader.records_from_graph(graph, images, outputs)
    return {record.name: record for record in records}


def test_conv_batch_norm_relu_is_one_record():
    def build(images):
        with slim.arg_scope([slim.batch_norm], is_training=False):
            return slim.conv2d(images, 4, 3, normalizer_fn=slim.batch_norm, scope="Conv")

    records = read(build)
    assert list(records) == ["images", "Conv"]
    conv = records["Conv"]
    assert conv.kind == Kind.CONV and isinstance(conv.kind, Kind)
    assert conv.part_kinds() == (Kind.CONV, Kind.BN, Kind.ACT)
    assert conv.shape == (1, 4, 8, 8) and conv.in_shape == (1, 3, 8, 8)
    assert conv.attrs["weight_shape"] == (3, 3, 3, 4)
    assert conv.attrs["bn.eps"] == pytest.approx(0.001) and conv.attrs["bn.scale"] is False
    assert conv.attrs["bn.has_moving_stats"] is True and conv.attrs["act.act"] == "relu"


@pytest.mark.parametrize("padding, stride, pads, out", [("SAME", 2, (0, 1, 0, 1), 4), ("SAME", 1, (1, 1, 1, 1), 8),
                                                        ("VALID", 2, (0, 0, 0, 0), 3)])
def test_conv_pads(padding, stride, pads, out):
    records = read(lambda images: slim.conv2d(images, 2, 3, stride=stride, padding=padding, activation_fn=None,
                                              scope="Conv"))
    conv = records["Conv"]
    assert conv.pads == pads and conv.shape == (1, 2, out, out)
    assert conv.kernel == (3, 3) and conv.stride == (stride, stride) and conv.attrs["padding"] == padding
    assert conv.part_kinds() == (Kind.CONV, Kind.BIAS)


@pytest.mark.parametrize("size, pads, out", [((150, 151), (0, 1, 1, 1), (75, 76)),
                                             ((151, 150), (1, 1, 0, 1), (76, 75))])
def test_same_pads_of_each_axis_follow_its_own_size(size, pads, out):
    """3x3/2 SAME pads (0, 1) on an even side and (1, 1) on an odd one: height and width apart.

    A square input cannot tell the width's pads from the height's; these sizes differ in parity.
    """
    def build(images):
        return [slim.conv2d(images, 2, 3, stride=2, activation_fn=None, scope="Conv"),
                slim.max_pool2d(images, 3, stride=2, padding="SAME", scope="MaxPool")]

    records = read(build, size=size, channels=1)
    for name, channels in (("Conv", 2), ("MaxPool", 1)):
        assert records[name].pads == pads, (name, records[name].pads)
        assert records[name].shape == (1, channels) + out and records[name].in_shape == (1, 1) + size


def test_explicit_pad_folds_into_the_valid_conv_after_it():
    def build(images):
        padded = tf.pad(images, [[0, 0], [1, 2], [1, 2], [0, 0]], name="Conv/Pad")
        return slim.conv2d(padded, 2, 3, padding="VALID", activation_fn=None, biases_initializer=None, scope="Conv")

    conv = read(build)["Conv"]
    assert conv.part_kinds() == (Kind.PAD, Kind.CONV)
    assert conv.pads == (1, 2, 1, 2) and conv.in_shape == (1, 3, 8, 8) and conv.inputs == ("images",)


def test_max_and_average_pools():
    def build(images):
        return [slim.max_pool2d(images, 3, stride=2, padding="SAME", scope="MaxPool"),
                slim.avg_pool2d(images, 3, stride=1, padding="VALID", scope="AvgPool")]

    records = read(build)
    max_pool, avg_pool = records["MaxPool"], records["AvgPool"]
    assert max_pool.kind == Kind.POOL_MAX and max_pool.pads == (0, 1, 0, 1) and max_pool.shape == (1, 3, 4, 4)
    assert max_pool.attrs["pad_value"] == float("-inf")
    assert avg_pool.kind == Kind.POOL_AVG and avg_pool.pads == (0, 0, 0, 0) and avg_pool.shape == (1, 3, 6, 6)
    assert avg_pool.attrs["count_include_pad"] is False


def test_concat_axis_is_nchw_and_inputs_keep_their_order():
    def build(images):
        a = slim.conv2d(images, 2, 1, activation_fn=None, scope="a")
        b = slim.conv2d(images, 5, 1, activation_fn=None, scope="b")
        return tf.concat([b, a], axis=3, name="Mixed/concat")

    concat = read(build)["Mixed/concat"]
    assert concat.kind == Kind.CONCAT and concat.attrs["axis"] == 1
    assert concat.inputs == ("b", "a") and concat.shape == (1, 7, 8, 8)


def test_flatten_then_dense():
    def build(images):
        flat = slim.flatten(images, scope="Flatten")
        return slim.fully_connected(flat, 10, activation_fn=None, scope="Logits")

    records = read(build, size=(2, 2))
    flatten = records["Flatten/flatten"]  # slim.flatten's op sits in tf.layers' own scope inside slim's
    assert flatten.kind == Kind.FLATTEN and flatten.shape == (1, 12)
    assert flatten.attrs["source_layout"] == "NHWC" and flatten.attrs["spatial"] is True
    logits = records["Logits"]
    assert logits.kind == Kind.FC and logits.part_kinds() == (Kind.FC, Kind.BIAS)
    assert logits.attrs["weight_shape"] == (12, 10) and logits.attrs["transpose_b"] is False
    assert logits.shape == (1, 10)


def test_global_mean_residual_add_and_scale():
    def build(images):
        branch = slim.conv2d(images, 3, 1, activation_fn=None, scope="Branch")
        added = tf.add(images, 0.2 * branch, name="Block/add")
        return tf.reduce_mean(added, [1, 2], keepdims=True, name="Pool/Mean")

    records = read(build)
    scale = next(record for record in records.values() if record.kind == Kind.SCALE)
    assert scale.attrs["scale"] == pytest.approx(0.2)
    assert records["Block/add"].kind == Kind.ADD
    assert records["Pool/Mean"].kind == Kind.MEAN and records["Pool/Mean"].attrs["axis"] == (2, 3)


def test_dropout_scope_is_one_record_with_its_keep_prob():
    def build(images):
        flat = slim.flatten(images, scope="Flatten")
        return slim.dropout(flat, keep_prob=0.8, is_training=True, scope="Dropout")

    records = read(build, size=(2, 2))
    dropout = records["Dropout"]
    assert dropout.kind == Kind.DROPOUT and dropout.attrs["keep_prob"] == pytest.approx(0.8)
    assert dropout.attrs["visible"] is True and dropout.inputs == ("Flatten/flatten",)
    assert not any(name.startswith("Dropout/") for name in records)


def test_dilated_conv_through_space_to_batch_is_one_record():
    records = read(lambda images: slim.conv2d(images, 2, 3, rate=2, activation_fn=None, biases_initializer=None,
                                              scope="Atrous"), size=(8, 8))
    conv = records["Atrous"]
    assert conv.kind == Kind.CONV and conv.dilation == (2, 2)
    assert conv.pads == (2, 2, 2, 2) and conv.shape == (1, 2, 8, 8) and conv.attrs["padding"] == "SAME"


def test_read_graph_names_the_end_point_records():
    def builder(images, num_classes, is_training=False):
        end_points = {}
        net = slim.conv2d(images, 4, 3, stride=2, scope="Net/Conv2d_1a_3x3")
        end_points["Conv2d_1a_3x3"] = net
        net = tf.reduce_mean(net, [1, 2], name="Net/Logits/Mean")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Net/Logits")
        end_points["Logits"] = logits
        end_points["Predictions"] = tf.nn.softmax(logits, name="Net/Predictions")
        return logits, end_points

    graph = tf_reader.read_graph(builder, (9, 9), 5)
    assert graph.is_training is False
    assert graph.end_point_records == {"Conv2d_1a_3x3": "Net/Conv2d_1a_3x3", "Logits": "Net/Logits",
                                       "Predictions": "Net/Predictions"}
    softmax = next(record for record in graph.records if record.name == "Net/Predictions")
    assert softmax.kind == Kind.SOFTMAX and softmax.attrs["axis"] == 1
    assert graph.tensors["Net/Logits"] == "Net/Logits/BiasAdd:0"


def test_builder_errors_name_the_contract():
    with pytest.raises(tf_reader.BuilderError, match="must return \\(logits, end_points\\)"):
        tf_reader.read_graph(lambda images, num_classes: images, (4, 4), 2)
