"""StackedAutoencoderOutlierDetector: scikit-learn's detector API on the reconstruction error."""

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from check_support import run_check
from conftest import leave_process_group
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_stackae import StackedAutoencoderOutlierDetector
from sk_stackae._outlier import default_hidden_layer_sizes

# The defaults train these 400-row tables in a fraction of a second.
FAST = {"random_state": 0}


def low_rank_rows(n_rows=400, n_features=10, rank=3, seed=0):
    """Rows near a ``rank``-dimensional subspace, columns on very different scales."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, rank)) @ rng.normal(size=(rank, n_features))
    X += 0.05 * rng.normal(size=X.shape)
    return X * np.logspace(-2, 3, n_features)


@pytest.fixture(scope="module")
def planted():
    """Low-rank rows with ten outliers, each with one column pushed off the subspace."""
    X = low_rank_rows()
    outliers = np.arange(10)
    broken_columns = np.arange(10) % X.shape[1]
    X[outliers, broken_columns] += 6 * X[:, broken_columns].std(axis=0)
    is_outlier = np.zeros(len(X), dtype=bool)
    is_outlier[outliers] = True
    return X, is_outlier, broken_columns


@pytest.fixture(scope="module")
def fitted(planted):
    X, _, _ = planted
    return StackedAutoencoderOutlierDetector(**FAST).fit(X)


# ----------------------------------------------------------- architecture


@pytest.mark.parametrize(
    ("n_features", "sizes"),
    [(1, (1, 1)), (2, (2, 1)), (9, (9, 3)), (21, (21, 5)), (274, (274, 17)), (784, (784, 28))],
)
def test_auto_sizes_are_the_input_width_then_a_code_of_sqrt_features(n_features, sizes):
    assert default_hidden_layer_sizes(n_features) == sizes


def test_auto_sizes_are_what_the_network_gets(fitted):
    assert fitted.network_.widths == (10, 10, 3)
    assert fitted.hidden_layer_sizes_ == (10, 3)


# ------------------------------------------------------------- detector API


def test_scores_rank_the_planted_outliers_first(fitted, planted):
    X, is_outlier, _ = planted
    assert roc_auc_score(is_outlier, -fitted.score_samples(X)) > 0.99


def test_decision_function_is_score_samples_minus_offset_and_predict_is_its_sign(fitted, planted):
    X, _, _ = planted
    scores = fitted.score_samples(X)
    decision = fitted.decision_function(X)
    np.testing.assert_array_equal(decision, scores - fitted.offset_)
    prediction = fitted.predict(X)
    assert prediction.dtype.kind == "i"
    np.testing.assert_array_equal(prediction, np.where(decision < 0, -1, 1))


def test_auto_threshold_is_two_robust_standard_deviations_above_the_typical_training_row(fitted, planted):
    X, _, _ = planted
    assert fitted.offset_ == -2.0
    # Each view of the training rows: median 0, interquartile range 1.349 (a standard normal's).
    z = fitted._views.z_scores(*fitted._errors_and_codes(X))
    assert z.shape == (len(X), 2)
    for view in z.T:
        lower, median, upper = np.percentile(view, [25, 50, 75], method="inverted_cdf")
        assert median == pytest.approx(0.0, abs=1e-9)
        assert upper - lower == pytest.approx(1.349, rel=1e-6)
    np.testing.assert_allclose(-fitted.score_samples(X), z.max(axis=1), rtol=1e-6)


def test_auto_threshold_flags_the_planted_outliers_and_few_normal_rows(fitted, planted):
    X, is_outlier, _ = planted
    flagged = fitted.predict(X) == -1
    assert flagged[is_outlier].mean() >= 0.9
    # "from a few to about twenty percent of the normal rows" (the docstring)
    assert flagged[~is_outlier].mean() <= 0.2


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.5])
def test_float_contamination_flags_that_share_of_the_training_rows(contamination, planted):
    X, _, _ = planted
    detector = StackedAutoencoderOutlierDetector(contamination=contamination, **FAST).fit(X)
    scores = np.sort(detector.score_samples(X).astype(np.float64))
    n_flagged = int(np.ceil(contamination * len(X)))
    assert np.sum(detector.predict(X) == -1) == n_flagged
    # Halfway between the last training row flagged and the first that is not.
    assert detector.offset_ == pytest.approx((scores[n_flagged - 1] + scores[n_flagged]) / 2, rel=1e-6)


def test_fit_predict_is_fit_then_predict(planted):
    X, _, _ = planted
    detector = StackedAutoencoderOutlierDetector(**FAST)
    np.testing.assert_array_equal(detector.fit_predict(X), clone(detector).fit(X).predict(X))


# ---------------------------------------------------------- feature errors


def _reconstruction_view(detector, errors):
    """The reconstruction view's z-score, from a row's feature errors, as the detector's docstring defines it."""
    view = (errors / detector.error_scale_).sum(axis=1)
    return (np.cbrt(view) - detector.score_center_[0]) / detector.score_scale_[0]


def test_the_reconstruction_view_sums_the_feature_errors_over_their_typical_size(fitted, planted):
    X, _, _ = planted
    errors = fitted.feature_errors(X)
    assert errors.shape == X.shape
    assert (errors >= 0).all()
    np.testing.assert_allclose(
        _reconstruction_view(fitted, errors), fitted._views.z_scores(*fitted._errors_and_codes(X))[:, 0], rtol=1e-9
    )
    # The score is the larger view: never below the reconstruction view's.
    assert np.all(-fitted.score_samples(X) >= _reconstruction_view(fitted, errors) - 1e-9)


def test_feature_errors_point_at_the_broken_column(fitted, planted):
    X, is_outlier, broken_columns = planted
    np.testing.assert_array_equal(fitted.feature_errors(X[is_outlier]).argmax(axis=1), broken_columns)


def test_feature_errors_are_squared_errors_in_standard_deviations_of_each_column(fitted, planted):
    X, _, _ = planted
    standardised = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(fitted.center_, X.mean(axis=0))
    np.testing.assert_allclose(fitted.scale_, X.std(axis=0))
    with torch.no_grad():
        inputs = torch.from_numpy(standardised).float().to(fitted.device_)
        reconstruction = fitted.network_(inputs).double().cpu().numpy()
    np.testing.assert_allclose(fitted.feature_errors(X), (reconstruction - standardised) ** 2, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ scaling


def test_standardised_scores_do_not_depend_on_the_units_of_a_column(planted):
    X, _, _ = planted
    rescaled = X * np.r_[1e4, np.ones(X.shape[1] - 1)]
    scores = StackedAutoencoderOutlierDetector(**FAST).fit(X).score_samples(X)
    np.testing.assert_allclose(StackedAutoencoderOutlierDetector(**FAST).fit(rescaled).score_samples(rescaled), scores)


def test_without_standardising_the_widest_column_dominates_the_errors(planted):
    X, is_outlier, _ = planted
    detector = StackedAutoencoderOutlierDetector(standardize=False, **FAST).fit(X)
    assert detector.center_ is None and detector.scale_ is None
    errors = detector.feature_errors(X)
    # Errors in the columns' own units: the widest column's dwarf the narrowest's.
    column_errors = errors.mean(axis=0)
    assert column_errors[-1] > 1e4 * column_errors[0]
    standardised = StackedAutoencoderOutlierDetector(**FAST).fit(X)
    auc = roc_auc_score(is_outlier, -detector.score_samples(X))
    assert auc < roc_auc_score(is_outlier, -standardised.score_samples(X)) - 0.1


def test_constant_columns_get_scale_one(planted):
    X = planted[0].copy()
    X[:, 2] = 7.0
    detector = StackedAutoencoderOutlierDetector(**FAST).fit(X)
    assert detector.scale_[2] == 1.0 and detector.center_[2] == 7.0
    assert np.isfinite(detector.score_samples(X)).all()


def test_sparse_input_is_scaled_without_centring_and_scores_alike_dense_or_sparse(planted):
    X = np.abs(planted[0])
    X[X < np.median(X, axis=0)] = 0.0
    detector = StackedAutoencoderOutlierDetector(**FAST).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(detector.center_, 0.0)
    np.testing.assert_allclose(detector.scale_, X.std(axis=0))
    np.testing.assert_allclose(detector.score_samples(X), detector.score_samples(sp.csr_matrix(X)), rtol=1e-6)


def test_float32_rows_give_float32_scores_and_errors(planted):
    X = planted[0].astype(np.float32)
    detector = StackedAutoencoderOutlierDetector(**FAST).fit(X)
    assert detector.score_samples(X).dtype == np.float32
    assert detector.feature_errors(X).dtype == np.float32
    assert detector.decision_function(X).dtype == np.float32


def test_bce_on_unscaled_unit_interval_data(digits):
    X, y = digits
    detector = StackedAutoencoderOutlierDetector(
        (32, 8), standardize=False, output_activation="sigmoid", loss="bce", **FAST
    ).fit(X[y != 1])
    errors = detector.feature_errors(X)
    assert (errors >= -1e-12).all()  # relative entropies: 0 for a perfect reconstruction
    assert np.all(-detector.score_samples(X) >= _reconstruction_view(detector, errors) - 1e-9)
    assert roc_auc_score(y == 1, -detector.score_samples(X)) > 0.6


# ---------------------------------------------------- scikit-learn integration


def test_pipeline_predicts_scores_and_fit_predicts(planted):
    X, is_outlier, _ = planted
    pipeline = make_pipeline(MinMaxScaler(), StackedAutoencoderOutlierDetector(**FAST))
    prediction = pipeline.fit_predict(X)
    np.testing.assert_array_equal(prediction, pipeline.predict(X))
    assert roc_auc_score(is_outlier, -pipeline.score_samples(X)) > 0.95
    assert roc_auc_score(is_outlier, -pipeline.decision_function(X)) > 0.95


def test_grid_search_selects_by_roc_auc_on_labeled_validation_rows(planted):
    X, is_outlier, _ = planted
    y = np.where(is_outlier, -1, 1)  # scikit-learn's convention: +1 inliers, -1 outliers
    validation = np.zeros(len(X), dtype=int)  # one split: train on the first half, validate on the second
    rng = np.random.RandomState(0)
    validation[rng.permutation(len(X))[: len(X) // 2]] = -1
    search = GridSearchCV(
        StackedAutoencoderOutlierDetector(**FAST),
        {"hidden_layer_sizes": [(32, 16), "auto"]},
        scoring="roc_auc",
        cv=PredefinedSplit(validation),
    ).fit(X, y)
    held_out = validation == 0
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True):
        detector = StackedAutoencoderOutlierDetector(**FAST, **params).fit(X[~held_out])
        assert score == pytest.approx(roc_auc_score(y[held_out], detector.decision_function(X[held_out])))
    assert search.best_score_ == max(search.cv_results_["mean_test_score"])


def test_pickle_round_trip_keeps_scores_threshold_and_scaling(fitted, planted):
    X, _, _ = planted
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert restored.offset_ == fitted.offset_
    np.testing.assert_array_equal(restored.scale_, fitted.scale_)


def test_warm_start_keeps_the_scaling_and_takes_the_threshold_afresh(planted):
    X, _, _ = planted
    detector = StackedAutoencoderOutlierDetector(warm_start=True, **FAST).fit(X)
    center, views = detector.center_, detector.score_center_
    detector.fit(X[: len(X) // 2] * 3)
    assert detector.center_ is center
    assert not np.array_equal(detector.score_center_, views)
    assert detector.n_iter_ == 2 * detector.finetune_epochs
    detector.set_params(standardize=False)
    with pytest.raises(ValueError, match="warm_start=True continues a network trained with standardize=True"):
        detector.fit(X)


def _fit_on_shard(rank, init_file, out_dir):
    """One of two processes, as under torchrun: join the group, fit the detector on its shard."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        X = low_rank_rows()
        detector = StackedAutoencoderOutlierDetector(distributed=True, **FAST).fit(X[rank::2])
        np.savez(
            Path(out_dir) / f"rank{rank}.npz",
            center=detector.center_,
            scale=detector.scale_,
            error_scale=detector.error_scale_,
            score_center=detector.score_center_,
            scores=detector.score_samples(X),
            z=detector._views.z_scores(*detector._errors_and_codes(X)),
        )
    except BaseException:
        leave_process_group(succeeded=False)
        raise
    leave_process_group(succeeded=True)


def test_distributed_fit_scales_and_thresholds_on_the_rows_of_every_process(tmp_path):
    mp.spawn(_fit_on_shard, args=(tmp_path / "init", tmp_path), nprocs=2, join=True)
    first, second = (np.load(tmp_path / f"rank{rank}.npz") for rank in range(2))
    X = low_rank_rows()
    for name in ("center", "scale", "error_scale", "score_center", "scores"):
        np.testing.assert_array_equal(first[name], second[name])
    np.testing.assert_allclose(first["center"], X.mean(axis=0))
    np.testing.assert_allclose(first["scale"], X.std(axis=0))
    # The views' medians are those of all the rows, not of one shard.
    for view in first["z"].T:
        assert np.percentile(view, 50, method="inverted_cdf") == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------- bad input and faults


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": 0.6}, "contamination"),
        ({"contamination": "high"}, "contamination"),
        ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes"),
        ({"standardize": "yes"}, "standardize"),
    ],
)
def test_invalid_detector_parameters_are_rejected_by_the_constraints(params, name, planted):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        StackedAutoencoderOutlierDetector(**params).fit(planted[0])


@pytest.mark.parametrize("params", [{"loss": "bce", "output_activation": "sigmoid"}, {"output_activation": "sigmoid"}])
def test_unit_interval_reconstructions_with_standardised_columns_are_refused_before_training(params, digits):
    detector = StackedAutoencoderOutlierDetector(**params)
    with pytest.raises(ValueError, match=re.escape("pass standardize=False")):
        detector.fit(digits[0])
    assert not hasattr(detector, "n_features_in_")


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "Input X contains NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "Input X contains infinity"),
        (np.empty((0, 4)), "0 sample"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert string to float"),
    ],
)
def test_bad_rows_raise_before_training_and_a_failed_refit_keeps_the_model(X, message, planted):
    detector = StackedAutoencoderOutlierDetector(**FAST)
    with pytest.raises(ValueError, match=message):
        detector.fit(X)
    assert not hasattr(detector, "n_features_in_")
    detector.fit(planted[0])
    network, offset, center = detector.network_, detector.offset_, detector.center_
    with pytest.raises(ValueError, match=message):
        detector.fit(X)
    assert detector.network_ is network and detector.offset_ == offset and detector.center_ is center


def test_divergence_leaves_the_detector_unfitted(planted):
    detector = StackedAutoencoderOutlierDetector(learning_rate_init=1e30, standardize=False, pretrain_epochs=2, **FAST)
    with pytest.raises(ValueError, match=r"loss became (nan|inf) in pretrain layer 1/2"):
        detector.fit(planted[0] * 1e6)
    assert not hasattr(detector, "offset_") and not hasattr(detector, "center_")


def test_wrong_width_and_unfitted_use_raise(fitted, planted):
    X, _, _ = planted
    for method in ("score_samples", "decision_function", "predict", "feature_errors"):
        with pytest.raises(ValueError, match="X has 9 features, but StackedAutoencoderOutlierDetector is expecting 10"):
            getattr(fitted, method)(X[:, :9])
        with pytest.raises(NotFittedError):
            getattr(StackedAutoencoderOutlierDetector(), method)(X)


def test_a_code_as_wide_as_the_input_warns(planted):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        StackedAutoencoderOutlierDetector((16, 12), **FAST).fit(planted[0])
    assert any("as wide as the input or wider" in str(w.message) for w in record)


def test_standard_scaler_in_front_changes_nothing_that_matters(planted):
    X = planted[0]
    alone = StackedAutoencoderOutlierDetector(**FAST).fit(X)
    behind_a_scaler = make_pipeline(StandardScaler(), StackedAutoencoderOutlierDetector(**FAST)).fit(X)
    np.testing.assert_allclose(behind_a_scaler.score_samples(X), alone.score_samples(X), rtol=1e-3, atol=1e-5)


# ------------------------------------------------- scikit-learn's own checks

SMALL = {"batch_size": 16, "device": "cpu"}

CHECKED_CONFIGURATIONS = [
    # the defaults, as a user first meets the detector: contamination="auto" included
    StackedAutoencoderOutlierDetector(),
    # a named share to flag, short training: sizes from the number of features, standardised columns
    StackedAutoencoderOutlierDetector(contamination=0.1, pretrain_epochs=2, finetune_epochs=2, **SMALL),
    # a deeper ReLU stack, no pretraining
    StackedAutoencoderOutlierDetector(
        (6, 4, 2), activation="relu", contamination=0.1, pretrain_epochs=0, finetune_epochs=3, **SMALL
    ),
    # unscaled columns, tanh units and codes
    # (loss="bce" is tested above: the detector checks' own data lie outside [0, 1])
    StackedAutoencoderOutlierDetector(
        (4, 2),
        standardize=False,
        activation="tanh",
        code_activation="tanh",
        contamination=0.2,
        pretrain_epochs=2,
        finetune_epochs=2,
        **SMALL,
    ),
    # denoising, dropout, tied weights, AdamW, early stopping in every phase
    StackedAutoencoderOutlierDetector(
        contamination=0.05,
        noise="gaussian",
        noise_level=0.2,
        dropout=0.1,
        tied_weights=True,
        optimizer="adamw",
        alpha=0.01,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=2,
        pretrain_epochs=3,
        finetune_epochs=3,
        **SMALL,
    ),
]


# The checks train for a handful of epochs (early stopping rightly says the
# score was still improving) on one- and two-feature data, where the code
# is as wide as the input (the detector rightly warns).
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:The code .* is as wide as the input or wider:UserWarning")
@parametrize_with_checks(CHECKED_CONFIGURATIONS)
def test_sklearn_compatible_outlier_detector(estimator, check):
    run_check(estimator, check)


def test_float32_and_float64_copies_train_the_same_detector(planted):
    X = planted[0].astype(np.float32)
    single = StackedAutoencoderOutlierDetector(**FAST).fit(X)
    double = StackedAutoencoderOutlierDetector(**FAST).fit(X.astype(np.float64))
    for p, q in zip(single.network_.parameters(), double.network_.parameters(), strict=True):
        assert torch.equal(p, q)
    # The scores are computed in float64 either way; the copies differ by rounding alone.
    np.testing.assert_allclose(single.score_samples(X), double.score_samples(X), rtol=1e-5, atol=1e-5)
