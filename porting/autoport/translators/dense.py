"""Dense layers: MatMul (FullyConnected) and BiasAdd (folded into the layer before it)."""
from __future__ import annotations

from porting import compat
from porting.autoport.registry import NotTranslatable, translates

mx = compat.import_mx()


@translates("MatMul")
def matmul(ctx, op):
    """`FullyConnected`, weight (in,out)→(out,in) (a spatial flatten before it is already in TF's order)."""
    if op.get_attr("transpose_a"):
        raise NotTranslatable("transpose_a=True")
    if ctx.is_data(op.inputs[1]):
        raise NotTranslatable("both operands are activations (a batched product, not a dense layer)")
    if len(ctx.shape(op.inputs[0])) != 2:
        raise NotTranslatable(f"input of rank {len(ctx.shape(op.inputs[0]))}; MatMul takes rank 2")
    weight_shape = ctx.shape(op.inputs[1])
    transpose_b = bool(op.get_attr("transpose_b"))
    num_hidden = weight_shape[0] if transpose_b else weight_shape[1]
    name = ctx.name(op)
    ctx.param(f"{name}_weight", op.inputs[1], "identity" if transpose_b else "dense_to_mx")
    data = ctx.input(op)

    def build(bias_tensor=None):
        if bias_tensor is not None:
            ctx.param(f"{name}_bias", bias_tensor)
        return mx.sym.FullyConnected(data, num_hidden=num_hidden, no_bias=bias_tensor is None, name=name)

    ctx.fusable[op.outputs[0].name] = build
    return build()


@translates("BiasAdd")
def bias_add(ctx, op):
    """The bias of the `Convolution`/`FullyConnected` it follows; else `broadcast_add` of a (1,C,1,1) bias."""
    if op.get_attr("data_format").decode() != "NHWC":
        raise NotTranslatable("data_format NCHW")
    source = op.inputs[0]
    build = ctx.fusable.get(source.name)
    if build is not None and len(ctx.consumers(source)) == 1 and not ctx.is_data(op.inputs[1]):
        return build(op.inputs[1])
    rank = len(ctx.shape(source))
    name = ctx.name(op)
    bias = ctx.variable(f"{name}_bias", op.inputs[1])
    if rank == 4:
        bias = mx.sym.reshape(bias, shape=(1, -1, 1, 1), name=f"{name}/bias_nchw")
    return mx.sym.broadcast_add(ctx.input(op), bias, name=name)
