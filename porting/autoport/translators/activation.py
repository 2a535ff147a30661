"""Activations and softmax."""
from __future__ import annotations

from porting import compat
from porting.autoport.registry import translates

mx = compat.import_mx()

_ACTIVATION = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softrelu",
               "Softsign": "softsign"}


@translates("Relu", "Sigmoid", "Tanh", "Softplus", "Softsign")
def activation(ctx, op):
    """`Activation` (relu, sigmoid, tanh, softrelu, softsign)."""
    return mx.sym.Activation(ctx.input(op), act_type=_ACTIVATION[op.type], name=ctx.name(op))


@translates("Relu6")
def relu6(ctx, op):
    """`clip(0, 6)` (MXNet's Activation has no relu6)."""
    return mx.sym.clip(ctx.input(op), a_min=0.0, a_max=6.0, name=ctx.name(op))


@translates("Elu", "Selu")
def elu(ctx, op):
    """`LeakyReLU(act_type='elu', slope=1)` / `LeakyReLU(act_type='selu')`."""
    if op.type == "Elu":
        return mx.sym.LeakyReLU(ctx.input(op), act_type="elu", slope=1.0, name=ctx.name(op))
    return mx.sym.LeakyReLU(ctx.input(op), act_type="selu", name=ctx.name(op))


@translates("LeakyRelu")
def leaky_relu(ctx, op):
    """`LeakyReLU(slope=alpha)` with TF's alpha (MXNet's default slope differs: PITFALLS #18)."""
    return mx.sym.LeakyReLU(ctx.input(op), act_type="leaky", slope=float(op.get_attr("alpha")),
                            name=ctx.name(op))


@translates("Softmax", "LogSoftmax")
def softmax(ctx, op):
    """`softmax` / `log_softmax` over TF's last axis (axis 1 of a 4-D NCHW tensor)."""
    rank = len(ctx.shape(op.inputs[0]))
    axis = 1 if rank == 4 else -1
    function = mx.sym.softmax if op.type == "Softmax" else mx.sym.log_softmax
    return function(ctx.input(op), axis=axis, name=ctx.name(op))
