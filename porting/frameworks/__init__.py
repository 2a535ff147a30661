"""The framework layer: the only code that reads TF graphs or MXNet symbols.

* ``tf_reader`` / ``mx_reader``: a graph or symbol -> ``LayerRecord``s; each op is read by the
  function registered for its op type in ``tf_op_readers/<family>.py`` / ``mx_op_readers/<family>.py``
  (registry bookkeeping: ``op_readers``);
* ``tf_variables``: the one TF variable tracer; ``tf_graph_facts``: data path, constants, scopes;
* ``mx_attrs``: the one parser of MXNet attribute strings;
* ``models``: the registered networks and builder loading; ``mx_ops``: MXNet ops built from padding plans.
"""
