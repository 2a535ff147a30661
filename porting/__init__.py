"""porting: prove a tf.slim network and its MXNet port are the same network, layer by layer."""
from porting import compat  # noqa: F401  (numpy/tf_keras shims before anything else)

__all__ = ["verify"]


def verify(*args, **kwargs):
    """See :func:`porting.compare.verify` (imported lazily: it loads both frameworks)."""
    from porting.verifier.api import verify as _verify

    return _verify(*args, **kwargs)
