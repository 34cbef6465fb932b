"""The detector's two views of a row, and its weighted quantiles."""

import numpy as np
import pytest

from sk_stackae._outlier_views import fit_views, threshold_below, weighted_percentile


@pytest.mark.parametrize("percent", [5, 25, 50, 90])
def test_a_weighted_percentile_is_the_percentile_of_the_rows_repeated_as_their_weights_say(percent):
    rng = np.random.RandomState(0)
    values, weights = rng.normal(size=40), rng.randint(0, 4, size=40)
    expected = np.percentile(np.repeat(values, weights), percent, method="inverted_cdf")
    assert weighted_percentile(values, weights, percent) == expected
    assert weighted_percentile(values, None, percent) == np.percentile(values, percent, method="inverted_cdf")


def test_a_threshold_lies_halfway_between_the_last_row_below_it_and_the_next():
    scores = np.array([0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    assert threshold_below(scores, None, 20) == 1.5
    # A row of weight 0 is not there: the next row above is the one at 10.
    assert threshold_below(scores, np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 1]), 30) == 6.0


def _rows(n=2000, seed=0):
    """Feature errors and codes of typical rows: chi-square-like errors, Gaussian codes."""
    rng = np.random.RandomState(seed)
    errors = np.square(rng.normal(size=(n, 6))) * np.array([1, 2, 3, 4, 5, 6])
    codes = rng.normal(size=(n, 3)) @ np.array([[2.0, 0, 0], [1, 1, 0], [0, 0, 0.5]])
    return errors, codes


def test_each_view_of_the_training_rows_has_median_zero_and_the_normal_spread():
    errors, codes = _rows()
    views = fit_views(errors, codes)
    z = views.z_scores(errors, codes)
    for view in z.T:
        lower, median, upper = np.percentile(view, [25, 50, 75], method="inverted_cdf")
        assert median == pytest.approx(0.0, abs=1e-9)
        assert upper - lower == pytest.approx(1.349, rel=1e-9)
    # The cube roots of these sums of squares are close to normal: about 2.3 % above 2 per view.
    assert 0.01 < np.mean(z[:, 0] > 2) < 0.05


def test_the_code_view_flags_a_row_that_reconstructs_well_but_codes_apart():
    errors, codes = _rows()
    views = fit_views(errors, codes)
    typical_error = np.median(errors, axis=0, keepdims=True)
    far_code = codes.mean(axis=0, keepdims=True) + np.array([[0.0, 0.0, 5.0]])
    z = views.z_scores(typical_error, far_code)
    assert z[0, 0] < 1 and z[0, 1] > 3
    assert views.outlier_scores(typical_error, far_code)[0] == z[0, 1]
    alone = fit_views(errors, codes, code_view=False)
    assert alone.outlier_scores(typical_error, far_code)[0] < 1


def test_the_rows_with_the_largest_errors_do_not_shape_the_statistics():
    errors, codes = _rows()
    wild = errors.copy()
    wild[:300] *= 1000  # 15 % of the rows, all beyond the 80 % quantile that the statistics keep
    clean, spoilt, untrimmed = fit_views(errors, codes), fit_views(wild, codes), fit_views(wild, codes, keep=1.0)
    ratio = spoilt.error_scale / clean.error_scale
    assert np.all((ratio > 0.5) & (ratio < 2))
    # Every row in the statistics: the wild ones set the scale.
    assert np.all(untrimmed.error_scale > 50 * clean.error_scale)


def test_integer_weights_are_repeated_rows():
    errors, codes = _rows(400)
    weights = np.random.RandomState(1).randint(0, 4, size=400)
    weighted = fit_views(errors, codes, weights)
    repeated = fit_views(np.repeat(errors, weights, axis=0), np.repeat(codes, weights, axis=0))
    for name in ("error_scale", "code_mean", "code_precision", "centers", "scales"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9, atol=1e-12)
