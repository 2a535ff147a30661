"""Unit tests of porting.padding: hand-computed cases, plans, errors, the CLI, invariants.

Pure and fast: nothing here imports TensorFlow or MXNet (tests/test_padding_numeric.py
checks the same rules against both frameworks).
"""
from __future__ import annotations

import ast
import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest

from porting import padding
from porting.padding import (
    METHOD_FULL,
    METHOD_MASKED_AVG,
    METHOD_PAD_OP,
    METHOD_SYMMETRIC,
    PaddingError,
    effective_kernel,
    is_symmetric,
    main,
    mx_output_size,
    output_size,
    plan,
    same_pads,
    tf_pads,
)

# ------------------------------------------------------------ hand-computed TF arithmetic


@pytest.mark.parametrize("size, kernel, stride, dilation, out, pads", [
    # out = ceil(in / s); total = (out - 1) * s + (k - 1) * d + 1 - in; extra pixel after.
    (224, 7, 2, 1, 112, (2, 3)),   # total 111*2 + 7 - 224 = 5
    (150, 3, 2, 1, 75, (0, 1)),    # total 74*2 + 3 - 150 = 1
    (299, 3, 2, 1, 150, (1, 1)),   # total 149*2 + 3 - 299 = 2
    (32, 4, 1, 1, 32, (1, 2)),     # total 31 + 4 - 32 = 3
    (224, 3, 2, 1, 112, (0, 1)),   # PITFALLS #1
    (35, 3, 2, 1, 18, (1, 1)),
    (112, 3, 2, 1, 56, (0, 1)),    # slim ResNet pool1
    (35, 3, 1, 1, 35, (1, 1)),
    (9, 2, 2, 1, 5, (0, 1)),
    (12, 5, 2, 1, 6, (1, 2)),
    (10, 1, 2, 1, 5, (0, 0)),      # total clamps at 0: (5-1)*2 + 1 - 10 = -1
    (5, 2, 3, 1, 2, (0, 0)),       # 3 + 2 - 5 = 0
    (1, 7, 1, 1, 1, (3, 3)),       # kernel far larger than the input
    (10, 3, 1, 2, 10, (2, 2)),     # dilation 2: span 5, total 9 + 5 - 10 = 4
    (8, 3, 2, 2, 4, (1, 2)),       # span 5, total 6 + 5 - 8 = 3
    (9, 3, 2, 2, 5, (2, 2)),       # span 5, total 8 + 5 - 9 = 4
    (17, 3, 1, 3, 17, (3, 3)),     # span 7
])
def test_same_output_and_pads(size, kernel, stride, dilation, out, pads):
    assert output_size(size, kernel, stride, "SAME", dilation) == out
    assert same_pads(size, kernel, stride, dilation) == pads
    assert tf_pads(size, kernel, stride, "SAME", dilation) == pads
    assert is_symmetric(size, kernel, stride, "SAME", dilation) == (pads[0] == pads[1])


@pytest.mark.parametrize("size, kernel, stride, dilation, out", [
    # out = ceil((in - (k - 1) * d) / s)
    (299, 3, 2, 1, 149),
    (35, 3, 1, 1, 33),
    (8, 3, 2, 1, 3),
    (17, 3, 2, 1, 8),
    (3, 3, 1, 1, 1),      # kernel exactly the input
    (7, 1, 3, 1, 3),
    (10, 3, 1, 2, 6),     # span 5
    (5, 3, 1, 2, 1),      # span 5 == input
    (20, 4, 3, 3, 4),     # span 10: ceil(11 / 3)
])
def test_valid_output_and_no_pads(size, kernel, stride, dilation, out):
    assert output_size(size, kernel, stride, "VALID", dilation) == out
    assert tf_pads(size, kernel, stride, "VALID", dilation) == (0, 0)
    assert is_symmetric(size, kernel, stride, "VALID", dilation)


def test_padding_name_is_case_insensitive():
    assert output_size(17, 3, 2, "same") == 9
    assert output_size(17, 3, 2, "valid") == 8
    assert plan("conv", 17, 3, 2, "valid").padding == "VALID"


def test_effective_kernel():
    assert effective_kernel(3) == 3
    assert effective_kernel(3, 2) == 5
    assert effective_kernel(1, 4) == 1
    assert effective_kernel(7, 3) == 19


@pytest.mark.parametrize("args, out", [
    # MXNet: floor((in + 2p - span) / s) + 1, 'full': ceil(...) + 1
    ((224, 7, 2, 3), 112),
    ((8, 3, 2, 1), 4),
    ((8, 3, 2, 0), 3),
    ((32, 4, 1, 1), 31),
    ((2, 3, 1, 0), 0),          # kernel over the padded input: empty
    ((10, 3, 1, 0, 2), 6),
])
def test_mx_output_size_valid(args, out):
    assert mx_output_size(*args) == out


def test_mx_output_size_full_convention():
    assert mx_output_size(8, 3, 2, 0, convention="full") == 4
    assert mx_output_size(9, 2, 2, 0, convention="full") == 5
    assert mx_output_size(32, 4, 1, 1, convention="full") == 31  # stride 1: same as valid
    assert mx_output_size(10, 1, 2, 0, convention="full") == 6   # one window more than TF


# ------------------------------------------------------------ plans


def test_symmetric_conv_plan():
    result = plan("conv", 299, 3, 2, "SAME")
    assert result.method == METHOD_SYMMETRIC
    assert result.symmetric
    assert result.out == (150, 150)
    assert result.tf_pads == ((1, 1), (1, 1))
    assert result.pad == (1, 1)
    assert result.pre_pad is None
    assert result.mx_kwargs() == {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1),
                                  "dilate": (1, 1)}
    assert result.describe() == ("mx.sym.Convolution(data, kernel=(3, 3), stride=(2, 2), "
                                 "pad=(1, 1), dilate=(1, 1))")
    assert "symmetric" in result.reasons[0]


def test_asymmetric_conv_plan_uses_a_zero_pad_op():
    result = plan("conv", 224, 7, 2, "SAME")
    assert result.method == METHOD_PAD_OP
    assert not result.symmetric
    assert result.out == (112, 112)
    assert result.tf_pads == ((2, 3), (2, 3))
    assert result.pre_pad == ((2, 3), (2, 3))
    assert result.pad == (0, 0)
    assert result.pad_value == 0.0
    assert result.pad_width() == (0, 0, 0, 0, 2, 3, 2, 3)
    assert result.mx_kwargs() == {"kernel": (7, 7), "stride": (2, 2), "pad": (0, 0),
                                  "dilate": (1, 1)}
    text = result.describe()
    assert "mx.sym.pad(data, mode='constant', constant_value=0.0, " \
           "pad_width=(0, 0, 0, 0, 2, 3, 2, 3))" in text
    assert "mx.sym.Convolution(data, kernel=(7, 7), stride=(2, 2), pad=(0, 0)" in text
    assert "asymmetric" in result.reasons[0]


def test_even_kernel_stride_one_conv_plan():
    result = plan("conv", 32, 4, 1, "SAME")
    assert result.method == METHOD_PAD_OP
    assert result.pad_width() == (0, 0, 0, 0, 1, 2, 1, 2)
    # The reason names the wrong output a symmetric pad would give.
    assert "(31, 31) instead of (32, 32)" in result.reasons[0]


def test_dilated_conv_plan():
    result = plan("conv", 8, 3, 2, "SAME", dilation=2)
    assert result.method == METHOD_PAD_OP
    assert result.tf_pads == ((1, 2), (1, 2))
    assert result.mx_kwargs()["dilate"] == (2, 2)
    result = plan("conv", 10, 3, 1, "SAME", dilation=2)
    assert result.method == METHOD_SYMMETRIC
    assert result.pad == (2, 2)


def test_valid_plans_are_symmetric_with_no_pad():
    for op in ("conv", "max", "avg"):
        result = plan(op, 17, 3, 2, "VALID")
        assert result.method == METHOD_SYMMETRIC
        assert result.pad == (0, 0)
        assert result.out == (8, 8)
        assert result.pre_pad is None


def test_asymmetric_max_pool_with_stride_uses_full_convention():
    result = plan("max", 150, 3, 2, "SAME")
    assert result.method == METHOD_FULL
    assert result.pad == (0, 0)
    assert result.pre_pad is None
    assert result.mx_kwargs() == {"kernel": (3, 3), "stride": (2, 2), "pad": (0, 0),
                                  "pool_type": "max", "pooling_convention": "full"}
    assert "pooling_convention='full'" in result.describe()
    assert "mx.sym.pad" not in result.describe()
    assert any("full" in reason for reason in result.reasons)


def test_asymmetric_max_pool_with_stride_one_uses_minus_inf_pad():
    result = plan("max", 32, 4, 1, "SAME")
    assert result.method == METHOD_PAD_OP
    assert result.pad_value == float("-inf")
    assert result.pad_width() == (0, 0, 0, 0, 1, 2, 1, 2)
    assert result.mx_kwargs()["pooling_convention"] == "valid"
    assert "constant_value=-inf" in result.describe()
    assert "count_include_pad" not in result.mx_kwargs()


def test_asymmetric_avg_pool_with_stride_uses_full_without_counting_pads():
    result = plan("avg", 8, 3, 2, "SAME")
    assert result.method == METHOD_FULL
    assert result.pad == (0, 0)
    assert result.out == (4, 4)
    assert result.mx_kwargs() == {"kernel": (3, 3), "stride": (2, 2), "pad": (0, 0),
                                  "pool_type": "avg", "pooling_convention": "full",
                                  "count_include_pad": False}
    result = plan("avg", 12, 5, 2, "SAME")
    assert (result.method, result.pad, result.tf_pads) == (METHOD_FULL, (1, 1), ((1, 2), (1, 2)))


def test_asymmetric_avg_pool_with_stride_one_uses_masked_average():
    result = plan("avg", 32, 4, 1, "SAME")
    assert result.method == METHOD_MASKED_AVG
    assert result.pre_pad == ((1, 2), (1, 2))
    assert result.pad_value == 0.0
    # The pad op's zeros are counted, and the mask of ones divides them back out.
    assert result.mx_kwargs()["count_include_pad"] is True
    assert result.mx_kwargs()["pooling_convention"] == "valid"
    assert "ones_like" in result.describe()
    assert "(31, 31) instead of (32, 32)" in result.reasons[-1]


def test_symmetric_avg_pool_excludes_pads():
    result = plan("avg", 35, 3, 1, "SAME")
    assert result.method == METHOD_SYMMETRIC
    assert result.pad == (1, 1)
    assert result.mx_kwargs()["count_include_pad"] is False
    assert any("count_include_pad=False" in reason for reason in result.reasons)


def test_full_is_rejected_when_it_adds_a_window_on_another_axis():
    # H: 10/k1/s2 has no pad, but 'full' would give 6 windows instead of 5.
    for op, method in (("max", METHOD_PAD_OP), ("avg", METHOD_MASKED_AVG)):
        result = plan(op, (10, 8), (1, 3), 2, "SAME")
        assert result.tf_pads == ((0, 0), (0, 1))
        assert result.method == method
        assert result.out == (5, 4)
    assert "(6, 4) instead of (5, 4)" in plan("avg", (10, 8), (1, 3), 2, "SAME").reasons[-1]


def test_non_square_plan():
    result = plan("conv", (150, 149), (1, 7), 1, "SAME")
    assert result.tf_pads == ((0, 0), (3, 3))
    assert result.method == METHOD_SYMMETRIC
    assert result.pad == (0, 3)
    result = plan("conv", (16, 17), (7, 1), (2, 1), "SAME")
    assert result.tf_pads == ((2, 3), (0, 0))  # total 7*2 + 7 - 16 = 5
    assert result.out == (8, 17)
    assert result.method == METHOD_PAD_OP
    assert result.pad_width() == (0, 0, 0, 0, 2, 3, 0, 0)


def test_pad_width_without_pad_op_is_an_error():
    with pytest.raises(PaddingError, match="no explicit pad op"):
        plan("conv", 299, 3, 2, "SAME").pad_width()


# ------------------------------------------------------------ errors


@pytest.mark.parametrize("call", [
    lambda: output_size(3, 5, 1, "VALID"),
    lambda: tf_pads(3, 5, 1, "VALID"),
    lambda: output_size(4, 3, 1, "VALID", 2),  # span 5 over 4
    lambda: plan("conv", (10, 3), (3, 5), 1, "VALID"),
    lambda: plan("max", 2, 3, 1, "VALID"),
])
def test_valid_kernel_larger_than_input(call):
    with pytest.raises(PaddingError, match=r"larger than the input .* VALID .*empty"):
        call()


@pytest.mark.parametrize("kwargs, name", [
    (dict(size=0), "size"),
    (dict(size=-3), "size"),
    (dict(kernel=0), "kernel"),
    (dict(stride=0), "stride"),
    (dict(stride=-1), "stride"),
    (dict(dilation=0), "dilation"),
    (dict(size=2.0), "size"),
    (dict(kernel=True), "kernel"),
])
def test_non_positive_numbers(kwargs, name):
    args = dict(size=10, kernel=3, stride=1, dilation=1) | kwargs
    with pytest.raises(PaddingError, match=f"{name} must be a positive integer, got"):
        output_size(args["size"], args["kernel"], args["stride"], "SAME", args["dilation"])
    with pytest.raises(PaddingError, match=f"{name} must be a positive integer"):
        plan("conv", args["size"], args["kernel"], args["stride"], "SAME", args["dilation"])


def test_non_positive_number_on_one_axis():
    with pytest.raises(PaddingError, match="kernel must be a positive integer, got 0"):
        plan("conv", (10, 10), (3, 0))


@pytest.mark.parametrize("name", ["FULL", "", "same_upper", "EXPLICIT"])
def test_unknown_padding_name(name):
    with pytest.raises(PaddingError, match=r"unknown padding .*expected one of SAME, VALID"):
        output_size(10, 3, 1, name)
    with pytest.raises(PaddingError, match="unknown padding"):
        plan("conv", 10, 3, 1, name)


@pytest.mark.parametrize("op", ["min", "pool", "Conv", ""])
def test_unknown_op(op):
    with pytest.raises(PaddingError, match=r"unknown op .*expected one of conv, max, avg"):
        plan(op, 10, 3)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_pooling_with_dilation(op):
    with pytest.raises(PaddingError, match=f"{op} pooling has no dilation"):
        plan(op, 10, 3, 1, "SAME", dilation=2)
    with pytest.raises(PaddingError, match="no dilation"):
        plan(op, 10, 3, 1, "SAME", dilation=(1, 2))


def test_wrong_number_of_axes():
    with pytest.raises(PaddingError, match=r"kernel has 3 axes, expected 2"):
        plan("conv", (10, 10), (3, 3, 3))


def test_padding_error_is_a_value_error():
    assert issubclass(PaddingError, ValueError)


# ------------------------------------------------------------ command line


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_asymmetric_conv(capsys):
    code, out, err = run_cli(capsys, "--size", "150", "--kernel", "3", "--stride", "2",
                             "--padding", "SAME")
    assert code == 0 and err == ""
    assert "output  75x75" in out
    assert "(0,1), (0,1)" in out
    assert "MXNet (pad_op)" in out
    assert "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)" in out
    assert "mx.sym.Convolution(data, kernel=(3, 3), stride=(2, 2), pad=(0, 0)" in out
    # Why a symmetric pad is wrong: the output size with pad=0, the shift with pad=1.
    assert "asymmetric" in out
    assert "(74, 74) instead of (75, 75)" in out
    assert "shifted by one pixel" in out


def test_cli_symmetric_and_defaults(capsys):
    code, out, _ = run_cli(capsys, "--size", "299", "--kernel", "3", "--stride", "2")
    assert code == 0
    assert "TensorFlow SAME conv" in out  # SAME and conv are the defaults
    assert "output  150x150" in out
    assert "MXNet (symmetric)" in out
    assert "pad=(1, 1)" in out


def test_cli_non_square(capsys):
    code, out, _ = run_cli(capsys, "--size", "150x149", "--kernel", "1x7")
    assert code == 0
    assert "input 150x149, kernel 1x7, stride 1x1" in out
    assert "output  150x149" in out
    assert "(0,0), (3,3)" in out
    assert "kernel=(1, 7)" in out and "pad=(0, 3)" in out


def test_cli_pooling(capsys):
    code, out, _ = run_cli(capsys, "--size", "8", "--kernel", "3", "--stride", "2", "--op", "max")
    assert code == 0
    assert "pooling_convention='full'" in out
    code, out, _ = run_cli(capsys, "--size", "32", "--kernel", "4", "--op", "avg")
    assert code == 0
    assert "MXNet (masked_avg)" in out and "ones_like" in out
    code, out, _ = run_cli(capsys, "--size", "10", "--kernel", "3", "--dilation", "2",
                           "--padding", "valid")
    assert code == 0
    assert "output  6x6" in out and "dilate=(2, 2)" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--size", "3", "--kernel", "5", "--padding", "VALID"], "larger than the input"),
    (["--size", "abc", "--kernel", "3"], "--size must be N or HxW"),
    (["--size", "3x", "--kernel", "3"], "--size must be N or HxW"),
    (["--size", "4x4x4", "--kernel", "3"], "--size must be N or HxW"),
    (["--size", "10", "--kernel", "3", "--stride", "0"], "stride must be a positive integer"),
    (["--size", "-3", "--kernel", "3"], "size must be a positive integer"),
    (["--size", "10", "--kernel", "3", "--padding", "FULL"], "unknown padding"),
    (["--size", "10", "--kernel", "3", "--op", "min"], "unknown op"),
    (["--size", "10", "--kernel", "3", "--op", "max", "--dilation", "2"], "no dilation"),
])
def test_cli_bad_input(capsys, argv, fragment):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1 and err.endswith("\n"), err  # one line
    assert fragment in err


def test_cli_missing_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--kernel", "3"])
    assert info.value.code == 2
    assert "--size" in capsys.readouterr().err


# ------------------------------------------------------------ invariants


def _mx_out_for(result, axis: int) -> int:
    """MXNet's output size on one axis, recomputed for the method the plan chose."""
    size, kernel, stride = result.size[axis], result.kernel[axis], result.stride[axis]
    dilation = result.dilation[axis]
    if result.method == METHOD_SYMMETRIC:
        return mx_output_size(size, kernel, stride, result.pad[axis], dilation)
    if result.method == METHOD_FULL:
        return mx_output_size(size, kernel, stride, result.pad[axis], dilation, "full")
    before, after = result.pre_pad[axis]
    return mx_output_size(size + before + after, kernel, stride, 0, dilation)


GRID_SIZES = range(1, 65)
GRID_KERNELS = range(1, 9)
GRID_STRIDES = range(1, 5)


def test_plan_output_matches_tf_over_a_grid():
    checked, methods = 0, set()
    for op, pad_name in itertools.product(padding.OPS, padding.PADDINGS):
        dilations = (1, 2, 3) if op == "conv" else (1,)
        for size, kernel, stride, dilation in itertools.product(
                GRID_SIZES, GRID_KERNELS, GRID_STRIDES, dilations):
            if pad_name == "VALID" and effective_kernel(kernel, dilation) > size:
                continue
            # A non-square second axis exercises per-axis bookkeeping too.
            other = (size % 7 + 1, kernel % 3 + 1, stride % 2 + 1, 1)
            if pad_name == "VALID" and other[1] > other[0]:
                other = (other[1], *other[1:])
            result = plan(op, (size, other[0]), (kernel, other[1]), (stride, other[2]),
                          pad_name, (dilation, other[3]))
            tf_out = (output_size(size, kernel, stride, pad_name, dilation),
                      output_size(*other[:3], pad_name, other[3]))
            assert result.out == tf_out
            assert tuple(_mx_out_for(result, axis) for axis in (0, 1)) == tf_out, result
            methods.add((op, result.method))
            checked += 1
    assert checked > 15000, checked
    assert methods == {("conv", METHOD_SYMMETRIC), ("conv", METHOD_PAD_OP),
                       ("max", METHOD_SYMMETRIC), ("max", METHOD_FULL), ("max", METHOD_PAD_OP),
                       ("avg", METHOD_SYMMETRIC), ("avg", METHOD_FULL),
                       ("avg", METHOD_MASKED_AVG)}


@pytest.mark.parametrize("pad_name", ["SAME", "VALID"])
def test_tf_rules_match_brute_force_window_placement(pad_name):
    """TF's formulas agree with placing windows one by one from -before while they fit."""
    for size, kernel, stride, dilation in itertools.product(range(1, 41), range(1, 8),
                                                            range(1, 4), (1, 2, 3)):
        span = effective_kernel(kernel, dilation)
        if pad_name == "VALID" and span > size:
            continue
        before, after = tf_pads(size, kernel, stride, pad_name, dilation)
        starts = range(-before, size + after - span + 1, stride)
        assert len(starts) == output_size(size, kernel, stride, pad_name, dilation)
        if pad_name == "SAME":
            assert len(starts) == math.ceil(size / stride)
            assert after - before in (0, 1)  # the extra pixel goes after
            # Every window holds at least one real pixel, and no pad is wasted.
            assert all(start + span > 0 and start < size for start in starts)
            if before + after:
                assert starts[-1] + span == size + after


def test_full_convention_keeps_tf_window_starts():
    """Where a plan picks 'full', MXNet's windows start where TF's do and hold a real pixel."""
    for op, size, kernel, stride in itertools.product(("max", "avg"), range(1, 41), range(1, 8),
                                                      range(1, 4)):
        result = plan(op, size, kernel, stride, "SAME")
        if result.method != METHOD_FULL:
            continue
        assert stride >= 2  # with stride 1 'full' equals 'valid' and cannot be exact
        before = result.pad[0]
        assert before == result.tf_pads[0][0]
        last_start = -before + (result.out[0] - 1) * stride
        assert last_start < size  # the clipped last window still covers input


# ------------------------------------------------------------ purity

FRAMEWORKS = {"tensorflow", "mxnet", "tf_slim", "keras", "tf_keras", "torch", "jax"}
PADDING_SOURCE = Path(padding.__file__)


def test_padding_source_imports_only_the_standard_library():
    tree = ast.parse(PADDING_SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in padding.py: {ast.dump(node)}"
            imported.add(node.module.split(".")[0])
    assert imported, "parsed no imports at all"
    assert not imported & (FRAMEWORKS | {"numpy"}), imported & (FRAMEWORKS | {"numpy"})
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_importing_padding_loads_no_framework():
    # The package's __init__ may load numpy (porting.compat); the frameworks must stay out.
    code = ("import sys, porting.padding; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (FRAMEWORKS,))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PADDING_SOURCE.parent.parent, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_cli_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "porting.padding", "--size", "224", "--kernel",
                           "7", "--stride", "2"], capture_output=True, text=True,
                          cwd=PADDING_SOURCE.parent.parent, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "(2,3), (2,3)" in done.stdout
