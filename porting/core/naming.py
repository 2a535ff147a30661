"""TF variable names <-> MXNet parameter names: the join key between the two sides.

Framework-free. The MXNet port names every layer after the slim scope it ports,
keeping TF's ``/`` separators (``InceptionResnetV2/Mixed_5b/Branch_1/Conv2d_0b_5x5``);
MXNet then derives parameter names by appending ``_<param>`` to the layer name.
So a TF variable ``<scope>/<leaf>`` maps to the MXNet parameter
``<scope>_<mx suffix>`` (the last ``/`` becomes ``_``), where

=================  ======================  =====
TF leaf            MXNet suffix            kind
=================  ======================  =====
weights            weight                  arg
biases             bias                    arg
beta               beta                    arg
gamma              gamma                   arg
moving_mean        moving_mean             aux
moving_variance    moving_var              aux
=================  ======================  =====

(``BatchNorm/moving_variance`` -> ``BatchNorm_moving_var``: the batch-norm layer is
named ``<conv>/BatchNorm`` in the port.) ``kind`` says whether MXNet keeps the value
among the arguments or the auxiliary states (``arg_params`` / ``aux_params``); the
moving statistics must go into the auxiliary states (see PITFALLS.md #5d).

A tensor-name suffix such as ``:0`` is stripped. Names no rule covers raise
:class:`NamingError`, which lists the rules.

Only names are translated here; layouts (HWIO -> OIHW, FC (in, out) -> (out, in))
are a separate concern.
"""
from __future__ import annotations

import re

ARG = "arg"
AUX = "aux"

#: (TF leaf variable name, MXNet parameter suffix, MXNet kind), in documentation order.
RULES: tuple[tuple[str, str, str], ...] = (
    ("weights", "weight", ARG),
    ("biases", "bias", ARG),
    ("beta", "beta", ARG),
    ("gamma", "gamma", ARG),
    ("moving_mean", "moving_mean", AUX),
    ("moving_variance", "moving_var", AUX),
)

_TF_TO_MX = {tf_leaf: (mx_suffix, kind) for tf_leaf, mx_suffix, kind in RULES}
# Longest suffix first, so that no suffix shadows a longer one ending the same way.
_MX_TO_TF = sorted(((mx_suffix, tf_leaf, kind) for tf_leaf, mx_suffix, kind in RULES),
                   key=lambda rule: -len(rule[0]))
_TENSOR_SUFFIX = re.compile(r":\d+$")


class NamingError(ValueError):
    """A name that no TF <-> MXNet naming rule covers."""


def _rules_text() -> str:
    return ", ".join(f"{tf_leaf} <-> _{mx_suffix} ({kind})" for tf_leaf, mx_suffix, kind in RULES)


def tf_to_mx(tf_name: str) -> tuple[str, str]:
    """MXNet parameter name and kind ('arg' or 'aux') for a TF variable name.

    Example:
        >>> tf_to_mx('InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/moving_variance:0')
        ('InceptionResnetV2/Conv2d_1a_3x3/BatchNorm_moving_var', 'aux')

    Raises:
        NamingError: no scope, an empty scope part, or a leaf no rule covers.
    """
    name = _TENSOR_SUFFIX.sub("", str(tf_name).strip())
    scope, sep, leaf = name.rpartition("/")
    if not sep or not scope or scope.endswith("/") or scope.startswith("/"):
        raise NamingError(f"TF variable name {tf_name!r} has no layer scope: expected "
                          f"'<scope>/<leaf>' with leaf one of: {_rules_text()}")
    if leaf not in _TF_TO_MX:
        raise NamingError(f"TF variable {tf_name!r}: no naming rule for the leaf {leaf!r}; "
                          f"known leaves: {_rules_text()}")
    mx_suffix, kind = _TF_TO_MX[leaf]
    return f"{scope}_{mx_suffix}", kind


def mx_to_tf(mx_name: str) -> tuple[str, str]:
    """TF variable name (without ':0') and kind for an MXNet parameter name.

    MXNet's ``save_checkpoint`` / ``mx.nd.save`` prefixes (``arg:``, ``aux:``) are
    accepted and stripped.

    Example:
        >>> mx_to_tf('InceptionResnetV2/Logits/Logits_weight')
        ('InceptionResnetV2/Logits/Logits/weights', 'arg')

    Raises:
        NamingError: the name ends in no known parameter suffix, or has nothing before it.
    """
    name = str(mx_name).strip()
    for prefix in ("arg:", "aux:"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    for mx_suffix, tf_leaf, kind in _MX_TO_TF:
        tail = f"_{mx_suffix}"
        if name.endswith(tail):
            layer = name[: -len(tail)]
            if not layer or layer.endswith("/"):
                break
            return f"{layer}/{tf_leaf}", kind
    raise NamingError(f"MXNet parameter {mx_name!r}: expected '<layer>_<suffix>' with suffix "
                      f"one of: {_rules_text()}")


def mx_layer(tf_name: str) -> str:
    """Name of the MXNet layer that owns a TF variable: its TF scope, unchanged."""
    tf_to_mx(tf_name)  # validates
    return _TENSOR_SUFFIX.sub("", str(tf_name).strip()).rpartition("/")[0]
