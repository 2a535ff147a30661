"""Lint checks of convolution and dense layers: bias, activation, dilation."""
from __future__ import annotations

from porting.core.records import Kind, LayerRecord
from porting.frameworks import mx_attrs
from porting.verifier.lint.base import (Context, Finding, Severity, make_finding, num, pair_check, part_attrs,
                                        variable_frozen, variable_zero_init)


def _bias_side(record: LayerRecord) -> bool:
    return bool(record.attrs.get("has_bias")) or record.part(Kind.BIAS) is not None


@pair_check("conv_bias", "a conv/FC bias on one side only (slim convs with batch norm have none; an MXNet "
                         "bias followed by a batch norm is harmless: info)")
def check_conv_bias(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind not in (Kind.CONV, Kind.DWCONV, Kind.FC) or mx.kind not in (Kind.CONV, Kind.DWCONV, Kind.FC):
        return []
    tf_bias, mx_bias = _bias_side(tf), _bias_side(mx)
    if tf_bias == mx_bias:
        return []
    op = "FullyConnected" if mx.kind == Kind.FC else "Convolution"
    if tf_bias:
        return [make_finding("conv_bias", Severity.ERROR, tf, mx, "bias", "no_bias=True",
                             f"TF adds a bias after {tf.name}; the MXNet {op} has none, so the TF bias cannot be "
                             "loaded and every output is off by it.", f"mx.sym.{op}(..., no_bias=False)")]
    bias = context.mx_input_entry(mx.name, 2)
    name = bias["name"] if bias else f"{mx.name}_bias"
    if variable_frozen(bias):
        zero = variable_zero_init(bias)
        return [make_finding("conv_bias", Severity.INFO, tf, mx, "no bias",
                             "bias, lr_mult=0" + (", zero init" if zero else ""),
                             f"TF has no bias here (slim.conv2d with a normalizer_fn creates none); the MXNet {name} "
                             "is declared frozen" + (" and zero-initialised, so it adds nothing." if zero else
                                                     ": it must be loaded as zeros (the TF checkpoint has no value for "
                                                     "it)."),
                             "no change needed" if zero else f"load {name} as zeros, or use no_bias=True")]
    if mx.part(Kind.BN) is not None:
        # BN(x + b) = BN(x) whenever the mean it subtracts includes b: always in training (batch mean),
        # and at inference with statistics trained with the bias or converted from TF with b = 0.
        return [make_finding("conv_bias", Severity.INFO, tf, mx, "no bias", "bias (no_bias=False), then batch norm",
                             f"TF has no bias here (slim.conv2d with a normalizer_fn creates none); the MXNet {op} has "
                             f"{name}, but a batch norm follows and subtracts the mean, so the bias changes nothing: "
                             "in training the batch mean includes it, at inference the converted weights set it to 0 "
                             "(the TF checkpoint has none) and the moving mean is TF's. It only costs parameters; "
                             "with weights present, --numeric settles it.",
                             f"no change needed; mx.sym.{op}(..., no_bias=True) drops the unused parameter")]
    return [make_finding("conv_bias", Severity.ERROR, tf, mx, "no bias", "bias (no_bias=False)",
                         f"TF has no bias here (slim.conv2d with a normalizer_fn creates none); MXNet's {op} creates "
                         f"{name} by default. It has no TF source: loading fails with allow_missing=False, or it keeps "
                         "a random/trained value; nothing declares it frozen at zero.",
                         f"mx.sym.{op}(..., no_bias=True), or declare it: mx.sym.Variable('{name}', lr_mult=0, "
                         "init=mx.init.Zero()) passed as bias=")]


def _act_of(record: LayerRecord) -> tuple[str | None, float | None]:
    attrs = part_attrs(record, Kind.ACT)
    if attrs is None:
        return None, None
    return attrs.get("act"), mx_attrs.as_float(attrs.get("alpha"))


_ACT_FIX = {"relu": "mx.sym.Activation(..., act_type='relu')", "relu6": "mx.sym.clip(..., a_min=0, a_max=6)",
            "sigmoid": "mx.sym.Activation(..., act_type='sigmoid')", "tanh": "mx.sym.Activation(..., act_type='tanh')",
            "elu": "mx.sym.LeakyReLU(..., act_type='elu', slope=1.0)",
            "softrelu": "mx.sym.Activation(..., act_type='softrelu')",
            "softsign": "mx.sym.Activation(..., act_type='softsign')", "selu": "mx.sym.LeakyReLU(..., act_type='selu')"}


@pair_check("activation", "activation present/absent/different (slim's implicit ReLU, relu6 vs clip, leaky slope)")
def check_activation(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if not ({tf.kind, mx.kind} & {Kind.CONV, Kind.DWCONV, Kind.FC, Kind.ACT}):
        return []
    (tf_act, tf_alpha), (mx_act, mx_alpha) = _act_of(tf), _act_of(mx)
    if tf_act == mx_act and (tf_act != "leaky_relu" or context.close(tf_alpha, mx_alpha)):
        return []
    slim_layer = tf.kind in (Kind.CONV, Kind.DWCONV, Kind.FC)
    if tf_act and not mx_act:
        message = (f"TF applies {tf_act} after {tf.name}"
                   + (" (slim.conv2d and slim.fully_connected default to activation_fn=tf.nn.relu)"
                      if slim_layer else "")
                   + f"; the MXNet {mx.op} is linear, so every negative value differs.")
        fix = f"add {_ACT_FIX.get(tf_act, tf_act)} after {mx.name}"
    elif mx_act and not tf_act:
        message = (f"the MXNet port applies {mx_act} after {mx.name}; TF's layer is linear "
                   "(activation_fn=None, as in slim's residual up-projections and logits).")
        fix = f"remove the activation after {mx.name}"
    elif tf_act == "leaky_relu" and mx_act == "leaky_relu":
        message = (f"leaky ReLU slopes differ: TF alpha {num(tf_alpha)}, MXNet slope {num(mx_alpha)} "
                   "(defaults: tf.nn 0.2, Keras 0.3, MXNet 0.25).")
        fix = f"mx.sym.LeakyReLU(..., act_type='leaky', slope={num(tf_alpha)})"
    else:
        message = f"TF applies {tf_act}, MXNet {mx_act}" + (
            ": MXNet's Activation has no relu6; use clip(x, 0, 6)." if "relu6" in (tf_act, mx_act) else ".")
        fix = _ACT_FIX.get(tf_act, f"use {tf_act}")
    return [make_finding("activation", Severity.ERROR, tf, mx, tf_act or "none (linear)", mx_act or "none (linear)",
                         message, fix)]


@pair_check("dilation", "convolution dilation (atrous rate)")
def check_dilation(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind not in (Kind.CONV, Kind.DWCONV) or mx.kind not in (Kind.CONV, Kind.DWCONV):
        return []
    a, b = tuple(tf.dilation or (1, 1)), tuple(mx.dilation or (1, 1))
    if a == b:
        return []
    return [make_finding("dilation", Severity.ERROR, tf, mx, f"rate {a}", f"dilate {b}",
                         "the kernel taps are spaced by the dilation; with another one each output reads other input "
                         "cells (and SAME pads change with it).",
                         f"mx.sym.Convolution(..., dilate={a}) with pads recomputed for the dilated span")]
