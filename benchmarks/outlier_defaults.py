"""How StackedAutoencoderOutlierDetector's defaults are chosen: a grid of its levers, left-out data sets.

Every configuration of a small grid of the detector's levers (the widths,
``trim_fraction``, ``code_distance``, the epochs) is measured with the
protocol of ``bench_outliers.py`` (random 60/40 splits, standardised on the
training part, fit without labels, ROC AUC of the test scores) on the ten
ODDS sets and on development sets of our own (``_outlier_sets.py``). Then,
for each ODDS set in turn, the configuration with the best mean ROC AUC on
the other nine (in a second table, the other nine and the development
sets) is measured on the left-out set: the left-out figures are what a default
chosen this way gives on data it was not chosen on. IsolationForest is
measured in the same run.

Four tables: the levers, each changed alone from the defaults (in-sample
mean ROC AUC on ODDS and on the development sets); the left-out selection
on the other ODDS sets, and on those and the development sets; and the
latter with the code view kept on, as a fixed part of the design.

Run ``OMP_NUM_THREADS=1 python benchmarks/outlier_defaults.py --data-dir ../shared/datasets``.
"""

import argparse
import itertools
import statistics
import warnings
from pathlib import Path

import numpy as np
import scipy.io
from _common import machine_description, print_table
from _outlier_sets import DEVSETS, pixel_sets
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoderOutlierDetector

ODDS = ("arrhythmia", "cardio", "glass", "ionosphere", "letter", "lympho", "pima", "vertebral", "vowels", "wbc")
DEFAULTS = {"widths": "auto", "trim_fraction": 0.2, "code_distance": True, "finetune_epochs": 60}
GRID = {
    "widths": ["auto", "three layers"],
    "trim_fraction": [0.0, 0.1, 0.2],
    "code_distance": [False, True],
    "finetune_epochs": [30, 60],
}


def detector(config, n_features, seed):
    params = {key: value for key, value in config.items() if key != "widths"}
    if config["widths"] == "three layers":
        # The alternative to "auto"'s (d, k): (h1, h2, k), h1 = min(64, 2 d), h2 halfway, k = round(sqrt d).
        code = max(1, round(n_features**0.5))
        first = max(code + 1, min(64, 2 * n_features))
        params["hidden_layer_sizes"] = (first, max(code + 1, (first + code) // 2), code)
    return StackedAutoencoderOutlierDetector(random_state=seed, device="cpu", **params)


def name_of(config):
    return ", ".join(f"{key}={value}" for key, value in config.items())


def splits(X, y, n_splits):
    for seed in range(n_splits):
        X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        std[std == 0] = 1.0
        yield seed, (X_train - mean) / std, (X_test - mean) / std, y_test


def mean_auc(make, X, y, n_splits):
    scores = []
    for seed, X_train, X_test, y_test in splits(X, y, n_splits):
        model = make(seed).fit(X_train)
        scores.append(roc_auc_score(y_test, -model.score_samples(X_test)))
    return float(np.mean(scores))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the datasets folder: odds/, mnist/, fashion-mnist/")
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    print(f"Machine: {machine_description()}")
    data = {}
    for name in ODDS:
        mat = scipy.io.loadmat(Path(args.data_dir) / "odds" / f"{name}.mat")
        data[name] = (mat["X"].astype(np.float64), mat["y"].ravel().astype(int))
    dev_loaders = {**DEVSETS, **pixel_sets(args.data_dir)}
    for name, load in dev_loaders.items():
        data[name] = load()
    configs = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    auc = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (X, y) in data.items():
            auc["IsolationForest", name] = mean_auc(lambda seed: IsolationForest(random_state=seed), X, y, args.splits)
            for config in configs:
                auc[name_of(config), name] = mean_auc(
                    lambda seed, config=config, X=X: detector(config, X.shape[1], seed), X, y, args.splits
                )
            print(f"{name} done", flush=True)
    dev = list(dev_loaders)
    print_levers(configs, auc, dev)
    print_left_out(configs, auc, [])
    print_left_out(configs, auc, dev)
    # The code view as a fixed part of the design, the other levers chosen by set left out.
    with_code_view = [config for config in configs if config["code_distance"]]
    print_left_out(with_code_view, auc, dev, "code_distance=True, ")


def print_levers(configs, auc, dev):
    print(f"\n### Each lever changed alone from the defaults ({name_of(DEFAULTS)})\n")
    rows = []
    variants = [("defaults", DEFAULTS)] + [
        (f"{key}={value}", {**DEFAULTS, key: value})
        for key, values in GRID.items()
        for value in values
        if value != DEFAULTS[key]
    ]
    reference = {name: auc["IsolationForest", name] for name in [*ODDS, *dev]}
    for label, config in [*variants, ("IsolationForest", None)]:
        key = "IsolationForest" if config is None else name_of(config)
        odds = [auc[key, name] for name in ODDS]
        worst = min(value - reference[name] for value, name in zip(odds, ODDS, strict=True))
        rows.append(
            [
                label,
                *(f"{value:.3f}" for value in odds),
                f"**{statistics.mean(odds):.3f}**",
                f"{worst:+.3f}",
                *(f"{auc[key, name]:.3f}" for name in dev),
                f"{statistics.mean(auc[key, name] for name in dev):.3f}",
            ]
        )
    print_table(["setting", *ODDS, "ODDS mean", "worst vs IForest", *dev, "dev mean"], rows)


def print_left_out(configs, auc, dev, fixed=""):
    selected_on = "the other nine ODDS sets" + (" and the development sets" if dev else "")
    among = f" among those with {fixed.rstrip(', ')}" if fixed else ""
    print(f"\n### Left-out ROC AUC: each ODDS set, with the configuration{among} best on {selected_on}\n")
    rows, left_out, gaps = [], [], []
    for name in ODDS:
        others = [other for other in ODDS if other != name] + dev
        best = max(configs, key=lambda config: statistics.mean(auc[name_of(config), other] for other in others))
        value, forest = auc[name_of(best), name], auc["IsolationForest", name]
        left_out.append(value)
        gaps.append(value - forest)
        rows.append([name, name_of(best), f"{value:.3f}", f"{forest:.3f}", f"{value - forest:+.3f}"])
    rows.append(["**mean**", "", f"**{statistics.mean(left_out):.3f}**", "", f"worst {min(gaps):+.3f}"])
    print_table(["left-out set", "configuration chosen", "its ROC AUC", "IsolationForest", "difference"], rows)


if __name__ == "__main__":
    main()
