"""TF variable name <-> MXNet parameter name rule (porting/core/naming.py)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from porting.core import naming
from porting.core.naming import NamingError, mx_to_tf, tf_to_mx

GOLDEN = Path(__file__).parents[1] / "golden" / "irv2_slim_variables.tsv"


def _tf_variables() -> list[dict]:
    with GOLDEN.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.parametrize("tf_name, expected", [
    ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/moving_variance",
     ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm_moving_var", "aux")),
    ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/moving_mean:0",
     ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm_moving_mean", "aux")),
    ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/beta",
     ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm_beta", "arg")),
    ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/gamma",
     ("InceptionResnetV2/Conv2d_1a_3x3/BatchNorm_gamma", "arg")),
    ("InceptionResnetV2/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7/weights:0",
     ("InceptionResnetV2/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7_weight", "arg")),
    ("InceptionResnetV2/Block8/Conv2d_1x1/biases",
     ("InceptionResnetV2/Block8/Conv2d_1x1_bias", "arg")),
    ("InceptionResnetV2/Logits/Logits/weights", ("InceptionResnetV2/Logits/Logits_weight", "arg")),
])
def test_examples(tf_name, expected):
    assert tf_to_mx(tf_name) == expected
    assert mx_to_tf(expected[0]) == (tf_name.split(":")[0], expected[1])


def test_round_trip_over_every_golden_variable():
    rows = _tf_variables()
    assert len(rows) == 908
    mx_names = set()
    for row in rows:
        mx_name, kind = tf_to_mx(row["name"])
        # moving statistics are exactly the non-trainable variables, and MXNet's aux states
        assert (kind == "aux") == (row["trainable"] == "0"), row["name"]
        assert mx_to_tf(mx_name) == (row["name"], kind)
        assert "/" in mx_name and ":" not in mx_name
        mx_names.add(mx_name)
    assert len(mx_names) == len(rows)  # injective


def test_checkpoint_prefixes_are_accepted():
    assert mx_to_tf("arg:A/conv_weight") == ("A/conv/weights", "arg")
    assert mx_to_tf("aux:A/BatchNorm_moving_var") == ("A/BatchNorm/moving_variance", "aux")


def test_mx_layer_is_the_tf_scope():
    assert naming.mx_layer("A/B/BatchNorm/moving_variance:0") == "A/B/BatchNorm"
    assert naming.mx_layer("A/B/weights") == "A/B"


@pytest.mark.parametrize("bad", [
    "InceptionResnetV2/Conv2d_1a_3x3/kernel",  # Keras leaf name
    "InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/moving_var",  # MXNet spelling on the TF side
    "weights",  # no scope
    "/weights",
    "global_step",
])
def test_unknown_tf_names_raise(bad):
    with pytest.raises(NamingError) as error:
        tf_to_mx(bad)
    assert bad in str(error.value)
    assert "moving_variance" in str(error.value)  # lists the rules


@pytest.mark.parametrize("bad", [
    "InceptionResnetV2/Conv2d_1a_3x3_kernel",
    "InceptionResnetV2/Conv2d_1a_3x3/BatchNorm_running_var",  # Gluon spelling
    "_weight",
    "A/_bias",
    "data",
])
def test_unknown_mx_names_raise(bad):
    with pytest.raises(NamingError) as error:
        mx_to_tf(bad)
    assert bad in str(error.value)
    assert "_moving_var" in str(error.value)


def test_rules_are_a_bijection():
    tf_leaves = [tf_leaf for tf_leaf, _, _ in naming.RULES]
    mx_suffixes = [mx_suffix for _, mx_suffix, _ in naming.RULES]
    assert len(set(tf_leaves)) == len(tf_leaves) and len(set(mx_suffixes)) == len(mx_suffixes)
    for tf_leaf, mx_suffix, kind in naming.RULES:
        assert tf_to_mx(f"s/{tf_leaf}") == (f"s_{mx_suffix}", kind)
        assert mx_to_tf(f"s_{mx_suffix}") == (f"s/{tf_leaf}", kind)
