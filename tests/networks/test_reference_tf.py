"""reference_tf.inception_resnet_v2 against the golden facts measured with tf.slim.

Real TensorFlow, no mocks. A full graph takes seconds to build, so each
configuration is built once per module (``_snapshot``), reduced to plain Python
data, and shared by the tests: default 299 with AuxLogits, align_feature_maps=True,
output_stride=8 up to PreAuxLogits, and the small variant (two blocks of each kind).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np
import pytest

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()

from reference_tf import inception_resnet_v2 as irv2  # noqa: E402  (after the shims)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

GOLDEN = Path(__file__).parents[1] / "golden"
SOURCE = Path(irv2.__file__)
SCOPE = "InceptionResnetV2"
POOL_AND_CONV = ("Conv2D", "MaxPool", "AvgPool")


# ------------------------------------------------------------------ golden files

def load_golden_variables() -> dict[str, tuple[tuple[int, ...], bool]]:
    rows = (GOLDEN / "irv2_slim_variables.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["name", "shape", "trainable"]
    table = {}
    for row in rows[1:]:
        name, shape, trainable = row.split("\t")
        table[name] = (tuple(int(d) for d in shape.split("x")), trainable == "1")
    return table


_OP_ROW = re.compile(
    r"^(?P<name>\S+)\s+(?P<type>\w+)\s+\[(?P<kernel>\d+, \d+)\]\s+\[(?P<stride>\d+, \d+)\]\s+"
    r"(?P<padding>SAME|VALID)\s+\[(?P<out>[\d, ]+)\]$")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def load_golden_ops(filename: str) -> dict[str, tuple]:
    """``{op name relative to InceptionResnetV2/: (type, kernel, stride, padding, out)}``."""
    lines = (GOLDEN / filename).read_text().splitlines()
    assert lines[0].split()[:2] == ["op", "type"] and set(lines[1]) <= {"-", " "}
    table = {}
    for line in lines[2:]:
        match = _OP_ROW.match(line.strip())
        assert match, f"{filename}: unparsed row {line!r}"
        table[match["name"]] = (match["type"], _ints(match["kernel"]), _ints(match["stride"]),
                                match["padding"], _ints(match["out"]))
    return table


# ------------------------------------------------------------------ graph snapshots

@dataclass(frozen=True)
class Snapshot:
    """What the tests need from one built graph, as plain data."""

    end_points: dict[str, tuple[int, ...]]  # NHWC shape without the batch axis
    variables: dict[str, tuple[tuple[int, ...], bool]]  # name -> (shape, trainable)
    ops: dict[str, tuple]  # like load_golden_ops
    dilations: dict[str, tuple[int, int]]  # Conv2D op -> (h, w) dilation
    residual_scales: dict[str, float]  # block scope -> scale of the up-projection
    residual_activated: dict[str, bool]  # block scope -> a Relu follows the sum
    bn_training_flags: tuple[bool, ...]  # FusedBatchNorm* is_training attributes
    op_types_by_scope: dict[str, set[str]]  # first scope below the network -> op types
    dropout_op_types: frozenset[str]
    output: tuple[int, ...]


def relative_name(name: str) -> str:
    """Strip the network scope: trunk ops live under InceptionResnetV2/InceptionResnetV2/.

    slim's full network re-enters its variable scope object inside the base, which
    opens a second name scope for the trunk's ops (variables are not affected).
    """
    for _ in range(2):
        if name.startswith(SCOPE + "/"):
            name = name[len(SCOPE) + 1:]
    return name


_BLOCK = re.compile(r"^((?:Repeat(?:_\d+)?/block(?:35|17|8)_\d+)|Block8)/add$")


def _dilation(conv) -> tuple[int, int]:
    """A Conv2D's dilation: TF2 builds slim's rate > 1 as SpaceToBatchND -> Conv2D -> BatchToSpaceND."""
    source = conv.inputs[0].op
    if source.type == "SpaceToBatchND":
        return tuple(int(v) for v in tf.get_static_value(source.inputs[1]))
    return tuple(conv.get_attr("dilations")[1:3])


def _snapshot(build, size: int = 299) -> Snapshot:
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, [1, size, size, 3], name="images")
        output, end_points = build(images)
        ops, dilations, scales, activated, types = {}, {}, {}, {}, {}
        bn_flags = []
        for op in graph.get_operations():
            name = relative_name(op.name)
            types.setdefault(name.split("/")[0], set()).add(op.type)
            if op.type in POOL_AND_CONV:
                if op.type == "Conv2D":
                    kernel = tuple(op.inputs[1].shape.as_list()[:2])
                    dilations[name] = _dilation(op)
                else:
                    kernel = tuple(op.get_attr("ksize")[1:3])
                ops[name] = (op.type, kernel, tuple(op.get_attr("strides")[1:3]),
                             op.get_attr("padding").decode(), tuple(op.outputs[0].shape.as_list()))
            elif op.type.startswith("FusedBatchNorm"):
                bn_flags.append(bool(op.get_attr("is_training")))
            elif op.type in ("AddV2", "Add") and _BLOCK.match(name):
                block = _BLOCK.match(name)[1]
                # net + scaled_up, where scaled_up = up * scale (a Mul by a constant).
                mul = next(t.op for t in op.inputs if t.op.type == "Mul")
                scales[block] = float(tf.get_static_value(mul.inputs[1]))
                activated[block] = any(c.type == "Relu" for c in op.outputs[0].consumers())
        variables = {v.op.name: (tuple(v.shape.as_list()), v.trainable)
                     for v in tf.compat.v1.global_variables()}
        assert len(variables) == len(tf.compat.v1.global_variables())
        return Snapshot(
            end_points={k: tuple(v.shape.as_list()[1:]) for k, v in end_points.items()},
            variables=variables, ops=ops, dilations=dilations, residual_scales=scales,
            residual_activated=activated, bn_training_flags=tuple(bn_flags),
            op_types_by_scope=types,
            dropout_op_types=frozenset(op.type for op in graph.get_operations()
                                       if relative_name(op.name).startswith("Logits/Dropout/")), output=tuple(output.shape.as_list()[1:]))


@pytest.fixture(scope="module")
def default_net() -> Snapshot:
    return _snapshot(lambda images: irv2.build(images, 1001))


@pytest.fixture(scope="module")
def aligned_net() -> Snapshot:
    return _snapshot(lambda images: irv2.build(images, 1001, align_feature_maps=True))


def _base_os8(images):
    # Two blocks of each kind: the end-point shapes do not depend on them, and it builds 3x faster.
    with slim.arg_scope(irv2.inception_resnet_v2_arg_scope()):
        with slim.arg_scope([slim.batch_norm], is_training=False):
            return irv2.inception_resnet_v2_base(images, final_endpoint="PreAuxLogits",
                                                 output_stride=8, repeats=irv2.SMALL_REPEATS)


@pytest.fixture(scope="module")
def os8_base() -> Snapshot:
    return _snapshot(_base_os8)


@pytest.fixture(scope="module")
def small_net() -> Snapshot:
    return _snapshot(lambda images: irv2.build(images, 1001, repeats=irv2.SMALL_REPEATS))


@pytest.fixture(scope="module")
def golden_variables():
    return load_golden_variables()


# ------------------------------------------------------------------ end points

# end point: (default, align_feature_maps=True, output_stride=8 base); None = not built.
ENDPOINT_SHAPES = {
    "Conv2d_1a_3x3": ((149, 149, 32), (150, 150, 32), (149, 149, 32)),
    "Conv2d_2a_3x3": ((147, 147, 32), (150, 150, 32), (147, 147, 32)),
    "Conv2d_2b_3x3": ((147, 147, 64), (150, 150, 64), (147, 147, 64)),
    "MaxPool_3a_3x3": ((73, 73, 64), (75, 75, 64), (73, 73, 64)),
    "Conv2d_3b_1x1": ((73, 73, 80), (75, 75, 80), (73, 73, 80)),
    "Conv2d_4a_3x3": ((71, 71, 192), (75, 75, 192), (71, 71, 192)),
    "MaxPool_5a_3x3": ((35, 35, 192), (38, 38, 192), (35, 35, 192)),
    "Mixed_5b": ((35, 35, 320), (38, 38, 320), (35, 35, 320)),
    "Mixed_6a": ((17, 17, 1088), (19, 19, 1088), (33, 33, 1088)),
    "PreAuxLogits": ((17, 17, 1088), (19, 19, 1088), (33, 33, 1088)),
    "Mixed_7a": ((8, 8, 2080), (10, 10, 2080), None),
    "Conv2d_7b_1x1": ((8, 8, 1536), (10, 10, 1536), None),
    "AuxLogits": ((1001,), (1001,), None),
    "global_pool": ((1, 1, 1536), (1, 1, 1536), None),
    "PreLogitsFlatten": ((1536,), (1536,), None),
    "Logits": ((1001,), (1001,), None),
    "Predictions": ((1001,), (1001,), None),
}
CONFIGS = ("default_net", "aligned_net", "os8_base")


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("endpoint", list(ENDPOINT_SHAPES))
def test_end_point_shape(request, config, endpoint):
    expected = ENDPOINT_SHAPES[endpoint][CONFIGS.index(config)]
    built = request.getfixturevalue(config)
    if expected is None:
        assert endpoint not in built.end_points
    else:
        assert built.end_points[endpoint] == expected


@pytest.mark.parametrize("config", CONFIGS)
def test_end_points_are_exactly_the_table(request, config):
    built = request.getfixturevalue(config)
    expected = [name for name, shapes in ENDPOINT_SHAPES.items()
                if shapes[CONFIGS.index(config)] is not None]
    assert list(built.end_points) == expected


def test_end_point_names_constant():
    assert irv2.BASE_END_POINTS == tuple(ENDPOINT_SHAPES)[:12]
    assert irv2.HEAD_END_POINTS == tuple(ENDPOINT_SHAPES)[12:]
    assert irv2.END_POINTS == tuple(ENDPOINT_SHAPES)


def test_outputs(default_net, os8_base):
    assert default_net.output == (1001,)
    assert os8_base.output == (33, 33, 1088)


def test_building_restores_tensor_equality(default_net):
    from tensorflow.python.framework import tensor as tensor_lib

    assert tensor_lib.Tensor._USE_EQUALITY is True  # TF2's default, after a build...
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 299, 299, 3])
        with pytest.raises(ValueError):
            irv2.inception_resnet_v2_base(images, final_endpoint="nope")
    assert tensor_lib.Tensor._USE_EQUALITY is True  # ...and after a failed one


# ------------------------------------------------------------------ variables

def test_variables_equal_golden(default_net, golden_variables):
    missing = sorted(set(golden_variables) - set(default_net.variables))
    extra = sorted(set(default_net.variables) - set(golden_variables))
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    wrong = {name: (default_net.variables[name], want)
             for name, want in golden_variables.items() if default_net.variables[name] != want}
    assert not wrong
    assert len(default_net.variables) == 908


def test_aligned_variables_equal_default(aligned_net, default_net):
    # align_feature_maps changes paddings only, never a parameter.
    assert aligned_net.variables == default_net.variables


def _count(variables, keep) -> int:
    return sum(prod(shape) for name, (shape, trainable) in variables.items() if keep(name, trainable))


def test_parameter_counts(default_net):
    variables = default_net.variables
    aux = lambda name: name.startswith(f"{SCOPE}/AuxLogits/")  # noqa: E731
    moving = lambda name: "/moving_" in name  # noqa: E731
    assert _count(variables, lambda n, t: t) == 59_182_258
    assert _count(variables, lambda n, t: t and aux(n)) == 3_367_529
    assert _count(variables, lambda n, t: t and not aux(n)) == 55_814_729
    assert _count(variables, lambda n, t: moving(n)) == 62_336
    assert _count(variables, lambda n, t: moving(n) and not aux(n)) == 60_544
    assert _count(variables, lambda n, t: moving(n) and aux(n)) == 1_792
    # Moving statistics are exactly the non-trainable variables.
    assert all(trainable != moving(name) for name, (_, trainable) in variables.items())


def test_variable_kinds(default_net):
    """IRV2.md without AuxLogits: 244 conv weights, 40 biases, 204 betas, no gammas."""
    trunk = {name: shape for name, (shape, _) in default_net.variables.items()
             if not name.startswith((f"{SCOPE}/AuxLogits/", f"{SCOPE}/Logits/"))}
    weights = {n: s for n, s in trunk.items() if n.endswith("/weights")}
    biases = {n: s for n, s in trunk.items() if n.endswith("/biases")}
    betas = {n: s for n, s in trunk.items() if n.endswith("/BatchNorm/beta")}
    assert (len(weights), len(biases), len(betas)) == (244, 40, 204)
    assert not [n for n in default_net.variables if "gamma" in n]
    assert sum(map(prod, weights.values())) == 54_200_160
    assert sum(map(prod, biases.values())) == 45_760
    assert sum(map(prod, betas.values())) == 30_272
    fc = _count(default_net.variables, lambda n, t: n.startswith(f"{SCOPE}/Logits/"))
    assert fc == 1_538_537
    # Biases belong to the residual up-projections only, which have no batch norm.
    for name in biases:
        scope = name.rsplit("/", 1)[0]
        assert scope.endswith("/Conv2d_1x1")
        assert f"{scope}/BatchNorm/beta" not in trunk


# ------------------------------------------------------------------ ops

@pytest.mark.parametrize("config, filename", [
    ("default_net", "irv2_slim_ops_default.txt"),
    ("aligned_net", "irv2_slim_ops_align_feature_maps.txt"),
])
def test_conv_and_pool_ops_equal_golden(request, config, filename):
    built = request.getfixturevalue(config)
    golden = load_golden_ops(filename)
    assert len(golden) == 253
    missing = sorted(set(golden) - set(built.ops))
    extra = sorted(set(built.ops) - set(golden))
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    wrong = [f"{name}: got {built.ops[name]}, golden {want}"
             for name, want in golden.items() if built.ops[name] != want]
    assert not wrong, "\n".join(wrong)


def test_no_dilation_at_output_stride_16(default_net):
    assert set(default_net.dilations.values()) == {(1, 1)}


def test_output_stride_8_dilates_block17_only(os8_base):
    block17 = {name: d for name, d in os8_base.dilations.items() if name.startswith("Repeat_1/")}
    others = {name: d for name, d in os8_base.dilations.items() if not name.startswith("Repeat_1/")}
    assert len(block17) == irv2.SMALL_REPEATS[1] * 5
    assert set(block17.values()) == {(2, 2)}
    assert set(others.values()) == {(1, 1)}
    # Mixed_6a does not reduce: stride 1, still VALID (35 -> 33).
    assert os8_base.ops["Mixed_6a/Branch_0/Conv2d_1a_3x3/Conv2D"] == (
        "Conv2D", (3, 3), (1, 1), "VALID", (1, 33, 33, 384))
    assert os8_base.ops["Mixed_6a/Branch_2/MaxPool_1a_3x3/MaxPool"] == (
        "MaxPool", (3, 3), (1, 1), "VALID", (1, 33, 33, 320))
    assert "Mixed_7a" not in os8_base.op_types_by_scope


def test_residual_scales_and_activations(default_net):
    scales, activated = default_net.residual_scales, default_net.residual_activated
    expected = {f"Repeat/block35_{i}": 0.17 for i in range(1, 11)}
    expected.update({f"Repeat_1/block17_{i}": 0.10 for i in range(1, 21)})
    expected.update({f"Repeat_2/block8_{i}": 0.20 for i in range(1, 10)})
    expected["Block8"] = 1.0
    assert scales == pytest.approx(expected)
    assert activated == {block: block != "Block8" for block in expected}


def test_inference_mode(default_net):
    """build() uses moving statistics and no dropout."""
    assert len(default_net.bn_training_flags) == 206  # 204 in the trunk + 2 in AuxLogits
    assert not any(default_net.bn_training_flags)
    assert default_net.dropout_op_types  # the Dropout scope exists...
    assert not {t for t in default_net.dropout_op_types if t.startswith("Random")}  # ...as identity


def test_shape_comments_match_the_graph(default_net):
    """Every '# H x W x C' comment on a layer line is an output shape of a layer of that name."""
    by_leaf: dict[str, set] = {}
    for name, (_, _, _, _, out) in default_net.ops.items():
        by_leaf.setdefault(name.split("/")[-2], set()).add(out[1:])
    checked = 0
    for number, line in enumerate(SOURCE.read_text().splitlines(), 1):
        match = re.search(r'scope="(\w+)".*#\s*(\d+) x (\d+) x (\d+)\s*$', line)
        if match:
            shape = tuple(int(match[i]) for i in (2, 3, 4))
            assert shape in by_leaf[match[1]], f"line {number}: {match[1]} # {shape}"
            checked += 1
    assert checked >= 40


# ------------------------------------------------------------ fewer residual blocks

def _kept_with(repeats, name: str) -> bool:
    match = re.match(rf"{SCOPE}/Repeat(?:_(\d))?/block(?:35|17|8)_(\d+)/", name)
    if not match:
        return True
    family = int(match[1] or 0)
    return int(match[2]) <= repeats[family]


def test_repeat_presets():
    assert irv2.REDUCED_REPEATS == (1, 1, 1) and irv2.SMALL_REPEATS == (2, 2, 2)
    assert irv2.REPEAT_PRESETS == {"full": irv2.DEFAULT_REPEATS, "reduced": irv2.REDUCED_REPEATS,
                                   "small": irv2.SMALL_REPEATS}


def test_build_reduced_builds_one_block_of_each_kind(monkeypatch):
    calls = []
    monkeypatch.setattr(irv2, "inception_resnet_v2", lambda images, **kwargs: calls.append(kwargs))
    irv2.build_reduced("images", 7)
    assert calls == [{"num_classes": 7, "repeats": irv2.REDUCED_REPEATS, "is_training": False}]


def test_small_variant(small_net, golden_variables, default_net):
    expected = {n: v for n, v in golden_variables.items() if _kept_with(irv2.SMALL_REPEATS, n)}
    assert small_net.variables == expected
    assert len(small_net.variables) < len(golden_variables)
    assert small_net.end_points == default_net.end_points
    assert set(small_net.residual_scales) == {
        "Repeat/block35_1", "Repeat/block35_2", "Repeat_1/block17_1", "Repeat_1/block17_2",
        "Repeat_2/block8_1", "Repeat_2/block8_2", "Block8"}
    assert small_net.residual_scales["Block8"] == 1.0
    assert not small_net.residual_activated["Block8"]


def test_without_classes_returns_pooled_features():
    built = _snapshot(lambda images: irv2.build(images, 0, repeats=(1, 1, 1)))
    assert built.output == (1, 1, 1536)
    assert list(built.end_points)[-1] == "global_pool"
    assert not [n for n in built.variables if "Logits" in n]


def test_smallest_input_with_aux_logits_builds_and_runs():
    """107 x 107 is the smallest input with AuxLogits (arithmetic), and TF agrees."""
    assert irv2.smallest_input_size(aux_logits=True) == 107
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [2, 107, 107, 3])
        logits, end_points = irv2.build(images, 5, repeats=(1, 1, 1))
        assert end_points["PreAuxLogits"].shape.as_list() == [2, 5, 5, 1088]
        assert end_points["AuxLogits"].shape.as_list() == [2, 5]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            feed = {images: np.random.default_rng(0).uniform(-1, 1, (2, 107, 107, 3))}
            first = session.run(end_points["Predictions"], feed)
            second = session.run(end_points["Predictions"], feed)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first, second)  # inference: no dropout noise


# ------------------------------------------------------------------ bad arguments

def _raises_before_building(build, match: str, size=(1, 299, 299, 3)) -> str:
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, size)
        with pytest.raises(ValueError, match=match) as error:
            build(images)
        assert len(graph.get_operations()) == 1, "an error must come before any layer is built"
    message = str(error.value)
    assert "\n" not in message
    return message


def test_unknown_final_endpoint_lists_valid_ones():
    message = _raises_before_building(
        lambda x: irv2.inception_resnet_v2_base(x, final_endpoint="Mixed_6b"),
        "unknown final_endpoint 'Mixed_6b'")
    assert all(name in message for name in irv2.BASE_END_POINTS)


@pytest.mark.parametrize("stride", [4, 12, 32, "16", True])
def test_bad_output_stride(stride):
    _raises_before_building(lambda x: irv2.inception_resnet_v2_base(x, output_stride=stride),
                            r"output_stride must be 8 or 16, got")


def test_output_stride_8_with_align_feature_maps():
    _raises_before_building(
        lambda x: irv2.inception_resnet_v2_base(x, final_endpoint="PreAuxLogits", output_stride=8,
                                                align_feature_maps=True),
        r"output_stride=8 with align_feature_maps=True is not supported")


def test_output_stride_8_past_pre_aux_logits():
    _raises_before_building(
        lambda x: irv2.inception_resnet_v2_base(x, final_endpoint="Mixed_7a", output_stride=8),
        r"output_stride=8 is supported only up to final_endpoint='PreAuxLogits'")


@pytest.mark.parametrize("repeats", [(10, 0, 9), (1, 2), (1, 2, 3, 4), (1.0, 2, 3), None, "abc"])
def test_bad_repeats(repeats):
    _raises_before_building(lambda x: irv2.inception_resnet_v2_base(x, repeats=repeats),
                            r"repeats must be three positive integers")
    _raises_before_building(lambda x: irv2.build(x, 10, repeats=repeats),
                            r"repeats must be three positive integers")


def test_input_must_be_4d():
    _raises_before_building(irv2.inception_resnet_v2_base, r"4-D NHWC", size=(299, 299, 3))


def test_aux_logits_need_a_static_size():
    _raises_before_building(lambda x: irv2.build(x, 10), r"static input height and width",
                            size=(1, None, None, 3))


def test_too_small_for_the_base():
    message = _raises_before_building(irv2.inception_resnet_v2_base, r"input 74x74 is too small",
                                      size=(1, 74, 74, 3))
    assert "vanishes at Mixed_7a/Branch_0/Conv2d_1a_3x3" in message
    assert "smallest valid input is 75x75" in message


def test_too_small_for_aux_logits():
    message = _raises_before_building(lambda x: irv2.build(x, 1001), r"input 106x106 is too small",
                                      size=(1, 106, 106, 3))
    assert "with AuxLogits" in message
    assert "vanishes at AuxLogits/Conv2d_1a_3x3" in message
    assert "smallest valid input is 107x107" in message


def test_too_small_on_one_axis():
    message = _raises_before_building(irv2.inception_resnet_v2_base, r"input 299x40 is too small",
                                      size=(1, 299, 40, 3))
    assert "vanishes at Mixed_6a/Branch_0/Conv2d_1a_3x3" in message


@pytest.mark.parametrize("kwargs, smallest", [
    ({}, 75),
    ({"aux_logits": True}, 107),
    ({"align_feature_maps": True}, 1),
    ({"align_feature_maps": True, "aux_logits": True}, 65),
    ({"final_endpoint": "PreAuxLogits", "output_stride": 8}, 43),
    ({"final_endpoint": "PreAuxLogits"}, 43),
    ({"final_endpoint": "MaxPool_5a_3x3"}, 27),
    ({"final_endpoint": "Conv2d_1a_3x3"}, 3),
])
def test_smallest_input_size(kwargs, smallest):
    assert irv2.smallest_input_size(**kwargs) == smallest


@pytest.mark.parametrize("final_endpoint", ["MaxPool_5a_3x3", "Conv2d_1a_3x3"])
def test_smallest_input_size_agrees_with_tensorflow(final_endpoint):
    """The arithmetic's smallest input builds in TF; one pixel less is refused up front."""
    smallest = irv2.smallest_input_size(final_endpoint=final_endpoint)
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, smallest, smallest, 3])
        net, _ = irv2.inception_resnet_v2_base(images, final_endpoint=final_endpoint)
        assert net.shape.as_list()[1:3] == [1, 1]
    _raises_before_building(lambda x: irv2.inception_resnet_v2_base(x, final_endpoint=final_endpoint),
                            "too small", size=(1, smallest - 1, smallest - 1, 3))
