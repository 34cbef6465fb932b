"""Standardising the columns of a detector's rows, over every process of a fit."""

import numpy as np
import scipy.sparse as sp
import torch


def _summed(array, replicas, device):
    """``array`` (float64) summed over the processes of ``replicas``."""
    return replicas.sum(torch.from_numpy(array).to(device)).cpu().numpy()


def column_scaling(X, replicas, device):
    """The centre and scale that standardise every column of the validated training rows ``X``.

    The centre is the column's mean and the scale its standard deviation,
    both in float64, over the rows of every process of ``replicas``. Sparse
    rows are scaled without centring, so that they stay sparse (as
    :class:`~sklearn.preprocessing.StandardScaler` with ``with_mean=False``
    does): their centre is 0. A column without variance gets scale 1.
    """
    if sp.issparse(X):
        sums = np.asarray(X.sum(axis=0, dtype=np.float64)).ravel()
        squares = np.asarray(X.multiply(X).sum(axis=0, dtype=np.float64)).ravel()
    else:
        sums = X.sum(axis=0, dtype=np.float64)
    totals = _summed(np.append(sums, X.shape[0]).astype(np.float64), replicas, device)
    n_rows = totals[-1]
    mean = totals[:-1] / n_rows
    if sp.issparse(X):
        squared_deviations = squares - 2.0 * mean * sums + X.shape[0] * mean**2
    else:
        # A second pass about the mean keeps the precision that a sum of squares loses.
        squared_deviations = np.square(X - mean).sum(axis=0)
    scale = np.sqrt(np.maximum(_summed(squared_deviations, replicas, device), 0.0) / n_rows)
    # Within rounding of a constant column: dividing by it would blow rounding up.
    constant = scale <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale[constant] = 1.0
    center = np.zeros_like(mean) if sp.issparse(X) else mean
    return center, scale


def standardised(X, center, scale):
    """``(X - center) / scale`` in ``X``'s float dtype; sparse ``X`` (centre 0) stays sparse."""
    if sp.issparse(X):
        X = X.copy()
        X.data /= scale.astype(X.dtype)[X.indices]
        return X
    return (X - center.astype(X.dtype)) / scale.astype(X.dtype)
