"""End-to-end tests of ``python -m porting.compare`` through ``main(argv)``.

Users' builders are written to files under ``tmp_path``: a tiny slim network and
its MXNet port (a correct one and one with two defects), plus builders that
break the contract in each way the CLI must report with exit code 2. One test
runs the registered reduced network through the CLI, its TF graph served from
the session's cache (``tests/support/broken_ports.GRAPH_CACHE``), and one runs a bug
report's reproduction snippet in a fresh interpreter.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from porting import compat  # noqa: F401  (shims first)
from porting.frameworks import tf_reader
from porting.cli.compare import main
from porting.frameworks.models import MODELS

from tests.support import broken_ports as bp

ROOT = Path(__file__).resolve().parents[2]
#: The tiny builder modules every command-line test here uses.
TINY_TF, TINY_MX = ROOT / "tests" / "support" / "tiny_tf.py", ROOT / "tests" / "support" / "tiny_mx.py"
STATUSES = {"match", "shape_mismatch", "attr_mismatch", "only_tf", "only_mx"}


@pytest.fixture(scope="module")
def builders(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("builders")
    (folder / "syntax_error.py").write_text("def build(:\n")
    return {"tf": str(TINY_TF), "mx": str(TINY_MX),
            "syntax": str(folder / "syntax_error.py")}


def tiny(builders, tf="build", mx="build", *extra) -> list[str]:
    return ["--tf", f"{builders['tf']}:{tf}", "--mx", f"{builders['mx']}:{mx}", "--size", "8",
            "--classes", "5", *extra]


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ formats

def test_text_passes_with_exit_0(builders, capsys):
    code, out, _ = run(tiny(builders), capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("porting compare: build vs build at 8x8, 5 classes")
    assert re.fullmatch(r"PASSED \| (\d+)/\1 layers match", lines[-1])
    for name in ("Tiny/Conv2d_1a_3x3", "Tiny/MaxPool_2a_4x4", "Tiny/Logits"):
        assert name in out
    assert "TF layer" in out and "MX layer" in out


def test_text_fails_with_exit_1_and_names_the_layers(builders, capsys):
    code, out, _ = run(tiny(builders, mx="broken"), capsys)
    assert code == 1
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("FAILED | ") and "shape mismatch" in verdict and "attribute mismatch" in verdict
    assert "windows shifted" in out


def _json(argv, capsys) -> tuple[int, dict]:
    code, out, _ = run(argv + ["--format", "json"], capsys)
    return code, json.loads(out)


def _check_schema(document: dict, only_problems: bool = False) -> None:
    assert document["verdict"] in ("match", "mismatch")
    summary = document["summary"]
    counts = {status: summary[status] for status in STATUSES}
    assert sum(counts.values()) == summary["rows"]
    rows = document["rows"]
    if not only_problems:
        assert len(rows) == summary["rows"]
        for status in STATUSES:
            assert sum(1 for row in rows if row["status"] == status) == counts[status]
    else:
        assert len(rows) == summary["rows"] - counts["match"]
    assert [row["index"] for row in rows] == sorted(row["index"] for row in rows)
    for row in rows:
        assert {"index", "status", "tf", "mx", "note"} <= set(row)
        assert row["status"] in STATUSES
        for side in ("tf", "mx"):
            if row[side] is not None:
                assert {"name", "op", "shape"} <= set(row[side])
                assert all(isinstance(dim, int) for dim in row[side]["shape"])
        assert (row["tf"] is None) == (row["status"] == "only_mx")
        assert (row["mx"] is None) == (row["status"] == "only_tf")
    assert (document["verdict"] == "match") == (counts["match"] == summary["rows"])


def test_json_schema_and_counts(builders, capsys):
    code, document = _json(tiny(builders), capsys)
    assert code == 0
    _check_schema(document)
    assert document["verdict"] == "match"
    code, document = _json(tiny(builders, mx="broken"), capsys)
    assert code == 1
    _check_schema(document)
    assert document["verdict"] == "mismatch"
    by_name = {row["tf"]["name"]: row for row in document["rows"] if row["tf"]}
    conv = by_name["Tiny/Conv2d_1a_3x3"]
    assert conv["status"] == "attr_mismatch" and conv["defects"][0]["field"] == "pads"
    assert by_name["Tiny/MaxPool_2a_4x4"]["status"] == "shape_mismatch"


def test_json_only_problems(builders, capsys):
    code, document = _json(tiny(builders, "build", "broken", "--only-problems"), capsys)
    assert code == 1
    _check_schema(document, only_problems=True)
    assert document["rows"] and all(row["status"] != "match" for row in document["rows"])


def test_markdown_renders_the_same_rows(builders, capsys):
    _, document = _json(tiny(builders, mx="broken"), capsys)
    code, out, _ = run(tiny(builders, "build", "broken", "--format", "markdown"), capsys)
    assert code == 1
    assert out.startswith("# porting compare: ")
    assert f"**{document['verdict_line']}**" in out
    rows_part = out.split("\n## ", 1)[0]  # later sections (lint findings) have tables of their own
    table = [[cell.strip() for cell in line.strip("|").split("|")]
             for line in rows_part.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    totals = [cells for cells in table if cells[1].startswith("total")]
    rows = [cells for cells in table if not cells[1].startswith("total")]
    assert len(rows) == document["summary"]["rows"]
    for cells, row in zip(rows, document["rows"]):
        assert cells[0] == str(row["index"]) and cells[9] == row["status"]
        assert cells[7].split(" ")[0] == ("--" if row["params"] is None else f"{row['params']:,}")
    tf_total = f"{document['cost']['tf']['params']:,}"
    assert [cells[7] for cells in totals] == ([tf_total] if document["cost"]["agree"] else
                                              [tf_total, f"{document['cost']['mx']['params']:,}"])


def test_only_problems_text(builders, capsys):
    code, out, _ = run(tiny(builders, "build", "broken", "--only-problems"), capsys)
    assert code == 1
    assert "Tiny/Logits" not in out.split("\n", 1)[1].rsplit("\n", 2)[0]  # a matching row: hidden
    assert "Tiny/Conv2d_1a_3x3" in out


def test_end_points_view(builders, capsys):
    code, out, _ = run(tiny(builders, "build", "broken", "--end-points"), capsys)
    assert code == 1
    header, _, body = out.partition("\nend point ")
    table = body.split("\n\n")[0].splitlines()[2:]  # after the header and the dashes; lint comes later
    assert [line.split() for line in table] == [
        ["Conv2d_1a_3x3", "1x8x4x4", "1x8x4x4", "match"],
        ["MaxPool_2a_4x4", "1x8x1x1", "1x8x2x2", "shape_mismatch"],
        ["Logits", "1x5", "1x5", "match"]]  # end points only: no Flatten row
    code, out, _ = run(tiny(builders, "build", "build", "--end-points", "--format", "markdown"), capsys)
    assert code == 0 and "| end point" in out


def test_out_file(builders, capsys, tmp_path):
    target = tmp_path / "report.json"
    code, out, _ = run(tiny(builders, "build", "build", "--format", "json", "--out", str(target)), capsys)
    assert code == 0
    assert out.startswith("PASSED | ")
    assert json.loads(target.read_text())["verdict"] == "match"


# ------------------------------------------------------------------ bug reports

@pytest.fixture(scope="module")
def bug_reports(builders, tmp_path_factory) -> tuple[int, list[Path]]:
    folder = tmp_path_factory.mktemp("bugs")
    code = main(tiny(builders, "build", "broken", "--bug-reports", str(folder)))
    return code, sorted(folder.glob("*.md"))


def test_bug_reports_one_file_per_defect(bug_reports):
    code, files = bug_reports
    assert code == 1
    rows = [path for path in files if not path.name.startswith("finding")]
    # One file per root cause: the conv, the pool (the flatten after it only inherits its size, and is listed in it)
    assert [path.name.split("_", 2)[1] for path in rows] == ["attr", "shape"]
    conv = rows[0].read_text()
    assert conv.startswith("# Port defect: attr_mismatch at Tiny/Conv2d_1a_3x3")
    assert "| layer | Tiny/Conv2d_1a_3x3 | Tiny/Conv2d_1a_3x3 |" in conv
    assert "- expected (TF): `(0, 1, 0, 1)`" in conv and "- actual (MXNet): `(1, 1, 1, 1)`" in conv
    assert "TF SAME at 8x8" in conv  # the padding arithmetic, both sides
    assert "suggested fix: `mx.sym.pad(" in conv and "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)" in conv
    assert "```python" in conv
    pool = rows[1].read_text()
    assert "- expected (TF): `1x8x1x1`" in pool and "- actual (MXNet): `1x8x2x2`" in pool
    assert "| inherits from #2 |" in pool
    assert "kernel" in pool


def test_bug_report_snippet_reproduces_the_difference(bug_reports, tmp_path):
    """The conv's snippet, run alone in a fresh interpreter, shows TF and MXNet disagree."""
    _, files = bug_reports
    text = files[0].read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TF (1, 8, 4, 4) MXNet (1, 8, 4, 4)" in done.stdout
    difference = float(re.search(r"max abs diff ([0-9.eE+-]+)", done.stdout).group(1))
    assert difference > 1e-2, done.stdout


def test_no_bug_reports_when_the_port_matches(builders, capsys, tmp_path):
    code, _, err = run(tiny(builders, "build", "build", "--bug-reports", str(tmp_path / "none")), capsys)
    assert code == 0
    assert not list((tmp_path / "none").glob("*.md")) if (tmp_path / "none").exists() else True
    assert "wrote 0 bug reports" in err


# ------------------------------------------------------------------ exit code 2

def test_unknown_model_lists_the_available_ones(capsys):
    code, _, err = run(["irv3"], capsys)
    assert code == 2
    assert "unknown model 'irv3'" in err and "Available:" in err
    for name in MODELS:
        assert name in err


@pytest.mark.parametrize("case, argv, message", [
    ("missing file", lambda b: ["--tf", "no/such/file.py:build", "--mx", f"{b['mx']}:build"],
     "does not exist"),
    ("no function", lambda b: ["--tf", f"{b['tf']}:nope", "--mx", f"{b['mx']}:build"],
     "has no function 'nope'. Functions there: build, detached, raises, slow, unsupported, wrong_type"),
    ("not path:function", lambda b: ["--tf", b["tf"], "--mx", f"{b['mx']}:build"], "path/to/file.py:function"),
    ("unimportable", lambda b: ["--tf", f"{b['syntax']}:build", "--mx", f"{b['mx']}:build"],
     "cannot import"),
    ("TF builder raises", lambda b: tiny(b, tf="raises"), "the TF builder raised ValueError: boom in the TF builder"),
    ("MX builder raises", lambda b: tiny(b, mx="raises"),
     "the MX builder raised RuntimeError: boom in the MX builder"),
    ("TF wrong type", lambda b: tiny(b, tf="wrong_type"), "must return (logits, end_points)"),
    ("MX wrong type", lambda b: tiny(b, mx="wrong_type"), "must return an mx.sym.Symbol, got list"),
    ("no data input", lambda b: tiny(b, mx="no_data"), "no input variable named 'data'"),
    ("bad format", lambda b: tiny(b, "build", "build", "--format", "html"), "--format must be one of"),
    ("bad size", lambda b: ["--tf", f"{b['tf']}:build", "--mx", f"{b['mx']}:build", "--size", "8x"],
     "--size must be N or HxW"),
])
def test_bad_input_exits_2(case, argv, message, builders, capsys):
    code, out, err = run(argv(builders), capsys)
    assert code == 2, (case, out, err)
    assert message in err, err
    assert err.startswith("error: ")
    assert out == ""


# ------------------------------------------------------------------ a registered model

def test_registered_model_exit_0(monkeypatch, irv2_reduced_result, capsys):
    """The reduced registered pair through the CLI: PASSED, exit 0 (TF graph from the session cache)."""
    bp.GRAPH_CACHE.seed(bp.tf_reduced.__name__, irv2_reduced_result.tf_graph)
    monkeypatch.setattr(tf_reader, "read_graph", bp.GRAPH_CACHE)
    built = len(bp.GRAPH_CACHE.built)
    code, out, _ = run(["inception_resnet_v2_reduced", "--only-problems"], capsys)
    assert code == 0
    assert out.strip().splitlines()[-1] == (f"PASSED | {len(irv2_reduced_result.rows)}/"
                                            f"{len(irv2_reduced_result.rows)} layers match")
    assert len(bp.GRAPH_CACHE.built) == built


def test_list_models(capsys):
    code, out, _ = run(["--list"], capsys)
    assert code == 0
    assert [line.split()[0] for line in out.strip().splitlines()] == list(MODELS)


def test_module_entry_point_usage_error():
    """``python -m porting.compare`` itself: a usage error exits 2 without building anything."""
    done = subprocess.run([sys.executable, "-m", "porting.compare", "no_such_model"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Available:" in done.stderr


# ------------------------------------------------------------------ --debug and progress


def test_debug_shows_the_traceback(builders, capsys):
    code, _, err = run(tiny(builders, tf="raises") + ["--debug"], capsys)
    assert code == 2
    assert "Traceback" in err and "ValueError: boom in the TF builder" in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: the TF builder raised ValueError: boom in the TF builder"]


def test_progress_steps_on_a_terminal_and_off_with_no_progress(builders, capsys):
    """Bars name the step being run (as on a terminal); --no-progress and a non-terminal stderr show none."""
    from porting import progress

    try:
        progress.configure(True)
        code, out, err = run(tiny(builders, "build", "build", "--numeric"), capsys)
        assert code == 0
        for step in ("compare", "build TF graph", "read MXNet symbol", "numeric parity", "compare layers"):
            assert step in err, step
        assert out.strip().splitlines()[-1].startswith("PASSED")  # the report itself has no bar in it
        progress.configure(True)
        code, _, err = run(tiny(builders, "build", "build", "--no-progress"), capsys)
        assert code == 0 and err == ""
    finally:
        progress.configure(None)
    code, _, err = run(tiny(builders), capsys)  # pytest's stderr is no terminal
    assert code == 0 and err == ""
