"""Named layout transforms between TF and MXNet tensors, each with its inverse.

Pure numpy, no framework import (see PITFALLS.md rows 7, 8, 8a, 8b). Every
transform is a permutation of the values, so a round trip is exact, bit for bit.

=======================  ====================  ==========================  ========================
transform                TF layout             MXNet layout                inverse
=======================  ====================  ==========================  ========================
``hwio_to_oihw``         conv (kh,kw,in,out)   Convolution (out,in,kh,kw)  ``oihw_to_hwio``
``depthwise_to_mx``      (kh,kw,C,M)           (C*M,1,kh,kw), num_group=C  ``depthwise_from_mx``
``dense_to_mx``          matmul (in,out)       FullyConnected (out,in)     ``dense_from_mx``
``flatten_dense_to_mx``  (H*W*C,out) after an  (out,C*H*W) after an NCHW   ``flatten_dense_from_mx``
                         NHWC flatten          flatten
``conv_to_dense``        conv (kh,kw,C,O)      FullyConnected (O,C*kh*kw)  ``conv_from_dense``
                         over the whole map    after an NCHW flatten
                         (1x1 on a 1x1 map)
``dense_to_conv``        (H*W*C,O) after an    Convolution (O,C,H,W) over  ``conv_from_dense_mx``
                         NHWC flatten          the whole H x W map
``identity``             vectors (bias, BN)    same                        ``identity``
=======================  ====================  ==========================  ========================

Activations: ``nhwc_to_nchw`` / ``nchw_to_nhwc`` for 4-D arrays (other ranks pass), and
``nhwc_flat_to_nchw_flat`` for the output of a spatial flatten.
"""
from __future__ import annotations

import numpy as np


class LayoutError(ValueError):
    """An array whose rank or size does not fit the layout transform asked for."""


def _check_rank(array: np.ndarray, rank: int, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != rank:
        raise LayoutError(f"{what}: expected a {rank}-D array, got shape {array.shape}")
    return array


def identity(array: np.ndarray) -> np.ndarray:
    """Vectors (biases, batch-norm beta/gamma/moving statistics) need no change."""
    return np.asarray(array)


def hwio_to_oihw(weight: np.ndarray) -> np.ndarray:
    """TF conv2d filter (kh, kw, in, out) -> MXNet Convolution weight (out, in, kh, kw)."""
    return np.ascontiguousarray(_check_rank(weight, 4, "hwio_to_oihw").transpose(3, 2, 0, 1))


def oihw_to_hwio(weight: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hwio_to_oihw`."""
    return np.ascontiguousarray(_check_rank(weight, 4, "oihw_to_hwio").transpose(2, 3, 1, 0))


def depthwise_to_mx(weight: np.ndarray, multiplier: int | None = None) -> np.ndarray:
    """TF depthwise filter (kh, kw, C, M) -> MXNet grouped Convolution weight (C*M, 1, kh, kw).

    TF's output channel ``c*M + m`` reads input channel ``c``; MXNet's group ``c``
    owns output channels ``c*M .. c*M+M-1``, so the channel axis leads, then the
    multiplier. (The naive ``transpose(3, 2, 0, 1)`` has the same shape and wrong
    values when M > 1: PITFALLS.md #8a.)
    """
    kh, kw, channels, found = _check_rank(weight, 4, "depthwise_to_mx").shape
    if multiplier is not None and multiplier != found:
        raise LayoutError(f"depthwise_to_mx: filter {weight.shape} has multiplier {found}, expected {multiplier}")
    multiplier = found
    return np.ascontiguousarray(weight.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))


def depthwise_from_mx(weight: np.ndarray, multiplier: int) -> np.ndarray:
    """Inverse of :func:`depthwise_to_mx`; ``multiplier`` is TF's M (MXNet num_filter / num_group)."""
    out, one, kh, kw = _check_rank(weight, 4, "depthwise_from_mx").shape
    if one != 1 or multiplier < 1 or out % multiplier:
        raise LayoutError(f"depthwise_from_mx: weight {weight.shape} is not (C*{multiplier}, 1, kh, kw)")
    return np.ascontiguousarray(weight.reshape(out // multiplier, multiplier, kh, kw).transpose(2, 3, 0, 1))


def dense_to_mx(weight: np.ndarray) -> np.ndarray:
    """TF matmul kernel (in, out) -> MXNet FullyConnected weight (out, in)."""
    return np.ascontiguousarray(_check_rank(weight, 2, "dense_to_mx").T)


def dense_from_mx(weight: np.ndarray) -> np.ndarray:
    """Inverse of :func:`dense_to_mx`."""
    return np.ascontiguousarray(_check_rank(weight, 2, "dense_from_mx").T)


def flatten_dense_to_mx(weight: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """Kernel of a dense layer that reads an NHWC flatten, for MXNet reading an NCHW flatten.

    TF row ``(h*W + w)*C + c`` is MXNet column ``(c*H + h)*W + w``:
    ``(H*W*C, O) -> (H, W, C, O) -> (O, C, H, W) -> (O, C*H*W)``. With H = W = 1
    this is :func:`dense_to_mx` (PITFALLS.md #7).
    """
    weight = _check_rank(weight, 2, "flatten_dense_to_mx")
    if weight.shape[0] != height * width * channels:
        raise LayoutError(f"flatten_dense_to_mx: kernel has {weight.shape[0]} rows, the flattened "
                          f"{height}x{width}x{channels} map has {height * width * channels}")
    out = weight.shape[1]
    return np.ascontiguousarray(weight.reshape(height, width, channels, out).transpose(3, 2, 0, 1)
                                .reshape(out, channels * height * width))


def flatten_dense_from_mx(weight: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """Inverse of :func:`flatten_dense_to_mx`."""
    weight = _check_rank(weight, 2, "flatten_dense_from_mx")
    if weight.shape[1] != height * width * channels:
        raise LayoutError(f"flatten_dense_from_mx: weight has {weight.shape[1]} columns, the flattened "
                          f"{channels}x{height}x{width} map has {height * width * channels}")
    out = weight.shape[0]
    return np.ascontiguousarray(weight.reshape(out, channels, height, width).transpose(2, 3, 1, 0)
                                .reshape(height * width * channels, out))


def conv_to_dense(weight: np.ndarray, height: int | None = None, width: int | None = None,
                  channels: int | None = None) -> np.ndarray:
    """A conv kernel (kh, kw, C, O) that covers its whole input map -> a dense weight (O, C*kh*kw).

    One output position, ``out[o] = sum x[c, h, w] * k[h, w, c, o]``: a dense layer over the map
    flattened in NCHW order, (C, H, W), which is how MXNet's ``Flatten`` (and
    ``FullyConnected(flatten=True)``) reads it. A 1x1 conv on a 1x1 map is the case kh = kw = 1.
    ``height``, ``width``, ``channels``: the kernel's (kh, kw, C) when known, checked.
    """
    weight = _check_rank(weight, 4, "conv_to_dense")
    kh, kw, found, out = weight.shape
    for name, expected, actual in (("height", height, kh), ("width", width, kw), ("channels", channels, found)):
        if expected is not None and expected != actual:
            raise LayoutError(f"conv_to_dense: kernel {weight.shape} has {name} {actual}, expected {expected}")
    result = np.empty((out, found, kh, kw), dtype=weight.dtype)
    for channel in range(found):  # one input channel per copy: ~10x faster than one transpose of VGG's fc6 (400 MB)
        result[:, channel] = weight[:, :, channel, :].transpose(2, 0, 1)
    return result.reshape(out, found * kh * kw)


def conv_from_dense(weight: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """Inverse of :func:`conv_to_dense`: (O, C*kh*kw) -> (kh, kw, C, O), with kh = ``height``, kw = ``width``."""
    weight = _check_rank(weight, 2, "conv_from_dense")
    if weight.shape[1] != height * width * channels:
        raise LayoutError(f"conv_from_dense: weight has {weight.shape[1]} columns, a {height}x{width} kernel over "
                          f"{channels} channels reads {height * width * channels}")
    out = weight.shape[0]
    return np.ascontiguousarray(weight.reshape(out, channels, height, width).transpose(2, 3, 1, 0))


def dense_to_conv(weight: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """A dense kernel (H*W*C, O) reading an NHWC flatten -> the MXNet conv weight (O, C, H, W) over that map.

    TF row ``(h*W + w)*C + c`` holds the weight of input (h, w, c): the kernel's ``[o, c, h, w]``.
    With H = W = 1 (a dense layer on a vector, a 1x1 conv on a 1x1 map) this is ``w.T``.
    """
    weight = _check_rank(weight, 2, "dense_to_conv")
    if weight.shape[0] != height * width * channels:
        raise LayoutError(f"dense_to_conv: kernel has {weight.shape[0]} rows, a {height}x{width}x{channels} map "
                          f"has {height * width * channels}")
    out = weight.shape[1]
    return np.ascontiguousarray(weight.reshape(height, width, channels, out).transpose(3, 2, 0, 1))


def conv_from_dense_mx(weight: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """Inverse of :func:`dense_to_conv`: (O, C, H, W) -> (H*W*C, O)."""
    weight = _check_rank(weight, 4, "conv_from_dense_mx")
    if tuple(weight.shape[1:]) != (channels, height, width):
        raise LayoutError(f"conv_from_dense_mx: weight {weight.shape} is not (O, {channels}, {height}, {width})")
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(height * width * channels, weight.shape[0]))


def nhwc_to_nchw(array: np.ndarray) -> np.ndarray:
    """A TF activation (N, H, W, C) as MXNet lays it out (N, C, H, W); other ranks pass."""
    array = np.asarray(array)
    return array.transpose(0, 3, 1, 2) if array.ndim == 4 else array


def nchw_to_nhwc(array: np.ndarray) -> np.ndarray:
    """Inverse of :func:`nhwc_to_nchw`."""
    array = np.asarray(array)
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


def nhwc_flat_to_nchw_flat(array: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """A TF activation flattened from NHWC, (N, H*W*C), in MXNet's NCHW flatten order (N, C*H*W)."""
    array = _check_rank(array, 2, "nhwc_flat_to_nchw_flat")
    return array.reshape(array.shape[0], height, width, channels).transpose(0, 3, 1, 2).reshape(array.shape[0], -1)


#: name -> (to MXNet, from MXNet); the ones with extra arguments take them as keywords.
TRANSFORMS = {
    "identity": (identity, identity),
    "hwio_to_oihw": (hwio_to_oihw, oihw_to_hwio),
    "depthwise_to_mx": (depthwise_to_mx, depthwise_from_mx),
    "dense_to_mx": (dense_to_mx, dense_from_mx),
    "flatten_dense_to_mx": (flatten_dense_to_mx, flatten_dense_from_mx),
    "conv_to_dense": (conv_to_dense, conv_from_dense),
    "dense_to_conv": (dense_to_conv, conv_from_dense_mx),
}


def _flatten_shape(shape, height, width, channels):
    if len(shape) != 2 or shape[0] != height * width * channels:
        raise LayoutError(f"flatten_dense_to_mx: kernel {tuple(shape)} does not read a flattened "
                          f"{height}x{width}x{channels} map")
    return (shape[1], shape[0])


def _dense_to_conv_shape(shape, height, width, channels):
    if shape[0] != height * width * channels:
        raise LayoutError(f"dense_to_conv: kernel {tuple(shape)} does not read a flattened {height}x{width}x{channels} map")
    return (shape[1], channels, height, width)


def _ranked(rank: int, what: str, rule):
    def shape_of(shape, **kwargs):
        if len(shape) != rank:
            raise LayoutError(f"{what}: expected a {rank}-D array, got shape {tuple(shape)}")
        return tuple(int(v) for v in rule(tuple(shape), **kwargs))
    return shape_of


#: name -> the MXNet shape a TF shape becomes, without touching any values.
SHAPES = {
    "identity": lambda shape: tuple(shape),
    "hwio_to_oihw": _ranked(4, "hwio_to_oihw", lambda s: (s[3], s[2], s[0], s[1])),
    "depthwise_to_mx": _ranked(4, "depthwise_to_mx", lambda s, multiplier=None: (s[2] * s[3], 1, s[0], s[1])),
    "dense_to_mx": _ranked(2, "dense_to_mx", lambda s: (s[1], s[0])),
    "flatten_dense_to_mx": _flatten_shape,
    "conv_to_dense": _ranked(4, "conv_to_dense", lambda s, **_geometry: (s[3], s[0] * s[1] * s[2])),
    "dense_to_conv": _ranked(2, "dense_to_conv", _dense_to_conv_shape),
}


def shape_to_mx(name: str, shape, **kwargs) -> tuple[int, ...]:
    """The shape the named transform gives a TF array of ``shape`` (cheap: no array is built)."""
    try:
        rule = SHAPES[name]
    except KeyError:
        raise LayoutError(f"unknown layout transform {name!r}. Available: {', '.join(TRANSFORMS)}") from None
    return tuple(rule(tuple(shape), **kwargs))


def to_mx(name: str, array: np.ndarray, **kwargs) -> np.ndarray:
    """Apply the named transform (TF -> MXNet)."""
    try:
        forward, _ = TRANSFORMS[name]
    except KeyError:
        raise LayoutError(f"unknown layout transform {name!r}. Available: {', '.join(TRANSFORMS)}") from None
    return forward(array, **kwargs)


def from_mx(name: str, array: np.ndarray, **kwargs) -> np.ndarray:
    """Apply the inverse of the named transform (MXNet -> TF)."""
    try:
        _, inverse = TRANSFORMS[name]
    except KeyError:
        raise LayoutError(f"unknown layout transform {name!r}. Available: {', '.join(TRANSFORMS)}") from None
    return inverse(array, **kwargs)
