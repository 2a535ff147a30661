"""Readers of TF ops, one small function per op type, grouped by family (``conv``, ``pool``, ...).

Each reader fills the ``graph_walk.Node`` that ``tf_reader`` made for one op on the data
path (name, scope, op type, inputs and NCHW shapes are already set)::

    @reads("MaxPool", "AvgPool")
    def pool(node, op, data):
        ...

``data`` is the set of ops on the data path (an input outside it is a constant or a
variable). Structural patterns that span several ops (dropout scopes, pass-through
ops, ``SpaceToBatchND`` dilation) stay in ``tf_reader``.
"""
from __future__ import annotations

from porting.frameworks.op_readers import ReaderRegistry

#: The family modules of this package, in documentation order.
FAMILIES = ("io", "conv", "pool", "norm", "activation", "dense", "elementwise", "shape")

TF_READERS = ReaderRegistry("TF", __name__, FAMILIES)
reads = TF_READERS.reads

TF_READERS.load_all()
