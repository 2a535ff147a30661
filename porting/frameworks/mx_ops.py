"""Build MXNet layers from a padding plan, so a port's pads are derived, never typed.

``porting.padding.plan`` decides how TF's SAME/VALID becomes exact MXNet
arguments; these helpers turn that plan into symbols. Explicit pad ops are named
``<name>/pad`` so the verifier can attribute them to the layer they serve.
"""
from __future__ import annotations

from porting import compat
from porting.padding import METHOD_MASKED_AVG, MxPlan, plan

mx = compat.import_mx()


def _pre_pad(data, layer_plan: MxPlan, name: str, value: float | None = None):
    if layer_plan.pre_pad is None:
        return data
    return mx.sym.pad(data, mode="constant", pad_width=layer_plan.pad_width(),
                      constant_value=layer_plan.pad_value if value is None else value,
                      name=f"{name}/pad")


def conv2d(data, num_filter: int, layer_plan: MxPlan, name: str, no_bias: bool = True,
           num_group: int = 1):
    """Convolution (plus an explicit zero pad op when TF's pads are asymmetric)."""
    if layer_plan.op != "conv":
        raise ValueError(f"layer {name}: conv2d needs a 'conv' plan, got {layer_plan.op!r}")
    return mx.sym.Convolution(_pre_pad(data, layer_plan, name), num_filter=num_filter,
                              num_group=num_group, no_bias=no_bias, name=name,
                              **layer_plan.mx_kwargs())


def pool2d(data, layer_plan: MxPlan, name: str):
    """Max or average pooling that reproduces TF's SAME/VALID pooling exactly."""
    if layer_plan.op not in ("max", "avg"):
        raise ValueError(f"layer {name}: pool2d needs a 'max' or 'avg' plan, got {layer_plan.op!r}")
    kwargs = layer_plan.mx_kwargs()
    if layer_plan.method != METHOD_MASKED_AVG:
        return mx.sym.Pooling(_pre_pad(data, layer_plan, name), name=name, **kwargs)
    # Zeros from the pad op would be averaged in; divide by the pooled mask of ones,
    # which is the fraction of real cells under each window.
    summed = mx.sym.Pooling(_pre_pad(data, layer_plan, name), name=f"{name}/sum", **kwargs)
    ones = _pre_pad(mx.sym.ones_like(data, name=f"{name}/ones"), layer_plan, f"{name}/mask", 0.0)
    counted = mx.sym.Pooling(ones, name=f"{name}/count", **kwargs)
    return mx.sym.broadcast_div(summed, counted, name=name)


def tf_conv2d(data, num_filter: int, size, kernel, stride=1, padding: str = "SAME", dilation=1,
              name: str = "conv", no_bias: bool = True):
    """Convolution specified the TF way: the plan is derived from the input size."""
    return conv2d(data, num_filter, plan("conv", size, kernel, stride, padding, dilation), name,
                  no_bias=no_bias)


def tf_pool2d(data, op: str, size, kernel, stride=1, padding: str = "SAME", name: str = "pool"):
    """Pooling specified the TF way ('max' or 'avg'): the plan is derived from the input size."""
    return pool2d(data, plan(op, size, kernel, stride, padding), name)
