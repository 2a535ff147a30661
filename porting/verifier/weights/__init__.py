"""Weight transfer between a TF graph (or checkpoint) and an MXNet symbol, from the layer pairing.

Names are never guessed: for every layer pair the verifier matched (``porting.core.match``),
the TF values are found from the TF ops of the record (the conv or matmul weight input,
the BiasAdd's bias, the FusedBatchNorm's scale, offset, mean and variance inputs) and
the MXNet parameters from the MXNet node's inputs (``Convolution`` weight/bias,
``BatchNorm`` gamma/beta/moving_mean/moving_var, ``FullyConnected`` weight/bias). So a
port whose MXNet names are automatic (``convolution0_weight``) converts as well as ours.

Layouts come from ``porting.core.layouts`` (HWIO->OIHW, depthwise, dense, and the
flatten-order reorder when a dense layer reads a spatial NHWC flatten). Where TF has
no value by construction the MXNet value is defined, not defaulted, and reported:
``gamma = 1`` where slim's batch norm has no scale, a zero bias where MXNet has a bias
and TF has none.

Nothing is left silently at a default: a :class:`TransferPlan` lists every MXNet
parameter with no TF source (*missing*), every TF variable that no MXNet parameter takes
(*unexpected*) and every shape that disagrees after the layout transform (*mismatched*),
by name; :func:`transfer` and :func:`reverse_transfer` raise :class:`WeightTransferError`
unless each problem is allowed by a pattern (``allow_missing=['AuxLogits/*']``).

Reverse direction (MXNet -> TF, e.g. a model fine-tuned in MXNet going back): the
inverse transforms, checked so that a value TF cannot hold (a non-zero bias where TF
has none, a gamma that is not 1 where TF has no scale) is reported, not dropped. Every
transform is a permutation, so TF -> MXNet -> TF reproduces every tensor bit for bit.

The package, by step:

* ``mapping``: the types (``Mapping``, ``Problem``, ``TransferPlan``, ``WeightTransferError``);
* ``sources``: where a layer's values live on each side;
* ``plan``: ``plan_transfer``, from the pairing;
* ``values``: TF values from checkpoints and sessions, seeded values, writing checkpoints;
* ``transfer``: ``transfer``, ``reverse_transfer`` and their ``TransferReport``.

``from porting.verifier import weights`` then ``weights.<name>`` is the public API.
"""
from __future__ import annotations

from porting import compat  # noqa: F401  (shims first)
from porting.frameworks.tf_variables import graph_variables as tf_variables
from porting.verifier.weights.mapping import (ARG, AUX, SOURCE_CONSTANT, SOURCE_FILL, SOURCE_VARIABLE, Mapping,
                                              Problem, TransferPlan, WeightTransferError)
from porting.verifier.weights.plan import pair_graphs, plan_transfer
from porting.verifier.weights.sources import flat_geometry, is_mx_label, mx_parameters
from porting.verifier.weights.transfer import TransferReport, matches, reverse_transfer, transfer
from porting.verifier.weights.values import (CheckpointValues, assign_values, seeded_values, values_from_session,
                                             write_tf_checkpoint)

__all__ = ["Mapping", "Problem", "TransferPlan", "TransferReport", "WeightTransferError", "CheckpointValues",
           "pair_graphs", "plan_transfer", "transfer", "reverse_transfer", "seeded_values", "assign_values",
           "values_from_session", "write_tf_checkpoint", "mx_parameters", "tf_variables", "matches",
           "flat_geometry", "is_mx_label", "ARG", "AUX", "SOURCE_VARIABLE", "SOURCE_CONSTANT", "SOURCE_FILL"]
