"""Framework-free core: layer records, graph bookkeeping, matching, per-layer diff checks, costs, layouts, naming.

Imports neither TensorFlow nor MXNet (numpy only); everything that compares, lints or reports works on
these types. See docs/ARCHITECTURE.md.
"""
