"""``porting.predict`` on a model converted by ``porting.convert``: no ``checkpoint.json``, preprocessing given.

End to end: a slim Inception-ResNet-v2 (one residual block of each kind, SAME-padded stem, 32x32, 3
classes) with seeded random values is saved by a TF Saver, converted with ``python -m
porting.convert`` (in-process), and served with ``--size 32 --preprocess inception``;
its scores must equal TF's softmax on the same preprocessed input. Also: the
preprocessing presets against hand-computed values, missing flags, and images
streamed a batch at a time.
"""
from __future__ import annotations

import json
import re
import textwrap

import cv2
import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

from porting.cli import convert  # noqa: E402
from porting.cli import predict  # noqa: E402
from porting.serving import model_loading, prediction  # noqa: E402
from porting.serving.predictor import Predictor  # noqa: E402
from porting.serving.preprocessing import Preprocessing  # noqa: E402

SIZE, CLASSES, REPEATS = 32, 3, (1, 1, 1)

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


def _images(folder, n: int = 3) -> list:
    paths = []
    for i in range(n):
        path = folder / f"photo_{i}.png"
        rng = np.random.default_rng(100 + i)
        assert cv2.imwrite(str(path), rng.integers(0, 256, (37 + 5 * i, 45, 3), dtype=np.uint8))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """``(prefix, tf_logits_fn)``: the converted model and TF's scores for NHWC inputs, from the same checkpoint."""
    tf = compat.import_tf()
    from reference_tf import inception_resnet_v2 as irv2

    root = tmp_path_factory.mktemp("converted")
    graph = tf.Graph()
    with graph.as_default(), compat.fast_graph_building():
        images = tf.compat.v1.placeholder(tf.float32, (None, SIZE, SIZE, 3))
        logits, _ = irv2.build(images, CLASSES, is_training=False, repeats=REPEATS, align_feature_maps=True,
                               create_aux_logits=False)
        probabilities = tf.nn.softmax(logits)
        variables = tf.compat.v1.global_variables()
        rng = np.random.RandomState(0)
        assigns = []
        for var in variables:
            shape = var.shape.as_list()
            value = rng.uniform(0.5, 1.5, shape) if var.op.name.endswith("moving_variance") else \
                rng.normal(0.0, 0.1, shape)
            assigns.append(var.assign(value.astype(np.float32)))
        session = tf.compat.v1.Session(graph=graph)
        session.run(assigns)
        tf.compat.v1.train.Saver(variables).save(session, str(root / "slim" / "model.ckpt"))

    (root / "tf_builder.py").write_text(textwrap.dedent(TF_BUILDER))
    (root / "mx_builder.py").write_text(textwrap.dedent(MX_BUILDER))
    prefix = root / "mx" / "tiny"
    assert convert.main(["--tf", f"{root / 'tf_builder.py'}:build", "--mx", f"{root / 'mx_builder.py'}:get_symbol",
                         "--size", str(SIZE), "--classes", str(CLASSES), "--tf-checkpoint", str(root / "slim"),
                         "--out", str(prefix)]) == 0
    assert not (prefix.parent / "checkpoint.json").exists()  # a converted model, not a porting.train directory
    yield prefix, lambda nhwc: session.run(probabilities, {images: nhwc})
    session.close()


def test_converted_model_predicts_what_tf_computes(converted, tmp_path, capsys):
    prefix, tf_scores = converted
    paths = _images(tmp_path)
    assert predict.main(["--model", str(prefix), "--size", str(SIZE), "--preprocess", "inception",
                         "--top-k", str(CLASSES), "--json", *map(str, paths)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epoch"] == 0 and len(report["predictions"]) == 3
    pre = Preprocessing("inception", (3, SIZE, SIZE))
    want = tf_scores(np.stack([pre(p.read_bytes()).transpose(1, 2, 0) for p in paths]))
    for pred, expected in zip(report["predictions"], want):
        got = np.zeros(CLASSES)
        for name, score in pred["top"]:
            got[int(name)] = score
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert pred["in_training_split"] is False  # nothing is known about its training data


def test_converted_model_needs_its_preprocessing(converted, tmp_path, capsys):
    prefix, _ = converted
    image = _images(tmp_path, 1)[0]
    assert predict.main(["--model", str(prefix), str(image)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "has no checkpoint.json (not a porting.train model directory)" in err[0]
    assert "missing: --size HxW; --preprocess inception (slim's [-1, 1] scaling) or --mean-rgb R,G,B --std-rgb R,G,B" \
        in err[0]


def test_labels_name_the_classes(converted, tmp_path, capsys):
    prefix, _ = converted
    (tmp_path / "names.txt").write_text("daisy\nrose\ntulip\n")
    image = _images(tmp_path, 1)[0]
    assert predict.main(["--model", str(prefix), "--size", str(SIZE), "--mean-rgb", "127.5,127.5,127.5",
                         "--std-rgb", "127.5,127.5,127.5", "--labels", str(tmp_path / "names.txt"), "--top-k", "3",
                         str(image)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ") and {"daisy", "rose", "tulip"} == set(re.findall(r"(\w+) \(", line))


def test_inception_preset_is_slims_eval_preprocessing():
    """Central 87.5 % (tf.image.central_crop's integer offsets), bilinear to HxW, pixel / 127.5 - 1."""
    img = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])  # RGB content, stored as OpenCV's BGR
    got = Preprocessing("inception", (3, 16, 16))(buf.tobytes())
    top, left = int((40 - 40 * 0.875) / 2), int((48 - 48 * 0.875) / 2)  # 2, 3
    crop = img[top:40 - top, left:48 - left]
    want = cv2.resize(crop, (16, 16), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(got, want.transpose(2, 0, 1), atol=1e-6)
    assert got.min() >= -1.0 and got.max() <= 1.0


def test_mean_std_preset_resizes_crops_and_normalises():
    img = np.random.default_rng(2).integers(0, 256, (30, 60, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])
    pre = Preprocessing("mean-std", (3, 20, 20), mean_rgb=(120.0, 110.0, 100.0), std_rgb=(50.0, 60.0, 70.0),
                                   resize=24)
    got = pre(buf.tobytes())
    small = cv2.resize(img, (48, 24), interpolation=cv2.INTER_AREA)  # shorter side 24, aspect kept
    crop = small[2:22, 14:34].astype(np.float32)
    want = (crop - np.float32([120, 110, 100])) / np.float32([50, 60, 70])
    np.testing.assert_allclose(got, want.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)


def test_many_images_are_predicted_a_batch_at_a_time(converted, tmp_path):
    prefix, _ = converted
    options = model_loading.PreprocessOptions(size=(SIZE, SIZE), preprocess="inception")
    model = model_loading.load_model(prefix, preprocessing=options)
    assert model.classes == ["0", "1", "2"] and model.data_shape == (3, SIZE, SIZE)
    paths = _images(tmp_path, 5) + [tmp_path / "missing.png"]
    small, errors = prediction.predict_files(model, Predictor(model, batch_size=2), paths, top_k=3)
    large, _ = prediction.predict_files(model, Predictor(model, batch_size=8), paths, top_k=3)
    assert len(small) == 5 and len(errors) == 1 and "missing.png: cannot read it" in errors[0]
    for a, b in zip(small, large):
        assert a.path == b.path
        np.testing.assert_allclose([s for _, s in a.top], [s for _, s in b.top], rtol=1e-5)


def test_predict_shows_a_bar_on_a_terminal(converted, tmp_path, capsys):
    from porting import progress

    prefix, _ = converted
    paths = [str(p) for p in _images(tmp_path, 3)]
    argv = ["--model", str(prefix), "--size", str(SIZE), "--preprocess", "inception", *paths]
    progress.configure(True)
    try:
        assert predict.main(argv) == 0
        assert re.search(r"predict: +\d+%\|.*\| \d/3 \[\d\d:\d\d<", capsys.readouterr().err)
        assert predict.main(argv + ["--no-progress"]) == 0
        assert "predict:" not in capsys.readouterr().err
    finally:
        progress.configure(None)
