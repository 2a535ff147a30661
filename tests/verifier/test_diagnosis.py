"""The diagnosis, not only the verdict: tiny TF/MXNet pairs whose rows must name the right cause.

Each test is aimed at one single-point mutant of the verifier that would still return the
right verdict (or no verdict at all) while pointing at the wrong thing:

* the structural similarity ignoring kernels: a TF 3x3 conv must pair with the MXNet 3x3,
  not with an extra 1x1 of the same output shape (``porting.core.match``);
* the kernel left out of the per-layer comparison: a 1x7 against a 7x1 of the same output
  shape is a ``kernel`` defect whose fix gives ``kernel=(1, 7)`` and its pads, not a ``pads``
  defect (``porting.core.diff``);
* TF SAME pads of the width computed from the height: on 150x151 and 151x150 inputs a
  stride-2 SAME 3x3 conv pads (0, 1) on the even side and (1, 1) on the odd one, so a
  symmetric MXNet pad is wrong on the even side only (``porting.frameworks.tf_op_readers``).
"""
from __future__ import annotations

import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()
mx = compat.import_mx()

from porting.core.diff import Status  # noqa: E402  (after the shims)
from porting.core.match import BY_STRUCTURE  # noqa: E402
from porting.verifier.api import verify  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def tf_conv(scope: str, kernel, stride: int = 1):
    """One slim conv (with its bias, no activation) on the images: logits and its end point."""

    def build(images, num_classes, is_training=True):
        net = slim.conv2d(images, 4, kernel, stride=stride, padding="SAME", activation_fn=None, scope=scope)
        return net, {scope.rsplit("/", 1)[-1]: net}

    return build


def problems(result) -> list:
    return [row for row in result.rows if row.status != Status.MATCH]


# ------------------------------------------------------- pairing by structure follows the kernel

@pytest.mark.parametrize("order", ["3x3 then 1x1", "1x1 then 3x3"])
def test_auto_named_port_pairs_the_tf_conv_with_the_same_kernel(order):
    """MXNet's automatic names leave only structure: the TF 3x3 pairs with the 3x3, the 1x1 is the extra layer."""

    def mx_fn(num_classes):
        # A name manager of its own: MXNet's automatic names count per process, and other
        # tests expect their first automatic convolution to be 'convolution0'.
        with mx.name.NameManager():
            net = mx.sym.Variable("data")
            for kernel in ((3, 3), (1, 1)) if order == "3x3 then 1x1" else ((1, 1), (3, 3)):
                net = mx.sym.Convolution(net, num_filter=4, kernel=kernel, pad=(kernel[0] // 2, kernel[1] // 2))
            return net

    result = verify(tf=tf_conv("Net/Conv2d_0a_3x3", 3), mx=mx_fn, size=16, classes=4, lint=False)
    paired = next(row for row in result.rows if row.tf is not None and row.tf.name == "Net/Conv2d_0a_3x3")
    assert paired.status == Status.MATCH and paired.matched_by == BY_STRUCTURE, result.report()
    assert paired.mx.geometry == "3x3 pads (1,1,1,1)" and paired.mx.name.startswith("convolution")
    (extra,) = problems(result)
    assert extra.status == Status.ONLY_MX and extra.mx.geometry == "1x1"
    assert [defect.field for defect in extra.defects] == ["extra_layer"]


# ------------------------------------------------------- a transposed kernel is a kernel defect

def mx_conv(kernel, pad, name: str = "Conv2d_0b_1x7"):
    def build(num_classes):
        return mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=kernel, pad=pad, name=name)

    return build


def test_a_7x1_port_of_a_1x7_conv_is_a_kernel_defect_with_its_fix():
    """Same 16x16 output, so neither the shape nor the verdict says what is wrong: the row must."""
    tf_fn = tf_conv("Conv2d_0b_1x7", [1, 7])
    result = verify(tf=tf_fn, mx=mx_conv((7, 1), (3, 0)), size=16, classes=4, lint=False)
    assert not result
    (row,) = problems(result)
    assert row.layer == "Conv2d_0b_1x7" and row.status == Status.ATTR_MISMATCH
    assert row.tf.shape == row.mx.shape == (1, 4, 16, 16)
    (defect,) = row.defects
    assert (defect.field, defect.tf, defect.mx) == ("kernel", "(1, 7)", "(7, 1)"), row.defects
    assert "height and width swapped" in defect.explanation
    assert "kernel=(1, 7)" in defect.fix and "pad=(0, 3)" in defect.fix, defect.fix
    # The fix, applied, passes.
    assert verify(tf=tf_fn, mx=mx_conv((1, 7), (0, 3)), size=16, classes=4, lint=False)


# ------------------------------------------------------- SAME pads per axis on a non-square input

#: (H, W) -> TF's (top, bottom, left, right) for a 3x3/2 SAME conv, the output, the even side,
#: and the pad_width of a correct explicit pad (N, C, H, W).
NON_SQUARE = {
    (150, 151): ((0, 1, 1, 1), (75, 76), "height", (0, 0, 0, 0, 0, 1, 1, 1)),
    (151, 150): ((1, 1, 0, 1), (76, 75), "width", (0, 0, 0, 0, 1, 1, 0, 1)),
}


@pytest.fixture(scope="module")
def stem_graphs():
    """The TF stem at each non-square size, built once (verify(tf_graph=...) reuses it)."""
    from porting.frameworks import tf_reader

    builder = tf_conv("Conv2d_1a_3x3", 3, stride=2)
    return {size: tf_reader.read_graph(builder, size, 4, 1, True) for size in NON_SQUARE}


@pytest.mark.parametrize("size", list(NON_SQUARE), ids=lambda size: "x".join(map(str, size)))
def test_symmetric_pad_is_flagged_on_the_even_side_only(size, stem_graphs):
    """MXNet pad=1 gives TF's output size on both sides, and TF's windows on the odd side only."""
    pads, out, even_side, pad_width = NON_SQUARE[size]

    def symmetric(num_classes):
        return mx.sym.Convolution(mx.sym.Variable("data"), num_filter=4, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                  name="Conv2d_1a_3x3")

    result = verify(tf=tf_conv("Conv2d_1a_3x3", 3, stride=2), mx=symmetric, tf_graph=stem_graphs[size], classes=4,
                    lint=False)
    assert not result, result.report()
    (row,) = problems(result)
    assert row.layer == "Conv2d_1a_3x3" and row.status == Status.ATTR_MISMATCH
    assert row.tf.shape == row.mx.shape == (1, 4) + out
    (defect,) = row.defects
    assert (defect.field, defect.tf, defect.mx) == ("pads", str(pads), "(1, 1, 1, 1)")
    assert f"windows are shifted along the {even_side}:" in defect.explanation, defect.explanation
    assert f"pad_width={pad_width}" in defect.fix, defect.fix


@pytest.mark.parametrize("size", list(NON_SQUARE), ids=lambda size: "x".join(map(str, size)))
def test_explicit_per_side_pads_pass(size, stem_graphs):
    """An explicit mx.sym.pad with TF's per-side pads, then pad=0: the same windows on both sides."""
    pads, out, _, pad_width = NON_SQUARE[size]

    def explicit(num_classes):
        padded = mx.sym.pad(mx.sym.Variable("data"), mode="constant", pad_width=pad_width, constant_value=0,
                            name="Conv2d_1a_3x3/pad")
        return mx.sym.Convolution(padded, num_filter=4, kernel=(3, 3), stride=(2, 2), pad=(0, 0),
                                  name="Conv2d_1a_3x3")

    result = verify(tf=tf_conv("Conv2d_1a_3x3", 3, stride=2), mx=explicit, tf_graph=stem_graphs[size], classes=4,
                    lint=False)
    assert result, result.report(only_problems=True)
    mx_record = result.mx_record("Conv2d_1a_3x3")
    assert mx_record.pads == pads and tuple(mx_record.shape[2:]) == out
