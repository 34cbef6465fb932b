"""The classifier's and the regressor's "auto" settings: what they resolve to, and that the fit uses it."""

import math

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score

from sk_stackae import StackedAutoencoderClassifier, StackedAutoencoderRegressor
from sk_stackae._auto import (
    ADVERSARIAL_SHARE_OF_NORM,
    AUTO_PARAMETERS,
    EVERY_ROW_LABELED,
    MAX_AUTO_EPOCHS,
    MAX_STEPS,
    MIN_STEPS,
    UNLABELED_ROWS,
    median_row_norm,
    resolve_auto,
)

EPOCHS = ("pretrain_epochs", "unsupervised_finetune_epochs", "head_warmup_epochs", "finetune_epochs")

FAST = {"batch_size": 64, "random_state": 0, "device": "cpu"}
SHORT = {"pretrain_epochs": 1, "unsupervised_finetune_epochs": 1, "head_warmup_epochs": 1, "finetune_epochs": 2}


def auto_params(**changes):
    return {**StackedAutoencoderClassifier().get_params(deep=False), **changes}


@pytest.fixture(scope="module")
def few_labels(digits):
    X, y = digits
    return X, y, np.where(np.arange(len(y)) % 10 == 0, y, -1)


def test_every_parameter_that_takes_auto_defaults_to_it():
    for estimator in (StackedAutoencoderClassifier(), StackedAutoencoderRegressor()):
        params = estimator.get_params()
        assert all(params[name] == "auto" for name in AUTO_PARAMETERS)


def test_with_every_row_labeled_auto_is_a_plain_network(digits):
    X, _ = digits
    resolved = resolve_auto(auto_params(), X, n_unlabeled=0)
    assert {k: v for k, v in resolved.items() if k != "finetune_epochs"} == {
        k: v for k, v in EVERY_ROW_LABELED.items() if k != "finetune_epochs"
    }
    # 1797 rows are 8 batches of 256: 1000 steps take 125 epochs, above the floor of 50.
    assert resolved["finetune_epochs"] == 125
    assert resolve_auto(auto_params(), np.zeros((60000, 3)), n_unlabeled=0)["finetune_epochs"] == 50


def test_with_unlabeled_rows_auto_is_the_recipe_with_a_step_a_tenth_of_the_median_norm(digits):
    X, _ = digits
    resolved = resolve_auto(auto_params(), X, n_unlabeled=1700)
    settings = [name for name in UNLABELED_ROWS if name not in EPOCHS]
    assert {name: resolved[name] for name in settings} == {name: UNLABELED_ROWS[name] for name in settings}
    norms = np.linalg.norm(X, axis=1)
    assert resolved["adversarial_epsilon"] == pytest.approx(ADVERSARIAL_SHARE_OF_NORM * np.median(norms))


def test_auto_epochs_give_small_data_enough_steps_and_large_data_the_floor():
    small = resolve_auto(auto_params(), np.ones((900, 4)), n_unlabeled=850)
    large = resolve_auto(auto_params(), np.ones((60000, 4)), n_unlabeled=59000)
    for name in EPOCHS:
        assert 1 <= large[name] < small[name] <= MAX_AUTO_EPOCHS
        if name not in MAX_STEPS:
            assert large[name] >= UNLABELED_ROWS[name]
    # 900 rows are 4 batches: 500 steps of pretraining take 125 epochs.
    assert small["pretrain_epochs"] == MIN_STEPS["pretrain_epochs"] // 4
    assert large["pretrain_epochs"] == UNLABELED_ROWS["pretrain_epochs"]
    # The batch size counts: batches of 64 give four times the steps an epoch.
    fewer = resolve_auto(auto_params(batch_size=64), np.ones((900, 4)), n_unlabeled=850)
    assert fewer["pretrain_epochs"] == math.ceil(MIN_STEPS["pretrain_epochs"] / 15)


def test_the_semi_supervised_fine_tune_of_a_large_data_set_stops_at_its_step_budget():
    # 59,000 unlabeled rows and 1000 labeled ones seen 59 times: 118,000 rows, 461 batches of 256 an epoch.
    large = resolve_auto(auto_params(), np.ones((60000, 4)), n_unlabeled=59000)
    assert large["finetune_epochs"] == math.ceil(MAX_STEPS["finetune_epochs"] / 461) < UNLABELED_ROWS["finetune_epochs"]
    # A set whose floor stays within the budget keeps the floor: 20 epochs of 155 batches.
    middle = resolve_auto(auto_params(), np.ones((20000, 4)), n_unlabeled=19800)
    assert middle["finetune_epochs"] == UNLABELED_ROWS["finetune_epochs"]
    # Even a budget below one epoch trains one.
    huge = resolve_auto(auto_params(batch_size=8), np.ones((60000, 4)), n_unlabeled=59000)
    assert huge["finetune_epochs"] == 1
    # An explicit number of epochs is not capped.
    explicit = resolve_auto(auto_params(finetune_epochs=30), np.ones((60000, 4)), n_unlabeled=59000)
    assert explicit["finetune_epochs"] == 30


def test_the_median_norm_of_sparse_rows_is_that_of_the_dense_ones(digits):
    import scipy.sparse as sp

    X, _ = digits
    assert median_row_norm(sp.csr_matrix(X)) == pytest.approx(median_row_norm(X))


def test_explicit_values_win(digits):
    X, _ = digits
    resolved = resolve_auto(auto_params(noise="gaussian", finetune_epochs=7, consistency_weight=0.5), X, 5)
    assert (resolved["noise"], resolved["finetune_epochs"], resolved["consistency_weight"]) == ("gaussian", 7, 0.5)


def test_auto_terms_that_explicit_settings_leave_without_effect_are_off(digits):
    X, _ = digits
    # No consistency term: the adversarial step that perturbs its inputs is off too.
    assert resolve_auto(auto_params(consistency_weight=0.0), X, 5)["adversarial_epsilon"] == 0.0
    # Nothing corrupts the inputs: the consistency term would compare a prediction with itself.
    quiet = resolve_auto(auto_params(noise=None, adversarial_epsilon=0.0), X, 5)
    assert quiet["consistency_weight"] == 0.0
    # Noise at level 0 corrupts nothing either.
    silent = resolve_auto(auto_params(noise_level=0.0, adversarial_epsilon=0.0), X, 5)
    assert silent["consistency_weight"] == 0.0


def test_the_fit_records_and_uses_what_auto_resolved_to(few_labels):
    X, y, y_few = few_labels
    labeled = StackedAutoencoderClassifier((16,), finetune_epochs=2, **FAST).fit(X, y)
    assert labeled.resolved_params_ == {**EVERY_ROW_LABELED, "finetune_epochs": 2, "ladder_weights": None}
    assert all(not curve for curve in labeled.pretrain_loss_curves_)  # no pretraining ran
    semi = StackedAutoencoderClassifier((16,), unlabeled_label=-1, **SHORT, **FAST).fit(X, y_few)
    assert semi.resolved_params_["noise"] == "masking"
    assert semi.resolved_params_["adversarial_epsilon"] > 0
    assert len(semi.unsupervised_loss_curve_) == 1
    assert semi.get_params()["noise"] == "auto"  # the parameters themselves stay as given


def test_auto_with_every_row_labeled_trains_what_the_explicit_plain_settings_train(digits):
    X, y = digits
    auto = StackedAutoencoderClassifier((16,), finetune_epochs=3, **FAST).fit(X, y)
    explicit = StackedAutoencoderClassifier((16,), **{**EVERY_ROW_LABELED, "finetune_epochs": 3}, **FAST).fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X[:50]), explicit.predict_proba(X[:50]))


def test_a_warm_start_keeps_the_settings_of_the_first_fit(few_labels):
    X, y, y_few = few_labels
    model = StackedAutoencoderClassifier((16,), unlabeled_label=-1, warm_start=True, **SHORT, **FAST).fit(X, y_few)
    first = dict(model.resolved_params_)
    model.fit(X, y)  # every row labeled now, but the network goes on as it was trained
    assert model.resolved_params_ == first


def test_a_failed_fit_resolves_nothing(digits):
    X, y = digits
    model = StackedAutoencoderClassifier((16,), average_from_epoch=MAX_AUTO_EPOCHS + 1, **FAST)
    with pytest.raises(ValueError, match="finetune_epochs="):
        model.fit(X, y)  # "auto" gives at most MAX_AUTO_EPOCHS: that epoch never comes
    assert not hasattr(model, "resolved_params_")


def test_the_regressor_trains_the_plain_network_whatever_its_nan_rows(digits):
    X, y = digits
    targets = y.astype(float)
    targets[::2] = np.nan
    regressor = StackedAutoencoderRegressor((16,), unlabeled_label=np.nan, finetune_epochs=2, **FAST)
    resolved = regressor.fit(X, targets).resolved_params_
    assert {k: v for k, v in resolved.items() if k != "finetune_epochs"} == {
        **{k: v for k, v in EVERY_ROW_LABELED.items() if k != "finetune_epochs"},
        "ladder_weights": None,
    }
    # Explicit settings still use the unlabeled rows.
    semi = StackedAutoencoderRegressor((16,), unlabeled_label=np.nan, consistency_weight=1.0, noise="masking", **SHORT)
    assert semi.set_params(**FAST).fit(X, targets).resolved_params_["consistency_weight"] == 1.0


def test_a_pretrained_start_skips_the_unsupervised_fine_tune(few_labels):
    from sk_stackae import StackedAutoencoder

    X, _, y_few = few_labels
    autoencoder = StackedAutoencoder((16,), pretrain_epochs=1, finetune_epochs=1, **FAST).fit(X)
    classifier = StackedAutoencoderClassifier(pretrained=autoencoder, unlabeled_label=-1, finetune_epochs=1, **FAST)
    assert classifier.fit(X, y_few).resolved_params_["unsupervised_finetune_epochs"] == 0
    assert classifier.unsupervised_loss_curve_ == []


def test_scores_leave_out_the_unlabeled_rows(few_labels):
    X, _, y_few = few_labels
    model = StackedAutoencoderClassifier((16,), unlabeled_label=-1, **SHORT, **FAST).fit(X, y_few)
    labeled = y_few != -1
    assert model.score(X, y_few) == pytest.approx(np.mean(model.predict(X[labeled]) == y_few[labeled]))
    scores = cross_val_score(model, X, y_few, cv=2)
    assert (scores > 0.3).all()  # counting every -1 row as an error would give about a tenth of that


def test_the_regressors_score_leaves_out_nan_rows(digits):
    X, y = digits
    targets = y.astype(float)
    targets[::3] = np.nan
    model = StackedAutoencoderRegressor((16,), unlabeled_label=np.nan, **SHORT, **FAST).fit(X, targets)
    kept = ~np.isnan(targets)
    assert model.score(X, targets) == pytest.approx(model.score(X[kept], targets[kept]))


def test_nan_targets_without_unlabeled_label_say_what_to_set(digits):
    X, y = digits
    targets = y.astype(float)
    targets[0] = np.nan
    with pytest.raises(ValueError, match=r"unlabeled_label=np\.nan"):
        StackedAutoencoderRegressor((16,), **FAST).fit(X, targets)
