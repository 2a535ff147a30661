"""Numeric parity: the verifier's pass that runs both sides on the same weights and input.

* ``numeric``: running both sides (``numeric_parity``), ``NumericReport``, and the pass
  (``run_pass`` returns the report; ``apply`` attaches it to ``CompareResult.numeric_report``);
* ``hints``: what the shape of the first divergent layer's error suggests;
* ``render``: the report section and the bug report.

The array comparison itself (``compare_arrays``, ``ParityResult``, the default
tolerances) is framework-free and lives in ``porting.core.tolerances``; it is re-exported
here for the callers of the pass.
"""
from __future__ import annotations

from porting.core.tolerances import DEFAULT_ATOL_RANGE, DEFAULT_RTOL, ParityResult, compare_arrays
from porting.verifier.parity.numeric import (LayerParity, NumericReport, ParityError, apply, numeric_parity, run_mx,
                                             run_pass, run_tf, seeded_input)
from porting.verifier.parity.render import bug_report, render_section

__all__ = ["DEFAULT_RTOL", "DEFAULT_ATOL_RANGE", "ParityResult", "ParityError", "LayerParity", "NumericReport",
           "compare_arrays", "numeric_parity", "run_pass", "apply", "seeded_input", "run_tf", "run_mx",
           "render_section", "bug_report"]
