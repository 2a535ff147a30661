"""tf-keras graphs read like slim graphs, from builders and from files; Keras files are data.

tests/support/keras_nets.py is a small Keras network with every layer form Keras writes apart
(ZeroPadding2D + 'valid' conv, BatchNormalization, Activation, 'same' conv with its activation,
a residual scale, GlobalAveragePooling2D, Dense with softmax) and a hand-written MXNet port. The
reader must fold each BN and activation into its conv like slim's, so shapes and lint pass, and
the numeric pass runs the saved file's own weights through MXNet. A Keras file whose Lambda layer
carries Python code is refused unless trusted: the code (it would write a marker file) never runs.
"""
from __future__ import annotations

import pytest

from porting import compat
from porting.core.records import Kind
from porting.frameworks import keras_models, tf_files
from porting.util import UsageError
from porting.verifier.api import verify
from tests.support import keras_nets

tf = compat.import_tf()
tf_keras = pytest.importorskip("tf_keras", reason="tf-keras is a pinned dependency; its absence is a broken env")

#: What each conv record of the network folds, as slim's conv2d(normalizer_fn=batch_norm) would.
FOLDED = {"stem_conv": [Kind.PAD, Kind.CONV, Kind.BN, Kind.ACT], "branch_conv": [Kind.CONV, Kind.BIAS, Kind.ACT],
          "branch_up": [Kind.CONV, Kind.BIAS]}


def _folded(result) -> dict:
    return {record.name: [part.kind for part in record.parts] for record in result.tf_graph.records
            if record.name in FOLDED}


@pytest.mark.parametrize("is_training", [False, True])
def test_a_keras_builder_folds_bn_and_activation_into_its_conv_and_passes(is_training):
    result = verify(tf=keras_nets.build, mx=keras_nets.build_mx, size=16, classes=5, is_training=is_training)
    assert result, result.report()
    assert _folded(result) == FOLDED
    assert not [op for op in result.tf_graph.graph.get_operations() if op.type in ("If", "StatelessIf", "Merge")]
    assert result.lint.errors == 0 and not [f for f in result.findings if f.check == "activation"]
    stem = result.tf_record("stem_conv")
    assert stem.attrs["bn.is_training"] is is_training and stem.pads == (1, 1, 1, 1)
    if is_training:  # the moving-average updates show Keras' momentum, which the lint compares with MXNet's
        assert stem.attrs["bn.momentum"] == pytest.approx(0.99)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("keras_files")
    model = keras_nets.keras_model(16, 5)
    paths = {"h5": str(folder / "tiny.h5"), "keras": str(folder / "tiny.keras")}
    model.save(paths["h5"])
    model.save(paths["keras"])
    return paths


@pytest.mark.parametrize("suffix", ["h5", "keras"])
def test_a_keras_file_runs_its_own_weights_through_the_mxnet_port(saved, suffix):
    result = verify(tf=saved[suffix], mx=keras_nets.build_mx, numeric=True)
    assert result, result.report()
    graph = result.tf_graph
    assert graph.own_weights and graph.images.shape.as_list() == [1, 16, 16, 3]
    assert graph.logits.op.type == "BiasAdd"  # Dense(activation='softmax'): the logits before the softmax
    assert _folded(result) == FOLDED
    numeric = result.numeric
    assert numeric["weights"] == "the TF model file's own weights" and numeric["failed"] == 0
    assert numeric["transfer"]["set"] == 11 and not numeric["transfer"]["problems"]
    assert result.framework_params == {"tf": 933, "mx": 933}


def _lambda_model(marker):
    """The network with a Lambda whose code writes ``marker`` (built here once: the test removes it)."""
    scale = eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x * {keras_nets.RESIDUAL_SCALE})[1]")
    inputs = tf_keras.Input((16, 16, 3), name="images")
    net = tf_keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    net = tf_keras.layers.Lambda(scale, name="marker_scale")(net)
    net = tf_keras.layers.GlobalAveragePooling2D(name="avg_pool")(net)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(5, name="logits")(net))


@pytest.mark.parametrize("suffix", ["h5", "keras"])
def test_a_keras_file_with_lambda_code_is_refused_and_its_code_never_runs(tmp_path, suffix):
    marker = tmp_path / "lambda_ran.txt"
    model = _lambda_model(marker)
    path = tmp_path / f"lambda.{suffix}"
    model.save(str(path))
    marker.unlink()  # building the model ran the lambda once; from here on only loading could
    with pytest.raises(UsageError) as error:
        verify(tf=str(path), mx=keras_nets.build_mx)
    message = str(error.value)
    assert "1 Lambda layer (marker_scale)" in message and "--trust-keras-code" in message
    assert not marker.exists()
    graph = tf_files.read_model_file(str(path), options=tf_files.LoadOptions(trust_keras_code=True))
    assert marker.exists()  # trusted: the saved code did run while the model was rebuilt (it was code)
    assert [record.kind for record in graph.records if record.name.startswith("marker_scale")] == [Kind.SCALE]


def test_layers_of_keras_applications_load_without_naming_them(tmp_path):
    from tf_keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    inputs = tf_keras.Input((8, 8, 3), name="images")
    left = tf_keras.layers.Conv2D(4, 1, name="left")(inputs)
    right = tf_keras.layers.Conv2D(4, 1, name="right")(inputs)
    net = CustomScaleLayer(0.17, name="block_scale")([left, right])
    net = tf_keras.layers.GlobalAveragePooling2D(name="avg_pool")(net)
    path = tmp_path / "app_layer.h5"
    tf_keras.Model(inputs, tf_keras.layers.Dense(3, name="logits")(net)).save(str(path))
    assert "CustomScaleLayer" in keras_models.application_objects()
    graph = tf_files.read_model_file(str(path))
    kinds = [record.kind for record in graph.records]
    assert Kind.SCALE in kinds and Kind.ADD in kinds and graph.logits.shape.as_list() == [1, 3]


def test_an_unknown_custom_layer_is_named_with_the_way_to_supply_it(tmp_path):
    module = tmp_path / "my_layers.py"
    module.write_text("import tf_keras\n\n\nclass Doubler(tf_keras.layers.Layer):\n"
                      "    def call(self, inputs):\n        return inputs * 2.0\n")
    objects = keras_models.module_objects(str(module))
    inputs = tf_keras.Input((8, 8, 3), name="images")
    net = objects["Doubler"](name="double")(tf_keras.layers.Conv2D(4, 1, name="conv")(inputs))
    net = tf_keras.layers.GlobalAveragePooling2D(name="avg_pool")(net)
    path = tmp_path / "custom.keras"
    tf_keras.Model(inputs, tf_keras.layers.Dense(3, name="logits")(net)).save(str(path))
    with pytest.raises(UsageError, match="custom Keras layer Doubler, .* --keras-objects FILE.py"):
        tf_files.read_model_file(str(path))
    graph = tf_files.read_model_file(str(path), options=tf_files.LoadOptions(keras_objects=str(module)))
    assert [record.kind for record in graph.records if record.name.startswith("double")] == [Kind.SCALE]


def test_a_tf2_savedmodel_of_a_keras_model_is_inlined_frozen_and_named_after_its_variables(tmp_path):
    """A TF2 SavedModel computes inside functions: its serving signature is inlined, frozen and renamed."""
    path = tmp_path / "saved_keras"
    keras_nets.keras_model(16, 5).save(str(path), save_format="tf")
    result = verify(tf=str(path), mx=keras_nets.build_mx, numeric=True)
    assert result, result.report()
    assert _folded(result) == FOLDED  # records named after the variables' layers (not 'unknown_3')
    assert result.numeric["transfer"]["set"] == 11 and result.numeric["failed"] == 0


def test_a_global_mean_pairs_with_a_whole_map_pool_and_flatten(saved):
    """GlobalAveragePooling2D (a mean, N x C) against MXNet's global Pooling + Flatten: one layer, numerically equal."""
    result = verify(tf=saved["h5"], mx=keras_nets.build_mx_pooled, numeric=True)
    assert result, result.report()
    assert any("taken as one mean" in note for note in result.equivalences)
    pair = next(p for p in result.pairs if p.tf is not None and p.tf.kind == Kind.MEAN)
    assert pair.mx is not None and pair.mx.name == "flatten" and pair.mx.shape == (1, 8)
    assert result.numeric_report.layer("flatten").result


def test_a_lambda_inside_a_wrapper_is_found_too(tmp_path):
    """A Lambda nested in a TimeDistributed wrapper sits outside the model's layer list: still refused."""
    marker = tmp_path / "wrapped_lambda_ran.txt"
    code = eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x * 2.0)[1]")
    inputs = tf_keras.Input((2, 8, 8, 3), name="frames")
    net = tf_keras.layers.TimeDistributed(tf_keras.layers.Lambda(code, name="inner_code"), name="wrapper")(inputs)
    path = tmp_path / "wrapped.h5"
    tf_keras.Model(inputs, net).save(str(path))
    marker.unlink()
    assert keras_models.code_layers(keras_models.saved_config(path)) == ["inner_code"]
    with pytest.raises(UsageError, match=r"1 Lambda layer \(inner_code\)"):
        tf_files.read_model_file(str(path))
    assert not marker.exists()
