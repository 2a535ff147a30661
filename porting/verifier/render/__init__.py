"""Renderings of a comparison: text, Markdown and JSON of the same rows, and bug reports.

Rows are data (``porting.core.diff.LayerDiff``); these modules only render them, with the
results of the passes that ran (``CompareResult.lint``, ``CompareResult.numeric_report``).
Every per-layer table carries each layer's trainable parameters and forward multiply-adds
per image (``porting.core.cost``), with the totals of both sides and the parameter counts
the frameworks themselves report. Empty cells show ``--``.

* ``table``: what the text and Markdown reports share (rows, cost cells and line, sections);
* ``text``, ``markdown``, ``json_doc``: the three formats;
* ``grouping``: identical defects grouped (layer ranges, row groups, the distinct-defect summary), and
  each root cause with the rows that only inherit its difference (``porting.core.causes``);
* ``bug_reports``: one Markdown file per root cause (its root rows and the rows they explain).
"""
from __future__ import annotations

from porting.verifier.render.bug_reports import bug_report, group_bug_report, pass_bug_reports, write_bug_reports
from porting.verifier.render.grouping import (cause_groups, compact_layers, defect_summary, defect_summary_lines,
                                             root_cause_lines, row_groups)
from porting.verifier.render.json_doc import render_json, row_json
from porting.verifier.render.markdown import render_markdown
from porting.verifier.render.table import HEADERS, cost_line, pass_sections
from porting.verifier.render.text import render_text

__all__ = ["HEADERS", "render_text", "render_markdown", "render_json", "row_json", "cost_line", "pass_sections",
           "bug_report", "group_bug_report", "pass_bug_reports", "write_bug_reports", "compact_layers", "row_groups",
           "defect_summary", "defect_summary_lines", "cause_groups", "root_cause_lines"]
