"""Convolutions: Conv2D, depthwise (and so separable) convolutions, dilated convolutions.

Every SAME/VALID decision goes through ``porting.padding.plan``; ``mx_ops.conv2d``
applies the plan (an explicit zero pad op when TF's pads are asymmetric). A zero
``Pad`` feeding a VALID convolution (slim's ``conv2d_same``) becomes the
convolution's own symmetric pad. ``nn.convolution``'s dilation pattern
SpaceToBatchND → conv → BatchToSpaceND becomes one dilated Convolution.
"""
from __future__ import annotations

from dataclasses import replace

from porting.frameworks import mx_ops
from porting.autoport.registry import NotTranslatable, translates
from porting.padding import METHOD_PAD_OP, METHOD_SYMMETRIC, plan, same_pads


def spatial_pair(values, what: str) -> tuple[int, int]:
    """The (H, W) of an NHWC ``strides``/``ksize``/``dilations`` attribute; batch and channel must be 1."""
    values = [int(v) for v in values]
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise NotTranslatable(f"{what} {values} act on the batch or channel axis; MXNet supports spatial only")
    return values[1], values[2]


def check_nhwc(op) -> None:
    """Raise NotTranslatable unless the op works on NHWC data."""
    data_format = op.get_attr("data_format").decode()
    if data_format != "NHWC":
        raise NotTranslatable(f"data_format {data_format}: only NHWC graphs are supported "
                              "(TF's CPU kernels need NHWC too)")


def explicit_plan(op_kind: str, size, kernel, stride, dilation, pads) -> object:
    """A padding plan for pads TF gives explicitly (EXPLICIT, a Pad op, SpaceToBatchND).

    ``pads`` is ((top, bottom), (left, right)). The plan is the VALID plan of the
    padded input, with the pads moved into MXNet's symmetric ``pad`` when they
    are symmetric and into an explicit pad op otherwise.
    """
    padded = tuple(s + before + after for s, (before, after) in zip(size, pads))
    valid = plan(op_kind, padded, kernel, stride, "VALID", dilation)
    if all(before == after for before, after in pads):
        return replace(valid, size=tuple(size), tf_pads=tuple(pads), padding="EXPLICIT",
                       method=METHOD_SYMMETRIC, pad=tuple(before for before, _ in pads))
    return replace(valid, size=tuple(size), tf_pads=tuple(pads), padding="EXPLICIT",
                   method=METHOD_PAD_OP, pad=(0, 0), pre_pad=tuple(pads), pad_value=0.0)


def _folded_zero_pad(ctx, op):
    """(input tensor, pads) when ``op`` reads a zero spatial Pad that nothing else reads."""
    tensor = op.inputs[0]
    pad_op = tensor.op
    if pad_op.type not in ("Pad", "PadV2") or len(ctx.consumers(tensor)) != 1:
        return None
    paddings = ctx.const(pad_op.inputs[1])
    value = ctx.const(pad_op.inputs[2]) if pad_op.type == "PadV2" else 0.0
    if paddings is None or value is None or float(value) != 0.0 or paddings.shape != (4, 2):
        return None
    if paddings[0].any() or paddings[3].any() or not ctx.is_data(pad_op.inputs[0]):
        return None
    return pad_op.inputs[0], ((int(paddings[1][0]), int(paddings[1][1])),
                              (int(paddings[2][0]), int(paddings[2][1])))


def window_input(ctx, op, kernel, stride, dilation):
    """(input symbol, padding plan, dilation) for a conv op, folding a Pad or a SpaceToBatchND."""
    padding = op.get_attr("padding").decode()
    source = op.inputs[0]
    if source.name in ctx.space_to_batch:
        outer, block, pads = ctx.space_to_batch[source.name]
        if any(s != 1 for s in stride) or any(d != 1 for d in dilation) or padding != "VALID":
            raise NotTranslatable("SpaceToBatchND feeds a strided, dilated or non-VALID convolution; "
                                  "nn.convolution never builds that")
        dilation = block
        size = ctx.spatial(outer)
        out = _batch_to_space_out(ctx, op)
        befores = (int(pads[0][0]), int(pads[1][0]))
        used = []
        for axis in range(2):
            span = (kernel[axis] - 1) * dilation[axis] + 1
            used.append((befores[axis], max(out[axis] - 1 + span - size[axis] - befores[axis], 0)))
        if all(same_pads(size[a], kernel[a], 1, dilation[a]) == used[a] for a in range(2)):
            layer_plan = plan("conv", size, kernel, 1, "SAME", dilation)
        elif not any(sum(pair) for pair in used):
            layer_plan = plan("conv", size, kernel, 1, "VALID", dilation)
        else:
            layer_plan = explicit_plan("conv", size, kernel, (1, 1), dilation, used)
        return ctx.sym[outer.name], layer_plan, dilation
    if padding == "EXPLICIT":
        explicit = [int(v) for v in op.get_attr("explicit_paddings")]
        if any(explicit[:2]) or any(explicit[6:]):
            raise NotTranslatable(f"explicit paddings {explicit} pad the batch or channel axis")
        pads = ((explicit[2], explicit[3]), (explicit[4], explicit[5]))
        return ctx.input(op), explicit_plan("conv", ctx.spatial(source), kernel, stride, dilation, pads), dilation
    folded = _folded_zero_pad(ctx, op) if padding == "VALID" else None
    if folded is not None:
        inner, pads = folded
        if all(before == after for before, after in pads):
            layer_plan = explicit_plan("conv", ctx.spatial(inner), kernel, stride, dilation, pads)
            return ctx.sym[inner.name], layer_plan, dilation
    return ctx.input(op), plan("conv", ctx.spatial(source), kernel, stride, padding, dilation), dilation


def _batch_to_space_out(ctx, op) -> tuple[int, int]:
    readers = ctx.consumers(op.outputs[0])
    if len(readers) != 1 or readers[0].type != "BatchToSpaceND":
        raise NotTranslatable("a convolution reads SpaceToBatchND but no BatchToSpaceND follows it")
    return ctx.spatial(readers[0].outputs[0])


def _convolution(ctx, op, depthwise: bool):
    check_nhwc(op)
    kh, kw, channels, depth = ctx.shape(op.inputs[1])
    stride = spatial_pair(op.get_attr("strides"), "strides")
    dilation = spatial_pair(op.get_attr("dilations"), "dilations")
    data, layer_plan, dilation = window_input(ctx, op, (kh, kw), stride, dilation)
    name = ctx.name(op)
    if depthwise:
        num_filter, groups, transform = channels * depth, channels, "depthwise_to_mx"
    else:
        in_channels = ctx.shape(op.inputs[0])[3]
        if in_channels != channels:
            raise NotTranslatable(f"filter expects {channels} input channels, the input has {in_channels} "
                                  "(grouped Conv2D)")
        num_filter, groups, transform = depth, 1, "hwio_to_oihw"
    ctx.param(f"{name}_weight", op.inputs[1], transform)

    def build(bias_tensor=None):
        if bias_tensor is not None:
            ctx.param(f"{name}_bias", bias_tensor)
        return mx_ops.conv2d(data, num_filter, layer_plan, name, no_bias=bias_tensor is None,
                             num_group=groups)

    ctx.fusable[op.outputs[0].name] = build
    return build()


@translates("Conv2D")
def conv2d(ctx, op):
    """`Convolution` (HWIO→OIHW); SAME/VALID from `porting.padding`, EXPLICIT or a zero `Pad` as pads."""
    return _convolution(ctx, op, depthwise=False)


@translates("DepthwiseConv2dNative")
def depthwise_conv2d(ctx, op):
    """`Convolution` with `num_group`=C, weight (kh,kw,C,M)→(C·M,1,kh,kw); separable = this + 1x1 Conv2D."""
    return _convolution(ctx, op, depthwise=True)


@translates("SpaceToBatchND")
def space_to_batch(ctx, op):
    """Folded with the following conv and `BatchToSpaceND` into one dilated `Convolution`."""
    block = ctx.const(op.inputs[1])
    pads = ctx.const(op.inputs[2])
    if block is None or pads is None or block.shape != (2,) or pads.shape != (2, 2):
        raise NotTranslatable("block shape and paddings must be constant and 2-D")
    if not all(reader.type in ("Conv2D", "DepthwiseConv2dNative") for reader in ctx.consumers(op.outputs[0])):
        raise NotTranslatable("only a convolution may read SpaceToBatchND (nn.convolution's dilation)")
    ctx.space_to_batch[op.outputs[0].name] = (op.inputs[0], tuple(int(b) for b in block), pads.tolist())
    ctx.sym[op.outputs[0].name] = ctx.sym[op.inputs[0].name]  # never read: see Context.input
    return None


@translates("BatchToSpaceND")
def batch_to_space(ctx, op):
    """End of a dilated convolution: the `Convolution` already has the final size."""
    source = op.inputs[0]
    if source.op.type not in ("Conv2D", "DepthwiseConv2dNative") or \
            source.op.inputs[0].name not in ctx.space_to_batch:
        raise NotTranslatable("BatchToSpaceND is only supported right after SpaceToBatchND → convolution")
    if source.name in ctx.fusable:
        ctx.fusable[op.outputs[0].name] = ctx.fusable[source.name]
    return ctx.sym[source.name]
