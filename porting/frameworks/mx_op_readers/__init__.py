"""Readers of MXNet ops, one small function per op type, grouped by family (``conv``, ``pool``, ...).

Each reader fills the ``graph_walk.Node`` that ``mx_reader`` made for one node of the
symbol's JSON (name, op, inputs and inferred shapes are already set), from the node's
attribute strings parsed by ``mx_attrs``::

    @reads("Pooling")
    def pooling(node, attrs):
        ...

Patterns that span several nodes (the masked average pool, transpose + flatten,
pass-through ops) stay in ``mx_reader``.
"""
from __future__ import annotations

from porting.frameworks.op_readers import ReaderRegistry

#: The family modules of this package, in documentation order.
FAMILIES = ("conv", "pool", "norm", "activation", "dense", "elementwise", "shape")

MX_READERS = ReaderRegistry("MXNet", __name__, FAMILIES)
reads = MX_READERS.reads

MX_READERS.load_all()
