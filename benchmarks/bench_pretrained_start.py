"""A grid search over classifier heads: pretraining in every fit, or once, passed as ``pretrained``.

Digits, split in half: the first half trains (one row in five labeled, the
rest marked -1), the second half tests. ``GridSearchCV`` (3 folds, refit)
searches four heads (``learning_rate_init`` x ``alpha``) of a
``StackedAutoencoderClassifier`` two ways:

- **pretrain in every fit**: the classifier pretrains itself (20 greedy
  epochs per layer and 5 of unsupervised fine-tune, masking noise), in each
  of the 12 fold fits and the refit, on that fit's rows;
- **pretrained once**: a ``StackedAutoencoder`` of the same architecture,
  noise and epochs is fitted once on every training row (labels are not
  used), and the classifier starts from it (``pretrained=``), so the 13
  fits train heads and supervised fine-tunes only.

Every other setting is the classifier's default (``"auto"``, here with
unlabeled rows: the semi-supervised terms on).

The second sees the rows of every fold's validation part while pretraining
(their features, never their labels), as a user pretraining once on all
unlabeled data would. Both are timed alternately, round after round, the
one-off pretraining counted in the second's time; the table gives the
search's time, the ratio and the refitted classifier's test accuracy.

Run ``python benchmarks/bench_pretrained_start.py``.
"""

import argparse
import statistics
import time

import numpy as np
from _common import machine_description, print_table
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier

ARCHITECTURE = {"hidden_layer_sizes": (128, 32), "batch_size": 64, "random_state": 0, "device": "cpu"}
# The classifier codes with its hidden activation; the autoencoder is given the same.
CODES = {"code_activation": "relu"}
UNSUPERVISED = {"pretrain_epochs": 20, "noise": "masking", "noise_level": 0.25}
UNSUPERVISED_FINETUNE_EPOCHS = 5
HEAD = {"head_warmup_epochs": 5, "finetune_epochs": 20, "unlabeled_label": -1}
GRID = {"learning_rate_init": [1e-3, 3e-3], "alpha": [1e-4, 1e-3]}


def search(estimator):
    return GridSearchCV(estimator, GRID, cv=3)


def pretrain_in_every_fit(X, y):
    classifier = StackedAutoencoderClassifier(
        **UNSUPERVISED, unsupervised_finetune_epochs=UNSUPERVISED_FINETUNE_EPOCHS, **ARCHITECTURE, **HEAD
    )
    return search(classifier).fit(X, y)


def pretrained_once(X, y):
    autoencoder = StackedAutoencoder(
        **UNSUPERVISED, **CODES, finetune_epochs=UNSUPERVISED_FINETUNE_EPOCHS, **ARCHITECTURE
    )
    autoencoder.fit(X)
    return search(StackedAutoencoderClassifier(pretrained=autoencoder, **HEAD, random_state=0)).fit(X, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    half = len(y) // 2
    X_train, X_test, y_test = X[:half], X[half:], y[half:]
    y_train = np.where(np.arange(half) % 5 == 0, y[:half], -1)
    print(f"machine: {machine_description()}")
    print(
        f"digits: {half} training rows ({(y_train != -1).sum()} labeled), {len(y_test)} test rows; "
        f"{len(GRID['learning_rate_init']) * len(GRID['alpha'])} heads x 3 folds + refit\n"
    )
    contenders = {"pretrain in every fit": pretrain_in_every_fit, "pretrained once": pretrained_once}
    times = {name: [] for name in contenders}
    accuracy = {}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            started = time.perf_counter()
            fitted = run(X_train, y_train)
            times[name].append(time.perf_counter() - started)
            accuracy[name] = fitted.score(X_test, y_test)
    baseline = statistics.median(times["pretrain in every fit"])
    rows = [
        [
            name,
            f"{statistics.median(times[name]):.1f}",
            f"{baseline / statistics.median(times[name]):.2f}x",
            f"{100 * accuracy[name]:.1f} %",
        ]
        for name in contenders
    ]
    print_table(["search", "time (s, median)", "speed-up", "test accuracy"], rows)


if __name__ == "__main__":
    main()
