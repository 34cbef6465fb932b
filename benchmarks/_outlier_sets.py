"""Outlier-detection sets of our own, beside ODDS: data that ships with scikit-learn, synthetic tables, and pixels.

Built from fixed seeds. load_breast_cancer is left out on purpose: ODDS's
wbc is a subsample of the same Wisconsin diagnostic data. ``shuttle-like``
and ``pendigits-like`` stand in for ODDS sets that are not in
``../shared`` (low-dimensional, many rows, outliers in small clusters of
their own); ``mnist100`` and ``fmnist100`` are built as ODDS builds its
mnist set, from the IDX files under ``--data-dir``'s parent.
"""

import numpy as np
from sklearn.datasets import load_digits, load_wine


def _class_outliers(X, labels, outlier_classes, share, seed):
    """Every row of the other classes as inliers; the outlier classes subsampled to `share` of the result."""
    rng = np.random.default_rng(seed)
    is_out = np.isin(labels, outlier_classes)
    inliers = np.flatnonzero(~is_out)
    n_out = max(2, round(share * len(inliers) / (1 - share)))
    outliers = rng.choice(np.flatnonzero(is_out), n_out, replace=False)
    rows = np.r_[inliers, outliers]
    return X[rows].astype(np.float64), np.r_[np.zeros(len(inliers)), np.ones(n_out)].astype(int)


def digits64():
    """scikit-learn digits (1797 x 64): digits 3 and 7, subsampled to 3 %, are the outliers."""
    X, y = load_digits(return_X_y=True)
    return _class_outliers(X, y, [3, 7], 0.03, seed=11)


def digits16():
    """digits pooled 2x2 into 4x4 = 16 columns (pendigits-like width); digit 5 at 3 % is the outlier."""
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 4, 2, 4, 2).sum(axis=(2, 4)).reshape(-1, 16)
    return _class_outliers(X, y, [5], 0.03, seed=12)


def wine():
    """load_wine (13 columns): cultivars 0 and 1 the inliers, 6 wines of cultivar 2 the outliers."""
    X, y = load_wine(return_X_y=True)
    return _class_outliers(X, y, [2], 0.045, seed=13)


def clusters(n_rows, n_features, n_in_clusters, n_out_clusters, share, spread, seed):
    """Low-dimensional, many rows, clustered (shuttle/pendigits-like).

    Inlier clusters of unequal sizes, each an anisotropic Gaussian of low rank plus noise;
    the outliers form `n_out_clusters` small clusters of their own, at the same scale, whose
    centres are drawn like the inliers' (so some lie between or near inlier clusters).
    """
    rng = np.random.default_rng(seed)
    n_out = round(share * n_rows)
    n_in = n_rows - n_out
    sizes_in = rng.multinomial(n_in, rng.dirichlet(np.full(n_in_clusters, 1.0)))
    sizes_out = rng.multinomial(n_out, np.full(n_out_clusters, 1.0 / n_out_clusters))
    parts, labels = [], []
    for size, label in [(s, 0) for s in sizes_in] + [(s, 1) for s in sizes_out]:
        centre = rng.normal(scale=spread, size=n_features)
        rank = rng.integers(1, max(2, n_features // 2) + 1)
        basis = rng.normal(size=(rank, n_features))
        points = rng.normal(size=(size, rank)) @ basis + 0.3 * rng.normal(size=(size, n_features))
        parts.append(centre + points)
        labels.append(np.full(size, label))
    X = np.concatenate(parts)
    # heterogeneous column scales, as in real tables
    X *= np.exp(rng.normal(scale=1.0, size=n_features))
    return X, np.concatenate(labels).astype(int)


def shuttle_like():
    """9 columns, 12000 rows, 7 % outliers in 3 small clusters; one dominant inlier cluster and a few small ones."""
    return clusters(12000, 9, 4, 3, 0.07, spread=4.0, seed=21)


def pendigits_like():
    """16 columns, 6870 rows, 2.3 % outliers in one small cluster; ten inlier clusters."""
    return clusters(6870, 16, 10, 1, 0.023, spread=3.0, seed=22)


def manifold_uniform():
    """outlier_defaults.py's kind: a 3-d tanh manifold in 12 columns, 3000 rows, 4 % uniform-in-the-box outliers."""
    rng = np.random.default_rng(23)
    n, d = 3000, 12
    latent = rng.normal(size=(n, 3))
    X = np.tanh(latent @ rng.normal(size=(3, 16))) @ (rng.normal(size=(16, d)) / 4)
    X += 0.05 * rng.normal(size=X.shape)
    y = np.zeros(n, dtype=int)
    rows = rng.choice(n, n // 25, replace=False)
    y[rows] = 1
    X[rows] = rng.uniform(X.min(axis=0), X.max(axis=0), size=(len(rows), d))
    return X, y


DEVSETS = {
    "digits64": digits64,
    "digits16": digits16,
    "wine": wine,
    "shuttle-like": shuttle_like,
    "pendigits-like": pendigits_like,
    "manifold-uniform": manifold_uniform,
}


def _idx(path):
    import gzip

    raw = gzip.open(path, "rb").read()
    if int.from_bytes(raw[0:4], "big") == 2051:
        n = int.from_bytes(raw[4:8], "big")
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 784).astype(np.float64)
    return np.frombuffer(raw, np.uint8, offset=8).astype(int)


def _pixels_task(datasets_dir, folder, inlier, outlier, n_in, share, seed):
    """ODDS-mnist-like: one class as inliers, another at `share` as outliers, 100 random non-constant pixels."""
    base = f"{datasets_dir}/{folder}"
    X = _idx(base + "/train-images-idx3-ubyte.gz")
    y = _idx(base + "/train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    ins = rng.choice(np.flatnonzero(y == inlier), n_in, replace=False)
    n_out = round(share * n_in / (1 - share))
    outs = rng.choice(np.flatnonzero(y == outlier), n_out, replace=False)
    rows = np.r_[ins, outs]
    varying = np.flatnonzero(X[rows].std(0) > 0)
    cols = np.sort(rng.choice(varying, 100, replace=False))
    return X[rows][:, cols], np.r_[np.zeros(n_in), np.ones(n_out)].astype(int)


def pixel_sets(datasets_dir):
    """The two pixel sets, from the IDX files in ``datasets_dir`` (``mnist/`` and ``fashion-mnist/``)."""
    return {
        # MNIST digit 0 (3000 rows) against digit 6 at 9 %, 100 random pixels (ODDS's mnist is built this way).
        "mnist100": lambda: _pixels_task(datasets_dir, "mnist", 0, 6, 3000, 0.09, seed=31),
        # Fashion-MNIST sneakers (3000) against ankle boots at 5 %, 100 random pixels.
        "fmnist100": lambda: _pixels_task(datasets_dir, "fashion-mnist", 7, 9, 3000, 0.05, seed=32),
    }
