"""GridSearchCV over a pipeline with StackedAutoencoder: one worker against two, on this machine.

With ``n_jobs=2`` joblib starts two worker processes and gives each its share
of the cores (``OMP_NUM_THREADS``), which torch follows, so the two do not
fight over the cores. The search (a grid of 4 candidates, 3-fold) is timed
alternately with ``n_jobs=1`` and ``n_jobs=2``; the worker pool is started
once before timing so that process start-up is not counted against either.

Run ``python benchmarks/bench_grid_search.py``.
"""

import argparse
import statistics
import time

import joblib
import torch
from _common import machine_description, print_table
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_stackae import StackedAutoencoder


def worker_threads(estimator, X, y=None):
    return torch.get_num_threads()


def make_search(n_jobs):
    pipeline = make_pipeline(
        MinMaxScaler(),
        StackedAutoencoder(pretrain_epochs=5, finetune_epochs=20, batch_size=64, random_state=0),
        LogisticRegression(max_iter=500),
    )
    grid = {"stackedautoencoder__hidden_layer_sizes": [(64, 8), (64, 16), (128, 8), (128, 16)]}
    return GridSearchCV(
        pipeline, grid, cv=3, n_jobs=n_jobs, scoring={"accuracy": "accuracy", "threads": worker_threads}, refit=False
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    print(f"machine: {machine_description()}")
    print("digits, MinMaxScaler -> StackedAutoencoder -> LogisticRegression, 4 candidates x 3 folds\n")

    # Start the worker pool (and import torch in it) before timing.
    joblib.Parallel(n_jobs=2)(joblib.delayed(torch.get_num_threads)() for _ in range(2))
    make_search(1).fit(X[:200], y[:200])
    times = {1: [], 2: []}
    threads = {}
    for _ in range(args.rounds):
        for n_jobs in (1, 2):
            started = time.perf_counter()
            search = make_search(n_jobs).fit(X, y)
            times[n_jobs].append(time.perf_counter() - started)
            threads[n_jobs] = sorted(set(search.cv_results_["mean_test_threads"]))
    speedups = [one / two for one, two in zip(times[1], times[2], strict=True)]
    rows = [
        [f"n_jobs={n}", f"{statistics.median(times[n]):.2f}", ", ".join(str(int(t)) for t in threads[n])]
        for n in (1, 2)
    ]
    print_table(["search", "seconds (median)", "torch threads per fit"], rows)
    spread = f"range {min(speedups):.2f}x - {max(speedups):.2f}x"
    print(f"\nspeed-up of n_jobs=2: {statistics.median(speedups):.2f}x ({spread})")


if __name__ == "__main__":
    main()
