"""diff: one test per aspect check on hand-built records (no framework), each asserting status and note."""
from __future__ import annotations

from porting.core import diff
from porting.core.diff import CHECKS, Findings, Pairing, Status, check_pair, compare_pairs
from porting.core.match import BY_NAME, Pair
from porting.core.records import Kind, LayerRecord, Part


def record(name, kind, shape, inputs=("x",), **kwargs) -> LayerRecord:
    parts = kwargs.pop("parts", (Part(kind, name, str(kind)),))
    return LayerRecord(name=name, kind=kind, op=kwargs.pop("op", str(kind)), inputs=tuple(inputs),
                       shape=tuple(shape), parts=parts, **kwargs)


def conv(name="c", shape=(1, 4, 8, 8), in_shape=(1, 3, 8, 8), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
         dilation=(1, 1), inputs=("x",), **kwargs) -> LayerRecord:
    attrs = kwargs.pop("attrs", {"padding": "SAME"})
    return record(name, Kind.CONV, shape, inputs, in_shape=in_shape, kernel=kernel, stride=stride,
                  dilation=dilation, pads=pads, attrs=attrs, **kwargs)


def run(check, tf, mx, pairing=Pairing()) -> Findings:
    found = Findings()
    check(tf, mx, pairing, found)
    return found


def test_checks_run_in_the_declared_order():
    assert [check.__name__ for check in CHECKS] == [
        "check_shape", "check_kernel", "check_stride", "check_dilation", "check_window_geometry", "check_scale",
        "check_operation", "check_inputs"]


def test_equal_layers_find_nothing():
    found = check_pair(conv(), conv(), Pairing())
    assert (found.status, found.notes, found.defects) == (Status.MATCH, [], [])


def test_shape_channels_only():
    found = run(diff.check_shape, conv(shape=(1, 4, 8, 8)), conv(shape=(1, 5, 8, 8)))
    assert found.status == Status.SHAPE_MISMATCH
    assert found.notes == ["TF output 1x4x8x8, MXNet 1x5x8x8: 5 channels instead of 4"]
    assert found.defects[0].field == "channels" and found.defects[0].fix == "num_filter=4"


def test_shape_spatial_with_pad_arithmetic_and_an_earlier_error():
    tf = conv(shape=(1, 4, 4, 4), stride=(2, 2), pads=(0, 1, 0, 1))
    mx = conv(shape=(1, 4, 5, 5), in_shape=(1, 3, 9, 9), stride=(2, 2), pads=(1, 1, 1, 1))
    found = run(diff.check_shape, tf, mx)
    assert found.status == Status.SHAPE_MISMATCH
    (note,) = found.notes
    assert note.startswith("TF output 1x4x4x4, MXNet 1x4x5x5 (TF SAME at 8x8, kernel 3x3, stride 2x2")
    assert note.endswith("its input already differs (TF 8x8, MXNet 9x9): an earlier layer is wrong")
    assert found.defects[0].field == "shape" and "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)" in found.defects[0].fix


def test_kernel():
    found = run(diff.check_kernel, conv(kernel=(3, 3)), conv(kernel=(3, 1)))
    assert found.status == Status.ATTR_MISMATCH
    assert found.notes == ["kernel TF (3, 3) vs MXNet (3, 1)"]
    assert found.defects[0].field == "kernel"


def test_stride():
    found = run(diff.check_stride, conv(stride=(1, 1)), conv(stride=(2, 2)))
    assert found.status == Status.ATTR_MISMATCH and found.notes == ["stride TF (1, 1) vs MXNet (2, 2)"]


def test_dilation():
    found = run(diff.check_dilation, conv(dilation=(2, 2)), conv(dilation=(1, 1)))
    assert found.status == Status.ATTR_MISMATCH and found.notes == ["dilation TF (2, 2) vs MXNet (1, 1)"]


def test_window_attributes_of_layers_without_a_window_are_not_compared():
    tf = record("m", Kind.MEAN, (1, 4, 1, 1), kernel=(3, 3))
    mx = record("m", Kind.MEAN, (1, 4, 1, 1), kernel=(1, 1))
    assert run(diff.check_kernel, tf, mx).status == Status.MATCH


def test_a_window_difference_keeps_a_shape_mismatch():
    found = check_pair(conv(kernel=(3, 3), shape=(1, 4, 8, 8)), conv(kernel=(1, 1), shape=(1, 5, 8, 8)), Pairing())
    assert found.status == Status.SHAPE_MISMATCH
    assert [defect.field for defect in found.defects] == ["channels", "kernel"]


def test_window_geometry_shifted_pads():
    """8 -> 4 with a 3x3/2 SAME conv: TF pads (0, 1); pad=1 gives 4 too, from other cells."""
    tf = conv(shape=(1, 4, 4, 4), stride=(2, 2), pads=(0, 1, 0, 1))
    found = run(diff.check_window_geometry, tf, conv(shape=(1, 4, 4, 4), stride=(2, 2), pads=(1, 1, 1, 1)))
    assert found.status == Status.ATTR_MISMATCH
    assert found.notes == ["pads TF (0, 1, 0, 1) vs MXNet (1, 1, 1, 1): windows shifted"]
    assert found.defects[0].field == "pads"
    # A pad no window reaches (MXNet's floor rule) reads the same cells.
    unreached = conv(shape=(1, 4, 4, 4), stride=(2, 2), pads=(0, 2, 0, 2))
    assert run(diff.check_window_geometry, tf, unreached).status == Status.MATCH


def test_window_geometry_same_output_from_a_different_input():
    tf = conv(shape=(1, 4, 4, 4), in_shape=(1, 3, 8, 8), stride=(2, 2), pads=(0, 1, 0, 1))
    mx = conv(shape=(1, 4, 4, 4), in_shape=(1, 3, 7, 7), stride=(2, 2), pads=(1, 1, 1, 1))
    found = run(diff.check_window_geometry, tf, mx)
    assert found.status == Status.ATTR_MISMATCH
    assert found.notes[0] == "input TF 8x8 vs MXNet 7x7: same output from different cells"
    assert [defect.field for defect in found.defects] == ["input_shape", "pads"]


def test_window_geometry_is_not_checked_when_the_shape_differs():
    tf = conv(shape=(1, 4, 4, 4), stride=(2, 2), pads=(0, 1, 0, 1))
    assert run(diff.check_window_geometry, tf, conv(shape=(1, 4, 5, 5), stride=(2, 2))).defects == []


def test_scale():
    found = run(diff.check_scale, record("s", Kind.SCALE, (1, 4), attrs={"scale": 0.17}),
                record("s", Kind.SCALE, (1, 4), attrs={"scale": 0.1}))
    assert found.status == Status.ATTR_MISMATCH and found.notes == ["scale TF 0.17 vs MXNet 0.1"]
    assert found.defects[0].fix == "multiply by 0.17"
    close = record("s", Kind.SCALE, (1, 4), attrs={"scale": 0.17 + 1e-9})
    assert run(diff.check_scale, record("s", Kind.SCALE, (1, 4), attrs={"scale": 0.17}), close).notes == []


def test_concat_order():
    pairing = Pairing(tf_to_mx={"a": "a", "b": "b"})
    tf = record("cat", Kind.CONCAT, (1, 8, 4, 4), ("a", "b"))
    found = run(diff.check_inputs, tf, record("cat", Kind.CONCAT, (1, 8, 4, 4), ("b", "a")), pairing)
    assert found.status == Status.ATTR_MISMATCH and found.notes == ["concat inputs in a different order"]
    assert "(the output channels are permuted)" in found.defects[0].explanation
    assert found.defects[0].fix == "pass the inputs in TF's order: ['a', 'b']"


def test_swapped_inputs_of_an_add_are_no_defect():
    pairing = Pairing(tf_to_mx={"a": "a", "b": "b"})
    found = run(diff.check_inputs, record("s", Kind.ADD, (1, 4), ("a", "b")), record("s", Kind.ADD, (1, 4), ("b", "a")),
                pairing)
    assert found.status == Status.MATCH


def test_other_inputs():
    pairing = Pairing(tf_to_mx={"a": "a", "b": "b"})
    found = run(diff.check_inputs, conv(inputs=("a",)), conv(inputs=("b",)), pairing)
    assert found.status == Status.ATTR_MISMATCH
    assert found.notes == ["inputs differ: TF reads ['a'], MXNet reads ['b']"]
    # An input TF has but no pair maps (shown <name>) is not blamed on this layer.
    assert run(diff.check_inputs, conv(inputs=("z",)), conv(inputs=("b",)), pairing).status == Status.MATCH


def test_inputs_are_followed_through_a_layer_on_one_side_only():
    pairing = Pairing(tf_to_mx={"a": "a"}, only_mx={"bn0": ("a",)})
    assert run(diff.check_inputs, conv(inputs=("a",)), conv(inputs=("bn0",)), pairing).status == Status.MATCH


def test_batch_norm_on_one_side_only_is_a_row_of_its_own():
    tf = conv(parts=(Part(Kind.CONV, "c", "Conv2D"), Part(Kind.BN, "c/BatchNorm/FusedBatchNormV3", "FusedBatchNormV3")))
    mx = conv(parts=(Part(Kind.CONV, "c", "Convolution"),))
    rows = compare_pairs([Pair(tf, mx, BY_NAME)])
    assert [row.status for row in rows] == [Status.MATCH, Status.ONLY_TF]
    assert rows[1].note == "TF applies a batch norm after c; the MXNet layer c has none"
    assert rows[1].defects[0].fix == "add a batch norm after c"


def test_activation_on_one_side_only_is_a_row_of_its_own():
    tf = conv(parts=(Part(Kind.CONV, "c", "Conv2D"),))
    mx = conv(parts=(Part(Kind.CONV, "c", "Convolution"), Part(Kind.ACT, "c/relu", "Activation")))
    rows = compare_pairs([Pair(tf, mx, BY_NAME)])
    assert [row.status for row in rows] == [Status.MATCH, Status.ONLY_MX]
    assert rows[1].note == "MXNet applies a activation after c; the TF layer c has none"
    assert rows[1].defects[0].fix == "remove c/relu"


def test_layers_on_one_side_only():
    rows = compare_pairs([Pair(conv("t"), None), Pair(None, conv("m"))])
    assert [(row.status, row.note) for row in rows] == [
        (Status.ONLY_TF, "no MXNet layer corresponds to this TF layer"),
        (Status.ONLY_MX, "no TF layer corresponds to this MXNet layer")]
    assert rows[0].defects[0].field == "missing_layer" and rows[1].defects[0].field == "extra_layer"


def test_the_matchers_note_comes_after_the_checks_notes():
    tf = record("s", Kind.SCALE, (1, 4), attrs={"scale": 0.2})
    mx = record("s", Kind.SCALE, (1, 4), attrs={"scale": 0.1})
    rows = compare_pairs([Pair(tf, mx, BY_NAME, note="aligned by structure")])
    assert rows[0].note == "scale TF 0.2 vs MXNet 0.1; aligned by structure"


def test_a_transposed_kernel_is_a_kernel_defect_with_the_recipe_not_a_pads_one():
    """1x7 SAME against 7x1 with pad (3, 0): both 16x16, so only the kernel tells them apart.

    The windows are shifted too (TF pads the width, MXNet the height), but that follows from
    the kernel: the row has one defect, the kernel, and its fix gives TF's kernel with its pads.
    """
    tf = conv(shape=(1, 4, 16, 16), in_shape=(1, 3, 16, 16), kernel=(1, 7), pads=(0, 0, 3, 3))
    mx = conv(shape=(1, 4, 16, 16), in_shape=(1, 3, 16, 16), kernel=(7, 1), pads=(3, 3, 0, 0))
    found = check_pair(tf, mx, Pairing())
    assert found.status == Status.ATTR_MISMATCH
    assert found.notes == ["kernel TF (1, 7) vs MXNet (7, 1)"]
    (defect,) = found.defects
    assert (defect.field, defect.tf, defect.mx) == ("kernel", "(1, 7)", "(7, 1)")
    assert defect.explanation == "kernel TF (1, 7), MXNet (7, 1) (height and width swapped)"
    assert "kernel=(1, 7)" in defect.fix and "pad=(0, 3)" in defect.fix
    # The same MXNet kernel with the right pads is no defect at all.
    assert check_pair(tf, conv(shape=(1, 4, 16, 16), in_shape=(1, 3, 16, 16), kernel=(1, 7), pads=(0, 0, 3, 3)),
                      Pairing()).defects == []


def test_window_attribute_fixes_carry_the_pads():
    """A stride or dilation defect's fix is TF's value with the pads that go with it, from porting.padding."""
    tf = conv(shape=(1, 4, 4, 4), stride=(2, 2), pads=(0, 1, 0, 1))
    (defect,) = run(diff.check_stride, tf, conv(shape=(1, 4, 4, 4), stride=(1, 1))).defects
    assert "stride=(2, 2)" in defect.fix and "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)" in defect.fix
    (defect,) = run(diff.check_dilation, conv(dilation=(2, 2), pads=(2, 2, 2, 2)), conv()).defects
    assert "dilate=(2, 2)" in defect.fix and "pad=(2, 2)" in defect.fix


def test_window_geometry_names_the_shifted_axis():
    """150x151, 3x3/2 SAME: TF pads (0, 1) on the even height, (1, 1) on the odd width.

    A symmetric pad=1 gives the same 75x76 and reads the right cells along the width only.
    """
    tf = conv(shape=(1, 4, 75, 76), in_shape=(1, 3, 150, 151), stride=(2, 2), pads=(0, 1, 1, 1))
    found = run(diff.check_window_geometry, tf,
                conv(shape=(1, 4, 75, 76), in_shape=(1, 3, 150, 151), stride=(2, 2), pads=(1, 1, 1, 1)))
    (defect,) = found.defects
    assert defect.field == "pads" and "windows are shifted along the height:" in defect.explanation
    assert "pad_width=(0, 0, 0, 0, 0, 1, 1, 1)" in defect.fix
    right = conv(shape=(1, 4, 75, 76), in_shape=(1, 3, 150, 151), stride=(2, 2), pads=(0, 1, 1, 1))
    assert run(diff.check_window_geometry, tf, right).defects == []
