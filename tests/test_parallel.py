"""Grid search in parallel: joblib's processes and a Dask cluster, without oversubscribing the cores."""

import os

import dask.distributed as distributed
import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

from sk_stackae import StackedAutoencoder
from sk_stackae._listeners import TrainingListener, listening


def torch_threads(estimator, X, y=None):
    """A 'score' that reports how many threads torch had in the worker that fitted."""
    return torch.get_num_threads()


def search(**kwargs):
    pipeline = make_pipeline(
        MinMaxScaler(),
        StackedAutoencoder(pretrain_epochs=2, finetune_epochs=3, random_state=0),
        LogisticRegression(max_iter=300),
    )
    grid = {"stackedautoencoder__hidden_layer_sizes": [(32, 4), (32, 16)]}
    scoring = {"accuracy": "accuracy", "threads": torch_threads}
    return GridSearchCV(pipeline, grid, cv=2, scoring=scoring, refit="accuracy", **kwargs)


@pytest.fixture(scope="module")
def digits_data():
    return load_digits(return_X_y=True)


def test_two_joblib_workers_share_the_cores_instead_of_oversubscribing_them(digits_data):
    X, y = digits_data
    result = search(n_jobs=2).fit(X, y)
    assert (result.cv_results_["mean_test_threads"] == max(1, os.cpu_count() // 2)).all()


class _ThreadsSeen(TrainingListener):
    def __init__(self):
        self.seen = set()

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.seen.add(torch.get_num_threads())


def test_training_respects_threadpoolctl_limits(digits_data):
    X, _ = digits_data
    threads = _ThreadsSeen()
    with threadpool_limits(1), listening(threads):
        StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1).fit(X[:200])
    assert threads.seen == {1}


def test_grid_search_on_a_dask_cluster_picks_what_the_serial_search_picks(digits_data):
    X, y = digits_data
    serial = search().fit(X, y)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        on_dask = search().fit(X, y)
    assert on_dask.best_params_ == serial.best_params_
    # The same fits, up to float rounding (the workers compute on one thread).
    np.testing.assert_allclose(
        on_dask.cv_results_["mean_test_accuracy"], serial.cv_results_["mean_test_accuracy"], atol=0.01
    )
    # Each Dask worker ran torch on one thread, its share of the machine.
    assert (on_dask.cv_results_["mean_test_threads"] == 1).all()
