"""Sample weights in every estimator, class weights in the classifier, and float64 training."""

import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import has_fit_parameter

from sk_stackae import (
    StackedAutoencoder,
    StackedAutoencoderClassifier,
    StackedAutoencoderOutlierDetector,
    StackedAutoencoderRegressor,
)
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._losses import Batch
from sk_stackae._tasks import AccuracyScore, R2Score

ESTIMATORS = [
    StackedAutoencoder,
    StackedAutoencoderClassifier,
    StackedAutoencoderRegressor,
    StackedAutoencoderOutlierDetector,
]
# Training that weights and repetitions can agree under to float64 rounding: float64, full batches, no noise.
EXACT = {"precision": "float64", "noise": None, "batch_size": 1000, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def digits_small():
    X, y = load_digits(return_X_y=True)
    return X[:120, ::2] / 16.0, y[:120]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_fit_and_partial_fit_take_sample_weight(estimator):
    assert has_fit_parameter(estimator(), "sample_weight")
    if hasattr(estimator, "partial_fit"):
        assert "sample_weight" in inspect.signature(estimator.partial_fit).parameters


def _y_for(estimator, y):
    if estimator is StackedAutoencoderRegressor:
        return y.astype(float)
    if estimator is StackedAutoencoderClassifier:
        return y
    return None


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_a_row_of_weight_zero_is_a_row_left_out(estimator, digits_small):
    X, y = digits_small
    weights = np.ones(len(X))
    weights[::4] = 0.0
    kept = weights > 0
    params = {**EXACT, "pretrain_epochs": 2, "finetune_epochs": 3}
    if estimator is StackedAutoencoderOutlierDetector:
        params.pop("noise")
    target = _y_for(estimator, y)
    weighted = estimator(**params).fit(X, target, sample_weight=weights)
    left_out = estimator(**params).fit(X[kept], None if target is None else target[kept])
    method = {"StackedAutoencoder": "transform", "StackedAutoencoderOutlierDetector": "decision_function"}.get(
        estimator.__name__, "predict"
    )
    np.testing.assert_allclose(getattr(weighted, method)(X), getattr(left_out, method)(X), rtol=1e-9, atol=1e-12)


def test_integer_weights_are_repeated_rows_with_every_semi_supervised_term(digits_small):
    X, y = digits_small
    y_few = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    weights = np.random.RandomState(0).randint(1, 4, size=len(X))
    params = {
        **EXACT,
        "hidden_layer_sizes": (16, 8),
        "pretrain_epochs": 2,
        "unsupervised_finetune_epochs": 1,
        "head_warmup_epochs": 1,
        "finetune_epochs": 3,
        "reconstruction_weight": 0.5,
        "consistency_weight": 0.5,
        "adversarial_epsilon": 0.0,  # its random directions are drawn per row
        "pseudo_label_weight": 0.2,
        "dropout": 0.0,
        "sparsity": 0.05,
        "alpha": 1e-3,
        "class_weight": "balanced",
        "unlabeled_label": -1,
    }
    weighted = StackedAutoencoderClassifier(**params).fit(X, y_few, sample_weight=weights)
    repeated = StackedAutoencoderClassifier(**params).fit(np.repeat(X, weights, axis=0), np.repeat(y_few, weights))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-10)


def test_heavier_rows_are_reconstructed_better(digits_small):
    X, y = digits_small
    params = {"hidden_layer_sizes": (8, 2), "pretrain_epochs": 5, "finetune_epochs": 20, "random_state": 0}
    heavy = y < 3
    weights = np.where(heavy, 20.0, 1.0)
    plain = StackedAutoencoder(**params).fit(X)
    weighted = StackedAutoencoder(**params).fit(X, sample_weight=weights)
    gain = lambda model: -model.score_samples(X)  # noqa: E731
    # The heavy rows' errors fall against the plain fit's; the light rows' rise.
    assert gain(weighted)[heavy].mean() < 0.95 * gain(plain)[heavy].mean()
    assert gain(weighted)[~heavy].mean() > gain(plain)[~heavy].mean()


def test_a_pipeline_routes_the_weights_to_the_autoencoder(digits_small):
    X, _ = digits_small
    weights = np.ones(len(X))
    weights[:30] = 0.0
    params = {**EXACT, "pretrain_epochs": 1, "finetune_epochs": 2}
    pipeline = make_pipeline(StandardScaler(), StackedAutoencoder(**params))
    pipeline.fit(X, stackedautoencoder__sample_weight=weights)
    alone = StackedAutoencoder(**params).fit(StandardScaler().fit(X).transform(X)[30:])
    direct = pipeline[-1]
    np.testing.assert_allclose(direct.pretrain_loss_curves_[0][:1], alone.pretrain_loss_curves_[0][:1], rtol=1e-6)


def test_the_detectors_threshold_weighs_the_rows(digits_small):
    X, _ = digits_small
    weights = np.random.RandomState(1).randint(0, 3, size=len(X))
    params = {"precision": "float64", "contamination": 0.1, "random_state": 0, "device": "cpu"}
    weighted = StackedAutoencoderOutlierDetector(**params).fit(X, sample_weight=weights)
    repeated = StackedAutoencoderOutlierDetector(**params).fit(np.repeat(X, weights, axis=0))
    # Trained in float64 on the same rows: the two differ by rounding alone (the sums run in other orders).
    assert weighted.offset_ == pytest.approx(repeated.offset_, rel=1e-7)
    np.testing.assert_allclose(weighted.center_, repeated.center_, rtol=1e-12)
    np.testing.assert_allclose(weighted.scale_, repeated.scale_, rtol=1e-12)


class ValidationScores(TrainingListener):
    def __init__(self):
        self.scores = []

    def phase_ended(self, phase, result):
        self.scores.append(result.validation_scores)


def test_validation_metrics_weigh_the_rows():
    rng = np.random.RandomState(0)
    scores = torch.as_tensor(rng.normal(size=(30, 3)))
    target = torch.as_tensor(rng.randint(0, 3, size=30))
    weights = torch.as_tensor(rng.randint(0, 3, size=30).astype(float))
    accuracy = AccuracyScore()
    got = accuracy.finish(accuracy.partial({"scores": scores}, Batch(scores, target, weights)))
    assert got == pytest.approx(np.average((scores.argmax(1) == target).numpy(), weights=weights.numpy()))
    values = torch.as_tensor(rng.normal(size=(30, 2)))
    r2 = R2Score()
    got = r2.finish(r2.partial({"scores": scores[:, :2]}, Batch(scores, values, weights)))
    expected = r2_score(values.numpy(), scores[:, :2].numpy(), sample_weight=weights.numpy())
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("sample_weight", "message"),
    [
        (-np.ones(120), "Negative values in data passed to `sample_weight`"),
        (np.ones(7), "sample_weight.shape"),
        (np.zeros(120), "at least one non-zero"),
    ],
)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_bad_sample_weights_are_refused_before_training(estimator, sample_weight, message, digits_small):
    X, y = digits_small
    heard = ValidationScores()
    model = estimator(pretrain_epochs=1, finetune_epochs=1)
    with listening(heard), pytest.raises(ValueError, match=message):
        model.fit(X, _y_for(estimator, y), sample_weight=sample_weight)
    assert heard.scores == [] and not hasattr(model, "network_")


def test_score_weighs_the_rows(digits_small):
    X, _ = digits_small
    model = StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=1, random_state=0).fit(X)
    weights = np.arange(len(X), dtype=float)
    assert model.score(X, sample_weight=weights) == pytest.approx(np.average(model.score_samples(X), weights=weights))


# ----------------------------------------------------------- class weights


def _imbalanced():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    minority = np.flatnonzero(y == 3)[:30]
    majority = np.flatnonzero(y != 3)[:970]
    rows = np.concatenate([minority, majority])
    return X[rows], (y[rows] == 3).astype(int)


def test_balanced_class_weights_raise_the_recall_of_a_rare_class():
    X, y = _imbalanced()
    params = {
        "hidden_layer_sizes": (16,),
        "pretrain_epochs": 1,
        "finetune_epochs": 30,
        "noise": None,
        "random_state": 0,
    }
    recall = {}
    for class_weight in (None, "balanced", {1: 30.0}):
        predicted = StackedAutoencoderClassifier(class_weight=class_weight, **params).fit(X, y).predict(X)
        recall[str(class_weight)] = (predicted[y == 1] == 1).mean()
    assert recall["balanced"] > recall["None"] + 0.2
    assert recall["{1: 30.0}"] > recall["None"] + 0.2


def test_balanced_class_weights_count_each_row_as_its_sample_weight():
    X, y = _imbalanced()
    weights = np.where(y == 1, 3, 1)
    params = {
        **EXACT,
        "hidden_layer_sizes": (8,),
        "pretrain_epochs": 1,
        "finetune_epochs": 2,
        "class_weight": "balanced",
        "batch_size": 5000,
    }
    weighted = StackedAutoencoderClassifier(**params).fit(X, y, sample_weight=weights)
    repeated = StackedAutoencoderClassifier(**params).fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(
    ("params", "fit", "message"),
    [
        ({"class_weight": {7: 2.0}}, "fit", r"class_weight names \[7\], which are not classes"),
        ({"class_weight": "balanced"}, "partial_fit", "partial_fit sees one batch at a time"),
        ({"class_weight": "heavy"}, "fit", "The 'class_weight' parameter"),
    ],
)
def test_bad_class_weights_are_refused(params, fit, message):
    X, y = _imbalanced()
    model = StackedAutoencoderClassifier(pretrain_epochs=1, finetune_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        if fit == "fit":
            model.fit(X, y)
        else:
            model.partial_fit(X, y, classes=[0, 1])


# ------------------------------------------------------------- float64


def test_float64_training_keeps_the_network_in_float64_through_pickling(digits_small):
    X, _ = digits_small
    model = StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=2, precision="float64", random_state=0)
    model.fit(X)
    assert all(parameter.dtype == torch.float64 for parameter in model.network_.parameters())
    restored = pickle.loads(pickle.dumps(model))
    assert next(restored.network_.parameters()).dtype == torch.float64
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))
    # The same seed in float32 lands close by: the precision is the difference.
    single = StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=2, random_state=0).fit(X)
    np.testing.assert_allclose(single.transform(X), model.transform(X), rtol=1e-2, atol=1e-2)


def test_the_regressor_trains_in_float64_and_predicts_the_targets_units():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    params = {"hidden_layer_sizes": (16,), "pretrain_epochs": 1, "finetune_epochs": 100, "random_state": 0}
    model = StackedAutoencoderRegressor(precision="float64", **params).fit(X, y)
    assert model.score(X, y) > 0.4
    weights = np.where(y > np.median(y), 5.0, 1.0)
    weighted = StackedAutoencoderRegressor(precision="float64", **params).fit(X, y, sample_weight=weights)
    assert weighted._target_mean[0] == pytest.approx(np.average(y, weights=weights))
