"""Numeric parity: the comparison semantics, deliberate defects caught at the right layer, and our network.

The defects are small TF + MXNet pairs (16x16 input, a few layers) in which one layer is
wrong the way a real port goes wrong; each must be the first divergent layer, with an
error of the size PITFALLS.md measured, while every layer before it passes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from porting import compat
from porting.core.tolerances import DEFAULT_ATOL_RANGE, DEFAULT_RTOL

SIZE = 16
CLASSES = 10


# ------------------------------------------------------------------ small pairs with defects

def small_tf(images, num_classes, is_training=False, scale=False, eps=1e-3):
    """conv 3x3/2 SAME (16 -> 8: pads (0,1)) -> avg pool 3x3/1 SAME -> conv 3x3 -> 1x1 conv with bias
    -> flatten (8x8x4) -> dense. Every conv but the last has batch norm + relu."""
    slim = compat.import_slim()
    params = {"is_training": is_training, "scale": scale, "epsilon": eps, "decay": 0.9}
    with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm, normalizer_params=params):
        net = slim.conv2d(images, 8, 3, stride=2, padding="SAME", scope="Conv1")
        net = slim.avg_pool2d(net, 3, stride=1, padding="SAME", scope="Pool")
        net = slim.conv2d(net, 8, 3, scope="Conv2")
        net = slim.conv2d(net, 4, 1, normalizer_fn=None, activation_fn=None, scope="Proj")
        net = slim.flatten(net, scope="Flatten")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
    return logits, {"Logits": logits}


def small_mx(num_classes, *, symmetric_pad=False, count_include_pad=False, fix_gamma=True, eps2=1e-3):
    """The MXNet port of :func:`small_tf`; each keyword plants one defect."""
    mx = compat.import_mx()
    data = mx.sym.Variable("data")

    def bn_relu(net, name, eps=1e-3):
        net = mx.sym.BatchNorm(net, eps=eps, fix_gamma=fix_gamma, name=f"{name}/BatchNorm")
        return mx.sym.Activation(net, act_type="relu", name=f"{name}/Relu")

    if symmetric_pad:  # same 8x8 shape, every window shifted by one pixel
        net = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), stride=(2, 2), pad=(1, 1), no_bias=True,
                                 name="Conv1")
    else:  # TF pads (0, 1): nothing before, one row/column after
        net = mx.sym.pad(data, mode="constant", pad_width=(0, 0, 0, 0, 0, 1, 0, 1), name="Conv1/pad")
        net = mx.sym.Convolution(net, num_filter=8, kernel=(3, 3), stride=(2, 2), no_bias=True, name="Conv1")
    net = bn_relu(net, "Conv1")
    net = mx.sym.Pooling(net, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                         count_include_pad=count_include_pad, name="Pool")
    net = mx.sym.Convolution(net, num_filter=8, kernel=(3, 3), pad=(1, 1), no_bias=True, name="Conv2")
    net = bn_relu(net, "Conv2", eps=eps2)
    net = mx.sym.Convolution(net, num_filter=4, kernel=(1, 1), name="Proj")
    net = mx.sym.flatten(net, name="Flatten")
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="Logits")


def _verify(tf_fn=small_tf, mx_fn=small_mx, **kwargs):
    from porting.verifier.api import verify

    return verify(tf=tf_fn, mx=mx_fn, size=SIZE, classes=CLASSES, numeric=True, lint=False, **kwargs)


def _names(result):
    return [layer.tf for layer in result.numeric_report.layers]


def _assert_first(result, layer: str, low: float, high: float = math.inf):
    """``layer`` is the first divergent layer, its max abs error in [low, high], every earlier layer passes."""
    report = result.numeric_report
    assert report.error is None, report.error
    first = report.first_divergence
    assert first is not None, "the defect was not caught"
    assert first.tf == layer, f"first divergence at {first.tf}, expected {layer}"
    assert low <= first.result.max_abs <= high, first.result.line()
    before = _names(result)[: _names(result).index(layer)]
    assert before and all(report.layer(name).result for name in before)
    assert result.numeric["first_divergence"]["layer"] == layer and not result


def test_small_pair_passes_and_fills_every_report():
    result = _verify()
    assert result, result.report()
    assert result.numeric["passed"] and result.numeric["failed"] == 0
    assert result.numeric["rtol"] == DEFAULT_RTOL and result.numeric["atol"] is None
    assert result.numeric["atol_range"] == DEFAULT_ATOL_RANGE
    assert _names(result) == ["images", "Conv1", "Pool", "Conv2", "Proj", "Flatten/flatten", "Logits"]
    assert result.numeric["worst"]["max_abs"] < 1e-5
    counts = result.numeric["transfer"]["counts"]
    assert counts["flatten_dense_to_mx"] == 1 and counts["hwio_to_oihw"] == 3
    import json

    rows = json.loads(result.report("json"))["rows"]
    numeric_rows = [row for row in rows if "numeric" in row]
    assert len(numeric_rows) == 7 and all(row["numeric"]["passed"] for row in numeric_rows)
    text = result.report("text")
    assert "Numeric parity" in text and "first divergence: none" in text and "7/7 layers within tolerance" in text
    assert "## Numeric parity" in result.report("markdown")


def test_defect_avg_pool_counting_padded_cells():
    result = _verify(mx_fn=lambda k: small_mx(k, count_include_pad=True))
    _assert_first(result, "Pool", 1e-2)
    first = result.numeric_report.first_divergence.result
    assert first.border_only and "count_include_pad" in result.numeric["first_divergence"]["hint"]


def test_defect_fix_gamma_false_with_a_gamma_not_one():
    """TF has no scale (gamma = 1); MXNet's fix_gamma=False applies the gamma it holds."""
    from porting.verifier import parity
    from porting.verifier import weights

    result = _verify(mx_fn=lambda k: small_mx(k, fix_gamma=False))
    assert result  # with gamma = 1 (what TF means), fix_gamma=False is harmless...
    plan = weights.plan_transfer(result.tf_graph, result.mx_graph, result.pairs)
    values = weights.seeded_values(plan, seed=0)
    arg_params, aux_params, _ = weights.transfer(plan, values)
    gamma = "Conv2/BatchNorm_gamma"
    assert np.all(arg_params[gamma] == 1.0)
    arg_params[gamma] = np.random.default_rng(3).uniform(0.5, 1.5, arg_params[gamma].shape).astype(np.float32)
    report = parity.numeric_parity(result.tf_graph, result.mx_graph, result.pairs, tf_values=values,
                                   mx_params=(arg_params, aux_params))
    first = report.first_divergence  # ...but a gamma != 1 (a converter that loaded one) is not
    assert first.tf == "Conv2" and first.result.max_abs > 1e-1
    assert all(layer.result for layer in report.layers[:3])


def test_defect_fix_gamma_true_ignores_a_learned_gamma():
    """TF scale=True learns gamma; MXNet's fix_gamma=True forces 1 (PITFALLS.md #5a: 2.07)."""
    result = _verify(tf_fn=lambda images, k, is_training=False: small_tf(images, k, is_training, scale=True))
    _assert_first(result, "Conv1", 1e-1)
    assert any("fix_gamma=True" in warning for warning in result.numeric["transfer"]["warnings"])


def test_defect_batch_norm_epsilon():
    """eps 1e-5 in MXNet instead of slim's 1e-3: ~5e-3 (PITFALLS.md #5)."""
    result = _verify(mx_fn=lambda k: small_mx(k, eps2=1e-5))
    _assert_first(result, "Conv2", 3e-4, 5e-2)  # a 5e-4 relative error on O(1) activations
    assert result.numeric_report.first_divergence.result.min_atol_range > 5 * DEFAULT_ATOL_RANGE
    assert "per-channel scale" in result.numeric_report.hint


def test_defect_symmetric_pad_on_stride_2_same_conv():
    """16x16, 3x3/2 SAME: TF pads (0, 1); pad=1 keeps the 8x8 shape and shifts every window."""
    result = _verify(mx_fn=lambda k: small_mx(k, symmetric_pad=True))
    _assert_first(result, "Conv1", 1e-1)
    assert result.numeric_report.hint.startswith("not a per-channel scale") and "pads" in result.numeric_report.hint
    conv = next(row for row in result.rows if row.tf and row.tf.name == "Conv1")
    assert conv.tf.shape == conv.mx.shape  # the shapes agree: only the values tell


def test_defect_dense_after_spatial_flatten_with_plain_transpose():
    """A converter that writes w.T for a dense layer reading an 8x8x4 flatten (PITFALLS.md #7: 12.3)."""
    from porting.verifier import parity
    from porting.verifier import weights

    result = _verify()
    plan = weights.plan_transfer(result.tf_graph, result.mx_graph, result.pairs)
    values = weights.seeded_values(plan, seed=0)
    arg_params, aux_params, _ = weights.transfer(plan, values)
    arg_params["Logits_weight"] = np.ascontiguousarray(values["Logits/weights"].T)
    report = parity.numeric_parity(result.tf_graph, result.mx_graph, result.pairs, tf_values=values,
                                   mx_params=(arg_params, aux_params))
    first = report.first_divergence
    assert first.tf == "Logits" and first.result.max_abs > 1e-1
    assert all(layer.result for layer in report.layers[:-1])
    assert "flatten" in report.hint


def test_defect_bgr_input_on_one_side():
    from porting.core import layouts
    from porting.verifier import parity

    result = _verify()
    images = parity.seeded_input((1, SIZE, SIZE, 3), seed=0)
    report = parity.numeric_parity(result.tf_graph, result.mx_graph, result.pairs, images=images,
                                   mx_input=layouts.nhwc_to_nchw(images[..., ::-1]))
    assert report.first_divergence.tf == "images" and "BGR" in report.hint
    assert report.first_divergence.result.max_abs > 1e-1
    after_input = next(layer for layer in report.layers[1:] if not layer.result)
    assert after_input.tf == "Conv1" and after_input.result.max_abs > 1e-1


def test_bug_report_names_the_first_divergent_layer(tmp_path):
    from porting.verifier.render import write_bug_reports

    result = _verify(mx_fn=lambda k: small_mx(k, eps2=1e-5))
    written = write_bug_reports(result, tmp_path)
    numeric = [path for path in written if "numeric" in path.name]
    assert len(numeric) == 1
    text = numeric[0].read_text()
    assert "**Conv2**" in text and "max abs error" in text and "batch norm" in text


def test_verify_with_a_checkpoint(tmp_path):
    """``verify(weights=CKPT)`` / ``compare --weights CKPT``: the TF side runs the checkpoint's values."""
    from porting.verifier import weights

    first = _verify()
    plan = weights.plan_transfer(first.tf_graph, first.mx_graph, first.pairs)
    checkpoint = weights.write_tf_checkpoint(first.tf_graph, weights.seeded_values(plan, seed=9),
                                             tmp_path / "small.ckpt")
    result = _verify(weights=checkpoint)
    assert result, result.numeric
    assert result.numeric["weights"].startswith("checkpoint") and result.numeric["transfer"]["ok"]
    partial = weights.write_tf_checkpoint(first.tf_graph, {"Proj/biases": np.zeros(4, np.float32)},
                                          tmp_path / "partial.ckpt")
    lacking = _verify(weights=partial)
    assert not lacking and "lack" in lacking.numeric["error"] and "Conv1/weights" in lacking.numeric["error"]
    assert "NOT RUN" in lacking.report("text")


def test_compare_cli_numeric_flags(capsys):
    from porting.cli.compare import main

    assert main(["--numeric", "--rtol", "-1"]) == 2
    assert "--rtol" in capsys.readouterr().err
    assert main(["--weights", "/nonexistent/model.ckpt"]) == 2
    assert "no TF checkpoint" in capsys.readouterr().err


# ------------------------------------------------------------------ our network

@pytest.fixture(scope="session")
def irv2_inference_299():
    """The full slim network at 299 in inference mode with AuxLogits: built once for this module."""
    from porting.frameworks import tf_reader
    from porting.frameworks.models import get_model, tf_builder

    return tf_reader.read_graph(tf_builder(get_model("inception_resnet_v2")), (299, 299), 1001, 1, False)


@pytest.mark.slow
def test_inception_resnet_v2_299_with_aux_logits(irv2_inference_299):
    from mx_impl.inception_resnet_v2 import get_symbol
    from porting.frameworks import mx_reader
    from porting.verifier import parity
    from porting.core.diff import compare_pairs, summarize
    from porting.core.match import match

    mx_graph = mx_reader.read_symbol(get_symbol(1001, create_aux_logits=True, image_size=299), (299, 299), 1001)
    pairs = match(irv2_inference_299.records, mx_graph.records)
    assert summarize(compare_pairs(pairs))["verdict"] == "match"
    report = parity.numeric_parity(irv2_inference_299, mx_graph, pairs)
    assert report, report.summary()
    assert report.transfer.ok and len(report.layers) > 400
    assert any("AuxLogits" in layer.tf for layer in report.layers)
    assert report.summary()["min_atol_range"] < DEFAULT_ATOL_RANGE / 2  # at least 2x margin


@pytest.mark.slow
def test_inception_resnet_v2_299_without_aux_logits(irv2_inference_299):
    """The MXNet side built without AuxLogits; the TF graph's AuxLogits variables go unused, as allowed."""
    from porting.frameworks import mx_reader
    from porting.verifier import parity
    from porting.core.match import match
    from mx_impl.inception_resnet_v2 import get_symbol

    mx_graph = mx_reader.read_symbol(get_symbol(1001, create_aux_logits=False, image_size=299), (299, 299), 1001)
    pairs = match(irv2_inference_299.records, mx_graph.records)
    report = parity.numeric_parity(irv2_inference_299, mx_graph, pairs, allow_unexpected=["AuxLogits/*"])
    assert report, report.summary()
    assert not any("AuxLogits" in layer.tf for layer in report.layers)
    assert any(layer.tf.endswith("Logits/Predictions") for layer in report.layers)


# The two variants, at a smaller size and with one block of each kind (every layer kind and every
# layer the variant changes is there; the 299 tests above cover the full depth).
VARIANT_REPEATS = (1, 1, 1)


def test_align_feature_maps_variant_150():
    """SAME stem and reductions: stride-2 SAME at 150 -> 75 and 38 -> 19 pads (0, 1) (explicit pad ops)."""
    from mx_impl.inception_resnet_v2 import get_symbol
    from reference_tf import inception_resnet_v2 as irv2

    def tf_fn(images, num_classes, is_training=False):
        return irv2.build(images, num_classes, is_training=is_training, repeats=VARIANT_REPEATS,
                          align_feature_maps=True)

    def mx_fn(num_classes):
        return get_symbol(num_classes, create_aux_logits=True, align_feature_maps=True, repeats=VARIANT_REPEATS,
                          image_size=150)

    from porting.verifier.api import verify

    result = verify(tf=tf_fn, mx=mx_fn, size=150, classes=1001, numeric=True, lint=False)
    assert result, result.numeric
    stem = result.numeric_report.layer("InceptionResnetV2/Conv2d_1a_3x3")
    assert stem is not None and stem.result.range > 0
    assert result.tf_record("InceptionResnetV2/Conv2d_1a_3x3").pads == (0, 1, 0, 1)


def test_output_stride_8_variant_139():
    """Stride-1 Mixed_6a and dilated block17s, up to PreAuxLogits."""
    from mx_impl.inception_resnet_v2 import get_symbol
    from porting.frameworks.models import irv2_base_tf

    def tf_fn(images, num_classes, is_training=False):
        return irv2_base_tf(images, num_classes, is_training=is_training, output_stride=8,
                            final_endpoint="PreAuxLogits", repeats=VARIANT_REPEATS)

    def mx_fn(num_classes):
        return get_symbol(num_classes, output_stride=8, final_endpoint="PreAuxLogits", repeats=VARIANT_REPEATS,
                          image_size=139)

    from porting.verifier.api import verify

    result = verify(tf=tf_fn, mx=mx_fn, size=139, classes=1001, numeric=True, lint=False)
    assert result, result.numeric
    dilated = [record for record in result.tf_graph.records if record.dilation == (2, 2)]
    assert dilated and all(result.numeric_report.layer(record.name).result for record in dilated)
