"""A small comparison built by hand, for the renderer tests: no TF or MXNet graph is built.

Five rows (a match, a shape mismatch with its defect, an attribute mismatch whose note
holds a '|', a layer only TF has, one only MXNet has), two end points, records for the
cost columns, and, on request, the results of the two passes: a lint result (an error,
a warning, an info) and a numeric report in which the second compared layer diverges.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from porting.core.diff import Defect, LayerDiff, Side, Status
from porting.core.records import Kind, LayerRecord
from porting.core.tolerances import compare_arrays
from porting.verifier import lint
from porting.verifier.api import CompareResult
from porting.verifier.parity import LayerParity, NumericReport

TITLE = "handmade at 8x8, 4 classes, batch 1"
LONG = "Net/" + "Very_Long_Scope_Name/" * 4 + "Conv"  # longer than the text table's 60 characters


def _conv(name: str, channels: int, in_channels: int = 3) -> LayerRecord:
    return LayerRecord(name=name, kind=Kind.CONV, op="Conv2D", inputs=("images",), shape=(1, channels, 8, 8),
                       in_shape=(1, in_channels, 8, 8), kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                       pads=(1, 1, 1, 1), attrs={"padding": "SAME"})


def rows() -> list[LayerDiff]:
    """One row of each status."""
    def side(name, op, shape, kind=Kind.CONV, geometry="3x3 pads (1,1,1,1)"):
        return Side(name, op, shape, kind, geometry)

    defect = Defect("channels", "1x4x8x8", "1x5x8x8", "MXNet has 5 channels instead of 4", "num_filter=4")
    return [
        LayerDiff(0, side("Net/a", "Conv2D", (1, 4, 8, 8)), side("Net/a", "Convolution", (1, 4, 8, 8)),
                  Status.MATCH, matched_by="name"),
        LayerDiff(1, side("Net/b", "Conv2D", (1, 4, 8, 8)), side("Net/b", "Convolution", (1, 5, 8, 8)),
                  Status.SHAPE_MISMATCH, note="4 channels vs 5", matched_by="name", defects=(defect,)),
        LayerDiff(2, side(LONG, "Conv2D", (1, 4, 8, 8)), side(LONG, "Convolution", (1, 4, 8, 8)),
                  Status.ATTR_MISMATCH, note="pads (1|1) differ", matched_by="name"),
        LayerDiff(3, side("Net/pool", "MaxPool", (1, 4, 4, 4), Kind.POOL_MAX, "2x2/2"), None, Status.ONLY_TF,
                  note="no MXNet layer corresponds to this TF layer"),
        LayerDiff(4, None, side("batchnorm0", "BatchNorm", (1, 4, 8, 8), Kind.BN, ""), Status.ONLY_MX),
    ]


END_POINTS = [
    {"name": "Conv_a", "tf_layer": "Net/a", "mx_layer": "Net/a", "tf": [1, 4, 8, 8], "mx": [1, 4, 8, 8],
     "status": "match"},
    {"name": "Pool", "tf_layer": "Net/pool", "mx_layer": None, "tf": [1, 4, 4, 4], "mx": None, "status": "only_tf"},
]


def lint_result() -> lint.LintResult:
    """An error, a warning and an info, errors first (the order the pass returns them in)."""
    findings = (
        lint.Finding("Net/a", "bn_eps", lint.Severity.ERROR, "epsilon 0.001", "eps 1e-05", "the variance differs.",
                     "mx.sym.BatchNorm(..., eps=0.001)"),
        lint.Finding("Net/b", "bn_momentum", lint.Severity.WARNING, "decay 0.9997", "momentum 0.9",
                     "training differs.", "mx.sym.BatchNorm(..., momentum=0.9997)", mx_layer="Net/b_mx"),
        lint.Finding("Net/pool", "num_classes", lint.Severity.INFO, "1001 classes", "1001 classes",
                     "background class.", "no change needed"),
    )
    return lint.LintResult(findings, lint.Options())


def numeric_report() -> NumericReport:
    """Two compared layers (rows 0 and 1): the first passes, the second diverges."""
    passing = compare_arrays(np.ones((1, 4, 8, 8)), np.ones((1, 4, 8, 8)), name="Net/a")
    failing = compare_arrays(np.ones((1, 4, 8, 8)), np.full((1, 4, 8, 8), 1.5), name="Net/b")
    return NumericReport([LayerParity("Net/a", "Net/a", Kind.CONV, passing),
                          LayerParity("Net/b", "Net/b", Kind.CONV, failing)],
                         rtol=1e-4, atol=None, weights="random (seed 0)", seed=0, hint="a hint")


def result(*, lint_pass: bool = False, numeric: bool = False, problems: bool = True) -> CompareResult:
    """The comparison; ``problems=False`` keeps only the matching row."""
    tf_graph = SimpleNamespace(records=[_conv("Net/a", 4), _conv("Net/b", 4), _conv(LONG, 4)])
    mx_graph = SimpleNamespace(records=[_conv("Net/a", 4), _conv("Net/b", 5), _conv(LONG, 4)])
    return CompareResult(title=TITLE, rows=rows() if problems else rows()[:1], end_points=list(END_POINTS),
                         tf_graph=tf_graph, mx_graph=mx_graph, framework_params={"tf": 648, "mx": 765},
                         lint=lint_result() if lint_pass else None,
                         numeric_report=numeric_report() if numeric else None)
