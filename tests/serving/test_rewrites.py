"""porting.serving.rewrites: inference-only rewrites compute what the verified symbol computes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from porting.serving import rewrites


def _residual_symbol(mx, extra_reader=False, no_bias=False):
    data = mx.sym.Variable("data")
    up = mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), no_bias=no_bias, name="up")
    scaled = mx.sym._internal._mul_scalar(up, scalar=0.17, name="mul")
    out = mx.sym.Activation(mx.sym.elemwise_add(data, scaled, name="add"), act_type="relu", name="relu")
    return mx.sym.Group([out, up]) if extra_reader else out


def _outputs(mx, sym, args, data):
    executor = sym.bind(mx.cpu(), {**args, "data": data}, grad_req="null")
    return [out.asnumpy() for out in executor.forward(is_train=False)]


def test_fold_moves_the_scale_into_weights_and_bias():
    from porting import compat

    mx = compat.import_mx()
    sym = _residual_symbol(mx)
    rng = np.random.default_rng(0)
    args = {"up_weight": mx.nd.array(rng.standard_normal((4, 4, 1, 1))), "up_bias": mx.nd.array(rng.standard_normal(4))}
    data = mx.nd.array(rng.standard_normal((2, 4, 5, 5)))
    folded_sym, folded_args, folded = rewrites.fold_residual_scales(sym, args)
    assert folded == ["up"]
    ops = [node["op"] for node in json.loads(folded_sym.tojson())["nodes"]]
    assert "_mul_scalar" not in ops and ops.count("elemwise_add") == 1
    assert folded_sym.list_arguments() == sym.list_arguments()
    np.testing.assert_allclose(folded_args["up_weight"].asnumpy(), 0.17 * args["up_weight"].asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(folded_args["up_bias"].asnumpy(), 0.17 * args["up_bias"].asnumpy(), rtol=1e-6)
    assert args["up_weight"] is not folded_args["up_weight"]  # the caller's dict is untouched
    (expected,), (got,) = _outputs(mx, sym, args, data), _outputs(mx, folded_sym, folded_args, data)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_fold_without_bias_and_refusals():
    from porting import compat

    mx = compat.import_mx()
    args = {"up_weight": mx.nd.ones((4, 4, 1, 1))}
    sym, folded_args, folded = rewrites.fold_residual_scales(_residual_symbol(mx, no_bias=True), args)
    assert folded == ["up"] and float(folded_args["up_weight"].asnumpy()[0, 0, 0, 0]) == pytest.approx(0.17)
    # The unscaled convolution output is also an output: it must stay, so nothing is folded.
    shared = _residual_symbol(mx, extra_reader=True)
    same, same_args, folded = rewrites.fold_residual_scales(shared, {"up_weight": mx.nd.ones((4, 4, 1, 1)),
                                                                 "up_bias": mx.nd.zeros(4)})
    assert folded == [] and same is shared
    # A scale that follows something other than a convolution is left alone.
    data = mx.sym.Variable("data")
    plain = mx.sym._internal._mul_scalar(mx.sym.Activation(data, act_type="relu"), scalar=2.0)
    assert rewrites.fold_residual_scales(plain, {})[2] == []


def test_fold_on_the_port_keeps_its_outputs():
    from porting import compat

    mx = compat.import_mx()
    from mx_impl import inception_resnet_v2 as irv2

    sym = irv2.get_symbol(10, create_aux_logits=True, repeats=(1, 1, 1), image_size=107)
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, 107, 107))
    rng = np.random.default_rng(1)
    args = {name: mx.nd.array(rng.standard_normal(shape) * 0.05) for name, shape in
            zip(sym.list_arguments(), arg_shapes) if name != "data"}
    aux = {name: mx.nd.array(np.ones(shape) if name.endswith("_var") else np.zeros(shape))
           for name, shape in zip(sym.list_auxiliary_states(), aux_shapes)}
    folded_sym, folded_args, folded = rewrites.fold_residual_scales(sym, args)
    assert len(folded) == 4 and all(name.endswith("/Conv2d_1x1") for name in folded)
    assert folded_sym.list_outputs() == sym.list_outputs()
    data = mx.nd.array(rng.uniform(-1, 1, (1, 3, 107, 107)))
    outputs = []
    for s, a in ((sym, args), (folded_sym, folded_args)):
        executor = s.bind(mx.cpu(), {**a, "data": data}, aux_states={k: v.copy() for k, v in aux.items()},
                          grad_req="null")
        outputs.append([out.asnumpy() for out in executor.forward(is_train=False)])
    for expected, got in zip(*outputs):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
