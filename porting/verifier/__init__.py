"""The verifier: ``verify()`` and its result, the passes, and the renderers.

* ``api``: ``verify()`` and ``CompareResult``, which declares a field for each pass's result;
* ``lint/``: the semantic lint, one module per check family (returns a ``LintResult``);
* ``weights/``: the weight transfer along the layer pairing; ``conversion``: checkpoints both ways;
* ``parity/``: numeric parity (returns a ``NumericReport``); the array comparison itself is
  ``porting.core.tolerances``;
* ``render/``: text, Markdown and JSON of the same rows, and bug reports.
"""
