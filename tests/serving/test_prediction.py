"""Tests of porting.serving / porting.predict on the session's short digits run.

The central check: predict's scores, computed from the source PNG files with the
manifest's preprocessing, equal the scores of the training Module fed by the validation
ImageRecordIter on the same images.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

from porting.data import iterators
from porting.cli import predict
from porting.serving import model_loading, prediction
from porting.serving.predictor import Predictor
from porting.training import checkpoint, symbol_heads  # noqa: E402
from porting.data.manifest import load_manifest, sha256_file  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(digits_model):
    return model_loading.load_model(digits_model.model_dir / "model")


@pytest.fixture(scope="module")
def predictor(model):
    return Predictor(model, batch_size=16)


def _val_files(digits_data, n=None):
    items = prediction.read_list(digits_data / "val.lst", digits_data / "digits_src")
    return items[:n] if n else items


def test_predict_scores_equal_module_scores_on_the_validation_records(model, predictor, digits_data):
    n = 16
    files = [p for p, _ in _val_files(digits_data, n)]
    ours = predictor.scores(np.stack([prediction.preprocess(model, p) for p in files]))

    # The training symbol in a Module, fed by the validation iterator (records in .lst order).
    manifest = load_manifest(digits_data)
    mod = mx.mod.Module(model.symbol, data_names=("data",), label_names=(symbol_heads.LABEL_NAME,))
    mod.bind(data_shapes=[("data", (n, *manifest.data_shape))], label_shapes=[(symbol_heads.LABEL_NAME, (n,))],
             for_training=False)
    mod.set_params(model.arg_params, model.aux_params)
    batch = next(iter(iterators.make_split_iterator(manifest, "val", n)))
    mod.forward(batch, is_train=False)
    theirs = mod.get_outputs()[0].asnumpy()

    assert ours.shape == (n, 10)
    # The predictor serves with the residual scales folded into the up-projections (porting.threads):
    # one per residual block (repeats 1/1/1: Repeat, Repeat_1, Repeat_2, and the last Block8, scale 1.0).
    assert sorted(name.split("/")[1] for name in predictor.folded) == ["Block8", "Repeat", "Repeat_1", "Repeat_2"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    labels = [y for _, y in _val_files(digits_data, n)]
    np.testing.assert_array_equal(batch.label[0].asnumpy().astype(int), labels)


def test_eval_on_val_equals_the_training_run_validation(digits_model, digits_data, capsys):
    assert predict.main(["--model", str(digits_model.model_dir / "model"), "--eval",
                         str(digits_data / "val.lst")]) == 0
    out = capsys.readouterr().out
    last = digits_model.rows[-1]
    assert f"179 images, top-1 {last['val_top1']:.4f}, top-5 {last['val_top5']:.4f}" in out
    assert "cross-entropy" in out


def test_top_k_output_and_training_images_are_marked(digits_model, digits_data, capsys):
    train_img = prediction.read_list(digits_data / "train.lst", digits_data / "digits_src")[0][0]
    val_img = _val_files(digits_data, 1)[0][0]
    assert predict.main(["--model", str(digits_model.model_dir / "model"), "--epoch", "1", "--top-k", "3",
                         str(val_img), str(train_img)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.count("(") == 3 for line in lines)
    assert lines[0].startswith(f"{val_img}: ") and "training split" not in lines[0]
    assert lines[1].endswith("[in the training split]")


def test_eval_refuses_training_images_unless_told(digits_model, digits_data, tmp_path, capsys):
    lst = tmp_path / "mixed.lst"
    train_lines = (digits_data / "train.lst").read_text().splitlines()[:3]
    val_lines = (digits_data / "val.lst").read_text().splitlines()[:5]
    lst.write_text("\n".join(val_lines + train_lines) + "\n")
    args = ["--model", str(digits_model.model_dir / "model"), "--eval", str(lst),
            "--root", str(digits_data / "digits_src")]
    assert predict.main(args) == 2
    err = capsys.readouterr().err
    assert "refused: 3 of 8 images are in the model's training split" in err and "--allow-train-images" in err
    assert predict.main(args + ["--allow-train-images"]) == 0
    out = capsys.readouterr().out
    assert "8 images" in out and "note: 3 of these images are in the training split" in out


def test_undecodable_image_is_named_and_the_others_still_predicted(digits_model, digits_data, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    good = _val_files(digits_data, 1)[0][0]
    code = predict.main(["--model", str(digits_model.model_dir / "model"), str(bad), str(good), str(text),
                         str(tmp_path / "missing.png")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out.startswith(f"{good}: ")
    errors = [line for line in captured.err.strip().splitlines() if not line.startswith("runtime: ")]
    assert len(errors) == 3 and "runtime: mxnet (the default: no runtime measurement recorded" in captured.err
    assert errors[0].startswith(f"error: {bad}: cannot be decoded") and "truncated PNG" in errors[0]
    assert errors[1].startswith(f"error: {text}: cannot be decoded")
    assert "missing.png: cannot read it" in errors[2]


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_checkpoint_and_epoch_errors(digits_model, tmp_path, capsys):
    d = digits_model.model_dir
    assert predict.main(["--model", str(d / "model"), "--epoch", "7", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "epoch 7 is not a complete checkpoint" in err and "Available: 1, 2" in err
    assert predict.main(["--model", str(tmp_path / "model"), str(tmp_path / "x.png")]) == 2
    assert "is not a model directory written by porting.train" in capsys.readouterr().err
    assert predict.main(["--model", str(d / "other"), str(tmp_path / "x.png")]) == 2
    assert "holds the checkpoints of prefix 'model', not 'other'" in capsys.readouterr().err
    copy = _copy_model(d, tmp_path / "copy")
    (copy / "model-0002.params").unlink()
    with pytest.raises(model_loading.PredictError, match="model-0002.params not found"):
        model_loading.load_model(copy / "model", 2)


def test_mismatched_params_are_named(digits_model, tmp_path):
    copy = _copy_model(digits_model.model_dir, tmp_path / "copy")
    arg, aux = checkpoint.load_params_file(copy / "model-0002.params")
    arg["InceptionResnetV2/Logits/Logits_weight"] = mx.nd.zeros((5, 1536))
    del arg["InceptionResnetV2/Conv2d_1a_3x3_weight"]
    arg["Extra_weight"] = mx.nd.zeros((1,))
    blob = {f"arg:{k}": v for k, v in arg.items()} | {f"aux:{k}": v for k, v in aux.items()}
    mx.nd.save(str(copy / "model-0002.params"), blob)
    with pytest.raises(model_loading.PredictError, match="differs from the params file checkpoint.json recorded"):
        model_loading.load_model(copy / "model", 2)
    record = json.loads((copy / "checkpoint.json").read_text())  # as if the run itself had written it
    record["epochs"]["2"]["params"] = sha256_file(copy / "model-0002.params")
    (copy / "checkpoint.json").write_text(json.dumps(record))
    with pytest.raises(model_loading.PredictError) as e:
        model_loading.load_model(copy / "model", 2)
    msg = str(e.value)
    assert "does not fit its symbol" in msg
    assert "missing arg: InceptionResnetV2/Conv2d_1a_3x3_weight" in msg
    assert "unexpected arg: Extra_weight" in msg
    assert "InceptionResnetV2/Logits/Logits_weight (file (5, 1536), network (10, 1536))" in msg


def test_manifest_that_does_not_belong_to_the_model(digits_model, digits_data, tmp_path):
    d = digits_model.model_dir
    model_loading.load_model(d / "model", manifest=digits_data)  # the data it was trained on: fine
    other = tmp_path / "other" / "manifest.json"
    other.parent.mkdir()
    raw = json.loads((digits_data / "manifest.json").read_text())
    raw["fingerprint"] = "f" * 64
    other.write_text(json.dumps(raw))
    with pytest.raises(model_loading.PredictError, match=r"manifest .* does not belong to model .*fingerprint ffffff"):
        model_loading.load_model(d / "model", manifest=other)
    copy = _copy_model(d, tmp_path / "copy")
    (copy / "data" / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(model_loading.PredictError, match="does not belong to the model"):
        model_loading.load_model(copy / "model")
