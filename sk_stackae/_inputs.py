"""The estimators' inputs, validated and converted before any training: weights, dtypes, seeds, splits.

A fit refuses bad input here, before it trains anything, and leaves the
estimator as it was when it fails (:func:`_unchanged_on_failure`).
"""

import math
from contextlib import contextmanager

import numpy as np
from sklearn.utils.validation import FLOAT_DTYPES, _check_sample_weight


@contextmanager
def _unchanged_on_failure(estimator):
    """Put the estimator's attributes back as they were if the block raises.

    A fit that fails leaves no half-fitted estimator behind: neither new
    fitted attributes nor a changed ``n_features_in_``.
    """
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


def _checked_sample_weight(sample_weight, X):
    """``sample_weight`` as non-negative float64 weights of ``X``'s rows (not all 0), or None."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)


def _check_validation_split(validation_fraction, n_samples):
    """Refuse, before any training, a validation split that leaves one side empty."""
    n_validation = math.ceil(validation_fraction * n_samples)
    if n_validation < 1 or n_validation >= n_samples:
        raise ValueError(
            f"early_stopping=True with validation_fraction={validation_fraction} holds out "
            f"{n_validation} of {n_samples} sample(s), which leaves "
            f"{'none to validate on' if n_validation < 1 else 'none to train on'}. "
            "Use more samples, another validation_fraction, or early_stopping=False."
        )


def _float_dtypes(X):
    """The dtypes validation may give ``X``: float32 first for float32 input of any container.

    numpy arrays and pandas frames keep float32 through scikit-learn's
    validation by themselves; polars frames and torch tensors come back as
    float64 unless float32 is asked for.
    """
    dtype = getattr(X, "dtype", None)
    if dtype is not None and str(dtype) in ("float32", "torch.float32"):
        return np.float32
    dtypes = getattr(X, "dtypes", None)
    if isinstance(dtypes, list) and dtypes and all(str(column) == "Float32" for column in dtypes):
        return np.float32  # a polars frame whose every column is Float32
    return FLOAT_DTYPES


def _as_float_input(X):
    """Validated input in a dtype the network computes in: float16 becomes float32.

    Half precision on the CPU is slow and loses digits that training and
    inference need, so float16 rows are converted once, as integers are
    converted to float64 by validation.
    """
    if X.dtype == np.float16:
        return X.astype(np.float32)
    return X


def _seed(random_state):
    """An integer seed drawn from ``random_state``.

    ``None`` seeds from fresh OS entropy rather than from numpy's global
    generator, which this estimator never reads.
    """
    if random_state is None:
        return np.random.SeedSequence().entropy % 2**63
    if isinstance(random_state, np.random.RandomState):
        return random_state.randint(np.iinfo(np.int32).max)
    return int(random_state)
