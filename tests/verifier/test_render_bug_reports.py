"""porting.verifier.render.bug_reports on a hand-made comparison: one file per defect."""
from __future__ import annotations

from porting.verifier import lint
from porting.verifier.render import bug_report, write_bug_reports

from tests.verifier import handmade


def test_one_file_per_defect_row(tmp_path):
    result = handmade.result()
    folder = tmp_path / "nested" / "reports"  # created on the way
    written = write_bug_reports(result, folder)
    problems = [row for row in result.rows if row.status != "match"]
    assert [path.name for path in written] == [
        "0001_shape_mismatch_Net_b.md", "0002_attr_mismatch_" + handmade.LONG.replace("/", "_") + ".md",
        "0003_only_tf_Net_pool.md", "0004_only_mx_batchnorm0.md"]
    assert len(written) == len(problems)
    assert all(path.parent == folder for path in written)
    assert not [path for path in folder.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_row_report_structure():
    result = handmade.result()
    text = bug_report(result.rows[1], result)
    lines = text.splitlines()
    assert lines[0] == "# Port defect: shape_mismatch at Net/b"
    assert f"Found by `porting compare` ({handmade.TITLE}). Kind of defect: **channels**." in lines
    assert "| layer | Net/b | Net/b |" in lines and "| output (NCHW) | 1x4x8x8 | 1x5x8x8 |" in lines
    assert "## channels" in lines and "- suggested fix: `num_filter=4`" in lines
    assert "## numeric parity" not in text
    only_mx = bug_report(result.rows[4], result)
    assert "| layer | -- | batchnorm0 |" in only_mx and "| kernel / stride / pads | -- | -- |" in only_mx


def test_passes_add_one_file_per_error_or_warning_and_the_numeric_root_cause(tmp_path):
    result = handmade.result(lint_pass=True, numeric=True)
    written = write_bug_reports(result, tmp_path)
    findings = [path.name for path in written if path.name.startswith("finding_")]
    assert findings == ["finding_000_bn_eps_Net_a.md", "finding_001_bn_momentum_Net_b.md",
                        "finding_002_numeric_Net_b.md"]  # the info finding has none
    assert len(written) == 4 + len(findings)
    lint_text = (tmp_path / findings[1]).read_text()
    assert lint_text.startswith("# Port lint warning: bn_momentum at Net/b")
    assert "| layer | Net/b | Net/b_mx |" in lint_text
    numeric_text = (tmp_path / findings[2]).read_text()
    assert numeric_text.startswith(f"# Numeric parity failure: {handmade.TITLE}")
    assert "**Net/b** (conv)" in numeric_text and "- likely cause: a hint" in numeric_text
    row_text = (tmp_path / "0001_shape_mismatch_Net_b.md").read_text()
    assert "## numeric parity" in row_text and '"first_divergence": true' in row_text


def test_lint_only_bug_reports_are_the_findings_alone(tmp_path):
    result = handmade.result(lint_pass=True, numeric=True)
    written = lint.write_bug_reports(result, tmp_path)
    assert [path.name for path in written] == ["finding_000_bn_eps_Net_a.md", "finding_001_bn_momentum_Net_b.md"]
    assert written[0].read_text() == lint.bug_report(result.lint.findings[0], result)
