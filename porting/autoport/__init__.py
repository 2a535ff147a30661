"""autoport: translate a TF (tf.slim) graph into an MXNet symbol and weights, then prove it.

``python -m porting.autoport`` (see ``__main__``); in code::

    from porting.autoport import autoport, zoo
    outcome = autoport(zoo.builder("resnet_v1_50"), size=(224, 224), classes=1000)
    assert outcome, outcome.verdict_line()

Layout (the command itself is ``porting.cli.autoport``; ``__main__`` is its stub):

* ``registry``: translator bookkeeping, one registry keyed by TF op type;
* ``translators/<family>.py``: the translators, one module per op family (conv, pool,
  norm, activation, dense, elementwise, shape);
* ``translate``: the graph walk that applies them;
* ``hints``: training-mode facts (dropout rates, batch-norm decays);
* ``pipeline``: translate, verify with ``porting.verifier``, write the files;
* ``zoo``: the networks autoport is proved on.

The SoftmaxOutput training heads of a translated symbol live in
``porting.training.symbol_heads``: training reads autoport's files and never imports
this package. Framework imports happen in those modules, not here.
"""
from __future__ import annotations

__all__ = ["autoport"]


def autoport(*args, **kwargs):
    """See :func:`porting.autoport.pipeline.autoport` (imported lazily: it loads both frameworks)."""
    from porting.autoport.pipeline import autoport as _autoport

    return _autoport(*args, **kwargs)
