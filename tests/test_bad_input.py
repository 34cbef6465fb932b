"""A table of bad inputs: each fails before any training, with an error that names the problem."""

import copy

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sk_stackae import StackedAutoencoder
from sk_stackae._listeners import TrainingListener, listening

RNG = np.random.RandomState(0)
GOOD = RNG.uniform(size=(40, 6))
SMALL = {"hidden_layer_sizes": (4, 2), "pretrain_epochs": 1, "finetune_epochs": 1, "random_state": 0}


def with_nan(X):
    X = X.copy()
    X[3, 2] = np.nan
    return X


def with_inf(X):
    X = X.copy()
    X[1, 0] = -np.inf
    return X


def sparse_with_nan():
    X = sp.csr_matrix(GOOD)
    X.data[5] = np.nan
    return X


# (method, estimator parameters, input, exception type, pattern the message must match)
BAD_INPUTS = {
    # ----------------------------------------------------------------- data
    "fit NaN": ("fit", {}, with_nan(GOOD), ValueError, "Input X contains NaN"),
    "fit inf": ("fit", {}, with_inf(GOOD), ValueError, "Input X contains infinity"),
    "fit no samples": ("fit", {}, np.empty((0, 6)), ValueError, r"0 sample\(s\)"),
    "fit no features": ("fit", {}, np.empty((5, 0)), ValueError, r"0 feature\(s\)"),
    "fit 1-D": ("fit", {}, GOOD[:, 0], ValueError, "Expected 2D array, got 1D array instead"),
    "fit 3-D": ("fit", {}, GOOD.reshape(40, 3, 2), ValueError, "Found array with dim 3"),
    "fit strings": ("fit", {}, np.array([["1.0", "a"], ["2", "b"]]), ValueError, "could not convert string to float"),
    "fit object array": ("fit", {}, np.array([[1.0, {}], [2.0, 3.0]], dtype=object), TypeError, "float"),
    "fit complex": ("fit", {}, GOOD + 1j, ValueError, "Complex data not supported"),
    "fit pandas text column": (
        "fit",
        {},
        pd.DataFrame({"x": [0.1, 0.2, 0.3], "colour": ["red", "green", "blue"]}),
        ValueError,
        "could not convert string to float: 'red'",
    ),
    "fit sparse NaN": ("fit", {}, sparse_with_nan(), ValueError, "Input X contains NaN"),
    "fit bce above 1": (
        "fit",
        {"output_activation": "sigmoid", "loss": "bce"},
        GOOD * 3,
        ValueError,
        r"loss='bce' needs X with values in \[0, 1\]; got values in \[0.0\d*, 2.9\d*\]",
    ),
    "fit bce negative": (
        "fit",
        {"output_activation": "sigmoid", "loss": "bce"},
        GOOD - 0.5,
        ValueError,
        r"Negative values in data: loss='bce' needs X with values in \[0, 1\]",
    ),
    "fit None": ("fit", {}, None, ValueError, "Expected 2D array, got scalar array instead|None"),
    # ------------------------------------------------- data after fitting
    "transform wrong features": (
        "transform",
        {},
        GOOD[:, :5],
        ValueError,
        "X has 5 features, but StackedAutoencoder is expecting 6",
    ),
    "transform NaN": ("transform", {}, with_nan(GOOD), ValueError, "Input X contains NaN"),
    "transform empty": ("transform", {}, np.empty((0, 6)), ValueError, r"0 sample\(s\)"),
    "score wrong features": (
        "score",
        {},
        GOOD[:, :4],
        ValueError,
        "X has 4 features, but StackedAutoencoder is expecting 6",
    ),
    "score inf": ("score", {}, with_inf(GOOD), ValueError, "Input X contains infinity"),
    "score_samples strings": (
        "score_samples",
        {},
        np.full((2, 6), "x"),
        ValueError,
        "could not convert string to float",
    ),
    "score_samples bce outside": (
        "score_samples",
        {"output_activation": "sigmoid", "loss": "bce"},
        GOOD + 1,
        ValueError,
        r"loss='bce' needs X with values in \[0, 1\]",
    ),
    "inverse_transform wrong width": (
        "inverse_transform",
        {},
        np.zeros((3, 5)),
        ValueError,
        r"X has 5 columns, but the codes of this StackedAutoencoder have 2 \(hidden_layer_sizes\[-1\]\)",
    ),
    "inverse_transform NaN codes": (
        "inverse_transform",
        {},
        np.full((3, 2), np.nan),
        ValueError,
        "Input X contains NaN",
    ),
    "inverse_transform sparse codes": (
        "inverse_transform",
        {},
        sp.csr_matrix(np.ones((3, 2))),
        TypeError,
        "Sparse data was passed",
    ),
    "partial_fit wrong features": (
        "partial_fit",
        {},
        GOOD[:, :3],
        ValueError,
        "X has 3 features, but StackedAutoencoder is expecting 6",
    ),
    "partial_fit NaN": ("partial_fit", {}, with_nan(GOOD), ValueError, "Input X contains NaN"),
    # ----------------------------------------------------------- parameters
    "hidden sizes empty": (
        "fit",
        {"hidden_layer_sizes": ()},
        GOOD,
        ValueError,
        "hidden_layer_sizes must be a non-empty",
    ),
    "hidden size zero": (
        "fit",
        {"hidden_layer_sizes": (4, 0)},
        GOOD,
        ValueError,
        "hidden_layer_sizes must hold positive integers; got 0",
    ),
    "hidden size negative": (
        "fit",
        {"hidden_layer_sizes": (4, -2)},
        GOOD,
        ValueError,
        "hidden_layer_sizes must hold positive integers; got -2",
    ),
    "hidden size float": (
        "fit",
        {"hidden_layer_sizes": (4, 2.5)},
        GOOD,
        ValueError,
        "hidden_layer_sizes must hold positive integers; got 2.5",
    ),
    "hidden size string": (
        "fit",
        {"hidden_layer_sizes": ("4",)},
        GOOD,
        ValueError,
        "hidden_layer_sizes must hold positive integers; got '4'",
    ),
    "hidden sizes scalar zero": (
        "fit",
        {"hidden_layer_sizes": 0},
        GOOD,
        InvalidParameterError,
        "'hidden_layer_sizes' parameter",
    ),
    "batch size zero": (
        "fit",
        {"batch_size": 0},
        GOOD,
        InvalidParameterError,
        "'batch_size' parameter of StackedAutoencoder must be an int in the range \\[1, inf\\)",
    ),
    "learning rate negative": (
        "fit",
        {"learning_rate_init": -1e-3},
        GOOD,
        InvalidParameterError,
        "'learning_rate_init' parameter",
    ),
    "epochs negative": ("fit", {"finetune_epochs": -1}, GOOD, InvalidParameterError, "'finetune_epochs' parameter"),
    "nothing to train": (
        "fit",
        {"pretrain_epochs": 0, "finetune_epochs": 0},
        GOOD,
        ValueError,
        "pretrain_epochs and finetune_epochs are both 0",
    ),
    "activation unknown": (
        "fit",
        {"activation": "swish"},
        GOOD,
        InvalidParameterError,
        "'activation' parameter of StackedAutoencoder must be a str among",
    ),
    "loss unknown": ("fit", {"loss": "mae"}, GOOD, InvalidParameterError, "'loss' parameter"),
    "bce without sigmoid": ("fit", {"loss": "bce"}, GOOD, ValueError, "loss='bce' needs output_activation='sigmoid'"),
    "optimizer unknown": ("fit", {"optimizer": "lbfgs"}, GOOD, InvalidParameterError, "'optimizer' parameter"),
    "dropout one": (
        "fit",
        {"dropout": 1.0},
        GOOD,
        InvalidParameterError,
        "'dropout' parameter of StackedAutoencoder must be a float in the range \\[0.0, 1.0\\)",
    ),
    "noise unknown": ("fit", {"noise": "salt"}, GOOD, InvalidParameterError, "'noise' parameter"),
    "masking everything": ("fit", {"noise": "masking", "noise_level": 1.0}, GOOD, ValueError, "would mask every input"),
    "sparsity target zero": (
        "fit",
        {"sparsity_target": 0.0},
        GOOD,
        InvalidParameterError,
        "'sparsity_target' parameter",
    ),
    "momentum above one": ("fit", {"momentum": 1.5}, GOOD, InvalidParameterError, "'momentum' parameter"),
    "precision unknown": ("fit", {"precision": "float16"}, GOOD, InvalidParameterError, "'precision' parameter"),
    "validation leaves nothing to train": (
        "fit",
        {"early_stopping": True, "validation_fraction": 0.99},
        GOOD[:3],
        ValueError,
        r"holds out 3 of 3 sample\(s\), which leaves none to train on",
    ),
    "validation set empty": (
        "fit",
        {"early_stopping": True, "validation_fraction": 0.0},
        GOOD,
        ValueError,
        r"holds out 0 of 40 sample\(s\), which leaves none to validate on",
    ),
    "device unknown": (
        "fit",
        {"device": "tpu"},
        GOOD,
        ValueError,
        "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'",
    ),
    "device wrong type": ("fit", {"device": 0}, GOOD, InvalidParameterError, "'device' parameter"),
    "random_state string": ("fit", {"random_state": "seed"}, GOOD, InvalidParameterError, "'random_state' parameter"),
    "verbose negative": ("fit", {"verbose": -1}, GOOD, InvalidParameterError, "'verbose' parameter"),
}


@pytest.fixture(scope="module")
def fitted():
    return {
        "mse": StackedAutoencoder(**SMALL).fit(GOOD),
        "bce": StackedAutoencoder(**SMALL, output_activation="sigmoid", loss="bce").fit(GOOD),
    }


class _TrainingStarts(TrainingListener):
    def __init__(self):
        self.started = []

    def phase_started(self, phase):
        self.started.append(phase.name)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_message_that_names_the_problem(case, fitted):
    method, params, X, error, pattern = BAD_INPUTS[case]
    training = _TrainingStarts()
    if method == "fit":
        model = StackedAutoencoder(**{**SMALL, **params})
    elif method == "partial_fit":
        model = copy.deepcopy(fitted["mse"])
    else:
        model = fitted["bce" if params.get("loss") == "bce" else "mse"]
    before = dict(model.__dict__)
    with listening(training), pytest.raises(error, match=pattern):
        getattr(model, method)(X)
    assert not training.started, "training started before the input was checked"
    assert model.__dict__.keys() == before.keys()


def test_cuda_on_a_machine_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = StackedAutoencoder(device="cuda", **SMALL)
    with pytest.raises(ValueError, match=r"device='cuda' was requested, but CUDA is not available on this machine"):
        model.fit(GOOD)
    assert not hasattr(model, "n_features_in_")


def test_a_gpu_index_the_machine_lacks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"device='cuda:3' was requested, but this machine has only 1 CUDA device"):
        StackedAutoencoder(device="cuda:3", **SMALL).fit(GOOD)


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score", "score_samples"])
def test_methods_of_an_unfitted_estimator_say_so(method):
    with pytest.raises(NotFittedError, match="This StackedAutoencoder instance is not fitted yet"):
        getattr(StackedAutoencoder(), method)(GOOD)
    with pytest.raises(NotFittedError):
        StackedAutoencoder().get_feature_names_out()
