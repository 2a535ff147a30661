"""Input, identities and dropout, explicit padding, reshape / flatten / squeeze.

Layout: a 4-D TF tensor is NHWC, its MXNet symbol NCHW. Leaving rank 4 (flatten,
squeeze, reshape) the MXNet tensor is first put in TF's order, unless the moved
axes have size 1 (then both orders are the same bytes). So a dense layer after a
spatial flatten reads TF's (H, W, C) order and takes TF's weight as is, and the
verifier sees the ``transpose(0,2,3,1)`` + flatten as one NHWC flatten (PITFALLS #7).
"""
from __future__ import annotations

from porting import compat
from porting.frameworks import tf_graph_facts
from porting.autoport.registry import NotTranslatable, translates
from porting.core.graph_walk import collapse_scope

mx = compat.import_mx()


@translates("Placeholder")
def placeholder(ctx, op):
    """The input: MXNet variable `data` (NCHW)."""
    if op is not ctx.images.op:
        raise NotTranslatable("a second input placeholder on the data path")
    ctx.layer_names[op.name] = "data"
    return mx.sym.Variable("data")


_IDENTITIES = ("Identity", "Snapshot", "EnsureShape", "CheckNumerics")


@translates(*_IDENTITIES)
def identity(ctx, op):
    """No MXNet op; an `Identity` in a slim dropout scope (inference) becomes `Dropout` with TF's rate."""
    scope = tf_graph_facts.dropout_scope(op)
    if op.type == "Identity" and scope is not None:
        scope = collapse_scope(scope)
        keep = ctx.hints.get("dropout", {}).get(scope)
        if keep is None:
            keep = 1.0
            ctx.notes.append(f"{scope}: dropout rate unknown in an inference graph (no training graph "
                             "was read); MXNet Dropout p=0")
        return mx.sym.Dropout(ctx.input(op), p=round(1.0 - keep, 10), name=ctx.name(op, scope))
    return ctx.input(op)


@translates("StopGradient", "PreventGradient")
def stop_gradient(ctx, op):
    """`BlockGrad` (the identity at inference)."""
    return mx.sym.BlockGrad(ctx.input(op), name=ctx.name(op))


@translates("Pad", "PadV2", "MirrorPad")
def pad(ctx, op):
    """`pad` on the spatial axes: constant (value from PadV2) or reflect; folded into a following VALID conv."""
    paddings = ctx.const(op.inputs[1])
    if paddings is None:
        raise NotTranslatable("the paddings are not constant")
    if len(ctx.shape(op.inputs[0])) != 4 or paddings.shape != (4, 2):
        raise NotTranslatable("MXNet pads 4-D tensors only")
    if paddings[0].any() or paddings[3].any():
        raise NotTranslatable(f"paddings {paddings.tolist()} pad the batch or channel axis; "
                              "MXNet's pad works on the spatial axes only")
    width = (0, 0, 0, 0, int(paddings[1][0]), int(paddings[1][1]), int(paddings[2][0]), int(paddings[2][1]))
    if op.type == "MirrorPad":
        mode = op.get_attr("mode").decode()
        if mode != "REFLECT":
            raise NotTranslatable(f"MirrorPad mode {mode}: MXNet has reflect, edge and constant only")
        return mx.sym.pad(ctx.input(op), mode="reflect", pad_width=width, name=ctx.name(op))
    value = 0.0
    if op.type == "PadV2":
        value = ctx.const(op.inputs[2])
        if value is None:
            raise NotTranslatable("the pad value is not constant")
    return mx.sym.pad(ctx.input(op), mode="constant", pad_width=width, constant_value=float(value),
                      name=ctx.name(op))


def _needs_transpose(shape4) -> bool:
    """NCHW and NHWC are different bytes unless C == 1 or H*W == 1."""
    _, height, width, channels = shape4
    return channels > 1 and height * width > 1


def _reshape(ctx, op, out_shape, name: str):
    in_shape = ctx.shape(op.inputs[0])
    data = ctx.input(op)
    if len(in_shape) == 4 and _needs_transpose(in_shape):
        data = mx.sym.transpose(data, axes=(0, 2, 3, 1), name=f"{name}/to_nhwc")
    target = list(out_shape)
    if target and in_shape and target[0] == in_shape[0]:
        target[0] = 0  # keep the batch size free, as in TF (MXNet: 0 copies the input's dim)
    if len(out_shape) == 4:
        if _needs_transpose(out_shape):
            data = mx.sym.reshape(data, shape=tuple(target), name=f"{name}/nhwc")
            return mx.sym.transpose(data, axes=(0, 3, 1, 2), name=name)
        target = [target[0], target[3], target[1], target[2]]  # same bytes, NCHW shape
    return mx.sym.reshape(data, shape=tuple(target), name=name)


@translates("Reshape")
def reshape(ctx, op):
    """`reshape` in TF's axis order (a transpose around it when an NHWC order matters)."""
    return _reshape(ctx, op, ctx.shape(op.outputs[0]), ctx.name(op))


@translates("Squeeze")
def squeeze(ctx, op):
    """`reshape` to TF's squeezed shape (slim's spatial squeeze of (N,1,1,C) logits is a flatten)."""
    return _reshape(ctx, op, ctx.shape(op.outputs[0]), ctx.name(op))
