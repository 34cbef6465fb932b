"""How StackedAutoencoderOutlierDetector's defaults were chosen: each changed alone, on data of our own.

The defaults were chosen on this development suite, before and apart from
the ODDS sets of ``bench_outliers.py``, so that they are not tuned to the
benchmark. The suite:

- ``manifold d=...``: rows on a smooth 3-dimensional manifold in ``d``
  dimensions (a tanh layer of three latent variables, mapped to ``d``
  columns, plus noise); 5 % of the rows are replaced by outliers, either
  ``shuffled`` (each column drawn from another row: every marginal is
  normal, the dependence between columns is broken) or ``uniform`` (drawn
  uniformly in the data's bounding box);
- ``digits 0-4``: scikit-learn's digits 0 to 4, with 45 images of 5 to 9
  as outliers.

Protocol as in ``bench_outliers.py``: random 60/40 splits (3 per set),
standardised on the training part, fit without labels, ROC AUC on the test
part. Each row of the table changes one setting of the defaults.

Run ``python benchmarks/outlier_defaults.py``.
"""

import statistics
import time
import warnings

import numpy as np
from _common import machine_description, print_table
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoderOutlierDetector

N_SPLITS = 3


def manifold(n_features, n_rows, outliers, seed):
    """Rows near a 3-dimensional nonlinear manifold, 5 % of them replaced by outliers."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 3))
    X = np.tanh(latent @ rng.normal(size=(3, 16))) @ (rng.normal(size=(16, n_features)) / 4)
    X += 0.05 * rng.normal(size=X.shape)
    is_outlier = np.zeros(n_rows, dtype=int)
    rows = rng.choice(n_rows, n_rows // 20, replace=False)
    is_outlier[rows] = 1
    if outliers == "shuffled":
        X[rows] = X[rng.integers(0, n_rows, size=(len(rows), n_features)), np.arange(n_features)]
    else:
        X[rows] = rng.uniform(X.min(axis=0), X.max(axis=0), size=(len(rows), n_features))
    return X, is_outlier


def unseen_digits():
    X, digit = load_digits(return_X_y=True)
    novel = np.random.default_rng(0).choice(np.flatnonzero(digit >= 5), 45, replace=False)
    rows = np.r_[np.flatnonzero(digit < 5), novel]
    return X[rows].astype(np.float64), (digit[rows] >= 5).astype(int)


DATASETS = {
    "manifold d=10 shuffled": manifold(10, 1500, "shuffled", seed=1),
    "manifold d=25 shuffled": manifold(25, 1500, "shuffled", seed=2),
    "manifold d=8 uniform": manifold(8, 1500, "uniform", seed=3),
    "manifold d=40 shuffled, 600 rows": manifold(40, 600, "shuffled", seed=4),
    "manifold d=10 shuffled, 250 rows": manifold(10, 250, "shuffled", seed=5),
    "manifold d=20 uniform, 200 rows": manifold(20, 200, "uniform", seed=6),
    "digits 0-4": unseen_digits(),
}

# One change each from the defaults, given the number of features d.
SETTINGS = {
    "defaults": lambda d: {},
    "hidden (d**0.75, sqrt d)": lambda d: {"hidden_layer_sizes": (round(d**0.75), round(d**0.5))},
    "hidden (d, d // 2)": lambda d: {"hidden_layer_sizes": (d, d // 2)},
    "hidden (256, 64)": lambda d: {"hidden_layer_sizes": (256, 64)},
    "activation relu": lambda d: {"activation": "relu"},
    "learning rate 1e-3": lambda d: {"learning_rate_init": 1e-3},
    "learning rate 3e-3": lambda d: {"learning_rate_init": 3e-3},
    "epochs 10/10": lambda d: {"pretrain_epochs": 10, "finetune_epochs": 10},
    "epochs 20/100, batch 64, rate 1e-3": lambda d: {
        "pretrain_epochs": 20,
        "finetune_epochs": 100,
        "batch_size": 64,
        "learning_rate_init": 1e-3,
    },
    "no pretraining": lambda d: {"pretrain_epochs": 0},
    "gaussian noise 0.1": lambda d: {"noise": "gaussian", "noise_level": 0.1},
    "gaussian noise 0.2": lambda d: {"noise": "gaussian", "noise_level": 0.2},
    "dropout 0.1": lambda d: {"dropout": 0.1},
}


def standardise(train, test):
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return (train - mean) / std, (test - mean) / std


def evaluate(make_scorer):
    """Mean test ROC AUC per data set, and the total fit + score time."""
    aucs, seconds = {}, 0.0
    for name, (X, y) in DATASETS.items():
        per_split = []
        for seed in range(N_SPLITS):
            X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
            X_train, X_test = standardise(X_train, X_test)
            started = time.perf_counter()
            outlier_scores = make_scorer(seed, X_train)(X_test)
            seconds += time.perf_counter() - started
            per_split.append(roc_auc_score(y_test, outlier_scores))
        aucs[name] = statistics.mean(per_split)
    return aucs, seconds


def detector_scorer(params):
    def make(seed, X_train):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the (256, 64) row rightly warns of its wide code
            detector = StackedAutoencoderOutlierDetector(random_state=seed, **params(X_train.shape[1])).fit(X_train)
        return lambda X: -detector.score_samples(X)

    return make


def isolation_forest_scorer(seed, X_train):
    forest = IsolationForest(random_state=seed).fit(X_train)
    return lambda X: -forest.score_samples(X)


def main():
    print(f"Machine: {machine_description()}")
    rows = []
    contenders = {name: detector_scorer(params) for name, params in SETTINGS.items()}
    contenders["IsolationForest (reference)"] = isolation_forest_scorer
    for name, make_scorer in contenders.items():
        aucs, seconds = evaluate(make_scorer)
        rows.append([name, *(f"{auc:.3f}" for auc in aucs.values()), f"{statistics.mean(aucs.values()):.3f}"])
        rows[-1].append(f"{seconds:.1f}")
        print(f"{name} done", flush=True)
    print(f"\nMean test ROC AUC over {N_SPLITS} splits; time: fit + score, all splits, seconds\n")
    print_table(["setting", *DATASETS, "mean", "time s"], rows)


if __name__ == "__main__":
    main()
