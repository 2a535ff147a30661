"""Bad ``--onnx`` paths and combinations for ``python -m porting.convert``: one clear line, exit 2, nothing written.

The checks run before any graph is built, on the tiny builders of tests/support and a
tiny TF checkpoint; each case asserts the exit code, exactly one ``error:`` line naming the
problem, no traceback, nothing on stdout, and that the output folder holds nothing new.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from porting.cli import convert as convert_cli

ROOT = Path(__file__).resolve().parents[2]
TINY_TF, TINY_MX = ROOT / "tests" / "support" / "tiny_tf.py", ROOT / "tests" / "support" / "tiny_mx.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A TF checkpoint of the tiny network (8x8 input, 5 classes)."""
    from porting.core.match import match
    from porting.frameworks import mx_reader, tf_reader
    from porting.frameworks.models import load_builder
    from porting.verifier import weights

    tf_graph = tf_reader.read_graph(load_builder(f"{TINY_TF}:build", "tf"), (8, 8), 5, 1, False)
    mx_graph = mx_reader.read_symbol(load_builder(f"{TINY_MX}:build", "mx"), (8, 8), 5)
    plan = weights.plan_transfer(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records))
    folder = tmp_path_factory.mktemp("onnx_bad_input")
    return weights.write_tf_checkpoint(tf_graph, weights.seeded_values(plan, 1), folder / "tf" / "model.ckpt")


def _forward(checkpoint: str, out: Path, onnx: str) -> list[str]:
    return ["--tf", f"{TINY_TF}:build", "--mx", f"{TINY_MX}:build", "--size", "8", "--classes", "5",
            "--tf-checkpoint", checkpoint, "--out", str(out / "tiny"), "--onnx", onnx, "--no-progress"]


def _listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def _assert_one_error(capsys, code: int, message: str) -> None:
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2, captured.err
    assert len(errors) == 1 and message in errors[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_onnx_path_that_is_a_folder(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "model.onnx").mkdir(parents=True)
    code = convert_cli.main(_forward(checkpoint, out, str(out / "model.onnx")))
    _assert_one_error(capsys, code, f"--onnx {out / 'model.onnx'} is a folder; expected a file path")
    assert _listing(out) == {"model.onnx"}


def test_onnx_path_under_a_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "a_file").write_text("not a folder\n")
    code = convert_cli.main(_forward(checkpoint, out, str(tmp_path / "a_file" / "model.onnx")))
    _assert_one_error(capsys, code, "is a file, not a folder")
    assert _listing(out) == set()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder; /proc covers it below")
def test_onnx_path_in_a_read_only_folder(checkpoint, tmp_path, capsys):
    out, locked = tmp_path / "out", tmp_path / "locked"
    out.mkdir()
    locked.mkdir(mode=0o500)
    try:
        code = convert_cli.main(_forward(checkpoint, out, str(locked / "model.onnx")))
    finally:
        locked.chmod(0o700)
    _assert_one_error(capsys, code, f"cannot write in {locked}")
    assert _listing(out) == set() and _listing(locked) == set()


def test_onnx_path_that_cannot_be_written(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = convert_cli.main(_forward(checkpoint, out, "/proc/porting-test/model.onnx"))
    _assert_one_error(capsys, code, "--onnx /proc/porting-test/model.onnx: cannot write in /proc")
    assert _listing(out) == set()  # refused before the MXNet checkpoint was written


def test_onnx_with_the_mxnet_to_tf_direction(tmp_path, capsys):
    code = convert_cli.main(["--mx-checkpoint", str(tmp_path / "mx"), "--out-tf-checkpoint",
                             str(tmp_path / "tf" / "model.ckpt"), "--onnx", str(tmp_path / "m.onnx")])
    _assert_one_error(capsys, code, "--onnx exports the model a TF -> MXNet conversion writes")
    assert _listing(tmp_path) == set()
