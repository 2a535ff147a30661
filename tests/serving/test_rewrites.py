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


def _random_params(mx, sym, shape, seed=2):
    """Random weights and moving statistics (variances away from 1, gammas away from 1)."""
    arg_shapes, _, aux_shapes = sym.infer_shape(data=shape)
    rng = np.random.default_rng(seed)
    args = {name: mx.nd.array(rng.standard_normal(s) * 0.1) for name, s in zip(sym.list_arguments(), arg_shapes)
            if name != "data"}
    args.update({name: mx.nd.array(rng.uniform(0.5, 2.0, s)) for name, s in zip(sym.list_arguments(), arg_shapes)
                 if name.endswith("_gamma")})
    aux = {name: mx.nd.array(rng.uniform(0.2, 3.0, s) if name.endswith("_var") else rng.standard_normal(s) * 0.3)
           for name, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux


def _forward(mx, sym, args, aux, data):
    executor = sym.bind(mx.cpu(), {**args, "data": data}, aux_states={k: v.copy() for k, v in aux.items()},
                        grad_req="null")
    return [out.asnumpy() for out in executor.forward(is_train=False)]


@pytest.mark.parametrize("no_bias,fix_gamma", [(True, True), (True, False), (False, False), (False, True)])
def test_fold_batch_norms_is_exact_with_and_without_bias_and_gamma(no_bias, fix_gamma):
    from porting import compat

    mx = compat.import_mx()
    data = mx.sym.Variable("data")
    conv = mx.sym.Convolution(data, num_filter=6, kernel=(3, 3), pad=(1, 1), no_bias=no_bias, name="conv")
    bn = mx.sym.BatchNorm(conv, fix_gamma=fix_gamma, eps=1e-3, name="bn")
    sym = mx.sym.Activation(bn, act_type="relu", name="relu")
    args, aux = _random_params(mx, sym, (2, 3, 7, 7))
    x = mx.nd.array(np.random.default_rng(3).standard_normal((2, 3, 7, 7)))
    new_sym, new_args, new_aux, folded = rewrites.fold_batch_norms(sym, args, aux)
    assert folded == ["bn"]
    assert "BatchNorm" not in [node["op"] for node in json.loads(new_sym.tojson())["nodes"]]
    assert new_sym.list_arguments() == ["data", "conv_weight", "conv_bias"] and new_sym.list_auxiliary_states() == []
    assert set(new_args) == {"conv_weight", "conv_bias"} and not new_aux
    assert set(args) >= {"bn_gamma", "bn_beta"} and len(aux) == 2  # the caller's dicts are untouched
    (expected,), (got,) = _forward(mx, sym, args, aux, x), _forward(mx, new_sym, new_args, new_aux, x)
    assert np.abs(expected).max() > 0.1  # the ReLU let something through
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_fold_batch_norms_leaves_shared_or_foreign_inputs_alone():
    from porting import compat

    mx = compat.import_mx()
    data = mx.sym.Variable("data")
    conv = mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), name="conv")
    shared = mx.sym.Group([mx.sym.BatchNorm(conv, name="bn"), conv])  # the raw conv output is also returned
    args, aux = _random_params(mx, shared, (1, 3, 4, 4))
    assert rewrites.fold_batch_norms(shared, args, aux)[3] == []
    weight = mx.sym.Variable("shared_weight")  # two convolutions, one weight: folding one would change the other
    twins = [mx.sym.Convolution(data, weight=weight, num_filter=4, kernel=(1, 1), no_bias=True, name=f"c{i}")
             for i in range(2)]
    tied = mx.sym.Group([mx.sym.BatchNorm(twins[0], name="bn0"), twins[1]])
    args, aux = _random_params(mx, tied, (1, 3, 4, 4))
    assert rewrites.fold_batch_norms(tied, args, aux)[3] == []
    scaled = mx.sym.Group([mx.sym._internal._mul_scalar(twins[0], scalar=0.5), twins[1]])
    assert rewrites.fold_residual_scales(scaled, {"shared_weight": mx.nd.ones((4, 3, 1, 1))})[2] == []
    after_relu = mx.sym.BatchNorm(mx.sym.Activation(data, act_type="relu"), name="bn")  # no conv to fold into
    args, aux = _random_params(mx, after_relu, (1, 3, 4, 4))
    assert rewrites.fold_batch_norms(after_relu, args, aux)[3] == []


def test_serving_graph_on_the_port_gives_the_same_scores():
    """The reduced Inception-ResNet-v2 (repeats 1/1/1) at 75x75: every BN and scale folded, same softmax."""
    from porting import compat

    mx = compat.import_mx()
    from mx_impl import inception_resnet_v2 as irv2
    from porting.serving.model_loading import inference_symbol

    sym = inference_symbol(irv2.get_symbol(10, create_aux_logits=False, repeats=(1, 1, 1), image_size=75))
    args, aux = _random_params(mx, sym, (2, 3, 75, 75))
    served = rewrites.serving_graph(sym, args, aux)
    ops = [node["op"] for node in json.loads(served.symbol.tojson())["nodes"]]
    assert "BatchNorm" not in ops and "_mul_scalar" not in ops
    assert len(served.folded["batch norms folded"]) == ops.count("Convolution") - 4  # the 4 up-projections: no BN
    assert len(served.folded["residual scales folded"]) == 4 and not served.aux_params
    x = mx.nd.array(np.random.default_rng(4).uniform(-1, 1, (2, 3, 75, 75)))
    (expected,), (got,) = _forward(mx, sym, args, aux, x), _forward(mx, served.symbol, served.arg_params, {}, x)
    assert expected.shape == (2, 10) and expected.max() - expected.min() > 1e-3  # the scores are not uniform
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_fuse_mkldnn_gives_fused_operators_and_the_same_scores():
    from porting import compat

    mx = compat.import_mx()
    data = mx.sym.Variable("data")
    conv = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=True, name="conv")
    sym = mx.sym.Activation(mx.sym.BatchNorm(conv, fix_gamma=False, name="bn"), act_type="relu", name="relu")
    args, aux = _random_params(mx, sym, (1, 3, 6, 6))
    fused = rewrites.fuse_mkldnn(sym, args, aux, (1, 3, 6, 6))
    assert [node["op"] for node in json.loads(fused.tojson())["nodes"] if node["op"] != "null"] == ["_sg_mkldnn_conv"]
    x = mx.nd.array(np.random.default_rng(5).standard_normal((1, 3, 6, 6)))
    with compat.no_subgraph_fusion():  # the reference unfused, as the operators are written
        (expected,) = _forward(mx, sym, args, aux, x)
    (got,) = _forward(mx, fused, args, aux, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
