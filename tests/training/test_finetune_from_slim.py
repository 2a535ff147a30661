"""End to end: a tf.slim checkpoint -> porting.convert -> porting.train --pretrained with a new head.

The slim reference is built at the digits run's architecture (one block of each kind,
``align_feature_maps``, 32x32, no AuxLogits: the options of conftest's DIGITS_TRAIN_ARGS),
filled with seeded random values and saved with a TF Saver. No registered model has these
options, so the conversion goes through builder files passed with ``--tf``/``--mx``.
The 1001-class checkpoint is then fine-tuned for 10 digits through the CLI; the test checks
what the pretrained loader handed to the module (the TF values, HWIO -> OIHW, with the
1001-class logits left out) and that the run trained a 10-class head on top of them.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

from porting.cli import convert
from porting.cli import train as train_cli
from porting.training import checkpoint  # noqa: E402

SIZE = 32
REPEATS = (1, 1, 1)
SCOPE = "InceptionResnetV2"
CONV = f"{SCOPE}/Conv2d_1a_3x3"              # stem conv (HWIO kernel, BN without bias)
UP = f"{SCOPE}/Repeat_2/block8_1/Conv2d_1x1"  # block8 up-projection (conv with bias)
BN = f"{SCOPE}/Mixed_5b/Branch_0/Conv2d_1x1/BatchNorm"

TF_BUILDER = f"""
from reference_tf import inception_resnet_v2 as irv2


def build(images, num_classes, is_training=False):
    return irv2.build(images, num_classes, is_training=is_training, repeats={REPEATS!r},
                      align_feature_maps=True, create_aux_logits=False)
"""

MX_BUILDER = f"""
from mx_impl import inception_resnet_v2 as irv2


def get_symbol(num_classes):
    return irv2.get_symbol(num_classes, repeats={REPEATS!r}, align_feature_maps=True,
                           create_aux_logits=False, image_size=({SIZE}, {SIZE}))
"""


def _save_slim_checkpoint(prefix: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The slim reference (1001 classes) with seeded random values, saved by a TF Saver."""
    tf = compat.import_tf()
    from reference_tf import inception_resnet_v2 as irv2

    rng = np.random.RandomState(seed)
    graph = tf.Graph()
    with graph.as_default(), compat.fast_graph_building():
        images = tf.compat.v1.placeholder(tf.float32, (1, SIZE, SIZE, 3))
        irv2.build(images, 1001, is_training=False, repeats=REPEATS, align_feature_maps=True,
                   create_aux_logits=False)
        variables = tf.compat.v1.global_variables()
        values = {}
        for var in variables:
            shape = var.shape.as_list()
            if var.op.name.endswith("moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0.0, 0.1, shape)
            values[var.op.name] = value.astype(np.float32)
        assigns = [var.assign(values[var.op.name]) for var in variables]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(assigns)
            saver.save(sess, prefix)
    return values


@pytest.mark.slow
def test_finetune_from_converted_slim_checkpoint(digits_data, tmp_path, monkeypatch):
    # 1. the slim checkpoint, at the digits run's architecture
    tf_values = _save_slim_checkpoint(str(tmp_path / "slim" / "model.ckpt"))
    assert tf_values[f"{SCOPE}/Logits/Logits/weights"].shape == (1536, 1001)
    assert not any(name.startswith(f"{SCOPE}/AuxLogits") for name in tf_values)

    # 2. convert through builder files (no registered model is align + reduced repeats)
    (tmp_path / "tf_builder.py").write_text(textwrap.dedent(TF_BUILDER))
    (tmp_path / "mx_builder.py").write_text(textwrap.dedent(MX_BUILDER))
    converted = str(tmp_path / "converted" / "irv2")
    assert convert.main(["--tf", f"{tmp_path / 'tf_builder.py'}:build",
                         "--mx", f"{tmp_path / 'mx_builder.py'}:get_symbol",
                         "--size", str(SIZE), "--tf-checkpoint", str(tmp_path / "slim"),
                         "--out", converted]) == 0
    conv_arg, conv_aux = checkpoint.load_params_file(f"{converted}-0000.params")
    assert conv_arg[f"{SCOPE}/Logits/Logits_weight"].shape == (1001, 1536)

    # 3. fine-tune for the 10 digits; record what the pretrained loader hands to the module
    loaded = {}
    real_load = checkpoint.load_pretrained

    def recording_load(*args, **kwargs):
        loaded["arg"], loaded["aux"], loaded["fresh"] = result = real_load(*args, **kwargs)
        return result

    monkeypatch.setattr(checkpoint, "load_pretrained", recording_load)
    model_dir = tmp_path / "ft"
    lr = 1e-9  # > 0 as the CLI requires, small enough that one epoch leaves the trunk in place
    rc = train_cli.main(["--data", str(digits_data), "--model-dir", str(model_dir),
                         "--pretrained", converted, "--repeats", ",".join(map(str, REPEATS)),
                         "--align-feature-maps", "--no-aux-logits", "--epochs", "1",
                         "--batch-size", "8", "--max-batches", "3", "--lr", str(lr),
                         "--bn-momentum", "0.9", "--preprocess-threads", "1", "--log-every", "1"])
    assert rc == 0

    # the 1001-class logits were not loaded: the head is new, and only the head is
    head = [f"{SCOPE}/Logits/Logits_bias", f"{SCOPE}/Logits/Logits_weight"]
    assert loaded["fresh"] == head
    assert not set(head) & set(loaded["arg"])
    # every other parameter came from the checkpoint, and is the TF value (HWIO -> OIHW)
    assert set(loaded["arg"]) == set(conv_arg) - set(head)
    assert set(loaded["aux"]) == set(conv_aux)
    np.testing.assert_array_equal(loaded["arg"][f"{CONV}_weight"].asnumpy(),
                                  tf_values[f"{CONV}/weights"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(loaded["arg"][f"{UP}_weight"].asnumpy(),
                                  tf_values[f"{UP}/weights"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(loaded["arg"][f"{UP}_bias"].asnumpy(), tf_values[f"{UP}/biases"])
    np.testing.assert_array_equal(loaded["arg"][f"{BN}_beta"].asnumpy(), tf_values[f"{BN}/beta"])
    np.testing.assert_array_equal(loaded["aux"][f"{BN}_moving_mean"].asnumpy(), tf_values[f"{BN}/moving_mean"])
    np.testing.assert_array_equal(loaded["aux"][f"{BN}_moving_var"].asnumpy(),
                                  tf_values[f"{BN}/moving_variance"])

    # the saved epoch has a 10-class head on the (barely moved) converted trunk
    arg, _ = checkpoint.load_params_file(model_dir / "model-0001.params")
    assert arg[f"{SCOPE}/Logits/Logits_weight"].shape == (10, 1536)
    assert arg[f"{SCOPE}/Logits/Logits_bias"].shape == (10,)
    for name in (f"{CONV}_weight", f"{UP}_weight", f"{BN}_beta"):
        np.testing.assert_allclose(arg[name].asnumpy(), loaded["arg"][name].asnumpy(), rtol=1e-5, atol=1e-6)
