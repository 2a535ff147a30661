"""Bad input for ``compare``, ``verify()``, ``convert`` and ``autoport``: one clear line, nothing half-written.

One parametrised case per kind of bad input. Each command case calls the command's
``main(argv)`` in-process and asserts its exit code, exactly one ``error:`` line on
stderr that names the problem, no traceback, and that the output folder holds nothing
new. ``verify()`` cases assert one ``UsageError`` whose message names the problem. The
networks are tiny (8x8 input, a conv, a pool, a dense layer), written to files as users
write theirs. Subprocess tests cover what only a process shows: Ctrl-C (SIGINT) while the
TF graph is being built (exit 130, one line, no traceback, no output file), and that bad
arguments are refused before TensorFlow or MXNet is even imported.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from porting import compat  # noqa: F401  (shims first)
from porting import util
from porting.cli import autoport as autoport_cli
from porting.cli import compare as compare_cli
from porting.cli import convert as convert_cli
from porting.core import memory
from porting.verifier.api import verify

ROOT = Path(__file__).resolve().parents[2]
#: The tiny builder modules every command-line test here uses.
TINY_TF, TINY_MX = ROOT / "tests" / "support" / "tiny_tf.py", ROOT / "tests" / "support" / "tiny_mx.py"
MARKER_ENV = "PORTING_TEST_MARKER"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The builder files, a regular file (a path under it cannot be created), and tiny checkpoints."""
    folder = tmp_path_factory.mktemp("bad_input_files")
    (folder / "syntax_error.py").write_text("def build(:\n")
    (folder / "a_file.txt").write_text("a regular file\n")
    (folder / "a_folder").mkdir()
    tf_path, mx_path = str(TINY_TF), str(TINY_MX)

    from porting.core.match import match
    from porting.frameworks import mx_reader, tf_reader
    from porting.frameworks.models import load_builder
    from porting.verifier import weights
    from porting.verifier.conversion import tf_to_mx

    tf_graph = tf_reader.read_graph(load_builder(f"{tf_path}:build", "tf"), (8, 8), 5, 1, False)
    mx_graph = mx_reader.read_symbol(load_builder(f"{mx_path}:build", "mx"), (8, 8), 5)
    plan = weights.plan_transfer(tf_graph, mx_graph, match(tf_graph.records, mx_graph.records))
    checkpoint = weights.write_tf_checkpoint(tf_graph, weights.seeded_values(plan, 1), folder / "tf" / "model.ckpt")
    mx_prefix = str(folder / "mx" / "tiny")
    tf_to_mx(checkpoint, mx_prefix, tf=f"{tf_path}:build", mx=f"{mx_path}:build", size=8, classes=5,
             tf_graph=tf_graph)
    return {"tf": tf_path, "mx": mx_path, "syntax": str(folder / "syntax_error.py"),
            "file": str(folder / "a_file.txt"), "folder": str(folder / "a_folder"),
            "ckpt": checkpoint, "mx_ckpt": mx_prefix}


@pytest.fixture
def out(tmp_path) -> Path:
    """The output folder of a case: it must hold nothing new afterwards."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def _run(main, argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_error(code: int, err: str, expected_code: int, message: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == expected_code, (code, err)
    assert len(errors) == 1, err
    assert message in errors[0], errors[0]
    assert "Traceback" not in err, err


# ------------------------------------------------------------------ python -m porting.compare


def _tiny(f, tf="build", mx="build", *extra) -> list[str]:
    return ["--tf", f"{f['tf']}:{tf}", "--mx", f"{f['mx']}:{mx}", "--size", "8", "--classes", "5", *extra]


#: kind -> (argv from the fixture files and the output folder, exit code, what the error line says)
COMPARE_CASES = {
    "unknown model": (lambda f, o: ["irv3"], 2, "unknown model 'irv3'. Available: inception_resnet_v2"),
    "classes 0": (lambda f, o: _tiny(f, "build", "build", "--classes", "0"), 2,
                  "--classes must be a positive integer, got 0"),
    "classes not a number": (lambda f, o: _tiny(f, "build", "build", "--classes", "ten"), 2,
                             "argument --classes: invalid int value: 'ten'"),
    "format not a choice": (lambda f, o: _tiny(f, "build", "build", "--format", "html"), 2,
                            "--format must be one of text, markdown, json, got 'html'"),
    "size malformed": (lambda f, o: _tiny(f, "build", "build", "--size", "8x"), 2, "--size must be N or HxW"),
    "size negative": (lambda f, o: _tiny(f, "build", "build", "--size", "-3"), 2, "got '-3'"),
    "size absurd": (lambda f, o: _tiny(f, "build", "build", "--size", "1000000"), 2,
                    "an input of 1x3x1000000x1000000 float32 values needs about"),
    "batch 0": (lambda f, o: _tiny(f, "build", "build", "--batch", "0"), 2, "--batch must be a positive integer"),
    "rtol negative": (lambda f, o: _tiny(f, "build", "build", "--rtol", "-1"), 2,
                      "--rtol must be a non-negative number"),
    "tf without mx": (lambda f, o: ["--tf", f"{f['tf']}:build", "--size", "8"], 2, "--tf without --mx"),
    "mx without tf": (lambda f, o: ["--mx", f"{f['mx']}:build", "--size", "8"], 2, "--mx without --tf"),
    "builder file missing": (lambda f, o: ["--tf", "no/such/file.py:build", "--mx", f"{f['mx']}:build"], 2,
                             "builder file no/such/file.py does not exist"),
    "builder function missing": (lambda f, o: _tiny(f, "nope"), 2, "has no function 'nope'. Functions there:"),
    "builder not path:function": (lambda f, o: ["--tf", f["tf"], "--mx", f"{f['mx']}:build"], 2,
                                  "--tf must be path/to/file.py:function"),
    "builder file does not import": (lambda f, o: ["--tf", f"{f['syntax']}:build", "--mx", f"{f['mx']}:build"],
                                     2, "cannot import"),
    "TF builder raises": (lambda f, o: _tiny(f, "raises"), 2, "the TF builder raised ValueError: boom"),
    "MX builder raises": (lambda f, o: _tiny(f, "build", "raises"), 2, "the MX builder raised RuntimeError: boom"),
    "TF builder returns a tensor": (lambda f, o: _tiny(f, "wrong_type"), 2, "must return (logits, end_points)"),
    "MX builder returns a list": (lambda f, o: _tiny(f, "build", "wrong_type"), 2,
                                  "must return an mx.sym.Symbol, got list"),
    "MX symbol without data": (lambda f, o: _tiny(f, "build", "no_data"), 2, "no input variable named 'data'"),
    "TF logits ignore images": (lambda f, o: _tiny(f, "detached"), 2,
                                "the TF builder 'detached' returned logits (Logits/BiasAdd) that do not depend on "
                                "`images`"),
    "MX output ignores data": (lambda f, o: _tiny(f, "build", "detached"), 2,
                               "the MX builder 'detached''s output fc does not depend on the input variable 'data'"),
    "MX shapes do not infer (json)": (lambda f, o: _tiny(f, "build", "kernel_too_big", "--format", "json"), 2,
                                      "MXNet shape inference failed for input (1, 3, 8, 8)"),
    "weights missing": (lambda f, o: _tiny(f, "build", "build", "--weights", str(o / "none.ckpt")), 2,
                        "--weights: no TF checkpoint at"),
    "lint-only with no-lint": (lambda f, o: _tiny(f, "build", "build", "--lint-only", "--no-lint"), 2,
                               "--lint-only and --no-lint exclude each other"),
    "out is a folder": (lambda f, o: _tiny(f, "build", "build", "--out", f["folder"]), 2,
                        "is a folder; expected a file path"),
    "out under a file": (lambda f, o: _tiny(f, "build", "build", "--out", f"{f['file']}/report.txt"), 2,
                         "is a file, not a folder"),
    "out not writable": (lambda f, o: _tiny(f, "build", "build", "--out", "/proc/porting-test/report.txt"), 2,
                         "cannot write in /proc"),
    "bug-reports is a file": (lambda f, o: _tiny(f, "build", "build", "--bug-reports", f["file"]), 2,
                              "is a file; expected a folder"),
    "unknown option": (lambda f, o: _tiny(f, "build", "build", "--colour"), 2,
                       "unrecognized arguments: --colour"),
}


@pytest.mark.parametrize("kind", list(COMPARE_CASES))
def test_compare_bad_input(kind, files, out, capsys):
    argv, expected_code, message = COMPARE_CASES[kind]
    code, stdout, err = _run(compare_cli.main, argv(files, out), capsys)
    _assert_one_error(code, err, expected_code, message)
    assert stdout == ""  # nothing on stdout, e.g. no "infer_shape error" print from MXNet before the JSON
    assert _listing(out) == set()


def test_compare_numeric_that_does_not_fit_is_refused_before_allocating(files, out, capsys, monkeypatch):
    """The estimate (both sides' activations, the weights) against the available memory, before the run."""
    monkeypatch.setattr(memory, "available_bytes", lambda: memory.input_bytes(1, (8, 8)) + 1)
    code, stdout, err = _run(compare_cli.main, _tiny(files, "build", "build", "--numeric", "--out",
                                                     str(out / "report.txt")), capsys)
    _assert_one_error(code, err, 2, "numeric parity at 8x8, batch 1 needs about")
    assert "available; use a smaller --size or --batch" in err
    assert stdout == "" and _listing(out) == set()


def test_compare_disk_full_while_writing_the_report(files, out, capsys, monkeypatch):
    """ENOSPC from the write itself (the OS boundary): one line, no report, no temporary file."""
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device", self.handle.name)

    def full_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullDisk(handle) if "w" in mode else handle

    monkeypatch.setattr(util, "open", full_open, raising=False)
    code, stdout, err = _run(compare_cli.main, _tiny(files, "build", "build", "--out", str(out / "report.txt")),
                             capsys)
    _assert_one_error(code, err, 2, "No space left on device")
    assert "free some space or write elsewhere" in err
    assert _listing(out) == set()


def test_compare_end_points_are_honoured_in_json(files, capsys):
    """--end-points with --format json: the end points instead of the per-layer rows (it was ignored)."""
    code, stdout, err = _run(compare_cli.main, _tiny(files, "build", "build", "--end-points", "--format", "json"),
                             capsys)
    assert code == 0, err
    document = json.loads(stdout)
    assert "rows" not in document
    assert [point["name"] for point in document["end_points"]] == ["Conv2d_1a_3x3", "MaxPool_2a_4x4", "Logits"]
    assert document["verdict"] == "match"


# ------------------------------------------------------------------ verify()


def _sides(f) -> dict:
    return {"tf": f"{f['tf']}:build", "mx": f"{f['mx']}:build"}


#: kind -> (keyword arguments of verify() from the fixture files, what the UsageError says)
VERIFY_CASES = {
    "classes 0": (lambda f: dict(_sides(f), size=8, classes=0), "--classes must be a positive integer, got 0"),
    "classes negative": (lambda f: dict(_sides(f), size=8, classes=-2), "--classes must be a positive integer"),
    "classes not an int": (lambda f: dict(_sides(f), size=8, classes=2.5), "--classes must be a positive integer"),
    "size with 3 values": (lambda f: dict(_sides(f), size=[64, 64, 3]), "--size must be N or HxW"),
    "size negative": (lambda f: dict(_sides(f), size=-3), "got -3"),
    "size a float": (lambda f: dict(_sides(f), size=64.0), "got 64.0"),
    "size a malformed string": (lambda f: dict(_sides(f), size="8x"), "got '8x'"),
    "size absurd": (lambda f: dict(_sides(f), size=10 ** 7), "needs about"),
    "tf_graph not a TfGraph": (lambda f: dict(_sides(f), tf_graph="x"), "tf_graph must be a TfGraph"),
    "batch 0": (lambda f: dict(_sides(f), size=8, batch=0), "--batch must be a positive integer"),
    "unknown model": (lambda f: dict(model="irv3"), "unknown model 'irv3'. Available:"),
    "model not a name": (lambda f: dict(model=3), "model must be a registered name"),
    "tf without mx": (lambda f: dict(tf=_sides(f)["tf"], size=8), "--tf without --mx"),
    "mx without tf": (lambda f: dict(mx=_sides(f)["mx"], size=8), "--mx without --tf"),
    "builder not a function or path": (lambda f: dict(tf=3, mx=_sides(f)["mx"]), "--tf must be"),
    "rtol not a number": (lambda f: dict(_sides(f), size=8, rtol="tight"), "--rtol must be a non-negative number"),
    "seed not an int": (lambda f: dict(_sides(f), size=8, seed=1.5), "--seed must be an integer"),
    "is_training not a bool": (lambda f: dict(_sides(f), size=8, is_training="yes"), "is_training must be True"),
    "weights missing": (lambda f: dict(_sides(f), size=8, weights="/no/such/model.ckpt"),
                        "--weights: no TF checkpoint at"),
}


@pytest.mark.parametrize("kind", list(VERIFY_CASES))
def test_verify_bad_argument_raises_one_usage_error(kind, files):
    kwargs, message = VERIFY_CASES[kind]
    with pytest.raises(util.UsageError) as caught:
        verify(**kwargs(files))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_verify_tf_graph_of_another_size(files):
    from porting.frameworks import tf_reader
    from porting.frameworks.models import load_builder

    graph = tf_reader.read_graph(load_builder(_sides(files)["tf"], "tf"), (8, 8), 5)
    with pytest.raises(util.UsageError, match="tf_graph was built for batch x H x W 1x8x8, not 1x9x9"):
        verify(mx=_sides(files)["mx"], tf_graph=graph, size=9, classes=5)


# ------------------------------------------------------------------ python -m porting.convert


def _forward(f, o, *extra) -> list[str]:
    return ["--tf", f"{f['tf']}:build", "--mx", f"{f['mx']}:build", "--size", "8", "--classes", "5",
            "--tf-checkpoint", f["ckpt"], "--out", str(o / "tiny"), *extra]


def _backward(f, o, *extra) -> list[str]:
    return ["--tf", f"{f['tf']}:build", "--size", "8", "--classes", "5", "--mx-checkpoint", f["mx_ckpt"],
            "--out-tf-checkpoint", str(o / "back" / "model.ckpt"), *extra]


CONVERT_CASES = {
    "no direction": (lambda f, o: [], 2, "give either --tf-checkpoint PATH --out PREFIX"),
    "both directions": (lambda f, o: _forward(f, o, "--mx-checkpoint", f["mx_ckpt"]), 2, "give either"),
    "checkpoint without out": (lambda f, o: ["--tf-checkpoint", f["ckpt"]], 2,
                               "TF -> MXNet needs both --tf-checkpoint PATH and --out PREFIX"),
    "unknown model": (lambda f, o: ["--model", "irv3", "--tf-checkpoint", f["ckpt"], "--out", str(o / "x")], 2,
                      "unknown model 'irv3'"),
    "model and builders": (lambda f, o: _forward(f, o, "--model", "inception_resnet_v2"), 2,
                           "give either --model or --tf/--mx builders, not both"),
    "mx builder without tf": (lambda f, o: ["--mx", f"{f['mx']}:build", "--tf-checkpoint", f["ckpt"], "--out",
                                            str(o / "x")], 2, "custom builders need --tf and --mx"),
    "classes 0": (lambda f, o: _forward(f, o, "--classes", "0"), 2, "--classes must be a positive integer"),
    "epoch negative": (lambda f, o: _backward(f, o, "--epoch", "-1"), 2, "--epoch must be non-negative"),
    "size malformed": (lambda f, o: _forward(f, o, "--size", "eight"), 2, "--size must be N or HxW"),
    "tf checkpoint missing": (lambda f, o: ["--model", "inception_resnet_v2_reduced", "--tf-checkpoint",
                                            str(o / "none.ckpt"), "--out", str(o / "x")], 2,
                              "--tf-checkpoint: no TF checkpoint at"),
    "mx checkpoint missing": (lambda f, o: ["--mx-checkpoint", str(o / "none"), "--out-tf-checkpoint",
                                            str(o / "t")], 2, "MXNet checkpoint file"),
    "builder file missing": (lambda f, o: ["--tf", "no/such.py:build", "--mx", f"{f['mx']}:build",
                                           "--tf-checkpoint", f["ckpt"], "--out", str(o / "x")], 2,
                             "builder file no/such.py does not exist"),
    "TF builder raises": (lambda f, o: ["--tf", f"{f['tf']}:raises", "--mx", f"{f['mx']}:build", "--size", "8",
                                        "--tf-checkpoint", f["ckpt"], "--out", str(o / "x")], 2,
                          "the TF builder raised ValueError: boom"),
    "out under a file": (lambda f, o: _forward(f, o)[:-1] + [f"{f['file']}/tiny"], 2, "is a file, not a folder"),
    "out symbol path is a folder": (lambda f, o: _forward(f, o)[:-1] + [f"{f['folder']}/x"], 2,
                                    "x-symbol.json is a folder; expected a file path"),
    "out-tf-checkpoint under a file": (lambda f, o: _backward(f, o)[:-1] + [f"{f['file']}/model.ckpt"], 2,
                                       "is a file, not a folder"),
    "wrong number of classes": (lambda f, o: _forward(f, o, "--classes", "7"), 1, "parameter problem"),
}


@pytest.fixture
def symbol_folder(files):
    """``<folder>/x-symbol.json`` as a folder: the file convert would write is a folder."""
    target = Path(files["folder"]) / "x-symbol.json"
    target.mkdir(exist_ok=True)
    yield
    target.rmdir()


@pytest.mark.parametrize("kind", list(CONVERT_CASES))
def test_convert_bad_input(kind, files, out, capsys, symbol_folder):
    argv, expected_code, message = CONVERT_CASES[kind]
    code, _, err = _run(convert_cli.main, argv(files, out), capsys)
    _assert_one_error(code, err, expected_code, message)
    assert _listing(out) == set()


def test_convert_disk_full_leaves_no_file(files, out, capsys, monkeypatch):
    """ENOSPC when the converted files are renamed into place: neither file, no temporary file."""
    real_replace = os.replace

    def full(source, target, *args, **kwargs):
        if str(target).startswith(str(out)):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    code, _, err = _run(convert_cli.main, _forward(files, out), capsys)
    _assert_one_error(code, err, 2, "No space left on device")
    assert _listing(out) == set()


# ------------------------------------------------------------------ python -m porting.autoport


def _autoport(f, o, tf="build", *extra) -> list[str]:
    return ["--tf", f"{f['tf']}:{tf}", "--size", "8", "--classes", "5", "--no-training-hints",
            "--out", str(o / "tiny"), *extra]


AUTOPORT_CASES = {
    "no source": (lambda f, o: ["--out", str(o / "x")], 2, "give --slim-net NAME or --tf FILE:FUNCTION"),
    "no out": (lambda f, o: ["--slim-net", "alexnet_v2"], 2, "--out PREFIX is required"),
    "both sources": (lambda f, o: ["--slim-net", "alexnet_v2", "--tf", f"{f['tf']}:build", "--out", str(o / "x")],
                     2, "not allowed with argument"),
    "unknown network": (lambda f, o: ["--slim-net", "resnet_v9", "--out", str(o / "x")], 2,
                        "unknown network 'resnet_v9'. Available: alexnet_v2"),
    "size 0": (lambda f, o: ["--slim-net", "alexnet_v2", "--out", str(o / "x"), "--size", "0"], 2,
               "--size must be"),
    "size absurd": (lambda f, o: _autoport(f, o, "build", "--size", "99999x99999"), 2, "needs about"),
    "classes 0": (lambda f, o: _autoport(f, o, "build", "--classes", "0"), 2, "--classes must be a positive"),
    "atol negative": (lambda f, o: _autoport(f, o, "build", "--atol", "-0.1"), 2,
                      "--atol must be a non-negative number"),
    "builder file missing": (lambda f, o: ["--tf", "no/such/file.py:build", "--out", str(o / "x")], 2,
                             "does not exist"),
    "builder function missing": (lambda f, o: _autoport(f, o, "nope"), 2, "has no function 'nope'"),
    "TF builder raises": (lambda f, o: _autoport(f, o, "raises"), 2, "the TF builder raised ValueError"),
    "TF logits ignore images": (lambda f, o: _autoport(f, o, "detached"), 2, "do not depend on `images`"),
    "checkpoint missing": (lambda f, o: _autoport(f, o, "build", "--checkpoint", str(o / "none.ckpt")), 2,
                           "--checkpoint: no TF checkpoint at"),
    "checkpoint for another class count": (lambda f, o: _autoport(f, o, "build", "--classes", "7",
                                                                  "--checkpoint", f["ckpt"]), 2,
                                           "has other shapes than the graph"),
    "out under a file": (lambda f, o: _autoport(f, o)[:-1] + [f"{f['file']}/tiny"], 2, "is a file, not a folder"),
    "out not writable": (lambda f, o: _autoport(f, o)[:-1] + ["/proc/porting-test/tiny"], 2,
                         "cannot write in /proc"),
}


@pytest.mark.parametrize("kind", list(AUTOPORT_CASES))
def test_autoport_bad_input(kind, files, out, capsys):
    argv, expected_code, message = AUTOPORT_CASES[kind]
    code, stdout, err = _run(autoport_cli.main, argv(files, out), capsys)
    _assert_one_error(code, err, expected_code, message)
    assert stdout == ""
    assert _listing(out) == set()


def test_autoport_proof_that_does_not_fit_is_refused_before_the_weights(files, out, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: memory.input_bytes(1, (8, 8)) + 1)
    code, _, err = _run(autoport_cli.main, _autoport(files, out), capsys)
    _assert_one_error(code, err, 2, "numeric parity at 8x8, batch 1 needs about")
    assert _listing(out) == set()


def test_autoport_unsupported_ops_keep_their_report_and_exit_1(files, out, capsys):
    """Not a usage error: every untranslatable op listed, a complete report written, no symbol."""
    code, _, err = _run(autoport_cli.main, _autoport(files, out, "unsupported"), capsys)
    assert code == 1
    assert "2 TF ops cannot be translated" in err and "Cumsum x1" in err and "Sin x1" in err
    assert "Traceback" not in err
    assert _listing(out) == {"tiny-report.md", "tiny-report.json"}
    report = json.loads((out / "tiny-report.json").read_text())
    assert report["autoport"]["unsupported"]["count"] == 2


# ------------------------------------------------------------------ processes


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
    env.pop("PORTING_DEBUG", None)
    return env


BEFORE_FRAMEWORKS = {
    "compare: size": ("porting.cli.compare", ["--tf", "{tf}:build", "--mx", "{mx}:build", "--size", "0"]),
    "compare: tf without mx": ("porting.cli.compare", ["--tf", "{tf}:build"]),
    "compare: out under a file": ("porting.cli.compare", ["--out", "{file}/r.txt"]),
    "convert: size": ("porting.cli.convert", ["--model", "inception_resnet_v2_reduced", "--size", "1x",
                                              "--tf-checkpoint", "{ckpt}", "--out", "{folder}/x"]),
    "autoport: out under a file": ("porting.cli.autoport", ["--slim-net", "alexnet_v2", "--out", "{file}/x"]),
}


@pytest.mark.parametrize("kind", list(BEFORE_FRAMEWORKS))
def test_bad_arguments_are_refused_before_the_frameworks_load(kind, files):
    module, argv = BEFORE_FRAMEWORKS[kind]
    argv = [arg.format(**files) for arg in argv]
    code = (f"import sys; from {module} import main; code = main({argv!r}); "
            "print(sorted(m for m in ('tensorflow', 'mxnet') if m in sys.modules)); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "[]"  # neither framework was imported
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")], done.stderr


INTERRUPTED = {
    "compare": lambda f, o: ["porting.compare", "--tf", f"{f['tf']}:slow", "--mx", f"{f['mx']}:build", "--size",
                             "8", "--classes", "5", "--out", str(o / "report.txt")],
    "convert": lambda f, o: ["porting.convert", "--tf", f"{f['tf']}:slow", "--mx", f"{f['mx']}:build", "--size", "8",
                             "--classes", "5", "--tf-checkpoint", f["ckpt"], "--out", str(o / "tiny")],
    "autoport": lambda f, o: ["porting.autoport", "--tf", f"{f['tf']}:slow", "--size", "8", "--classes", "5",
                              "--out", str(o / "tiny")],
}


@pytest.mark.parametrize("command", list(INTERRUPTED))
def test_ctrl_c_while_building_the_tf_graph(command, files, out, tmp_path):
    """SIGINT during the TF build: exit 130, one line, no traceback, no output file."""
    marker = tmp_path / "started"
    process = subprocess.Popen([sys.executable, "-m", *INTERRUPTED[command](files, out)], cwd=ROOT,
                               env=_env(**{MARKER_ENV: str(marker)}), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), process.communicate(timeout=60)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and lines[0].startswith("interrupted; nothing half-written; "), stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert not [line for line in stderr.splitlines() if line.startswith("error:")], stderr
    assert stdout == ""
    assert _listing(out) == set()
