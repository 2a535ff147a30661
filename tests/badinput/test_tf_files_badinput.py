"""Bad TF model files for ``python -m porting.compare --tf FILE``: one ``error:`` line each, exit 2, no traceback.

The files are small and written here: the tiny slim network's checkpoint, frozen graph and
SavedModel (tests/support/tf_model_files.py), then broken copies of them.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from porting import compat  # noqa: F401  (shims first)
from porting.cli import compare as compare_cli
from tests.support import tf_model_files

ROOT = Path(__file__).resolve().parents[2]
TINY_MX = f"{ROOT / 'tests' / 'support' / 'tiny_mx.py'}:build"
TINY_TF = f"{ROOT / 'tests' / 'support' / 'tiny_tf.py'}:build"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad_tf_files")
    written = tf_model_files.write_all(folder / "good")
    (folder / "corrupt.pb").write_bytes(b"\x08\x96\x01 this is not a GraphDef \xff\xfe" * 8)
    (folder / "corrupt.h5").write_bytes(b"not an HDF5 file at all")
    lonely = folder / "meta_only"
    lonely.mkdir()
    shutil.copy(written["meta"], lonely / "model.meta")
    index_only = folder / "index_only"
    index_only.mkdir()
    shutil.copy(f"{written['checkpoint']}.index", index_only / "model.index")
    (folder / "empty_dir").mkdir()
    import tf_keras

    inputs = tf_keras.Input((8, 8, 3), name="images")
    net = tf_keras.layers.Lambda(lambda x: x * 0.5, name="halve")(inputs)
    net = tf_keras.layers.GlobalAveragePooling2D()(net)
    tf_keras.Model(inputs, tf_keras.layers.Dense(5)(net)).save(str(folder / "lambda.h5"))
    written.update(corrupt_pb=str(folder / "corrupt.pb"), corrupt_h5=str(folder / "corrupt.h5"),
                   meta_only=str(lonely / "model.meta"), index_only=str(index_only / "model"),
                   empty_dir=str(folder / "empty_dir"), lambda_h5=str(folder / "lambda.h5"), missing=str(folder / "no_such_model.pb"),
                   no_image=tf_model_files.no_image_input(folder / "features.pb"),
                   two_heads=tf_model_files.two_heads(folder / "two_heads.pb"))
    return written


def _compare(tf, *extra) -> list[str]:
    return ["--tf", tf, "--mx", TINY_MX, *extra]


#: kind -> (argv from the files, what the one error line says)
CASES = {
    "missing file": (lambda f: _compare(f["missing"]), "no_such_model.pb does not exist or is not a file"),
    "corrupt frozen graph": (lambda f: _compare(f["corrupt_pb"]), "corrupt.pb is not a readable frozen GraphDef"),
    "corrupt Keras file": (lambda f: _compare(f["corrupt_h5"]), "corrupt.h5 is not a readable Keras .h5 file"),
    ".meta without its data": (lambda f: _compare(f["meta_only"]),
                               "cannot restore the variables of the checkpoint"),
    "checkpoint without .meta": (lambda f: _compare(f["index_only"]), "has no"),
    "folder that is no SavedModel": (lambda f: _compare(f["empty_dir"]), "is a directory without saved_model.pb"),
    "no rank-4 float input": (lambda f: _compare(f["no_image"]),
                              "has no float rank-4 (NHWC image) input placeholder; placeholders: features"),
    "several candidate outputs": (lambda f: _compare(f["two_heads"]),
                                  "has 2 candidate outputs (Tiny/Logits/BiasAdd (BiasAdd ?x5), Aux/BiasAdd"),
    "unknown output name": (lambda f: _compare(f["frozen"], "--tf-output", "Tiny/Nope"),
                            "--tf-output Tiny/Nope: no such op"),
    "input name that is no image": (lambda f: _compare(f["frozen"], "--tf-input", "Tiny/Logits/weights"),
                                    "is not a float rank-4 (NHWC) placeholder; candidates: images ?x8x8x3"),
    "file option on a builder": (lambda f: ["--tf", TINY_TF, "--mx", TINY_MX, "--tf-output", "x", "--size", "8"],
                                 "--tf-output applies to a TF model file given as --tf"),
    "checkpoint weights with a model file": (lambda f: _compare(f["frozen"], "--numeric", "--weights",
                                                                f["checkpoint"]),
                                             "--weights applies to a TF builder; the model file"),
    "Keras file with Lambda code": (lambda f: _compare(f["lambda_h5"]),
                                    "has 1 Lambda layer (halve) whose saved Python code would run on loading; "
                                    "refused: a model file is data. Pass --trust-keras-code"),
    "size the file fixes otherwise": (lambda f: _compare(f["frozen"], "--size", "16"),
                                      "--size 16x16: the input of"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_compare_bad_tf_file(kind, files, capsys):
    argv, message = CASES[kind]
    code = compare_cli.main(argv(files))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, (code, err)
    assert len(errors) == 1, err
    assert message in errors[0], errors[0]
    assert "Traceback" not in err, err
