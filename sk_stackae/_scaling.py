"""Column statistics of the validated training rows: the detector's standardisation, the ladder's input variance."""

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.sparsefuncs import mean_variance_axis


def _summed(array, replicas, device):
    """``array`` (float64) summed over the processes of ``replicas``."""
    return replicas.sum(torch.from_numpy(array).to(device)).cpu().numpy()


def column_scaling(X, replicas, device, weights=None):
    """The centre and scale that standardise every column of the validated training rows ``X``.

    The centre is the column's mean and the scale its standard deviation,
    both in float64, over the rows of every process of ``replicas``, each
    row counting as its weight (``weights``, None for 1). Sparse rows are
    scaled without centring, so that they stay sparse (as
    :class:`~sklearn.preprocessing.StandardScaler` with ``with_mean=False``
    does): their centre is 0. A column without variance gets scale 1.
    """
    row_weights = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if sp.issparse(X):
        sums = np.asarray(X.T @ row_weights, dtype=np.float64).ravel()
        squares = np.asarray(X.multiply(X).T @ row_weights, dtype=np.float64).ravel()
    elif weights is None:
        sums = X.sum(axis=0, dtype=np.float64)
    else:
        sums = row_weights @ X.astype(np.float64, copy=False)
    totals = _summed(np.append(sums, row_weights.sum()).astype(np.float64), replicas, device)
    n_rows = totals[-1]
    mean = totals[:-1] / n_rows
    if sp.issparse(X):
        squared_deviations = squares - 2.0 * mean * sums + row_weights.sum() * mean**2
    else:
        # A second pass about the mean keeps the precision that a sum of squares loses.
        deviations = np.square(X - mean)
        squared_deviations = deviations.sum(axis=0) if weights is None else row_weights @ deviations
    scale = np.sqrt(np.maximum(_summed(squared_deviations, replicas, device), 0.0) / n_rows)
    # Within rounding of a constant column: dividing by it would blow rounding up.
    constant = scale <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale[constant] = 1.0
    center = np.zeros_like(mean) if sp.issparse(X) else mean
    return center, scale


def standardised(X, center, scale):
    """``(X - center) / scale``, computed in float64 and returned in ``X``'s float dtype; sparse stays sparse.

    Computed in float64 whatever ``X`` is, so that float32 rows and the same
    rows in float64 give the network the same float32 rows to train on.
    """
    if sp.issparse(X):
        X = X.copy()
        X.data = (X.data / scale[X.indices]).astype(X.dtype)
        return X
    return ((X - center) / scale).astype(X.dtype)


def mean_column_variance(X, weights=None):
    """The mean over the columns of ``X`` (dense or sparse) of their variances, rows weighed by ``weights``."""
    if sp.issparse(X):
        return float(mean_variance_axis(sp.csr_matrix(X), axis=0, weights=weights)[1].mean())
    if weights is None:
        return float(np.var(X, axis=0, dtype=np.float64).mean())  # no float64 copy of X
    X = np.asarray(X, dtype=np.float64)
    mean = np.average(X, axis=0, weights=weights)
    return float(np.average((X - mean) ** 2, axis=0, weights=weights).mean())
