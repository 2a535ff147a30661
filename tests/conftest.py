"""Shared, session-scoped fixtures: each big graph is built once per test session.

Building Inception-ResNet-v2 in TF costs seconds; every test module that needs
a comparison of a registered pair takes it from here instead of building its own.
"""
from __future__ import annotations

import pytest

from porting import compat  # noqa: F401  (shims first)


@pytest.fixture(scope="session")
def irv2_result():
    """verify('inception_resnet_v2') at 299: the full network with AuxLogits, training-mode TF graph."""
    from porting.compare import verify

    return verify("inception_resnet_v2")


@pytest.fixture(scope="session")
def irv2_reduced_result():
    """verify('inception_resnet_v2_reduced') at 299: one block of each kind."""
    from porting.compare import verify

    return verify("inception_resnet_v2_reduced")
