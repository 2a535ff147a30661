"""Layout transforms on tiny hand-computed arrays, their inverses, and the PITFALLS traps they avoid."""
from __future__ import annotations

import numpy as np
import pytest

from porting.core import layouts


def test_hwio_to_oihw_by_hand():
    # (kh=1, kw=2, in=2, out=3): w[h, w, i, o] = 100*o + 10*i + w
    weight = np.zeros((1, 2, 2, 3), dtype=np.float32)
    for w in range(2):
        for i in range(2):
            for o in range(3):
                weight[0, w, i, o] = 100 * o + 10 * i + w
    mx = layouts.hwio_to_oihw(weight)
    assert mx.shape == (3, 2, 1, 2)
    assert mx[2, 1, 0, 1] == 211 and mx[0, 1, 0, 0] == 10 and mx[1, 0, 0, 1] == 101
    assert mx.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(layouts.oihw_to_hwio(mx), weight)


def test_depthwise_by_hand():
    # (kh=1, kw=1, C=2, M=2): TF output channel c*M + m reads input c with w[0,0,c,m]
    weight = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32)
    mx = layouts.depthwise_to_mx(weight)
    assert mx.shape == (4, 1, 1, 1)
    # MXNet group c owns output channels c*M .. c*M+M-1: the same order as TF's outputs
    assert mx[:, 0, 0, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    naive = weight.transpose(3, 2, 0, 1).reshape(4, 1, 1, 1)  # PITFALLS.md #8a: same shape, wrong order
    assert naive[:, 0, 0, 0].tolist() == [1.0, 3.0, 2.0, 4.0]
    np.testing.assert_array_equal(layouts.depthwise_from_mx(mx, multiplier=2), weight)


def test_depthwise_matches_grouped_convolution_semantics():
    """Run the converted weight through a numpy grouped conv and compare with TF's depthwise definition."""
    rng = np.random.default_rng(0)
    channels, multiplier, k = 3, 2, 2
    weight = rng.standard_normal((k, k, channels, multiplier)).astype(np.float32)
    x = rng.standard_normal((channels, 4, 4)).astype(np.float32)  # CHW
    out_tf = np.zeros((channels * multiplier, 3, 3))
    for c in range(channels):
        for m in range(multiplier):
            for i in range(3):
                for j in range(3):
                    out_tf[c * multiplier + m, i, j] = np.sum(x[c, i:i + k, j:j + k] * weight[:, :, c, m])
    mx = layouts.depthwise_to_mx(weight)
    out_mx = np.zeros_like(out_tf)
    for o in range(channels * multiplier):
        group = o // multiplier  # num_group=C, one input channel per group
        for i in range(3):
            for j in range(3):
                out_mx[o, i, j] = np.sum(x[group, i:i + k, j:j + k] * mx[o, 0])
    np.testing.assert_allclose(out_mx, out_tf, rtol=1e-6, atol=1e-6)


def test_dense_by_hand():
    weight = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)  # (in=2, out=3)
    mx = layouts.dense_to_mx(weight)
    assert mx.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    np.testing.assert_array_equal(layouts.dense_from_mx(mx), weight)


def test_flatten_dense_reorder_by_hand():
    # A 1x2x2 (H=1, W=2, C=2) map flattened NHWC: rows (h,w,c) = (0,0,0),(0,0,1),(0,1,0),(0,1,1).
    # NCHW flatten order is (c,h,w) = (0,0,0),(0,0,1),(1,0,0),(1,0,1): rows 0, 2, 1, 3.
    weight = np.array([[10.0], [11.0], [12.0], [13.0]], dtype=np.float32)  # (H*W*C=4, out=1)
    mx = layouts.flatten_dense_to_mx(weight, height=1, width=2, channels=2)
    assert mx.tolist() == [[10.0, 12.0, 11.0, 13.0]]
    assert layouts.dense_to_mx(weight).tolist() == [[10.0, 11.0, 12.0, 13.0]]  # w.T: wrong order
    np.testing.assert_array_equal(layouts.flatten_dense_from_mx(mx, 1, 2, 2), weight)


def test_flatten_dense_reorder_is_what_nchw_flatten_needs():
    rng = np.random.default_rng(1)
    height, width, channels, out = 3, 2, 4, 5
    x_nhwc = rng.standard_normal((1, height, width, channels))
    weight = rng.standard_normal((height * width * channels, out))
    y_tf = x_nhwc.reshape(1, -1) @ weight
    x_nchw_flat = x_nhwc.transpose(0, 3, 1, 2).reshape(1, -1)
    y_mx = x_nchw_flat @ layouts.flatten_dense_to_mx(weight, height, width, channels).T
    np.testing.assert_allclose(y_mx, y_tf, rtol=1e-12)
    assert np.abs(x_nchw_flat @ weight - y_tf).max() > 0.1  # plain w.T (PITFALLS.md #7)


def test_flatten_with_one_by_one_spatial_is_plain_transpose():
    weight = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(layouts.flatten_dense_to_mx(weight, 1, 1, 4), weight.T)


@pytest.mark.parametrize("name,shape,kwargs", [
    ("identity", (7,), {}),
    ("hwio_to_oihw", (3, 1, 5, 8), {}),
    ("depthwise_to_mx", (3, 3, 4, 2), {"multiplier": 2}),
    ("dense_to_mx", (6, 9), {}),
    ("flatten_dense_to_mx", (2 * 3 * 4, 5), {"height": 2, "width": 3, "channels": 4}),
])
def test_round_trip_bit_for_bit_and_shape_rule(name, shape, kwargs):
    rng = np.random.default_rng(2)
    value = rng.standard_normal(shape).astype(np.float32)
    mx = layouts.to_mx(name, value, **kwargs)
    assert mx.shape == layouts.shape_to_mx(name, shape, **kwargs)
    back = layouts.from_mx(name, mx, **kwargs)
    assert back.dtype == value.dtype and back.tobytes() == value.tobytes()


def test_activation_layouts():
    x = np.arange(24).reshape(1, 2, 3, 4)
    assert layouts.nhwc_to_nchw(x).shape == (1, 4, 2, 3)
    assert layouts.nhwc_to_nchw(x)[0, 3, 1, 2] == x[0, 1, 2, 3]
    np.testing.assert_array_equal(layouts.nchw_to_nhwc(layouts.nhwc_to_nchw(x)), x)
    assert layouts.nhwc_to_nchw(np.zeros((2, 5))).shape == (2, 5)


def test_errors_name_the_problem():
    with pytest.raises(layouts.LayoutError, match="4-D"):
        layouts.hwio_to_oihw(np.zeros((3, 3)))
    with pytest.raises(layouts.LayoutError, match="2x2x2"):
        layouts.flatten_dense_to_mx(np.zeros((7, 2)), 2, 2, 2)
    with pytest.raises(layouts.LayoutError, match="Available"):
        layouts.to_mx("nchw_magic", np.zeros(3))
    with pytest.raises(layouts.LayoutError, match="multiplier"):
        layouts.depthwise_to_mx(np.zeros((3, 3, 4, 2)), multiplier=3)
