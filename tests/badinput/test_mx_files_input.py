"""Bad MXNet model files for ``python -m porting.compare --mx FILE``: one ``error:`` line, exit 2.

A ``-symbol.json`` without parameters, a corrupt JSON, an ``.onnx`` that does not parse, parameters
whose names do not fit the symbol, ``--mx-params`` without a symbol JSON. The symbol is the tiny
port of tests/support/tiny_mx.py, saved as ``Module.save_checkpoint`` saves one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from porting import compat
from porting.cli import compare as compare_cli

ROOT = Path(__file__).resolve().parents[2]
TINY_TF = ROOT / "tests" / "support" / "tiny_tf.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from porting.frameworks import mx_files
    from tests.support import tiny_mx

    mx = compat.import_mx()
    folder = tmp_path_factory.mktemp("mxfiles")
    symbol = tiny_mx.build(5)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=(1, 3, 8, 8))
    args = {name: np.zeros(shape, np.float32) for name, shape in zip(symbol.list_arguments(), arg_shapes)
            if name != "data"}
    good, params = mx_files.save_checkpoint(folder / "tiny", symbol, args, {})
    renamed = {f"other_{name}": value for name, value in args.items()}
    _, misfit = mx_files.save_checkpoint(folder / "misfit", symbol, renamed, {})
    lonely = folder / "lonely-symbol.json"
    symbol.save(str(lonely))
    corrupt = folder / "corrupt-symbol.json"
    corrupt.write_text('{"nodes": [')
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a protobuf at all" * 8)
    not_params = folder / "not-0000.params"
    not_params.write_text("hello")
    assert mx is not None
    return {"good": good, "params": params, "misfit": misfit, "lonely": lonely, "corrupt": corrupt,
            "garbage": garbage, "not_params": not_params}


CASES = {
    "symbol without params": (lambda f: ["--mx", str(f["lonely"])], "no parameters for"),
    "corrupt symbol json": (lambda f: ["--mx", str(f["corrupt"])], "is not an MXNet symbol JSON"),
    "onnx that does not parse": (lambda f: ["--mx", str(f["garbage"])], "is not an ONNX model"),
    "params that do not fit": (lambda f: ["--mx", str(f["good"]), "--mx-params", str(f["misfit"])],
                               "does not fit the symbol"),
    "params not an MXNet file": (lambda f: ["--mx", str(f["good"]), "--mx-params", str(f["not_params"])],
                                 "is not an MXNet .params file"),
    "params missing": (lambda f: ["--mx", str(f["good"]), "--mx-params", str(f["good"]) + ".nope"],
                       "--mx-params: no such file"),
    "params with a builder": (lambda f: ["--mx", f"{ROOT / 'tests' / 'support' / 'tiny_mx.py'}:build",
                                         "--mx-params", str(f["params"])], "--mx-params goes with --mx PREFIX-symbol"),
    "mx file missing": (lambda f: ["--mx", str(f["good"]) + ".json"], "--mx: no such file"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_mx_file_is_one_error_line(kind, files, capsys):
    argv, message = CASES[kind]
    code = compare_cli.main(["--tf", f"{TINY_TF}:build", *argv(files), "--size", "8", "--classes", "5"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def test_a_good_symbol_file_compares(files, capsys):
    """The same files, well formed: the comparison runs (exit 0, the tiny port matches)."""
    code = compare_cli.main(["--tf", f"{TINY_TF}:build", "--mx", str(files["good"]), "--size", "8", "--classes", "5"])
    assert code == 0, capsys.readouterr()
