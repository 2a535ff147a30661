"""Shared, session-scoped fixtures: each big graph is built once per test session.

Building Inception-ResNet-v2 in TF costs seconds; every test module that needs
a comparison of a registered pair takes it from here instead of building its own.
"""
from __future__ import annotations

import pytest

from porting import compat  # noqa: F401  (shims first)


@pytest.fixture(scope="session", autouse=True)
def reference_cache_dir(tmp_path_factory):
    """The whole session's reference cache (``porting.verifier.reference_cache``) is a temporary
    folder, for this process and the commands it starts, so no test writes to the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("porting-cache")
        patch.setenv("PORTING_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def irv2_result():
    """verify('inception_resnet_v2') at 299: the full network with AuxLogits, training-mode TF graph."""
    from porting.verifier.api import verify

    return verify("inception_resnet_v2")


@pytest.fixture(scope="session")
def irv2_reduced_result():
    """verify('inception_resnet_v2_reduced') at 299: one block of each kind."""
    from porting.verifier.api import verify

    return verify("inception_resnet_v2_reduced")


# -- training and prediction (tests/training/, tests/serving/test_prediction.py) --

#: The short training run every training/prediction test shares: the reduced network
#: (one block of each kind) on the embedded digits at their default 32x32 crop, which
#: needs slim's SAME-padded stem (align_feature_maps). bn_momentum 0.5 because MXNet
#: updates the moving statistics in backward and a 20-update run with slim's 0.9997
#: would evaluate with statistics of the initial weights (porting.training.network).
DIGITS_TRAIN_ARGS = dict(repeats=(1, 1, 1), align_feature_maps=True, bn_momentum=0.5, batch_size=16,
                         max_batches=10, epochs=2, log_every=5, preprocess_threads=1)


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory):
    """``python -m porting.data --layout digits`` once per session: 1618 train / 179 val, 32x32."""
    from porting.cli.data import main

    out = tmp_path_factory.mktemp("digits") / "data"
    assert main(["--layout", "digits", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def digits_model(digits_data, tmp_path_factory):
    """A model trained in-process for 2 short epochs on ``digits_data`` (``TrainResult``)."""
    from porting.training import config, loop

    out = tmp_path_factory.mktemp("digits_model") / "run"
    return loop.train(config.TrainConfig(data=str(digits_data), model_dir=str(out), **DIGITS_TRAIN_ARGS))
