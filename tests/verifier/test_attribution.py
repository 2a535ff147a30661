"""Root-cause attribution and reports that scale, on corpus ports (tests/support/ports) and their mutants.

A defect's consequences downstream are attributed to it (``LayerDiff.cause``), the lint judges a layer
on its own input, substitutions and moved strides and split layers are described as what they are, and
the reports of a systematic defect stay short. Each slim graph is built once per module.
"""
from __future__ import annotations

import importlib
import json

import pytest

from porting import compat  # noqa: F401  (shims first)
from porting.core.causes import moved_strides
from porting.core.diff import Status
from porting.verifier.api import verify
from porting.verifier.render import cause_groups, write_bug_reports


@pytest.fixture(scope="module")
def compare():
    """``compare(net, builder_or_mutant_name) -> CompareResult``, each slim graph built once."""
    graphs = {}

    def run(net: str, mx):
        port = importlib.import_module(f"tests.support.ports.{net}")
        builder = port.MUTANTS[mx][0] if isinstance(mx, str) else mx
        result = verify(tf=port.tf_build, mx=builder, tf_graph=graphs.get(net), size=port.SIZE,
                        classes=port.CLASSES, title=f"{net} {mx if isinstance(mx, str) else 'port'}")
        graphs[net] = result.tf_graph
        return result

    return run


def _problems(result):
    return [row for row in result.rows if row.status != Status.MATCH]


def test_downstream_rows_are_attributed_to_the_wrong_conv_and_the_lint_judges_their_own_input(compare, tmp_path):
    result = compare("alexnet_v2", "conv1_pad2")  # conv1 pads 2: every later map one cell larger
    problems = _problems(result)
    root = problems[0]
    assert root.tf.name == "alexnet_v2/conv1" and root.cause is None
    assert [row.index for row in problems if row.cause is None] == [root.index]  # one root cause
    assert list(root.explains) == [row.index for row in problems[1:]]  # pools, convs, the head forms
    # Stride-2 VALID pools on a map one cell larger give what TF's rule gives on that map: not a defect.
    assert [f for f in result.findings if f.check == "pooling_convention"] == []
    text = result.report("text")
    assert "root causes: 1 for" in text and f"explains {len(problems) - 1} rows downstream" in text
    assert f"inherited from #{root.index}:" not in text  # collapsed: the text names the run once
    assert f"only inherit the difference of #{root.index}" in text
    assert f"inherited from #{root.index}:" in result.report("markdown")
    document = json.loads(result.report("json"))
    rows = {row["index"]: row for row in document["rows"]}
    assert rows[root.index]["explains"] == list(root.explains)
    assert all(rows[index]["cause"] == root.index for index in root.explains)
    (cause,) = document["root_causes"]
    assert cause["roots"] == [root.index] and cause["explains"] == list(root.explains)
    # One bug report for the root cause, listing every layer it touches.
    written = write_bug_reports(result, tmp_path)
    (report,) = [path for path in written if not path.name.startswith("finding")]
    text = report.read_text()
    assert text.startswith(f"# Port defect: shape_mismatch at {len(problems)} layers")
    assert all(f"| {row.index} | {row.tf.name if row.tf else '--'} |" in text for row in problems)


def test_a_wrong_pool_convention_is_reported_once_where_it_is(compare):
    result = compare("alexnet_v2", "pool_full")  # 'full' on every pool; only pool1's input is TF's
    convention = [f for f in result.findings if f.check == "pooling_convention"]
    assert [(f.layer, f.tf, f.mx) for f in convention] == [("alexnet_v2/pool1", "VALID: 26x26", "'full': 27x27")]
    roots = [row for row in _problems(result) if row.cause is None]
    assert [row.tf.name for row in roots] == ["alexnet_v2/pool1"]


def test_an_average_pool_for_a_max_pool_is_one_attribute_row(compare):
    result = compare("vgg_16", "pool5_avg")
    (row,) = _problems(result)
    assert row.status == Status.ATTR_MISMATCH and (row.tf.name, row.mx.name) == ("vgg_16/pool5", "pool5")
    (defect,) = row.defects
    assert (defect.field, defect.tf, defect.mx, defect.fix) == ("operation", "max pool", "average pool",
                                                                "pool_type='max'")


def test_relu6_for_relu_is_one_attribute_row():
    tf, slim, mx = compat.import_tf(), compat.import_slim(), compat.import_mx()

    def tf_fn(images, num_classes, is_training=False):
        net = slim.conv2d(images, 4, 3, activation_fn=tf.nn.relu6, scope="conv")
        return net, {"conv": net}

    def mx_fn(num_classes):
        net = mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv")
        return mx.sym.Activation(net, act_type="relu", name="conv/Relu")

    result = verify(tf=tf_fn, mx=mx_fn, size=8, classes=4, lint=False)
    (row,) = _problems(result)
    assert row.status == Status.ATTR_MISMATCH and row.tf.name == "conv"
    assert [(d.field, d.tf, d.mx, d.fix) for d in row.defects] == [
        ("activation", "relu6", "relu", "mx.sym.clip(..., a_min=0, a_max=6)")]


def test_a_stride_moved_to_another_unit_is_said_in_words(compare):
    result = compare("resnet_v1_50", "stride_first_unit")
    moves = moved_strides(result.rows)
    assert [(m.tf_early.split("/")[1:3], m.tf_late.split("/")[1:3]) for m in moves] == [
        (["block1", "unit_1"], ["block1", "unit_3"]), (["block2", "unit_1"], ["block2", "unit_4"]),
        (["block3", "unit_1"], ["block3", "unit_6"])]
    roots = [row for row in _problems(result) if row.cause is None]
    assert len(roots) == 3  # one per stage: its shortcut and its branch downsample together
    (group,) = cause_groups(result.rows)  # the same choice in three stages: one root cause
    assert [row.index for row in group if row.cause is None] == [row.index for row in roots]
    document = json.loads(result.report("json"))
    (cause,) = document["root_causes"]
    assert len(cause["moved_strides"]) == 3 and cause["roots"] == [row.index for row in roots]
    text = result.report("text")
    assert text.count("moved stride: the downsampling TF does at resnet_v1_50/block1/unit_3/bottleneck_v1/conv2") == 1
    within = compare("resnet_v1_50", "stride_on_1x1")  # the 1x1 downsamples, TF's 3x3 after it does
    assert [(m.tf_early.rsplit("/", 1)[1], m.tf_late.rsplit("/", 1)[1]) for m in moved_strides(within.rows)] == \
        [("conv1", "conv2")] * 3


def test_a_layer_split_in_two_compares_the_pads_where_they_are(compare):
    result = compare("inception_v2", "stem_full_conv")  # one full 7x7/2 conv, pad 3, for slim's separable stem
    problems = _problems(result)
    whole = problems[0]
    assert (whole.tf.name, whole.mx.name) == ("InceptionV2/Conv2d_1a_7x7", "conv_1")
    assert [d.field for d in whole.defects] == ["pads", "split"]
    pads = whole.defects[0]
    assert (pads.tf, pads.mx) == ("(2, 3, 2, 3)", "(3, 3, 3, 3)")
    assert "layer split in two: TF computes a separable conv" in whole.defects[1].explanation
    (half,) = problems[1:]
    assert half.status == Status.ONLY_TF and half.cause == whole.index and "1x1 half" in half.note


def test_resnet50_with_one_systematic_eps_defect_fits_in_60_lines(compare):
    port = importlib.import_module("tests.support.ports.resnet_v1_50")
    result = compare("resnet_v1_50", port.mutant_bn_eps)
    assert not result and sum(1 for f in result.findings if f.check == "bn_eps") == 53
    text = result.report("text")
    assert len(text.splitlines()) <= 60, text
    assert "rows 0-92: 93 layers match" in text and "53 layers:" in text
    assert len(json.loads(result.report("json"))["rows"]) == 93  # the JSON keeps every row


def test_a_missing_aux_head_is_named_in_the_cost_line_and_warned_about_only_when_missing(compare):
    port = importlib.import_module("tests.support.ports.inception_v3")
    correct = compare("inception_v3", port.build)
    assert [f for f in correct.findings if f.check == "aux_head"] == []  # found through the dropped squeeze
    result = compare("inception_v3", lambda num_classes=port.CLASSES: port.build(num_classes)[0])
    assert [f.layer for f in result.findings if f.check == "aux_head"]
    line = next(line for line in result.report("text").splitlines() if line.startswith("cost differs"))
    assert "rows none" not in line and "AuxLogits" in line
    weighted = [row.index for row in _problems(result) if "AuxLogits" in row.layer and row.tf.kind in ("conv", "fc")]
    assert len(weighted) == 3 and f"rows {', '.join(map(str, weighted))}; only in TF: " in line  # convs, dense
