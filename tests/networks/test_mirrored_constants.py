"""The two mirrored networks name the same things the same way, with the same values.

reference_tf (the truth) and mx_impl (the port) each define their constants; the
tables that must not import a framework (the registered models, the autoport zoo)
write the repeat presets out, and are checked against the networks here.
"""
from __future__ import annotations

import pytest

from porting import compat  # noqa: F401  (shims before any framework import)
from porting.autoport import zoo
from porting.frameworks import models

from mx_impl import inception_resnet_v2 as port  # noqa: E402
from reference_tf import inception_resnet_v2 as reference  # noqa: E402

SHARED = ("BASE_END_POINTS", "HEAD_END_POINTS", "END_POINTS", "BLOCK35_SCALE", "BLOCK17_SCALE",
          "BLOCK8_SCALE", "DEFAULT_REPEATS", "REDUCED_REPEATS", "SMALL_REPEATS", "REPEAT_PRESETS")


@pytest.mark.parametrize("name", SHARED)
def test_same_name_same_value(name):
    assert getattr(reference, name) == getattr(port, name)


def test_old_names_are_gone():
    for module in (reference, port):
        for old in ("ENDPOINTS", "HEAD_ENDPOINTS", "BLOCK_SCALES"):
            assert not hasattr(module, old), f"{module.__name__}.{old}"


def test_reduced_is_one_block_of_each_kind_and_small_two():
    assert port.REDUCED_REPEATS == (1, 1, 1) and port.SMALL_REPEATS == (2, 2, 2)
    assert port.REPEAT_PRESETS == {"full": port.DEFAULT_REPEATS, "reduced": port.REDUCED_REPEATS,
                                   "small": port.SMALL_REPEATS}
    assert port.END_POINTS == port.BASE_END_POINTS + port.HEAD_END_POINTS


def test_framework_free_tables_agree_with_the_networks():
    reduced = models.get_model("inception_resnet_v2_reduced")
    assert reduced.tf_kwargs["repeats"] == reduced.mx_kwargs["repeats"] == port.REDUCED_REPEATS
    assert zoo.get("inception_resnet_v2_small").kwargs["repeats"] == port.SMALL_REPEATS
    assert not [name for name in zoo.ZOO if name.endswith("_reduced")]
