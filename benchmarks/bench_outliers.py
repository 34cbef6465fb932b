"""StackedAutoencoderOutlierDetector against pyod's AutoEncoder and scikit-learn's detectors on ODDS.

pyod's benchmark protocol, on each ODDS ``.mat`` file (``X``, and ``y`` with
1 for outliers): for each split seed, a random 60 % of the rows trains and
40 % tests (``train_test_split(test_size=0.4)``, not stratified, as pyod's
``benchmark.py``); both parts are standardised with the training part's mean
and standard deviation; every detector is fitted on the training part
without its labels and scores the test part. ROC AUC and average
precision (the area under the precision-recall curve, which weighs the
top of the ranking, where a user looks) are computed from the test scores.
Every detector runs with its defaults, seeded with the split's seed where
it draws random numbers:

- ``StackedAE``: :class:`sk_stackae.StackedAutoencoderOutlierDetector()`;
- ``pyod AE``: ``pyod.models.auto_encoder.AutoEncoder(verbose=0)`` (no
  progress bar; every model setting at its default);
- ``IForest``: :class:`sklearn.ensemble.IsolationForest`;
- ``LOF``: :class:`sklearn.neighbors.LocalOutlierFactor` with
  ``novelty=True`` (which scoring unseen rows needs);
- ``PCA``: the squared reconstruction error of :class:`sklearn.decomposition.PCA`
  with as many components as the detector's default code
  (``round(sqrt(n_features))``): the linear autoencoder with the same bottleneck.

"time" is the wall-clock time of the fit plus scoring the test part, summed
over the splits. Each detector is first fitted once, untimed, so that one-time
costs (imports, thread pools) stay out of the timings. The last table shows
what ``contamination="auto"`` flags on the test parts. ``--fit-on-inliers``
fits every detector on the training part's inliers alone (novelty
detection, outside pyod's protocol), to measure what the outliers among
the training rows cost each detector. The detector's
defaults were chosen on other data (``outlier_defaults.py``), not on these
sets.

Run ``python benchmarks/bench_outliers.py --data-dir ../shared/datasets/odds``
in an environment with pyod installed (a benchmark-only peer).
"""

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.io
from _common import machine_description, print_table
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor

from sk_stackae import StackedAutoencoderOutlierDetector
from sk_stackae._outlier import default_hidden_layer_sizes

DATASETS = ("arrhythmia", "cardio", "glass", "ionosphere", "letter", "lympho", "pima", "vertebral", "vowels", "wbc")


class PCAReconstruction:
    """Outlier score: the squared reconstruction error through the detector's default code size."""

    def __init__(self, random_state):
        self.random_state = random_state

    def fit(self, X):
        n_components = min(default_hidden_layer_sizes(X.shape[1])[-1], *X.shape)
        self.pca_ = PCA(n_components=n_components, random_state=self.random_state).fit(X)
        return self

    def outlier_scores(self, X):
        return np.square(self.pca_.inverse_transform(self.pca_.transform(X)) - X).sum(axis=1)


def pyod_autoencoder(random_state):
    from pyod.models.auto_encoder import AutoEncoder

    return AutoEncoder(verbose=0, random_state=random_state)


def outlier_scores(detector, X):
    """Higher means more abnormal, whatever the detector's convention."""
    if isinstance(detector, PCAReconstruction):
        return detector.outlier_scores(X)
    if hasattr(detector, "decision_scores_"):  # pyod: higher is more abnormal
        return detector.decision_function(X)
    return -detector.score_samples(X)  # scikit-learn: higher is more normal


def contenders():
    """Name -> factory of a fresh detector for a split's seed."""
    return {
        "StackedAE": lambda seed: StackedAutoencoderOutlierDetector(random_state=seed),
        "pyod AE": pyod_autoencoder,
        "IForest": lambda seed: IsolationForest(random_state=seed),
        "LOF": lambda seed: LocalOutlierFactor(novelty=True),
        "PCA": PCAReconstruction,
    }


def standardise(train, test):
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return (train - mean) / std, (test - mean) / std


def load(data_dir, name):
    mat = scipy.io.loadmat(Path(data_dir) / f"{name}.mat")
    return mat["X"].astype(np.float64), mat["y"].ravel().astype(int)


def run_split(factory, seed, X_train, X_test, y_test):
    detector = factory(seed)
    started = time.perf_counter()
    detector.fit(X_train)
    scores = outlier_scores(detector, X_test)
    elapsed = time.perf_counter() - started
    flagged = None
    if isinstance(detector, StackedAutoencoderOutlierDetector):
        flagged = detector.predict(X_test) == -1
    return roc_auc_score(y_test, scores), average_precision_score(y_test, scores), elapsed, flagged


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the ODDS .mat files")
    parser.add_argument("--splits", type=int, default=5, help="random 60/40 splits per dataset (seeds 0, 1, ...)")
    parser.add_argument("--datasets", nargs="*", default=DATASETS)
    parser.add_argument("--only", nargs="*", help="run only these contenders")
    parser.add_argument(
        "--fit-on-inliers",
        action="store_true",
        help="fit on the training part's inliers only (novelty detection), to see what its outliers cost",
    )
    args = parser.parse_args()

    import pyod

    print(f"Machine: {machine_description()}, pyod {pyod.__version__}")
    factories = contenders()
    if args.only:
        factories = {name: factories[name] for name in args.only}
    names = list(factories)

    warm_X = np.random.default_rng(0).normal(size=(200, 8))
    for factory in factories.values():
        run_split(factory, 0, warm_X, warm_X, np.r_[np.ones(20), np.zeros(180)].astype(int))

    auc, precision, seconds, flagged = {}, {}, {}, {}
    shapes = {}
    for dataset in args.datasets:
        X, y = load(args.data_dir, dataset)
        shapes[dataset] = (X.shape[0], X.shape[1], y.mean())
        for name in names:
            auc[dataset, name], precision[dataset, name], seconds[dataset, name] = [], [], 0.0
        flagged[dataset] = []
        for seed in range(args.splits):
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
            X_train, X_test = standardise(X_train, X_test)
            if args.fit_on_inliers:
                X_train = X_train[y_train == 0]
            for name in names:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    roc, ap, elapsed, is_flagged = run_split(factories[name], seed, X_train, X_test, y_test)
                auc[dataset, name].append(roc)
                precision[dataset, name].append(ap)
                seconds[dataset, name] += elapsed
                if name == "StackedAE":
                    flagged[dataset].append((is_flagged, y_test))
        print(f"{dataset} done", flush=True)

    def table(title, values, fmt, against_iforest=False):
        print(f"\n### {title}\n")
        rows = []
        for dataset in args.datasets:
            n, d, share = shapes[dataset]
            rows.append([dataset, n, d, f"{100 * share:.1f}", *(fmt(values[dataset, name]) for name in names)])
        means = [statistics.mean(_mean(values[dataset, name]) for dataset in args.datasets) for name in names]
        rows.append(["**mean**", "", "", "", *(f"**{m:.3f}**" for m in means)])
        if against_iforest and "IForest" in names:
            # The set where each detector falls furthest below IsolationForest.
            worst = [min(_mean(values[d, name]) - _mean(values[d, "IForest"]) for d in args.datasets) for name in names]
            rows.append(["worst set - IForest", "", "", "", *(f"{w:+.3f}" for w in worst)])
        print_table(["dataset", "n", "d", "outliers %", *names], rows)

    table(f"ROC AUC on the test parts, mean over {args.splits} splits", auc, lambda v: f"{np.mean(v):.3f}", True)
    table("Average precision on the test parts", precision, lambda v: f"{np.mean(v):.3f}", True)
    table(f"Fit + score time, seconds, sum over {args.splits} splits", seconds, lambda v: f"{v:.2f}")
    if "StackedAE" in names:
        print_auto_threshold(args.datasets, flagged, shapes)


def _mean(value):
    return float(np.mean(value))


def print_auto_threshold(datasets, flagged, shapes):
    print('\n### contamination="auto" on the test parts (StackedAE)\n')
    rows = []
    for dataset in datasets:
        is_flagged = np.concatenate([f for f, _ in flagged[dataset]])
        is_outlier = np.concatenate([y for _, y in flagged[dataset]]).astype(bool)
        n_flagged = is_flagged.sum()
        rows.append(
            [
                dataset,
                f"{100 * shapes[dataset][2]:.1f}",
                f"{100 * is_flagged.mean():.1f}",
                f"{is_outlier[is_flagged].mean():.2f}" if n_flagged else "-",
                f"{is_flagged[is_outlier].mean():.2f}",
                f"{100 * is_flagged[~is_outlier].mean():.1f}",
            ]
        )
    print_table(["dataset", "outliers %", "flagged %", "precision", "recall", "inliers flagged %"], rows)


if __name__ == "__main__":
    main()
