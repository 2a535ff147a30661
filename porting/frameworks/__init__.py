"""The framework layer: the only code that reads TF graphs or MXNet symbols (``tf_reader``, ``mx_reader``),
the registered networks and builder loading (``models``), and MXNet ops for padding plans (``mx_ops``).
"""
