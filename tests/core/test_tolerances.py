"""porting.core.tolerances: the element rule, the evidence a ParityResult carries, the formatting (numpy only)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from porting.core.tolerances import (DEFAULT_ATOL_RANGE, ParityResult, compare_arrays, format_error,
                                     tolerance_text)


def test_element_fails_only_over_both_tolerances():
    ref = np.array([1.0, 2.0, 0.0, 100.0])
    out = ref + np.array([1e-5, 3e-4, 5e-5, 5e-3])
    result = compare_arrays(ref, out, rtol=1e-4, atol=1e-4, name="x")
    assert isinstance(result, ParityResult) and not result
    assert result.failed == 1 and result.worst == (3,)  # 5e-3 <= 1e-4 * 100: passes on rtol
    assert result.max_abs == pytest.approx(5e-3)
    assert result.mean_abs == pytest.approx((1e-5 + 3e-4 + 5e-5 + 5e-3) / 4)
    assert result.min_tol == pytest.approx(1.5e-4)  # 3e-4 / max(1, 2)
    assert result.min_atol == pytest.approx(3e-4)  # at rtol 1e-4
    assert result.min_rtol == pytest.approx(1.5e-4)  # at atol 1e-4
    assert compare_arrays(ref, out, rtol=result.min_tol, atol=result.min_tol)
    assert compare_arrays(ref, out, rtol=1e-4, atol=result.min_atol)
    assert compare_arrays(ref, out, rtol=result.min_rtol, atol=1e-4)


def test_relative_error_ignores_references_below_atol():
    result = compare_arrays(np.array([0.0, 1.0]), np.array([1e-6, 1.0 + 1e-6]), rtol=1e-4, atol=1e-4)
    assert result and result.max_rel == pytest.approx(1e-6)


def test_default_atol_scales_with_the_layer_range():
    """float32 error follows the magnitude a layer sums: a small output beside large ones gets their error."""
    ref = np.array([100.0, 0.5])
    out = ref + np.array([0.0, 2e-3])
    scaled = compare_arrays(ref, out)  # atol = 3e-5 * 100
    assert scaled and scaled.range == 100.0 and scaled.atol == pytest.approx(DEFAULT_ATOL_RANGE * 100)
    assert scaled.min_atol_range == pytest.approx(2e-5) and 0 < scaled.used < 1
    assert not compare_arrays(ref, out, atol=1e-4)  # a fixed atol judges 0.5 on its own
    small = compare_arrays(np.array([0.5, 0.1]), np.array([0.5, 0.1 + 5e-5]))
    assert not small and small.atol == DEFAULT_ATOL_RANGE  # the range counts as at least 1


def test_nan_always_fails():
    result = compare_arrays(np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    assert not result and result.nan == 1 and math.isnan(result.max_abs) and result.min_tol == math.inf
    both = compare_arrays(np.array([np.nan]), np.array([np.nan]))
    assert not both and both.failed == 1


def test_shape_mismatch_fails_with_a_note():
    result = compare_arrays(np.zeros((1, 2)), np.zeros((2, 1)))
    assert not result and "shapes differ" in result.note


def test_border_only_errors_are_flagged():
    ref = np.zeros((1, 1, 5, 5))
    out = ref.copy()
    out[0, 0, 0, 2] = 1.0
    assert compare_arrays(ref, out).border_only
    out[0, 0, 2, 2] = 1.0
    assert not compare_arrays(ref, out).border_only


def test_evidence_as_dict_cleans_non_finite_values():
    data = compare_arrays(np.array([1.0, 2.0]), np.array([1.0, np.nan]), name="x").as_dict()
    assert data["name"] == "x" and data["max_abs"] is None and data["min_tol"] == "inf"
    assert data["used"] == "inf" and data["min_atol_range"] == "inf" and data["worst"] == [1]


def test_empty_arrays_pass():
    result = compare_arrays(np.zeros((0, 3)), np.zeros((0, 3)))
    assert result and result.size == 0 and result.used == 0.0


def test_line_and_formatting():
    assert [format_error(v) for v in (None, math.nan, 0.0, 0, 1.2345e-5)] == ["--", "nan", "0", "0", "1.23e-05"]
    line = compare_arrays(np.array([1.0]), np.array([2.0]), name="conv").line()
    assert line.startswith("conv: max abs 1.00e+00") and line.endswith("FAIL (1/1 elements)")
    assert tolerance_text(1e-4, None) == ("rtol 0.0001, atol 3e-05 x the layer's range (max |TF output|, at least 1); "
                                          "an element fails only when over both")
    assert tolerance_text(1e-4, 1e-3).startswith("rtol 0.0001, atol 0.001;")
