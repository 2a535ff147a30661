"""A registry of equivalences: forms that compute the same thing, rewritten into one canonical form.

``normalise(tf_records, mx_records)`` runs before pairing (``porting.core.match``): each rule
(one module here, ``@equivalence("name")``) looks at both sides and, only where the two sides
use *different* forms of the same computation, rewrites them into one canonical form, returning
a note per rewrite that the report shows. Rules run in the order of ``ORDER``; a rule registered
twice, or registered but not in ``ORDER``, is an error. Framework-free: only ``LayerRecord``.

Unknown differences stay differences: a rule applies only where it can tell the two forms compute
the same thing from the records alone; anything else is left for the diff and the lint to report.
"""
from __future__ import annotations

from porting.core.equivalences.base import EQUIVALENCES, Rewrite, equivalence
from porting.core.equivalences import (  # noqa: F401  (each module registers its rule)
    conv_whole_map, conv_1x1_dense, global_mean, identity_reshape, dropout_absent, single_window_pool,
    nested_concat, softmax_head, bn_folded, scale_weights)

#: The order the rules are applied in: a rule sees what the earlier ones made of both sides.
ORDER = ("conv_whole_map", "conv_1x1_dense", "global_mean", "identity_reshape", "dropout_absent", "single_window_pool",
         "nested_concat", "softmax_head", "bn_folded", "scale_weights")

if set(ORDER) != set(EQUIVALENCES) or len(ORDER) != len(set(ORDER)):
    raise RuntimeError(f"equivalences registered {sorted(EQUIVALENCES)} but ORDER lists {list(ORDER)}")


def normalise(tf_records, mx_records, rules=None):
    """(tf_records, mx_records, notes): both sides with equivalent forms rewritten into one.

    ``rules``: names of the rules to apply (default all, in ``ORDER``). The inputs are not modified.
    """
    tf, mx, notes = list(tf_records), list(mx_records), []
    for name in ORDER:
        if rules is not None and name not in rules:
            continue
        tf, mx, found = EQUIVALENCES[name](tf, mx)
        notes.extend(found)
    return tf, mx, notes


__all__ = ["EQUIVALENCES", "ORDER", "Rewrite", "equivalence", "normalise"]
