"""What makes a row an outlier for the detector: two views of it, each on a robust common scale.

A trained autoencoder sees a row twice. Its **reconstruction error**: the
squared error of each standardised column, divided by that column's mean
error over the typical training rows, summed over the columns; rows off the
structure the network learnt reconstruct badly. And its **code**: the
Mahalanobis distance of the row's code from the typical training rows'
codes; rows that the network reconstructs well because it learnt them
(outliers that form a group of their own among the training rows) still sit
apart in the code space. Each view is a sum of squares, close to a
chi-square variable, whose cube root is close to normal (Wilson and
Hilferty, 1931); each cube root is put on a robust z-scale by the median
and the interquartile range of the training rows' (IQR / 1.349 is the
standard deviation of a normal variable). A row's outlier score is the
larger of its two z-scores: a row is abnormal when either view says so.

"Typical" training rows are those whose reconstruction error is at most
its ``keep`` quantile: the outliers among the training rows do not shape
the statistics they are measured against. Every statistic weighs the rows
by their sample weights, and every quantile is an inverted-CDF one, so that
integer weights are the same as repeated rows.
"""

from dataclasses import dataclass

import numpy as np

# The normal distribution's interquartile range, in standard deviations.
_NORMAL_IQR = 1.349
# Ridge on the codes' covariance, as a share of its mean variance: keeps
# the Mahalanobis distance finite where the codes span fewer dimensions.
_RIDGE = 1e-6
# Relative width of a tie: values this close to a quantile count as at it.
_TIES = 1e-9


def weighted_percentile(values, weights, percent):
    """The ``percent`` percentile of ``values`` whose rows count as their ``weights`` (all 1 for None).

    The inverted empirical distribution function (numpy's
    ``method="inverted_cdf"``): the smallest value whose share of the total
    weight at or below it reaches ``percent`` %. With integer weights it is
    that percentile of the values repeated as often as their weights say.
    """
    values = np.asarray(values, dtype=np.float64)
    if weights is not None:
        # Rows of weight 0 count for nothing, as if they were not there.
        weights = np.asarray(weights, dtype=np.float64)
        values, weights = values[weights > 0], weights[weights > 0]
    else:
        weights = np.ones_like(values)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    # The relative tolerance absorbs the rounding of the cumulative sums.
    target = percent / 100.0 * cumulative[-1] * (1 - 1e-12)
    index = min(int(np.searchsorted(cumulative, target, side="left")), len(values) - 1)
    return float(values[order][index])


def threshold_below(scores, weights, percent):
    """A threshold with ``percent`` % of the (weighted) ``scores`` at or below it, halfway to the next score.

    :func:`weighted_percentile` gives the score of the last row flagged;
    the threshold lies halfway between it and the next higher score, so
    that no training row sits on it and rounding cannot move a row across.
    """
    scores = np.asarray(scores, dtype=np.float64)
    last_flagged = weighted_percentile(scores, weights, percent)
    if weights is not None:
        scores = scores[np.asarray(weights) > 0]
    above = scores[scores > last_flagged]
    return last_flagged if above.size == 0 else float((last_flagged + above.min()) / 2)


@dataclass
class Views:
    """The statistics of the two views, learnt from the training rows.

    Attributes
    ----------
    error_scale : ndarray of shape (n_features,)
        Each column's mean squared error over the typical training rows.
    code_mean : ndarray of shape (code_size,) or None
        The typical training rows' mean code (None without the code view).
    code_precision : ndarray of shape (code_size, code_size) or None
        The (pseudo-)inverse of their codes' covariance.
    centers, scales : ndarray of shape (n_views,)
        The median and the robust standard deviation (IQR / 1.349) of each
        view's cube root over the training rows.
    """

    error_scale: np.ndarray
    code_mean: np.ndarray | None
    code_precision: np.ndarray | None
    centers: np.ndarray
    scales: np.ndarray

    def raw(self, feature_errors, codes):
        """Each view's sum of squares for every row: one column per view."""
        error_view = (feature_errors / self.error_scale).sum(axis=1)
        if self.code_mean is None:
            return error_view[:, None]
        deviations = codes - self.code_mean
        code_view = np.einsum("ij,jk,ik->i", deviations, self.code_precision, deviations)
        return np.column_stack([error_view, code_view])

    def z_scores(self, feature_errors, codes):
        """Each view's cube root, as a robust z-score against the training rows."""
        return (np.cbrt(np.maximum(self.raw(feature_errors, codes), 0.0)) - self.centers) / self.scales

    def outlier_scores(self, feature_errors, codes):
        """The larger z-score of every row: the higher, the more abnormal."""
        return self.z_scores(feature_errors, codes).max(axis=1)


def fit_views(feature_errors, codes, weights=None, keep=0.8, code_view=True):
    """The :class:`Views` of the training rows' ``feature_errors`` (float64, rows by columns) and ``codes``.

    The typical rows are those whose mean error is at most its ``keep``
    quantile; ``code_view=False`` leaves the code view out.
    """
    weights = np.ones(len(feature_errors)) if weights is None else np.asarray(weights, dtype=np.float64)
    errors = feature_errors.mean(axis=1)
    # Within rounding of the quantile counts as at it: copies of one row may round apart.
    threshold = weighted_percentile(errors, weights, 100.0 * keep) * (1 + _TIES) + _TIES
    typical = (errors <= threshold) & (weights > 0)
    typical_weights = weights[typical]
    error_scale = np.maximum(np.average(feature_errors[typical], axis=0, weights=typical_weights), 1e-12)
    code_mean = code_precision = None
    if code_view:
        code_mean = np.average(codes[typical], axis=0, weights=typical_weights)
        deviations = codes[typical] - code_mean
        # Frequency weights' unbiased covariance: that of the rows repeated as their weights say.
        covariance = (deviations * typical_weights[:, None]).T @ deviations / max(typical_weights.sum() - 1, 1e-12)
        covariance += _RIDGE * np.trace(covariance) / len(code_mean) * np.eye(len(code_mean))
        code_precision = np.linalg.pinv(covariance, hermitian=True)
    n_views = 2 if code_view else 1
    views = Views(error_scale, code_mean, code_precision, np.zeros(n_views), np.ones(n_views))
    roots = np.cbrt(np.maximum(views.raw(feature_errors, codes), 0.0))
    centers, scales = [], []
    for column in roots.T:
        lower, median, upper = (weighted_percentile(column, weights, q) for q in (25, 50, 75))
        centers.append(median)
        scales.append(max((upper - lower) / _NORMAL_IQR, 1e-12))
    views.centers, views.scales = np.array(centers), np.array(scales)
    return views
