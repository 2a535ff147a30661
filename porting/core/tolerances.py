"""Numeric tolerances: compare two arrays the way numeric parity judges a layer (numpy only).

An element fails only if its error exceeds both ``atol`` and ``rtol * |reference|``;
NaN always fails. The comparison runs in float64 with the TF output as the reference.
A :class:`ParityResult` is truthy when every element passed and carries its evidence:
max and mean absolute error, max relative error, and the smallest tolerance that would
have passed.

Default tolerances: ``rtol = DEFAULT_RTOL`` and, per layer, ``atol = DEFAULT_ATOL_RANGE x
max(1, max |reference|)``; an explicit atol replaces the second. The absolute part follows
the layer's range because float32 accumulation error scales with the magnitude of the
values a layer sums: an output near 0 in a layer whose values reach 100 carries the error
of its large neighbours. The measurements behind the defaults are in the README
("Numeric parity").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Relative tolerance of numeric parity.
DEFAULT_RTOL = 1e-4
#: With no explicit atol, a layer's atol is this times its range, max |reference| (at least 1).
DEFAULT_ATOL_RANGE = 3e-5


@dataclass(frozen=True)
class ParityResult:
    """One layer's comparison; truthy when every element is within tolerance.

    Attributes:
        max_abs, mean_abs: absolute error |MX - TF| (NaN when an output is NaN).
        max_rel: max |MX - TF| / |TF| over elements with |TF| > atol (smaller
            references are judged by atol alone).
        min_tol: the smallest t for which ``rtol = atol = t`` passes.
        min_atol: the smallest atol that passes at this rtol; min_rtol likewise.
        range: max |TF output|, the scale a default atol is relative to.
        atol: the absolute tolerance used (explicit, or ``atol_range * max(1, range)``).
        failed: elements over tolerance (NaN included); size: elements compared.
        worst: NCHW index of the largest error, with the two values there.
        border_only: every failing element lies on the outer ring of a 4-D map.
    """

    name: str
    passed: bool
    rtol: float
    atol: float
    max_abs: float
    max_rel: float
    mean_abs: float
    min_tol: float
    min_atol: float
    min_rtol: float
    failed: int
    size: int
    range: float = 0.0
    nan: int = 0
    worst: tuple[int, ...] = ()
    worst_tf: float = 0.0
    worst_mx: float = 0.0
    border_only: bool = False
    note: str = ""

    def __bool__(self) -> bool:
        return self.passed

    @property
    def used(self) -> float:
        """The share of the absolute tolerance this layer needs at its rtol (> 1: it failed)."""
        if not math.isfinite(self.min_atol):
            return math.inf
        return self.min_atol / self.atol if self.atol else (math.inf if self.min_atol else 0.0)

    @property
    def min_atol_range(self) -> float:
        """The smallest atol, relative to the layer's range, that passes at this rtol."""
        return self.min_atol / max(1.0, self.range) if math.isfinite(self.min_atol) else math.inf

    def as_dict(self) -> dict:
        """Every field (non-finite floats as None / 'inf'), plus ``min_atol_range`` and ``used``."""
        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
            return list(value) if isinstance(value, tuple) else value

        data = {key: clean(value) for key, value in self.__dict__.items()}
        data["min_atol_range"] = clean(self.min_atol_range)
        data["used"] = clean(self.used)
        return data

    def line(self) -> str:
        """One line of evidence: the errors, the smallest passing tolerance, the verdict."""
        verdict = "pass" if self.passed else f"FAIL ({self.failed}/{self.size} elements)"
        return (f"{self.name}: max abs {format_error(self.max_abs)}, max rel {format_error(self.max_rel)}, "
                f"mean abs {format_error(self.mean_abs)}, smallest passing tolerance {format_error(self.min_tol)}: "
                f"{verdict}" + (f"; {self.note}" if self.note else ""))


def format_error(value: float | None) -> str:
    """An error or a tolerance in reports: '--', 'nan', '0' or three significant digits ('1.20e-05')."""
    if value is None:
        return "--"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.2e}" if value else "0"


def tolerance_text(rtol: float, atol: float | None, atol_range: float = DEFAULT_ATOL_RANGE) -> str:
    """The tolerance rule in words ('rtol 0.0001, atol 3e-05 x the layer's range ...')."""
    absolute = (f"atol {atol:g}" if atol is not None
                else f"atol {atol_range:g} x the layer's range (max |TF output|, at least 1)")
    return f"rtol {rtol:g}, {absolute}; an element fails only when over both"


def compare_arrays(reference, candidate, rtol: float = DEFAULT_RTOL, atol: float | None = None,
                   name: str = "", atol_range: float = DEFAULT_ATOL_RANGE) -> ParityResult:
    """Compare ``candidate`` (MXNet) against ``reference`` (TF) in float64.

    ``atol=None``: the absolute tolerance is ``atol_range * max(1, max |reference|)``
    (see the module docstring for why it follows the layer's range).
    """
    fixed = atol
    ref = np.array(reference, dtype=np.float64)  # copies: the buffers are reused below
    out = np.array(candidate, dtype=np.float64)
    if ref.shape != out.shape:
        return ParityResult(name, False, rtol, atol if atol is not None else math.nan, math.inf, math.inf, math.inf,
                            math.inf, math.inf, math.inf, max(ref.size, out.size), max(ref.size, out.size),
                            note=f"shapes differ: TF {ref.shape}, MXNet {out.shape}")
    size = ref.size
    if size == 0:
        return ParityResult(name, True, rtol, atol or 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)
    diff = np.subtract(out, ref)
    np.abs(diff, out=diff)
    nan_mask = np.isnan(diff) if np.isnan(diff.max()) else None
    nan_count = int(nan_mask.sum()) if nan_mask is not None else 0
    if nan_count:
        diff[nan_mask] = np.inf
    flat = int(np.argmax(diff))
    worst = tuple(int(i) for i in np.unravel_index(flat, ref.shape))
    worst_tf, worst_mx = float(ref.flat[flat]), float(out.flat[flat])
    magnitude = np.abs(ref, out=out)  # ``out`` is not needed any more: reuse its memory
    value_range = float(magnitude.max())
    if not math.isfinite(value_range):  # NaN or inf in the reference: the range of the finite values
        value_range = float(np.where(np.isfinite(magnitude), magnitude, 0.0).max())
    atol = fixed if fixed is not None else atol_range * max(1.0, value_range)
    scratch = np.multiply(magnitude, rtol)
    over_rel = diff > scratch
    over_abs = diff > atol
    failing = over_abs & over_rel
    if nan_count:
        failing |= nan_mask  # NaN always fails, even where the reference itself is NaN
    failed = int(np.count_nonzero(failing))
    max_abs = float(diff.flat[flat])
    mean_abs = float(diff.mean())
    big = magnitude > atol
    with np.errstate(divide="ignore", invalid="ignore"):
        max_rel = float(np.divide(diff, magnitude, out=scratch, where=big).max(initial=0.0, where=big))
        np.maximum(magnitude, 1.0, out=scratch)
        min_tol = float(np.divide(diff, scratch, out=scratch).max())
        min_atol = float(diff.max(initial=0.0, where=over_rel))
        min_rtol = float(np.divide(diff, magnitude, out=scratch, where=over_abs).max(initial=0.0, where=over_abs))
    border_only = False
    if failed and ref.ndim == 4 and ref.shape[2] > 2 and ref.shape[3] > 2:
        border_only = not failing[:, :, 1:-1, 1:-1].any()
    if nan_count:
        max_abs = mean_abs = max_rel = math.nan
        min_tol = min_atol = min_rtol = math.inf
    return ParityResult(name, failed == 0, rtol, atol, max_abs, max_rel, mean_abs, min_tol, min_atol, min_rtol,
                        failed, size, value_range, nan_count, worst, worst_tf, worst_mx, border_only)


__all__ = ["DEFAULT_RTOL", "DEFAULT_ATOL_RANGE", "ParityResult", "compare_arrays", "format_error", "tolerance_text"]
