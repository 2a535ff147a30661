"""The MXNet side from files and Gluon blocks, each side's own weights, and the converter forms.

A small slim network with every converter form in it (a conv + batch norm that tf2onnx folds, a
residual scale tf2onnx stores as an initialiser, a dense layer it writes as gemm + add) is frozen
with seeded values and converted by the real tf2onnx; MXNet's real importer reads it back.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.frameworks import mx_files, mx_reader  # noqa: E402
from porting.util import UsageError  # noqa: E402
from porting.verifier.api import verify  # noqa: E402

SIZE, CLASSES = 8, 5


def small_tf(images, num_classes, is_training=False, scale=0.25):
    """8x8 -> 3x3 SAME conv + batch norm + relu -> x scale -> 3x3 SAME conv + bn + relu -> 8x8 avg pool -> dense."""
    end_points = {}
    with tf.compat.v1.variable_scope("Small"):
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                            normalizer_params={"is_training": is_training, "scale": True}):
            net = slim.conv2d(images, 8, 3, scope="Conv2d_1a_3x3")
            net = scale * net
            net = slim.conv2d(net, 8, 3, scope="Conv2d_2a_3x3")
        net = slim.avg_pool2d(net, 8, padding="VALID", scope="AvgPool")
        net = slim.flatten(net, scope="Flatten")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
        end_points["Logits"] = logits
    return logits, end_points


def _seeded(name, shape):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name.endswith(("moving_variance", "gamma")):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.normal(0, 0.3 if name.endswith("weights") else 0.1, shape).astype(np.float32)


def convert(folder, builder=small_tf):
    """A checkpoint of ``builder`` with seeded values and its tf2onnx conversion (NCHW input)."""
    import tf2onnx

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, SIZE, SIZE, 3], name="images")
        logits, _ = builder(images, CLASSES)
        tf.identity(logits, name="out")
        variables = tf.compat.v1.global_variables()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run([v.initializer for v in variables],
                        {v.initializer.inputs[1]: _seeded(v.op.name, v.shape.as_list()) for v in variables})
            tf.compat.v1.train.Saver().save(session, str(folder / "ckpt"), write_meta_graph=False)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), ["out"])
    model, _ = tf2onnx.convert.from_graph_def(frozen, input_names=["images:0"], output_names=["out:0"], opset=13,
                                              inputs_as_nchw=["images:0"])
    (folder / "small.onnx").write_bytes(model.SerializeToString())
    return str(folder / "ckpt"), folder / "small.onnx"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return convert(tmp_path_factory.mktemp("converted"))


def _verify(mx_side, checkpoint=None, numeric=False, builder=small_tf, **kwargs):
    return verify(tf=builder, mx=mx_side, size=SIZE, classes=CLASSES, weights=checkpoint,
                  numeric=numeric, **kwargs)


# ------------------------------------------------------------------ ONNX

def test_importer_needs_the_initialiser_rewrite_and_compat_provides_it(converted):
    onnx = compat.import_onnx()
    from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

    model = onnx.load_model(str(converted[1]))
    listed = {value.name for value in model.graph.input}
    assert any(init.name not in listed for init in model.graph.initializer)  # what tf2onnx writes
    with pytest.raises(KeyError):
        GraphProto().from_onnx(model.graph, opset_version=13)
    fixed = compat.onnx_initialisers_as_inputs(model)
    assert {init.name for init in fixed.graph.initializer} <= {value.name for value in fixed.graph.input}
    assert len(model.graph.input) == len(listed)  # the original is not modified
    symbol, args, _ = compat.import_onnx_to_mx(model)
    assert set(args) | {"images:0"} == set(symbol.list_arguments())


def test_onnx_side_is_read_with_its_own_weights_and_converter_forms_are_equivalent(converted):
    checkpoint, onnx_path = converted
    structural = _verify(str(onnx_path))
    assert structural.mx_graph.params is not None and "data" in structural.mx_graph.symbol.list_arguments()
    assert structural.passed, structural.report()
    # Without numbers the folded forms are a warning, not a failure.
    warnings = [f for f in structural.findings if f.check == "equivalent_if_numbers_agree"]
    assert len(warnings) == 1 and str(warnings[0].severity) == "warning"
    assert any("folded conv + bias" in note for note in structural.equivalences)
    for fmt in ("json", "markdown"):
        assert "equivalent_if_numbers_agree" in structural.report(fmt)
    dense = structural.mx_record(next(p.mx.name for p in structural.pairs if p.tf and p.tf.name == "Small/Logits"))
    assert dense.kind == "fc" and dense.part("bias") is not None  # gemm + broadcast_add read as one dense layer
    numeric = _verify(str(onnx_path), checkpoint, numeric=True)
    assert numeric.passed, numeric.report()
    assert numeric.numeric["weights"].startswith("each side its own")
    assert numeric.numeric["layers"] >= 5
    assert not any(f.check == "equivalent_if_numbers_agree" for f in numeric.findings)
    scale = numeric.mx_record(next(p.mx.name for p in numeric.pairs if p.tf and p.tf.name == "Small/mul"))
    assert scale.attrs["scale"] == pytest.approx(0.25)  # read from the stored parameter


def test_a_wrong_folded_bias_is_found_at_its_layer(converted, tmp_path):
    """The folded form is only accepted if the numbers agree: a bias off by 0.5 fails at that conv."""
    checkpoint, onnx_path = converted
    model = mx_files.load_onnx(onnx_path)
    bias = next(name for name in model.arg_params if name.endswith("Conv2d_2a_3x3/Conv2D_bias_fused_bn"))
    model.arg_params[bias] = model.arg_params[bias] + np.float32(0.5)
    prefix = tmp_path / "planted"
    symbol_path, params_path = mx_files.save_checkpoint(prefix, model.symbol, model.arg_params, model.aux_params)
    result = _verify(str(symbol_path), checkpoint, numeric=True)
    assert not result.passed and not result.numeric["passed"]
    assert result.numeric["first_divergence"]["layer"] == "Small/Conv2d_2a_3x3"


def test_a_wrong_stored_scale_is_a_defect_with_weights(converted, tmp_path):
    checkpoint, onnx_path = converted
    model = mx_files.load_onnx(onnx_path)
    name = next(n for n, value in model.arg_params.items() if value.size == 1 and float(value.reshape(())) == 0.25)
    model.arg_params[name] = np.array([0.5], np.float32)
    symbol_path, _ = mx_files.save_checkpoint(tmp_path / "scaled", model.symbol, model.arg_params, model.aux_params)
    result = _verify(str(symbol_path))
    row = next(row for row in result.rows if row.tf is not None and row.tf.name == "Small/mul")
    assert row.status.value == "attr_mismatch" and "scale" in str(row)
    assert not result.passed


# ------------------------------------------------------------------ -symbol.json + .params

def test_symbol_json_takes_the_newest_epoch_or_the_one_named(converted, tmp_path):
    checkpoint, onnx_path = converted
    model = mx_files.load_onnx(onnx_path)
    good = dict(model.arg_params)
    bad = {name: value * np.float32(1.5) for name, value in good.items()}
    prefix = tmp_path / "small"
    mx_files.save_checkpoint(prefix, model.symbol, bad, model.aux_params, epoch=1)
    symbol_path, newest = mx_files.save_checkpoint(prefix, model.symbol, good, model.aux_params, epoch=12)
    assert mx_files.newest_params(symbol_path) == newest
    assert _verify(str(symbol_path), checkpoint, numeric=True).passed
    older = _verify(str(symbol_path), checkpoint, numeric=True, mx_params=str(tmp_path / "small-0001.params"))
    assert not older.passed and older.numeric["first_divergence"] is not None


def test_symbol_json_errors_name_the_problem(converted, tmp_path):
    model = mx_files.load_onnx(converted[1])
    symbol_path = tmp_path / "lonely-symbol.json"
    model.symbol.save(str(symbol_path))
    with pytest.raises(UsageError, match="no parameters for .*lonely-0000|expected lonely-NNNN.params"):
        mx_files.load(symbol_path)
    partial = dict(list(model.arg_params.items())[1:])
    _, params = mx_files.save_checkpoint(tmp_path / "partial", model.symbol, partial, model.aux_params)
    with pytest.raises(UsageError, match="does not fit the symbol"):
        mx_files.load(tmp_path / "partial-symbol.json", params)


# ------------------------------------------------------------------ Gluon

def gluon_tf(images, num_classes, is_training=False):
    with tf.compat.v1.variable_scope("G"):
        net = slim.conv2d(images, 8, 3, padding="SAME", scope="Conv")
        net = slim.avg_pool2d(net, SIZE, padding="VALID", scope="Pool")
        net = slim.flatten(net)
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
    return logits, {"Logits": logits}


def gluon_mx(num_classes):
    block = mx.gluon.nn.HybridSequential()
    block.add(mx.gluon.nn.Conv2D(8, 3, padding=1, activation="relu"), mx.gluon.nn.GlobalAvgPool2D(),
              mx.gluon.nn.Flatten(), mx.gluon.nn.Dense(num_classes))
    return block


def test_gluon_block_is_hybridised_and_read_with_its_parameters():
    result = verify(tf=gluon_tf, mx=gluon_mx, size=SIZE, classes=CLASSES)
    assert result.passed, result.report()
    graph = result.mx_graph
    assert "data" in graph.symbol.list_arguments() and graph.source.startswith("Gluon block")
    args, _ = graph.params
    assert sum(value.size for value in args.values()) == 8 * 3 * 9 + 8 + 8 * CLASSES + CLASSES


def test_a_plain_gluon_block_is_refused():
    with pytest.raises(Exception, match="HybridBlock"):
        mx_files.from_gluon(mx.gluon.nn.Sequential(), (SIZE, SIZE))


# ------------------------------------------------------------------ the reader's converter forms

def test_noop_reshape_and_cancelling_transposes_are_read_through():
    data = mx.sym.var("data")
    net = mx.sym.transpose(data, axes=(0, 2, 3, 1), name="to_nhwc")
    net = mx.sym.transpose(net, axes=(0, 3, 1, 2), name="to_nchw")
    net = mx.sym.Convolution(net, kernel=(1, 1), num_filter=4, no_bias=True, name="conv")
    net = mx.sym.reshape(net, shape=(1, 4, SIZE, SIZE), name="same_shape")
    net = mx.sym.BatchNorm(net, name="bn")
    net = mx.sym.Activation(net, act_type="relu", name="relu")
    graph = mx_reader.read_symbol(net, (SIZE, SIZE), CLASSES)
    conv = next(r for r in graph.records if r.kind == "conv")
    assert conv.inputs == ("data",) and [p.kind for p in conv.parts] == ["conv", "bn", "act"]
    assert len(graph.notes) == 2
    # A transpose pair that does not cancel, and a reshape that changes the shape, stay.
    kept = mx.sym.transpose(mx.sym.transpose(data, axes=(0, 2, 3, 1)), axes=(0, 2, 3, 1))
    kept = mx.sym.reshape(kept, shape=(1, 3, SIZE * SIZE))
    assert len(mx_reader.read_symbol(kept, (SIZE, SIZE), CLASSES).records) == 4


def transposed_tf(images, num_classes, is_training=False):
    with tf.compat.v1.variable_scope("T"):
        net = slim.conv2d(images, 4, 1, normalizer_fn=slim.batch_norm,
                          normalizer_params={"is_training": is_training}, scope="Conv")
    return net, {"Conv": net}


def transposed_mx(num_classes):
    """The conv of transposed_tf behind an NHWC round trip, its batch norm behind a reshape to its own shape."""
    net = mx.sym.transpose(mx.sym.var("data"), axes=(0, 2, 3, 1), name="to_nhwc")
    net = mx.sym.transpose(net, axes=(0, 3, 1, 2), name="to_nchw")
    net = mx.sym.Convolution(net, kernel=(1, 1), num_filter=4, no_bias=True, name="conv")
    net = mx.sym.reshape(net, shape=(1, 4, SIZE, SIZE), name="same_shape")
    net = mx.sym.BatchNorm(net, eps=1e-3, momentum=0.9997, fix_gamma=True, name="bn")
    return mx.sym.Activation(net, act_type="relu", name="relu")


def test_read_through_forms_compute_the_same_numbers():
    result = verify(tf=transposed_tf, mx=transposed_mx, size=SIZE, classes=CLASSES, numeric=True)
    assert result.passed, result.report()
    assert result.numeric["layers"] == 2 and result.numeric["max_abs"] < 1e-4
    assert sum("read through" in note for note in result.equivalences) == 2


def test_gluon_parameters_already_set_are_kept():
    block = gluon_mx(CLASSES)
    block.initialize(mx.init.Uniform(0.5))
    block(mx.nd.zeros((1, 3, SIZE, SIZE)))
    before = sorted(float(p.data().asnumpy().sum()) for p in block.collect_params().values())
    args, _ = mx_files.from_gluon(block, (SIZE, SIZE)).params
    assert sorted(float(value.sum()) for value in args.values()) == pytest.approx(before)
    assert any(value != 0 for value in before)


def test_numeric_without_tf_weights_says_how_to_use_the_mx_side_weights(converted):
    """Only the MXNet side has weights: today's transfer runs (and cannot fill a folded form); the error says why."""
    result = _verify(str(converted[1]), numeric=True)
    assert not result.passed and "--weights CKPT" in result.numeric["error"]


def test_a_builder_that_forgot_its_batch_norm_is_not_taken_for_a_folded_one():
    def forgot(num_classes):  # mx.sym.Convolution's default no_bias=False, and no BatchNorm
        net = mx.sym.Convolution(mx.sym.var("data"), kernel=(1, 1), num_filter=4, name="conv")
        return mx.sym.Activation(net, act_type="relu", name="relu")

    result = verify(tf=transposed_tf, mx=forgot, size=SIZE, classes=CLASSES)
    assert not result.passed and any(f.check == "batch_norm" for f in result.findings)
    assert not any("folded" in note for note in result.equivalences)


# ------------------------------------------------------------------ quotients by a stored value

@pytest.mark.parametrize("stored, scale", [(1.0, 1.0), (2.0, 0.5)])
def test_a_quotient_by_a_stored_value_reads_as_a_scale_by_its_inverse(tmp_path, stored, scale):
    """MXNet's ONNX export writes a softmax as ``x / temperature`` (a stored 1.0) first: read as a scale."""
    data = mx.sym.Variable("data")
    conv = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), name="conv")
    quotient = mx.sym.broadcast_div(conv, mx.sym.Variable("temperature", shape=(1,)), name="div")
    symbol = mx.sym.softmax(quotient, axis=1, name="prob")
    params = {"conv_weight": np.ones((4, 3, 3, 3), np.float32), "conv_bias": np.zeros(4, np.float32),
              "temperature": np.array([stored], np.float32)}
    symbol_path, _ = mx_files.save_checkpoint(tmp_path / "div", symbol, params, {})
    graph = mx_reader.read_symbol(str(symbol_path), (8, 8), 4, 1)
    record = next(r for r in graph.records if r.name == "div")
    assert record.kind.value == "scale" and record.attrs["scale"] == pytest.approx(scale)
    assert record.attrs["scale_source"] == "parameter temperature"
