"""Input, identities and dropout, explicit padding, reshape / flatten / squeeze.

Layout: a 4-D TF tensor is NHWC, its MXNet symbol NCHW. Leaving rank 4 (flatten,
squeeze, reshape) the MXNet tensor is first put in TF's order, unless the moved
axes have size 1 (then both orders are the same bytes). One exception keeps the
symbol lean and exact: a spatial flatten read only by dense layers stays an NCHW
``Flatten`` and the dense weights are reordered instead (PITFALLS #7).
"""
from __future__ import annotations

from porting import compat, tf_side
from porting.autoport.registry import NotTranslatable, translates
from porting.graph_walk import collapse_scope

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
    if op.inputs[0].name in ctx.nchw_flatten:  # still MXNet's NCHW flatten order: tell the dense layer
        ctx.nchw_flatten[op.outputs[0].name] = ctx.nchw_flatten[op.inputs[0].name]
    scope = tf_side._dropout_scope(op)
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


def _flatten_for_dense(ctx, op) -> bool:
    """A spatial NHWC flatten to (N, H*W*C) read only by MatMul weights: reorder the weights instead."""
    in_shape = ctx.shape(op.inputs[0])
    out_shape = ctx.shape(op.outputs[0])
    if len(in_shape) != 4 or not _needs_transpose(in_shape) or len(out_shape) != 2:
        return False
    if out_shape != (in_shape[0], in_shape[1] * in_shape[2] * in_shape[3]):
        return False
    return _only_dense_readers(ctx, op.outputs[0])


def _only_dense_readers(ctx, tensor) -> bool:
    """Every reader is a dense layer's data input, directly or through identities (inference dropout)."""
    readers = ctx.consumers(tensor)
    if not readers:
        return False
    for reader in readers:
        if reader.type in _IDENTITIES:
            if not _only_dense_readers(ctx, reader.outputs[0]):
                return False
        elif not (reader.type == "MatMul" and reader.inputs[0] is tensor and not ctx.is_data(reader.inputs[1])):
            return False
    return True


@translates("Reshape")
def reshape(ctx, op):
    """`reshape` in TF's axis order (a transpose around it when an NHWC order matters); `Flatten` before a dense layer."""
    out_shape = ctx.shape(op.outputs[0])
    name = ctx.name(op)
    if _flatten_for_dense(ctx, op):
        _, height, width, channels = ctx.shape(op.inputs[0])
        ctx.nchw_flatten[op.outputs[0].name] = (height, width, channels)
        return mx.sym.flatten(ctx.input(op), name=name)
    return _reshape(ctx, op, out_shape, name)


@translates("Squeeze")
def squeeze(ctx, op):
    """`reshape` to TF's squeezed shape (slim's spatial squeeze of (N,1,1,C) logits is a flatten)."""
    return _reshape(ctx, op, ctx.shape(op.outputs[0]), ctx.name(op))
