"""scikit-learn's own estimator checks, over the configurations users reach for."""

from functools import partial

import numpy as np
import pytest
import sklearn.utils.estimator_checks as estimator_checks
from check_support import run_check
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier, StackedAutoencoderRegressor

# The checks train for a handful of epochs: early stopping rightly says that
# the validation score was still improving.
# The checks' data have two to ten features, as wide as some of these codes:
# the estimator rightly warns that such a code can learn the identity.
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:The code .* is as wide as the input or wider:UserWarning"),
]

SMALL = {"batch_size": 16, "device": "cpu"}

CONFIGURATIONS = [
    # the defaults, as a user first meets the estimator
    StackedAutoencoder(),
    # SGD with momentum, full batches
    StackedAutoencoder((8, 4), optimizer="sgd", learning_rate_init=0.05, pretrain_epochs=2, finetune_epochs=3),
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
    # tied weights, dropout, Gaussian denoising, SGD with momentum
    StackedAutoencoder(
        (6, 3),
        tied_weights=True,
        dropout=0.2,
        noise="gaussian",
        noise_level=0.2,
        optimizer="sgd",
        learning_rate_init=1e-4,
        pretrain_epochs=2,
        finetune_epochs=2,
        **SMALL,
    ),
    # KL sparsity on sigmoid units, masking noise, AdamW with weight decay
    StackedAutoencoder(
        (6, 3),
        activation="logistic",
        code_activation="sigmoid",
        sparsity=0.5,
        sparsity_target=0.1,
        noise="masking",
        noise_level=0.3,
        optimizer="adamw",
        alpha=0.01,
        pretrain_epochs=2,
        finetune_epochs=2,
        **SMALL,
    ),
    # early stopping in every phase, L1 sparsity on relu codes
    StackedAutoencoder(
        (6, 3),
        code_activation="relu",
        sparsity=0.01,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=1,
        pretrain_epochs=4,
        finetune_epochs=4,
        **SMALL,
    ),
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
    run_check(estimator, check)


WARM_START = StackedAutoencoder((6, 3), warm_start=True, pretrain_epochs=2, finetune_epochs=2, **SMALL)

# warm_start=True is defined to make a second fit continue from the first.
# These checks fit an instance, fit it again and expect the first result
# back, so with warm start they must fail, and for that reason alone.
REFIT_SAME_INSTANCE = {"check_pipeline_consistency", "check_transformer_data_not_an_array", "check_transformer_general"}


def _check_name(check):
    return check.func.__name__ if isinstance(check, partial) else check.__name__


@parametrize_with_checks([WARM_START])
def test_sklearn_checks_with_warm_start(estimator, check):
    if _check_name(check) not in REFIT_SAME_INSTANCE:
        run_check(estimator, check)
        return
    with pytest.raises(AssertionError, match=r"not consistent|Not equal to tolerance"):
        check(estimator)
    check(clone(estimator).set_params(warm_start=False))


SUPERVISED = {"batch_size": 16, "device": "cpu", "random_state": 0}

SUPERVISED_CONFIGURATIONS = [
    # the defaults, as a user first meets the estimators
    StackedAutoencoderClassifier(random_state=0),
    StackedAutoencoderRegressor(random_state=0),
    # full batches, SGD with momentum
    StackedAutoencoderClassifier((16,), pretrain_epochs=2, finetune_epochs=30, optimizer="sgd", random_state=0),
    # the default stages: greedy pretraining, then the supervised fine-tune
    StackedAutoencoderClassifier((16, 8), pretrain_epochs=2, finetune_epochs=30, **SUPERVISED),
    # a plain perceptron: no pretraining
    StackedAutoencoderClassifier((16,), pretrain_epochs=0, finetune_epochs=30, **SUPERVISED),
    # every stage, every lever: unsupervised fine-tune, head warm-up, the
    # reconstruction kept, masking noise, dropout, tied weights, AdamW
    StackedAutoencoderClassifier(
        (16, 8),
        pretrain_epochs=2,
        unsupervised_finetune_epochs=2,
        head_warmup_epochs=2,
        finetune_epochs=30,
        reconstruction_weight=0.5,
        average_from_epoch=20,
        noise="masking",
        noise_level=0.1,
        dropout=0.1,
        tied_weights=True,
        optimizer="adamw",
        alpha=0.01,
        **SUPERVISED,
    ),
    # semi-supervised convention on, early stopping on held-out labeled rows;
    # a marker that the checks' labels never use (-1 is one of their classes)
    StackedAutoencoderClassifier(
        (16,),
        pretrain_epochs=2,
        finetune_epochs=40,
        unlabeled_label="unlabeled",
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=40,
        **SUPERVISED,
    ),
    # the consistency term, under masking noise and dropout
    StackedAutoencoderClassifier(
        (16,), pretrain_epochs=2, finetune_epochs=30, consistency_weight=1.0, dropout=0.1, **SUPERVISED
    ),
    # the consistency term against the virtual adversarial perturbation alone
    StackedAutoencoderClassifier(
        (16,),
        pretrain_epochs=2,
        finetune_epochs=30,
        consistency_weight=1.0,
        adversarial_epsilon=0.3,
        noise=None,
        **SUPERVISED,
    ),
    StackedAutoencoderRegressor((16, 8), pretrain_epochs=2, finetune_epochs=30, **SUPERVISED),
    StackedAutoencoderRegressor((16,), pretrain_epochs=0, finetune_epochs=30, **SUPERVISED),
    StackedAutoencoderRegressor(
        (16, 8),
        pretrain_epochs=2,
        unsupervised_finetune_epochs=2,
        head_warmup_epochs=2,
        finetune_epochs=30,
        reconstruction_weight=0.5,
        consistency_weight=0.5,
        adversarial_epsilon=0.2,
        average_from_epoch=10,
        unlabeled_label=np.nan,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=30,
        **SUPERVISED,
    ),
    # The ladder network, from scratch. Its step size is 0.01: at 0.001 the ~100 steps of
    # check_class_weight_classifiers move the head's batch-normalised shift too little for the class
    # weights to show (a fresh head's scores start spread by its random weights, not at the prior).
    StackedAutoencoderClassifier(
        (16, 8), ladder="full", pretrain_epochs=0, finetune_epochs=30, learning_rate_init=0.01, **SUPERVISED
    ),
    # the ladder's Gamma-model after pretraining, with dropout; the semi-supervised marker on
    StackedAutoencoderClassifier(
        (16,),
        ladder="gamma",
        learning_rate_init=0.01,
        pretrain_epochs=2,
        finetune_epochs=40,
        dropout=0.1,
        unlabeled_label="unlabeled",
        **SUPERVISED,
    ),
    StackedAutoencoderRegressor((16, 8), ladder="full", pretrain_epochs=0, finetune_epochs=30, **SUPERVISED),
]


@parametrize_with_checks(SUPERVISED_CONFIGURATIONS)
def test_sklearn_compatible_supervised_estimator(estimator, check):
    run_check(estimator, check)
