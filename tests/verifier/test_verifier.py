"""The proof of the verifier: our pair matches, every deliberately broken port is pinpointed.

* Every registered variant of our Inception-ResNet-v2 pair matches layer by layer
  (the full network at 299 from the session fixture, the others with reduced
  repeats at small sizes).
* Each port in ``tests/support/broken_ports.py`` carries one defect that leaves the
  network's output shapes intact; the verifier must name the right layer, the
  right status and the right kind of defect, return a falsy result and make the
  CLI exit with 1.
* A port with MXNet's automatic names (no slim scope name at all) is matched
  structurally and passes.

TF graphs are expensive here, so each is built once per session: the defects
reuse the reduced network's graph through ``verify(..., tf_graph=...)``, and the
CLI calls go through ``broken_ports.GRAPH_CACHE``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from porting import compat  # noqa: F401  (shims first)
from porting.cli.compare import main
from porting.core.diff import Status, summarize
from porting.core.match import BY_NAME, BY_STRUCTURE
from porting.core.records import Kind
from porting.frameworks import tf_reader
from porting.frameworks.models import MODELS, UsageError, mx_builder, tf_builder
from porting.verifier.api import verify
from porting.verifier.render import bug_report, cause_groups, group_bug_report, write_bug_reports

from tests.support import broken_ports as bp

mx = compat.import_mx()

BROKEN_FILE = Path(bp.__file__).resolve()
#: Input sizes of the variants checked with reduced repeats (small, still valid, and for
#: align_feature_maps even, so its stride-2 SAME layers pad asymmetrically).
VARIANT_SIZES = {"inception_resnet_v2_align": bp.ALIGN_SIZE, "inception_resnet_v2_os8": 75}
#: End points whose shapes a broken port must still get right (the network's outputs).
FINAL_END_POINTS = ("PreAuxLogits", "Conv2d_7b_1x1", "AuxLogits", "Logits", "Predictions")


def cached_graph(builder, size: int):
    """The TF graph of ``builder`` at ``size`` in training mode (as verify builds it), once per session."""
    return bp.GRAPH_CACHE(builder, (size, size), 1001, 1, True)


@pytest.fixture(scope="module")
def reduced_graph(irv2_reduced_result):
    bp.GRAPH_CACHE.seed(bp.tf_reduced.__name__, irv2_reduced_result.tf_graph)
    return irv2_reduced_result.tf_graph


@pytest.fixture(scope="module")
def align_graph():
    return cached_graph(bp.tf_align_reduced, bp.ALIGN_SIZE)


@pytest.fixture
def cli_graphs(monkeypatch, reduced_graph, align_graph):
    """Make the CLI's TF side come from the session's graph cache."""
    monkeypatch.setattr(tf_reader, "read_graph", bp.GRAPH_CACHE)
    return bp.GRAPH_CACHE


def problems(result) -> list:
    return [row for row in result.rows if row.status != Status.MATCH]


# ------------------------------------------------------------------ our pair

def _assert_passes(result) -> None:
    assert result, result.report(only_problems=True)
    assert result.verdict_line() == f"PASSED | {len(result.rows)}/{len(result.rows)} layers match"
    assert result.end_points, "no end point was mapped"
    for end_point in result.end_points:
        assert end_point["status"] == "match" and end_point["mx_layer"], end_point


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if name == "inception_resnet_v2" else [])
                                  for name in sorted(MODELS)])
def test_registered_variant_matches(name, request):
    """Every registered pair matches layer by layer (reduced repeats except the two fixtures)."""
    if name == "inception_resnet_v2":
        result = request.getfixturevalue("irv2_result")  # the full network at 299
        assert len(result.rows) > 400
    elif name == "inception_resnet_v2_reduced":
        result = request.getfixturevalue("irv2_reduced_result")
    else:
        spec = bp.reduced_spec(name)
        size = VARIANT_SIZES.get(name, spec.size[0])
        tf_fn = tf_builder(spec)
        result = verify(tf=tf_fn, mx=mx_builder(spec, (size, size)), size=size,
                        tf_graph=cached_graph(tf_fn, size))
    _assert_passes(result)
    # Every row was paired by its slim name: our port keeps the scopes.
    assert all(row.matched_by in (BY_NAME, "input") for row in result.rows)


def test_align_variant_has_asymmetric_pads(align_graph):
    """At 150 the align variant really exercises asymmetric SAME pads (the point of using it)."""
    stem = next(r for r in align_graph.records if r.name == bp.scoped("Conv2d_1a_3x3"))
    assert stem.pads == (0, 1, 0, 1)


def test_verify_reuses_a_prebuilt_tf_graph(reduced_graph):
    result = verify("inception_resnet_v2_reduced", tf_graph=reduced_graph)
    assert result and result.tf_graph is reduced_graph
    with pytest.raises(UsageError, match="tf_graph was built for"):
        verify("inception_resnet_v2_reduced", tf_graph=reduced_graph, size=150)


# ------------------------------------------------------------- broken ports

@pytest.fixture(scope="module")
def broken_results(reduced_graph, align_graph):
    results = {}
    for broken in bp.BROKEN_PORTS:
        tf_fn = bp.tf_align_reduced if broken.align else bp.tf_reduced
        results[broken.name] = verify(tf=tf_fn, mx=broken.builder(),
                                      tf_graph=align_graph if broken.align else reduced_graph)
    return results


def _row_of(result, layer: str):
    for row in result.rows:
        names = {side.name for side in (row.tf, row.mx) if side is not None}
        if layer in names or any(name.startswith(layer + "/") for name in names):
            return row
    raise AssertionError(f"no row for {layer}")


@pytest.mark.parametrize("broken", bp.BROKEN_PORTS, ids=lambda broken: broken.name)
def test_broken_port_is_pinpointed(broken, broken_results):
    """The first problem row is the defective layer, with the right status and defect kind."""
    result = broken_results[broken.name]
    assert not result, f"{broken.name} passed:\n{result.report()}"
    assert result.verdict_line().startswith("FAILED | ")
    bad = problems(result)
    first = bad[0]
    assert _row_of(result, broken.layer) is first, result.report(only_problems=True)
    assert first.status == broken.status
    assert broken.field in {defect.field for defect in first.defects}, first.defects
    # Nothing else is flagged but the consequences the defect legitimately has.
    expected = {broken.layer: broken.status, **dict(broken.also)}
    for row in bad[1:]:
        layer = next((name for name in expected if _row_of(result, name) is row), None)
        assert layer is not None, f"unexpected problem row {row.index} {row.layer}: {row.note}"
        assert row.status == expected[layer]
    assert summarize(result.rows)["verdict"] == "mismatch"


@pytest.mark.parametrize("broken", bp.BROKEN_PORTS, ids=lambda broken: broken.name)
def test_broken_port_keeps_the_output_shapes(broken, broken_results):
    """What makes these defects dangerous: infer_shape on the outputs alone sees nothing."""
    size = (1, 3, broken.size, broken.size)
    ours = bp.our_port(1001, broken.align, broken.size).infer_shape(data=size)[1]
    assert broken.symbol().infer_shape(data=size)[1] == ours
    finals = [e for e in broken_results[broken.name].end_points if e["name"] in FINAL_END_POINTS]
    assert finals and all(e["status"] == "match" for e in finals), finals


@pytest.mark.parametrize("broken", bp.BROKEN_PORTS, ids=lambda broken: broken.name)
def test_broken_port_cli_exits_1(broken, cli_graphs, capsys):
    tf_name = "tf_align_reduced" if broken.align else "tf_reduced"
    built = len(cli_graphs.built)
    code = main(["--tf", f"{BROKEN_FILE}:{tf_name}", "--mx", f"{BROKEN_FILE}:mx_{broken.name}",
                 "--size", str(broken.size), "--format", "json", "--only-problems"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["verdict"] == "mismatch"
    first = document["rows"][0]
    names = {side["name"] for side in (first["tf"], first["mx"]) if side}
    assert any(name == broken.layer or name.startswith(broken.layer + "/") for name in names), first
    assert first["status"] == broken.status
    assert broken.field in {defect["field"] for defect in first["defects"]}
    assert len(cli_graphs.built) == built, "the CLI rebuilt a TF graph the session already had"


def test_wrong_pad_report_explains_and_fixes(broken_results):
    """The 1x7 undone by the 7x1: the padding arithmetic of both sides and the exact fix."""
    result = broken_results["wrong_pad_undone"]
    row = problems(result)[0]
    assert "17x17" in row.note and "23x11" in row.note
    text = bug_report(row, result)
    layer = f"{bp.B17}/Branch_1/Conv2d_0b_1x7"
    assert text.startswith(f"# Port defect: shape_mismatch at {layer}")
    assert f"| layer | {layer} | {layer} |" in text
    assert "expected (TF): `1x160x17x17`" in text and "actual (MXNet): `1x160x23x11`" in text
    assert "(0, 0, 3, 3)" in text and "(3, 3, 0, 0)" in text  # TF's pads and the port's
    assert "pad=(0, 3)" in text  # the fix
    assert "```python" in text and "mx.nd.Convolution" in text
    # The 7x1 that undoes it is flagged too: its own pads are wrong and its input differs.
    seven = _row_of(result, f"{bp.B17}/Branch_1/Conv2d_0c_7x1")
    assert {d.field for d in seven.defects} == {"input_shape", "pads"}


@pytest.mark.parametrize("name, fragments", [
    ("extra_filter", ("49 channels instead of 48", "num_filter=48")),
    ("swapped_concat", ("different order", "Branch_1/Conv2d_0b_5x5")),
    ("symmetric_stride2_same", ("(0, 1, 0, 1)", "(1, 1, 1, 1)", "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)")),
    ("valid_given_same_pads", ("TF VALID at 149x149", "pad=(0, 0)")),
    ("added_batch_norm", ("batch norm", "remove ")),
    ("missing_batch_norm", ("batch norm", "add a batch norm")),
    ("dropped_branch", ("has no counterpart in the MXNet symbol",)),
])
def test_bug_report_contents(name, fragments, broken_results, tmp_path):
    result = broken_results[name]
    written = write_bug_reports(result, tmp_path)
    first = problems(result)[0]
    groups = cause_groups(result.rows)
    # One file per root cause, listing every row it explains (lint findings may add theirs after them).
    assert len([path for path in written if not path.name.startswith("finding")]) == len(groups)
    assert sum(len(group) for group in groups) == len(problems(result))
    text = written[0].read_text()
    assert written[0].name.startswith(f"{first.index:04d}_{first.status.value}_")
    assert text == group_bug_report(groups[0], result)
    assert bug_report(first, result).split("\n", 2)[2].rstrip("\n") in text
    assert all(f"| {row.index} | {row.tf.name if row.tf else '--'} |" in text for row in groups[0][1:])
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in\n{text}"


# ------------------------------------------------------------- automatic names

@pytest.mark.parametrize("variant", ["reduced", "align", pytest.param("full", marks=pytest.mark.slow)])
def test_auto_named_port_matches_structurally(variant, request, reduced_graph, align_graph):
    """MXNet's automatic names (convolution12, batchnorm3...): aligned by structure, and it passes."""
    if variant == "full":
        graph, builder = request.getfixturevalue("irv2_result").tf_graph, bp.auto_named_builder(full=True)
    elif variant == "align":
        graph, builder = align_graph, bp.auto_named_builder(align=True, size=bp.ALIGN_SIZE)
    else:
        graph, builder = reduced_graph, bp.auto_named_builder()
    symbol = builder(1001)
    names = symbol.get_internals().list_outputs() + symbol.list_arguments()
    assert not any("InceptionResnetV2" in name or "/" in name for name in names)
    result = verify(tf=lambda images, num_classes: None, mx=builder, tf_graph=graph)
    _assert_passes(result)
    for row in result.rows:
        if row.tf.kind == Kind.INPUT:
            continue
        assert row.matched_by == BY_STRUCTURE, row
        assert "names differ" in row.note and "paired by position" in row.note
    by_name = {e["name"]: e for e in result.end_points}
    assert by_name["Mixed_5b"]["mx_layer"].startswith("concat")
    assert by_name["Conv2d_1a_3x3"]["mx_layer"].startswith("convolution")


def test_auto_named_broken_port_is_still_pinpointed(reduced_graph):
    """Structural alignment does not hide a defect: the 1x7 with the wrong pad is still found."""
    broken = bp.BY_NAME["wrong_pad_undone"]
    result = verify(tf=bp.tf_reduced, mx=lambda n: bp.auto_named(broken.symbol(n)), tf_graph=reduced_graph)
    assert not result
    first = problems(result)[0]
    assert first.tf.name == broken.layer and first.mx.name.startswith("convolution")
    assert first.status == Status.SHAPE_MISMATCH
