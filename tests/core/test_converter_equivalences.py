"""The converter forms of porting.core.equivalences (bn_folded, scale_weights) on hand-built records.

Each rule's positive case, and the negative cases it must leave alone: a real defect stays a
difference. The numeric proofs on real TF/MXNet graphs are in tests/frameworks/test_mx_files.py.
"""
from __future__ import annotations

from porting.core.equivalences import EQUIVALENCES, ORDER, normalise
from porting.core.records import Kind, LayerRecord, Part


def conv(name, inputs=("x",), bn=True, bias=False, act=True, kernel=(3, 3), channels=8, stored=True):
    parts = [Part(Kind.CONV, name, "Conv")]
    attrs = {"has_bias": bias, "stored_weights": stored}
    if bias:
        parts.append(Part(Kind.BIAS, f"{name}/bias", "BiasAdd"))
    if bn:
        parts.append(Part(Kind.BN, f"{name}/bn", "BatchNorm"))
        attrs.update({"bn.eps": 1e-3, "bn.scale": False})
    if act:
        parts.append(Part(Kind.ACT, f"{name}/relu", "Relu"))
        attrs["act.act"] = "relu"
    return LayerRecord(name, Kind.CONV, "Conv", tuple(inputs), (1, channels, 8, 8), (1, 3, 8, 8), kernel=kernel,
                       stride=(1, 1), dilation=(1, 1), pads=(1, 1, 1, 1), attrs=attrs, parts=tuple(parts))


def scale(name, inputs, value=None, param=None):
    attrs = {"scale": value}
    if param:
        attrs["weight_param"] = param
    return LayerRecord(name, Kind.SCALE, "Mul", tuple(inputs), (1, 8, 8, 8), (1, 8, 8, 8), attrs=attrs)


def add(name, inputs):
    return LayerRecord(name, Kind.ADD, "Add", tuple(inputs), (1, 8, 8, 8), (1, 8, 8, 8))


def test_rules_are_registered_in_order():
    assert {"bn_folded", "scale_weights"} <= set(EQUIVALENCES) and ORDER[-2:] == ("bn_folded", "scale_weights")


def test_folded_batch_norm_is_taken_as_equivalent_and_marked_for_the_numbers():
    tf, mx, notes = normalise([conv("a")], [conv("conv0", bn=False, bias=True)], rules=["bn_folded"])
    assert tf[0].part(Kind.BN) is None and tf[0].part(Kind.BIAS) is not None and tf[0].attrs["needs_numbers"]
    assert mx[0].attrs["needs_numbers"] and len(notes) == 1 and "equivalent if the numbers agree" in notes[0]


def test_a_lost_batch_norm_without_a_bias_is_not_a_folded_form():
    tf, mx, notes = normalise([conv("a")], [conv("conv0", bn=False, bias=False)], rules=["bn_folded"])
    assert notes == [] and tf[0].part(Kind.BN) is not None and "needs_numbers" not in mx[0].attrs


def test_a_builder_port_that_lost_its_batch_norm_and_kept_the_default_bias_stays_a_difference():
    """No stored weights: nothing was folded (mx.sym.Convolution's default no_bias=False and a forgotten BatchNorm)."""
    tf, mx, notes = normalise([conv("a")], [conv("conv0", bn=False, bias=True, stored=False)], rules=["bn_folded"])
    assert notes == [] and tf[0].part(Kind.BN) is not None and "needs_numbers" not in mx[0].attrs


def test_a_folded_conv_with_another_kernel_or_activation_is_not_paired():
    for other in (conv("conv0", bn=False, bias=True, kernel=(1, 1)), conv("conv0", bn=False, bias=True, act=False),
                  conv("conv0", bn=False, bias=True, channels=9)):
        tf, _, notes = normalise([conv("a")], [other], rules=["bn_folded"])
        assert notes == [] and tf[0].part(Kind.BN) is not None


def test_a_scale_by_one_missing_on_the_other_side_is_dropped():
    tf = [conv("c", bn=False), scale("mul", ["c"], 1.0), add("add", ["x", "mul"])]
    mx = [conv("c", bn=False), add("add", ["x", "c"])]
    tf_out, _, notes = normalise(tf, mx, rules=["scale_weights"])
    assert [r.name for r in tf_out] == ["c", "add"] and tf_out[1].inputs == ("x", "c") and len(notes) == 1


def test_a_scale_other_than_one_is_never_dropped_and_paired_scales_stay():
    tf = [conv("c", bn=False), scale("mul", ["c"], 0.17), add("add", ["x", "mul"])]
    mx = [conv("c", bn=False), add("add", ["x", "c"])]
    assert normalise(tf, mx, rules=["scale_weights"])[2] == []
    both = [conv("c", bn=False), scale("mul", ["c"], 1.0), add("add", ["x", "mul"])]
    assert normalise(both, list(both), rules=["scale_weights"])[2] == []


def test_a_stored_scale_without_its_value_needs_the_numbers():
    tf = [conv("c", bn=False), scale("mul", ["c"], 0.17), add("add", ["x", "mul"])]
    mx = [conv("c", bn=False), scale("mul", ["c"], None, param="mul/y:0"), add("add", ["x", "mul"])]
    _, mx_out, notes = normalise(tf, mx, rules=["scale_weights"])
    assert mx_out[1].attrs["needs_numbers"] and "mul/y:0" in notes[0]
