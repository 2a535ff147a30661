"""autoport: translate a TF (tf.slim) graph into an MXNet symbol and weights, then prove it.

``python -m porting.autoport`` (see ``__main__``); in code::

    from porting.autoport import autoport, zoo
    outcome = autoport(zoo.builder("resnet_v1_50"), size=(224, 224), classes=1000)
    assert outcome, outcome.verdict_line()

Modules: ``registry`` (translator bookkeeping, keyed by TF op type),
``translators_<family>`` (the translators), ``translate`` (the graph walk),
``hints`` (training-mode facts), ``pipeline`` (translate + verify + files),
``training`` (the SoftmaxOutput training symbol), ``zoo`` (the networks it is proved on).
Framework imports happen in those modules, not here.
"""
from __future__ import annotations

__all__ = ["autoport"]


def autoport(*args, **kwargs):
    """See :func:`porting.autoport.pipeline.autoport` (imported lazily: it loads both frameworks)."""
    from porting.autoport.pipeline import autoport as _autoport

    return _autoport(*args, **kwargs)
