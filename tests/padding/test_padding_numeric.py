"""Numeric proof of the padding translation: real TensorFlow against real MXNet.

Every case builds TF's own op (``tf.nn.conv2d`` / ``max_pool2d`` / ``avg_pool2d``,
NHWC float32, run eagerly) and the MXNet layer that ``porting.frameworks.mx_ops`` derives from
``porting.padding.plan`` (NCHW), feeds both the same random input (and the same
weights, HWIO -> OIHW), and requires identical shapes and values within float32
tolerance.

The grid (see ``grid``) covers odd and even sizes 1..40, kernels 1..7 (even ones
too), strides 1..3, dilations 1 and 2 for convolution, 1xN / Nx1 kernels and
non-square inputs, for SAME and VALID. VALID cases whose output would be empty
are skipped (``plan`` rejects them; ``test_padding.py`` tests that error).

Speed: tensors are tiny (batch 1, 2 channels), TF runs eagerly once per case,
and the MXNet side binds a few hundred cases at once as one grouped symbol
that shares one random input per size and one weight per kernel shape.
``pytest -s`` prints each group's case count, largest error and run time.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from porting import compat

tf = compat.import_tf()
mx = compat.import_mx()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from porting.frameworks import mx_ops  # noqa: E402
from porting.padding import OPS, PADDINGS, PaddingError, effective_kernel, plan  # noqa: E402

ATOL = 1e-4
RTOL = 1e-4
CHANNELS = 2
#: Cases bound together in one MXNet executor.
CHUNK = 300

SQUARE_SIZES = range(1, 41)
SQUARE_KERNELS = range(1, 8)
STRIDES = (1, 2, 3)
CONV_DILATIONS = (1, 2)
NON_SQUARE_SIZES = ((7, 8), (16, 9), (13, 12), (35, 34), (1, 6), (2, 11))
NON_SQUARE_KERNELS = tuple((1, k) for k in range(2, 8)) + tuple((k, 1) for k in range(2, 8)) + (
    (2, 3), (3, 2), (4, 7), (5, 2))
NON_SQUARE_STRIDES = ((1, 1), (2, 2), (1, 2), (3, 2))
NON_SQUARE_CONV_DILATIONS = ((1, 1), (2, 1))


@dataclass(frozen=True)
class Case:
    """One layer to check; every field is per axis (height, width)."""

    op: str
    padding: str
    size: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)

    def __str__(self) -> str:
        dims = lambda values: "x".join(map(str, values))  # noqa: E731
        text = (f"{self.op} {self.padding} size {dims(self.size)} kernel {dims(self.kernel)} "
                f"stride {dims(self.stride)}")
        if self.dilation != (1, 1):
            text += f" dilation {dims(self.dilation)}"
        return text

    def plan(self):
        return plan(self.op, self.size, self.kernel, self.stride, self.padding, self.dilation)


def _pairs(values):
    return tuple((value, value) for value in values)


def grid(op: str, padding: str) -> tuple[list[Case], list[Case]]:
    """All cases of one (op, padding) group: (to check, skipped as empty VALID outputs)."""
    dilations = CONV_DILATIONS if op == "conv" else (1,)
    square = itertools.product(_pairs(SQUARE_SIZES), _pairs(SQUARE_KERNELS), _pairs(STRIDES),
                               _pairs(dilations))
    non_square = itertools.product(NON_SQUARE_SIZES, NON_SQUARE_KERNELS, NON_SQUARE_STRIDES,
                                   NON_SQUARE_CONV_DILATIONS if op == "conv" else ((1, 1),))
    cases, skipped = [], []
    for size, kernel, stride, dilation in itertools.chain(square, non_square):
        case = Case(op, padding, size, kernel, stride, dilation)
        try:
            case.plan()
        except PaddingError:
            # The only input plan may reject here: VALID with a kernel span over the input.
            assert padding == "VALID" and any(
                effective_kernel(k, d) > s for s, k, d in zip(size, kernel, dilation)), str(case)
            skipped.append(case)
            continue
        cases.append(case)
    return cases, skipped


# ------------------------------------------------------------------ inputs

class Inputs:
    """Random tensors for a chunk of cases: one input per (op, size), one weight per kernel.

    Sharing them keeps the MXNet executor small (few arrays to copy and bind);
    each case still gets random data, identical on both sides.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.x: dict = {}  # (op, size) -> (NHWC numpy, NCHW NDArray)
        self.weight: dict = {}  # kernel -> (HWIO numpy, OIHW NDArray)

    def for_case(self, case: Case) -> tuple[np.ndarray, np.ndarray | None]:
        """NHWC input (and HWIO weights for convolution) for TF."""
        key = (case.op, case.size)
        if key not in self.x:
            shape = (1, *case.size, CHANNELS)
            if case.op == "max":
                # All negative: a pad of zeros would win the max and show up.
                x = -self.rng.uniform(0.5, 1.5, shape)
            elif case.op == "avg":
                # Positive and away from zero: a wrong divisor changes every border value.
                x = self.rng.uniform(0.5, 1.5, shape)
            else:
                x = self.rng.standard_normal(shape)
            x = x.astype(np.float32)
            self.x[key] = x, mx.nd.array(x.transpose(0, 3, 1, 2))
        if case.op != "conv":
            return self.x[key][0], None
        if case.kernel not in self.weight:
            weight = self.rng.standard_normal((*case.kernel, CHANNELS, CHANNELS)).astype(np.float32)
            self.weight[case.kernel] = weight, mx.nd.array(weight.transpose(3, 2, 0, 1))  # OIHW
        return self.x[key][0], self.weight[case.kernel][0]


def tf_forward(case: Case, x: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """TensorFlow's own op, eagerly, NHWC."""
    if case.op == "conv":
        out = tf.nn.conv2d(x, weight, strides=list(case.stride), padding=case.padding,
                           dilations=list(case.dilation))
    elif case.op == "max":
        out = tf.nn.max_pool2d(x, ksize=list(case.kernel), strides=list(case.stride),
                               padding=case.padding)
    else:
        out = tf.nn.avg_pool2d(x, ksize=list(case.kernel), strides=list(case.stride),
                               padding=case.padding)
    return out.numpy()


def build_ported(data, case: Case, name: str):
    """The MXNet layer under test: porting.frameworks.mx_ops, as a port would call it."""
    if case.op == "conv":
        return mx_ops.tf_conv2d(data, CHANNELS, case.size, case.kernel, case.stride, case.padding,
                                case.dilation, name=name)
    return mx_ops.tf_pool2d(data, case.op, case.size, case.kernel, case.stride, case.padding,
                            name=name)


# ------------------------------------------------------------------ harness

@dataclass
class Report:
    """Outcome of one batch of cases."""

    checked: int = 0
    max_abs: float = 0.0
    max_abs_case: Case | None = None
    max_rel: float = 0.0  # max abs error / max |TF value|, per case
    failures: list[tuple[Case, str]] = field(default_factory=list)

    def failure_text(self, limit: int = 25) -> str:
        lines = [f"{len(self.failures)} of {self.checked} cases differ (atol {ATOL}, rtol {RTOL}):"]
        lines += [f"  {case}: {why}" for case, why in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return "\n".join(lines)


def _compare(case: Case, want: np.ndarray, got_nchw: np.ndarray, report: Report) -> None:
    report.checked += 1
    got = got_nchw.transpose(0, 2, 3, 1)
    if got.shape != want.shape:
        report.failures.append((case, f"shape TF {want.shape} vs MXNet {got.shape} (NHWC)"))
        return
    want64, got64 = want.astype(np.float64), got.astype(np.float64)
    if not (np.isfinite(want64).all() and np.isfinite(got64).all()):
        report.failures.append((case, "non-finite values (NaN or inf)"))
        return
    if not want64.size:
        return
    diff = np.abs(got64 - want64)
    worst = float(diff.max())
    bad = diff > ATOL + RTOL * np.abs(want64)
    if bad.any():
        report.failures.append((case, f"max abs error {worst:.3g} at {int(bad.sum())} of "
                                      f"{bad.size} values"))
        return
    if worst > report.max_abs:
        report.max_abs, report.max_abs_case = worst, case
    # Relative to the case's largest |value|: elementwise ratios blow up near zero.
    report.max_rel = max(report.max_rel, worst / max(float(np.abs(want64).max()), 1e-6))


def _run_mx(cases: list[Case], inputs: Inputs, build) -> list[np.ndarray]:
    """Bind cases as one grouped symbol and run it once; one NCHW output per case."""
    variables, feed, outputs = {}, {}, []
    for index, case in enumerate(cases):
        name = f"x_{case.op}_{case.size[0]}x{case.size[1]}"
        if name not in variables:
            variables[name] = mx.sym.var(name)
            feed[name] = inputs.x[(case.op, case.size)][1]
        outputs.append(build(variables[name], case, f"l{index}"))
        if case.op == "conv":
            feed[f"l{index}_weight"] = inputs.weight[case.kernel][1]
    executor = mx.sym.Group(outputs).bind(mx.cpu(), feed, grad_req="null")
    return [result.asnumpy() for result in executor.forward(is_train=False)]


def check_cases(cases: list[Case], build=build_ported, seed: int = 0) -> Report:
    """Run TF and MXNet on every case and collect errors (never stops at the first)."""
    rng = np.random.default_rng(seed)
    report = Report()
    for start in range(0, len(cases), CHUNK):
        chunk = cases[start:start + CHUNK]
        inputs = Inputs(rng)
        wants = [tf_forward(case, *inputs.for_case(case)) for case in chunk]
        try:
            gots = _run_mx(chunk, inputs, build)
        except Exception:  # noqa: BLE001 - one bad case must not hide the others
            gots = []
            for case in chunk:
                try:
                    gots.append(_run_mx([case], inputs, build)[0])
                except Exception as error:  # noqa: BLE001
                    gots.append(error)
        for case, want, got in zip(chunk, wants, gots):
            if isinstance(got, Exception):
                report.checked += 1
                first_line = (str(got).strip().splitlines() or [type(got).__name__])[0]
                report.failures.append((case, f"MXNet raised {type(got).__name__}: {first_line}"))
            else:
                _compare(case, want, got, report)
    return report


# ------------------------------------------------------------------ tests

GROUPS = [(op, padding) for op in OPS for padding in PADDINGS]
#: Lower bounds on each group's checked cases, so a shrinking grid is noticed.
MIN_CASES = {("conv", "SAME"): 2400, ("conv", "VALID"): 2000}


def test_grid_is_as_large_and_varied_as_claimed():
    total, skipped = 0, 0
    everything = []
    for op, padding in GROUPS:
        cases, empty = grid(op, padding)
        total += len(cases)
        skipped += len(empty)
        everything += cases
        assert len(cases) >= MIN_CASES.get((op, padding), 1000), (op, padding, len(cases))
    assert total > 9000, total  # 9149 today
    assert skipped > 0  # VALID with a kernel over the input really occurs and is skipped
    sizes = {s for case in everything for s in case.size}
    assert set(range(1, 41)) <= sizes
    assert {k for case in everything for k in case.kernel} == set(range(1, 8))
    assert {s for case in everything for s in case.stride} == {1, 2, 3}
    assert {case.dilation for case in everything if case.op == "conv"} == {(1, 1), (2, 2), (2, 1)}
    assert all(case.dilation == (1, 1) for case in everything if case.op != "conv")
    assert any(case.size[0] != case.size[1] for case in everything)
    assert any(case.kernel[0] == 1 and case.kernel[1] > 1 for case in everything)
    assert any(case.kernel[1] == 1 and case.kernel[0] > 1 for case in everything)
    methods = {(case.op, case.plan().method) for case in everything}
    assert methods >= {("conv", "symmetric"), ("conv", "pad_op"), ("max", "symmetric"),
                       ("max", "full"), ("max", "pad_op"), ("avg", "symmetric"),
                       ("avg", "full"), ("avg", "masked_avg")}, methods


@pytest.mark.parametrize("op, padding", GROUPS, ids=[f"{op}-{pad}" for op, pad in GROUPS])
def test_mxnet_port_matches_tensorflow(op, padding):
    cases, skipped = grid(op, padding)
    started = time.perf_counter()
    report = check_cases(cases, seed=GROUPS.index((op, padding)))
    elapsed = time.perf_counter() - started
    print(f"\n{op} {padding}: {report.checked} cases ({len(skipped)} empty VALID skipped), "
          f"max abs error {report.max_abs:.3g}"
          + (f" ({report.max_abs_case})" if report.max_abs_case else "")
          + f", max error / max |value| {report.max_rel:.3g}, {elapsed:.1f}s")
    assert report.checked == len(cases)
    assert not report.failures, report.failure_text()


# The harness must have teeth: the naive translations of PITFALLS rows 1, 3 and 4
# have to fail it, on a small grid where each pitfall occurs.

def _naive_conv(data, case, name):
    # PITFALLS #1: symmetric pad=k//2 (shape right for odd k, windows shifted).
    pad = tuple(effective_kernel(k, d) // 2 for k, d in zip(case.kernel, case.dilation))
    return mx.sym.Convolution(data, num_filter=CHANNELS, kernel=case.kernel, stride=case.stride,
                              dilate=case.dilation, pad=pad, no_bias=True, name=name)


def _zero_padded_max(data, case, name):
    # PITFALLS #4: explicit pad op with zeros before a max pool.
    layer_plan = case.plan()
    width = (0, 0, 0, 0) + tuple(v for pads in layer_plan.tf_pads for v in pads)
    padded = mx.sym.pad(data, mode="constant", pad_width=width, constant_value=0.0)
    return mx.sym.Pooling(padded, kernel=case.kernel, stride=case.stride, pool_type="max",
                          name=name)


def _avg_counting_pads(data, case, name):
    # PITFALLS #3: MXNet's default count_include_pad=True, otherwise the right plan.
    kwargs = case.plan().mx_kwargs()
    kwargs["count_include_pad"] = True
    return mx.sym.Pooling(data, name=name, **kwargs)


@pytest.mark.parametrize("op, build, expected", [
    ("conv", _naive_conv, Case("conv", "SAME", (8, 8), (3, 3), (2, 2))),
    ("max", _zero_padded_max, Case("max", "SAME", (7, 7), (3, 3), (1, 1))),
    ("avg", _avg_counting_pads, Case("avg", "SAME", (7, 7), (3, 3), (1, 1))),
], ids=["conv-symmetric-pad", "max-zero-pad", "avg-count-include-pad"])
def test_harness_catches_naive_translations(op, build, expected):
    cases = [case for case in grid(op, "SAME")[0]
             if 5 <= case.size[0] <= 9 and case.size[1] == case.size[0]
             and case.kernel[1] == case.kernel[0] and case.dilation == (1, 1)]
    if op == "avg":  # the count_include_pad mutant keeps the plan's kwargs, so no pad op
        cases = [case for case in cases if case.plan().method == "symmetric"]
    assert expected in cases
    report = check_cases(cases, build=build)
    failed = {case for case, _ in report.failures}
    assert expected in failed, report.failure_text()
    # ... and the correct translation passes on exactly the same cases.
    assert not check_cases(cases).failures


def test_failures_name_each_case_and_do_not_hide_the_others():
    cases = grid("max", "SAME")[0][:12]
    broken = cases[5]

    def build(data, case, name):
        if case == broken:  # a layer MXNet cannot build: the kernel over the padded input
            return mx.sym.Pooling(data, kernel=(99, 99), pool_type="max", name=name)
        return build_ported(data, case, name)

    report = check_cases(cases, build=build)
    assert report.checked == len(cases)
    assert [case for case, _ in report.failures] == [broken]
    text = report.failure_text()
    assert text.startswith(f"1 of {len(cases)} cases differ")
    assert str(broken) in text and "MXNet raised" in text
