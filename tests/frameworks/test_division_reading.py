"""A quotient by a constant reads as a scale by its inverse on both sides; a constant over a tensor does not."""
from __future__ import annotations

import numpy as np
import pytest

from porting import compat
from porting.core.records import Kind
from porting.frameworks import mx_files, mx_reader, tf_reader

tf = compat.import_tf()
mx = compat.import_mx()


def _tf_builder(numerator_is_data: bool):
    def build(images, num_classes):
        net = tf.compat.v1.layers.conv2d(images, num_classes, 3, name="conv")
        net = tf.math.truediv(net, 4.0, name="div") if numerator_is_data else tf.math.truediv(4.0, net, name="div")
        logits = tf.reduce_mean(net, axis=[1, 2], name="logits")
        return logits, {}
    return build


@pytest.mark.parametrize("numerator_is_data, kind, scale", [(True, Kind.SCALE, 0.25), (False, Kind.OTHER, None)])
def test_tf_quotient_by_a_constant_is_a_scale_by_its_inverse(numerator_is_data, kind, scale):
    graph = tf_reader.read_graph(_tf_builder(numerator_is_data), (8, 8), 3)
    record = next(r for r in graph.records if r.name == "div")
    assert record.kind == kind and record.attrs.get("scale") == scale


def test_mx_stored_value_over_a_tensor_is_no_scale(tmp_path):
    data = mx.sym.Variable("data")
    conv = mx.sym.Convolution(data, num_filter=3, kernel=(3, 3), name="conv")
    symbol = mx.sym.broadcast_div(mx.sym.Variable("numerator", shape=(1,)), conv, name="div")
    params = {"conv_weight": np.ones((3, 3, 3, 3), np.float32), "conv_bias": np.ones(3, np.float32),
              "numerator": np.array([2.0], np.float32)}
    symbol_path, _ = mx_files.save_checkpoint(tmp_path / "rdiv", symbol, params, {})
    record = next(r for r in mx_reader.read_symbol(str(symbol_path), (8, 8), 3, 1).records if r.name == "div")
    assert record.kind == Kind.OTHER and "scale" not in record.attrs
