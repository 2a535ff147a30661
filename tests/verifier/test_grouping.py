"""Grouped reports: identical findings and identical row defects read as one line, one bug report.

Hand-made comparisons for the rules (a group of one renders exactly as a single finding always
did), then the acceptance case of issue 15: the corpus ResNet-50 port with one systematic defect,
batch-norm epsilon 2e-5 where slim has 1e-5 on every batch norm.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from porting.core.diff import Defect, LayerDiff, Side, Status
from porting.core.records import Kind
from porting.verifier import lint
from porting.verifier.render import (compact_layers, defect_summary_lines, render_json, render_markdown, render_text,
                                     row_groups, write_bug_reports)

from tests.verifier import handmade

BLOCKS = [f"IRv2/Repeat/block35_{n}/Conv2d_1x1" for n in range(1, 11)]


# ------------------------------------------------------------------ layer ranges

def test_runs_of_one_number_are_ranges():
    assert compact_layers(BLOCKS) == "IRv2/Repeat/block35_1..block35_10/Conv2d_1x1"
    assert compact_layers(["a/conv1", "a/conv2", "a/conv3", "b", "c/unit_1", "c/unit_2"]) == \
        "a/conv1..conv3, b, c/unit_1, c/unit_2"  # a run of two stays two names
    assert compact_layers(["x_1", "x_3", "x_4"]) == "x_1, x_3, x_4"  # not consecutive
    # Two numbers changing between neighbours break the run.
    assert compact_layers(["u_1/c1", "u_1/c2", "u_1/c3", "u_2/c1", "u_2/c2", "u_2/c3"]) == "u_1/c1..c3, u_2/c1..c3"
    names = [f"n{i}/x{i}" for i in range(6)]  # every name its own part
    assert compact_layers(names, limit=3) == "n0/x0, n1/x1, … (3 more) …, n5/x5"


# ------------------------------------------------------------------ findings

def _eps(layer: str) -> lint.Finding:
    return lint.Finding(layer, "bn_eps", lint.Severity.ERROR, "epsilon 0.001", "eps 1e-05",
                        f"the variance differs at {layer}.", "mx.sym.BatchNorm(..., eps=0.001)",
                        mx_layer=layer.replace("/", "_"))


def _with_findings(findings) -> object:
    result = handmade.result()
    return replace(result, lint=lint.LintResult(tuple(findings), lint.Options()))


def test_distinct_findings_render_as_before(tmp_path):
    """No two findings alike (our IRv2 pair's case): no group count, no 'distinct', no finding_groups."""
    result = handmade.result(lint_pass=True)
    findings = result.lint.findings
    assert [group.count for group in lint.group_findings(findings)] == [1, 1, 1]
    assert not lint.grouped(findings)
    text = render_text(result)
    assert "distinct" not in text and "layers:" not in text.split("Lint findings")[1]
    assert "finding_groups" not in json.loads(render_json(result))
    assert "finding_groups" not in json.loads(lint.render_lint_only(result, "json"))
    assert lint.group_bug_report(lint.group_findings(findings)[0], result) == lint.bug_report(findings[0], result)


def test_identical_findings_collapse_into_one_row_with_the_layers():
    findings = [_eps(name) for name in BLOCKS] + list(handmade.lint_result().findings[1:])
    result = _with_findings(findings)
    groups = lint.group_findings(findings)
    assert [group.count for group in groups] == [10, 1, 1]
    assert groups[0].layers == BLOCKS
    section = lint.render_section(findings, "text")
    assert section.splitlines()[1] == "Lint findings: lint FAILED | 10 errors, 1 warning, 1 info (3 distinct)"
    (row,) = [line for line in section.splitlines() if "bn_eps" in line]
    assert row.split()[:4] == ["error", "bn_eps", "10", "layers:"]  # the layers' cell wraps under it
    lines = section.splitlines()
    assert lines[lines.index(row) + 1].strip() == "IRv2/Repeat/block35_1..block35_10/Conv2d_1x1"
    assert len(lines) == 4 + 2 + 2  # blank, head, header, rule; the group (2 lines), two findings
    markdown = render_markdown(result)
    (row,) = [line for line in markdown.splitlines() if "bn_eps" in line]
    assert "10 layers: IRv2/Repeat/block35_1..block35_10/Conv2d_1x1" in row
    assert "(3 distinct)" in markdown
    document = json.loads(render_json(result))
    assert len(document["findings"]) == 12  # every finding kept
    first = document["finding_groups"][0]
    assert (first["group"], first["check"], first["count"], first["layers"]) == (0, "bn_eps", 10, BLOCKS)
    assert first["layers_compact"] == "IRv2/Repeat/block35_1..block35_10/Conv2d_1x1"
    assert [group["count"] for group in document["finding_groups"]] == [10, 1, 1]
    lint_only = json.loads(lint.render_lint_only(result, "json"))
    assert len(lint_only["findings"]) == 12 and lint_only["finding_groups"][0]["count"] == 10


def test_findings_differing_in_a_setting_are_not_grouped():
    other = replace(_eps(BLOCKS[1]), mx="eps 2e-05", message=f"the variance differs at {BLOCKS[1]}.")
    assert [group.count for group in lint.group_findings([_eps(BLOCKS[0]), other, _eps(BLOCKS[2])])] == [2, 1]


def test_one_bug_report_per_group_of_findings(tmp_path):
    findings = [_eps(name) for name in BLOCKS] + list(handmade.lint_result().findings[1:])
    result = _with_findings(findings)
    written = lint.write_bug_reports(result, tmp_path)
    assert [path.name for path in written] == ["finding_000_bn_eps_IRv2_Repeat_block35_1_Conv2d_1x1_and_9_more.md",
                                               "finding_001_bn_momentum_Net_b.md"]
    text = written[0].read_text()
    assert text.startswith("# Port lint error: bn_eps at 10 layers")
    assert all(f"| {name} | {name.replace('/', '_')} |" in text for name in BLOCKS)
    assert written[1].read_text() == lint.bug_report(findings[-2], result)  # a group of one: as before


# ------------------------------------------------------------------ rows

def _pads_row(index: int, name: str) -> LayerDiff:
    side = Side(name, "Conv2D", (1, 4, 4, 4), Kind.CONV, "3x3/2")
    defect = Defect("pads", "(0, 1, 0, 1)", "(1, 1, 1, 1)", "TF SAME at 8x8 pads (0, 1, 0, 1)",
                    "pad explicitly with mx.sym.pad(...)")
    return LayerDiff(index, side, replace(side, op="Convolution"), Status.ATTR_MISMATCH,
                     note="pads differ", matched_by="name", defects=(defect,))


def _with_rows(extra) -> object:
    result = handmade.result()
    return replace(result, rows=list(result.rows) + list(extra))


def test_identical_row_defects_one_bug_report_and_one_summary_line(tmp_path):
    extra = [_pads_row(5 + n, name) for n, name in enumerate(BLOCKS[:4])]
    result = _with_rows(extra)
    assert [len(group) for group in row_groups(result.rows)] == [1, 1, 1, 1, 4]
    written = write_bug_reports(result, tmp_path)
    assert [path.name for path in written][-1] == "0005_attr_mismatch_IRv2_Repeat_block35_1_Conv2d_1x1_and_3_more.md"
    assert len(written) == 5
    text = written[-1].read_text()
    assert text.startswith("# Port defect: attr_mismatch at 4 layers")
    assert "IRv2/Repeat/block35_1..block35_4/Conv2d_1x1" in text
    assert all(f"| {name} | {name} |" in text for name in BLOCKS[:4])
    assert "## pads" in text and "- expected (TF): `(0, 1, 0, 1)`" in text
    # The table keeps one row per layer; the summary under it names the defect once.
    text = render_text(result)
    assert sum(1 for line in text.splitlines() if line[:1].isdigit() and "Conv2d_1x1" in line) == 4
    lines = defect_summary_lines(result.rows)
    assert lines[0] == "defects: 2 distinct"
    assert lines[1] == ("  pads (0, 1, 0, 1) vs (1, 1, 1, 1) (attr_mismatch): 4 layers: "
                        "IRv2/Repeat/block35_1..block35_4/Conv2d_1x1")
    assert lines[2] == "  1 other defect on one layer each (see the rows above)"
    assert "\n".join(lines) in text
    assert "- pads (0, 1, 0, 1) vs (1, 1, 1, 1) (attr_mismatch): 4 layers" in render_markdown(result)


def test_no_defect_summary_unless_a_defect_repeats():
    for result in (handmade.result(problems=False), handmade.result()):
        assert defect_summary_lines(result.rows) == [] and "defects:" not in render_text(result)


# ------------------------------------------------------------------ acceptance: ResNet-50, eps on every BN

@pytest.fixture(scope="module")
def resnet_eps():
    """(the correct port's result, the mutant's result, the mutant's batch norms) of the corpus ResNet-50."""
    from porting.verifier.api import verify
    from tests.support.ports import common
    from tests.support.ports import resnet_v1_50 as port

    def eps_mutant(num_classes: int = port.CLASSES):
        """The port with eps 2e-5 on every BatchNorm (slim's resnet_arg_scope: 1e-5)."""
        document = json.loads(port.build(num_classes).tojson())
        for node in document["nodes"]:
            if node["op"] == "BatchNorm":
                node["attrs"]["eps"] = "2e-05"
        return common.mx.sym.load_json(json.dumps(document))

    batch_norms = [node["name"] for node in json.loads(eps_mutant().tojson())["nodes"] if node["op"] == "BatchNorm"]
    correct = verify(tf=port.tf_build, mx=port.build, title="resnet_v1_50 port", size=port.SIZE,
                     classes=port.CLASSES)
    mutant = verify(tf_graph=correct.tf_graph, tf=port.tf_build, mx=eps_mutant, title="resnet_v1_50 eps",
                    size=port.SIZE, classes=port.CLASSES)
    return correct, mutant, batch_norms


def _lint_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Lint findings:"))
    return lines[start:-1]  # up to the verdict line


def test_systematic_eps_defect_is_one_lint_row(resnet_eps):
    correct, mutant, batch_norms = resnet_eps
    eps = [f for f in mutant.findings if f.check == "bn_eps"]
    assert len(eps) == len(batch_norms) == 53  # every batch norm has the defect, each finding kept
    section = _lint_section(render_text(mutant))
    rows = [line for line in section if line.split()[:2] == ["error", "bn_eps"]]
    assert len(rows) == 1 and "53 layers:" in rows[0]
    # The defect adds one row (wrapped over a few lines) to what the correct port's lint section says.
    assert len(section) - len(_lint_section(render_text(correct))) <= 5
    groups = [group for group in lint.group_findings(mutant.findings) if group.first.check == "bn_eps"]
    assert len(groups) == 1 and groups[0].count == 53
    document = json.loads(render_json(mutant))
    assert sum(1 for f in document["findings"] if f["check"] == "bn_eps") == 53
    (group,) = [g for g in document["finding_groups"] if g["check"] == "bn_eps"]
    assert group["count"] == 53 and group["layers"] == [f.layer for f in eps]


def test_systematic_eps_defect_is_one_bug_report(resnet_eps, tmp_path):
    correct, mutant, _ = resnet_eps
    written = write_bug_reports(mutant, tmp_path / "mutant")
    eps_files = [path for path in written if "bn_eps" in path.name]
    assert len(eps_files) == 1 and eps_files[0].name.endswith("_and_52_more.md")
    text = eps_files[0].read_text()
    assert text.startswith("# Port lint error: bn_eps at 53 layers")
    assert all(f"| {f.layer} |" in text for f in mutant.findings if f.check == "bn_eps")
    # Nothing else changes: the mutant's other files are the correct port's.
    baseline = write_bug_reports(correct, tmp_path / "correct")
    assert len(written) == len(baseline) + 1
