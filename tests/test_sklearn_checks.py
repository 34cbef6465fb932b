"""scikit-learn's own estimator checks, over the configurations users reach for."""

import numpy as np
import pytest
import sklearn.utils.estimator_checks as estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_stackae import StackedAutoencoder

SMALL = {"batch_size": 16, "device": "cpu"}

CONFIGURATIONS = [
    # deep: three layers, both stages
    StackedAutoencoder((8, 6, 3), pretrain_epochs=2, finetune_epochs=2, **SMALL),
    # shallow: one layer, so pretraining is a single phase
    StackedAutoencoder((4,), pretrain_epochs=2, finetune_epochs=2, **SMALL),
    # sigmoid units, sigmoid output, binary cross-entropy
    StackedAutoencoder(
        (6, 3),
        activation="logistic",
        output_activation="sigmoid",
        loss="bce",
        pretrain_epochs=2,
        finetune_epochs=2,
        **SMALL,
    ),
    # pretraining only, tanh units, sigmoid codes
    StackedAutoencoder(
        (6, 3), activation="tanh", code_activation="sigmoid", pretrain_epochs=3, finetune_epochs=0, **SMALL
    ),
    # fine-tune only, from the random initialisation
    StackedAutoencoder((6, 3), activation="gelu", pretrain_epochs=0, finetune_epochs=3, **SMALL),
]


_enforce_estimator_tags_X = estimator_checks._enforce_estimator_tags_X


def _enforce_tags_and_unit_interval(estimator, X, *args, **kwargs):
    """The checks' own data preparation, then a min-max scaling for loss='bce'.

    Binary cross-entropy needs data in [0, 1] and refuses anything else with
    a ValueError. scikit-learn's tags can say "non-negative" (positive_only,
    which this estimator sets for bce) but not "at most 1", so the checks'
    data is mapped into [0, 1] the way ``positive_only`` shifts it, and the
    checks then run unchanged.
    """
    X = _enforce_estimator_tags_X(estimator, X, *args, **kwargs)
    if getattr(estimator, "loss", None) == "bce":
        low, high = X.min(), X.max()
        X = (X - low) / (high - low) if high > low else np.zeros_like(X)
    return X


@pytest.fixture(autouse=True)
def _unit_interval_data_for_bce(monkeypatch):
    monkeypatch.setattr(estimator_checks, "_enforce_estimator_tags_X", _enforce_tags_and_unit_interval)


@parametrize_with_checks(CONFIGURATIONS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
