"""The scikit-learn surface of StackedAutoencoder."""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.special
import torch
from conftest import DEVICE
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from sk_stackae import StackedAutoencoder

FAST = {"pretrain_epochs": 2, "finetune_epochs": 2, "batch_size": 32, "random_state": 0}


# ------------------------------------------------------------------ outputs


def test_transform_gives_codes_of_the_last_layer_width(blobs):
    model = StackedAutoencoder((8, 5), **FAST).fit(blobs)
    codes = model.transform(blobs)
    assert codes.shape == (len(blobs), 5)
    assert np.isfinite(codes).all()
    assert model.inverse_transform(codes).shape == blobs.shape
    assert model.n_features_in_ == 12
    assert model.device_ == DEVICE


def test_fit_transform_equals_fit_then_transform(blobs):
    codes = StackedAutoencoder((8, 5), **FAST).fit_transform(blobs)
    np.testing.assert_array_equal(codes, StackedAutoencoder((8, 5), **FAST).fit(blobs).transform(blobs))


def test_inverse_transform_of_codes_is_the_reconstruction_that_score_measures(blobs):
    model = StackedAutoencoder((8, 5), **FAST).fit(blobs)
    reconstruction = model.inverse_transform(model.transform(blobs))
    per_sample = ((reconstruction - blobs) ** 2).mean(axis=1)
    np.testing.assert_allclose(model.score_samples(blobs), -per_sample, rtol=1e-6, atol=1e-9)
    assert model.score(blobs) == pytest.approx(-per_sample.mean(), rel=1e-6)


def test_bce_score_is_minus_the_relative_entropy(digits):
    X, _ = digits
    model = StackedAutoencoder((16, 4), output_activation="sigmoid", loss="bce", **FAST).fit(X)
    p = np.clip(model.inverse_transform(model.transform(X)), 1e-12, 1 - 1e-12)
    bce = -(X * np.log(p) + (1 - X) * np.log(1 - p)).mean(axis=1)
    own_entropy = -(scipy.special.xlogy(X, X) + scipy.special.xlogy(1 - X, 1 - X)).mean(axis=1)
    np.testing.assert_allclose(model.score_samples(X), -(bce - own_entropy), rtol=1e-5, atol=1e-6)
    assert (model.score_samples(X) <= 1e-7).all()


def test_bce_scores_flag_a_novel_digit_rather_than_images_with_little_ink(digits):
    # Ones have the least ink of the digits. Cross-entropy alone is small for
    # blank pixels, so a model that never saw a one would score ones as
    # normal; the relative entropy measures how well they are reconstructed.
    X, y = digits
    model = StackedAutoencoder(
        (32, 8), output_activation="sigmoid", loss="bce", pretrain_epochs=5, finetune_epochs=20, random_state=0
    ).fit(X[y != 1])
    is_one = y == 1
    assert roc_auc_score(is_one, -model.score_samples(X)) > 0.6


def test_training_lowers_the_reconstruction_error(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), pretrain_epochs=5, finetune_epochs=20, random_state=0).fit(X)
    assert model.loss_curve_[-1] < 0.8 * model.loss_curve_[0]
    # Far better than predicting the mean of every pixel, which costs the variance.
    assert -model.score(X) < 0.5 * X.var(axis=0).mean()
    # The training loss and score measure the same thing.
    assert -model.score(X) == pytest.approx(model.loss_curve_[-1], rel=0.2)


def test_autoencoder_beats_pca_at_equal_code_size_on_digits(digits):
    X, _ = digits
    model = StackedAutoencoder(
        (64, 8), output_activation="sigmoid", pretrain_epochs=10, finetune_epochs=40, batch_size=64, random_state=0
    ).fit(X)
    pca = PCA(n_components=8).fit(X)
    pca_error = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    assert -model.score(X) < pca_error


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64), (np.int32, np.float64)],
)
def test_outputs_keep_the_input_float_dtype(dtype, expected, digits):
    X = (digits[0][:100] * 16).astype(dtype)
    model = StackedAutoencoder((8, 4), **FAST).fit(X)
    codes = model.transform(X)
    assert codes.dtype == expected
    assert model.score_samples(X).dtype == expected
    assert model.inverse_transform(codes).dtype == expected
    # The network itself computes in float32 whatever came in.
    assert all(p.dtype == torch.float32 for p in model.network_.parameters())


def test_float32_and_float64_input_train_the_same_network(blobs):
    a = StackedAutoencoder((8, 4), **FAST).fit(blobs.astype(np.float32))
    b = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    for p, q in zip(a.network_.parameters(), b.network_.parameters(), strict=True):
        assert torch.equal(p, q)


def test_float64_codes_of_a_sample_depend_on_its_batch_by_float64_rounding_only(blobs):
    # float64 input is encoded in float64, so batch size changes only the
    # last bits (what the docs claim: about 1e-15), far below float32 rounding.
    model = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    whole = model.transform(blobs)
    one_by_one = np.vstack([model.transform(row[None, :]) for row in blobs])
    np.testing.assert_allclose(whole, one_by_one, rtol=1e-13, atol=1e-13)


def test_float16_input_fits_transforms_and_scores_in_float32(digits):
    X = digits[0][:300].astype(np.float16)
    model = StackedAutoencoder((16, 4), **FAST).fit(X)
    codes = model.transform(X)
    assert codes.dtype == np.float32
    np.testing.assert_array_equal(codes, model.transform(X.astype(np.float32)))
    assert model.score_samples(X).dtype == np.float32
    assert model.inverse_transform(codes.astype(np.float16)).dtype == np.float32
    pipeline = Pipeline([("scale", MinMaxScaler()), ("ae", StackedAutoencoder((16, 4), **FAST))]).fit(X)
    assert np.isfinite(pipeline.transform(X)).all()


@pytest.mark.parametrize(
    ("params", "warns"),
    [
        ({}, True),
        ({"hidden_layer_sizes": (64, 12)}, True),
        ({"hidden_layer_sizes": (64, 11)}, False),
        ({"noise": "masking", "noise_level": 0.2}, False),
        ({"sparsity": 0.1}, False),
    ],
)
def test_a_code_as_wide_as_the_input_warns_unless_regularised(params, warns, blobs):
    # blobs have 12 features; the default code has 64 units.
    model = StackedAutoencoder(**{**FAST, **params})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(blobs)
    messages = [w for w in record if "as wide as the input or wider" in str(w.message)]
    assert len(messages) == int(warns)
    if warns:
        assert messages[0].filename == __file__
        assert "noise or sparsity" in str(messages[0].message)


@pytest.mark.parametrize(("has_units", "warns"), [(False, True), (True, False), (None, False)])
def test_bfloat16_on_a_cpu_without_bfloat16_units_warns(has_units, warns, monkeypatch, blobs):
    monkeypatch.setattr("sk_stackae._base.cpu_has_bfloat16_units", lambda: has_units)
    model = StackedAutoencoder((8, 4), precision="bfloat16", device="cpu", **FAST)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(blobs)
    messages = [w for w in record if "without bfloat16 units" in str(w.message)]
    assert len(messages) == int(warns)
    if warns:
        assert messages[0].filename == __file__


# ------------------------------------------------------------------ inputs


def test_pandas_input_records_feature_names_and_set_output_gives_named_codes(blobs):
    frame = pd.DataFrame(blobs, columns=[f"f{i}" for i in range(12)], index=np.arange(100, 220))
    model = StackedAutoencoder((8, 3), **FAST).set_output(transform="pandas").fit(frame)
    assert list(model.feature_names_in_) == list(frame.columns)
    codes = model.transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == ["stackedautoencoder0", "stackedautoencoder1", "stackedautoencoder2"]
    assert (codes.index == frame.index).all()
    assert list(model.get_feature_names_out()) == list(codes.columns)


@pytest.mark.parametrize("sparse_format", ["csr", "csc", "coo"])
def test_sparse_input_trains_like_dense_input(sparse_format, digits):
    X = digits[0][:300]
    dense = StackedAutoencoder((16, 4), **FAST).fit(X)
    sparse = StackedAutoencoder((16, 4), **FAST).fit(sp.csr_matrix(X).asformat(sparse_format))
    np.testing.assert_allclose(sparse.transform(sp.csr_matrix(X)), dense.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sparse.score_samples(sp.csr_matrix(X)), dense.score_samples(X), rtol=1e-5, atol=1e-7)


def test_sparse_input_is_never_densified_whole(monkeypatch, digits):
    X = sp.csr_matrix(digits[0][:500])
    densified_rows = []
    original = sp.csr_matrix.toarray

    def recording_toarray(matrix, *args, **kwargs):
        densified_rows.append(matrix.shape[0])
        return original(matrix, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", recording_toarray)
    # Inference batches (also used to fill the code cache) are large, but
    # bounded in values: here 100 rows of 64 features.
    monkeypatch.setattr("sk_stackae._data._INFERENCE_VALUES_PER_BATCH", 64 * 100)
    model = StackedAutoencoder((16, 4), **FAST).fit(X)
    assert densified_rows and max(densified_rows) <= 100
    assert densified_rows.count(32) >= 2 * 2 * (500 // 32)  # training batches of both stages
    densified_rows.clear()
    model.transform(X)
    assert densified_rows == [100] * 5


# ---------------------------------------------------------- sklearn integration


def test_pipeline_with_a_classifier_in_grid_search_on_digits(digits):
    X, y = digits
    pipeline = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("encode", StackedAutoencoder(pretrain_epochs=3, finetune_epochs=5, random_state=0)),
            ("classify", LogisticRegression(max_iter=500)),
        ]
    )
    search = GridSearchCV(pipeline, {"encode__hidden_layer_sizes": [(32, 2), (32, 16)]}, cv=2)
    search.fit(X, y)
    # 16-d codes carry the digit far better than 2-d ones (chance is 0.1),
    # even after a few epochs.
    assert search.best_params_ == {"encode__hidden_layer_sizes": (32, 16)}
    worse, better = search.cv_results_["mean_test_score"]
    assert better > 0.6 and better > worse + 0.2
    assert search.score(X, y) > 0.6


def test_grid_search_without_y_selects_by_reconstruction_score(digits):
    X, _ = digits
    search = GridSearchCV(
        StackedAutoencoder(pretrain_epochs=3, finetune_epochs=10, random_state=0),
        {"hidden_layer_sizes": [(32, 2), (32, 24)]},
        cv=2,
    )
    search.fit(X)
    assert search.best_params_ == {"hidden_layer_sizes": (32, 24)}
    assert search.best_score_ == pytest.approx(max(search.cv_results_["mean_test_score"]))


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(blobs):
    model = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(blobs)


# ---------------------------------------------------------------- verbose


def test_verbose_prints_one_line_per_epoch_and_phase(capsys, blobs):
    StackedAutoencoder((8, 6, 4), pretrain_epochs=2, finetune_epochs=3, verbose=1, random_state=0).fit(blobs)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 * 2 + 3
    assert re.fullmatch(r"pretrain layer 2/3 epoch 1/2 loss [0-9.e+-]+ \d+\.\d\ds", lines[2])
    assert re.fullmatch(r"finetune epoch 3/3 loss [0-9.e+-]+ \d+\.\d\ds", lines[-1])


def test_silent_by_default(capsys, blobs):
    StackedAutoencoder((8, 4), **FAST).fit(blobs)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------ reproducibility


def test_same_seed_gives_bit_identical_codes(blobs):
    a = StackedAutoencoder((8, 4), **FAST).fit(blobs).transform(blobs)
    b = StackedAutoencoder((8, 4), **FAST).fit(blobs).transform(blobs)
    np.testing.assert_array_equal(a, b)
    c = StackedAutoencoder((8, 4), **{**FAST, "random_state": 1}).fit(blobs).transform(blobs)
    assert not np.allclose(a, c)


def test_random_state_instance_is_honoured(blobs):
    a = StackedAutoencoder((8, 4), **{**FAST, "random_state": np.random.RandomState(3)}).fit(blobs)
    b = StackedAutoencoder((8, 4), **{**FAST, "random_state": np.random.RandomState(3)}).fit(blobs)
    np.testing.assert_array_equal(a.transform(blobs), b.transform(blobs))


@pytest.mark.parametrize("random_state", [0, None])
def test_global_random_generators_are_neither_read_nor_changed(random_state, blobs):
    params = {**FAST, "random_state": random_state}
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    model = StackedAutoencoder((8, 4), **params).fit(blobs)
    model.transform(blobs)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state, strict=True))
    if random_state is not None:
        torch.manual_seed(7)
        np.random.seed(7)
        again = StackedAutoencoder((8, 4), **params).fit(blobs)
        np.testing.assert_array_equal(again.transform(blobs), model.transform(blobs))


def test_unseeded_fits_differ(blobs):
    params = {**FAST, "random_state": None}
    a = StackedAutoencoder((8, 4), **params).fit(blobs).transform(blobs)
    b = StackedAutoencoder((8, 4), **params).fit(blobs).transform(blobs)
    assert not np.allclose(a, b)


# ----------------------------------------------------------------- pickling


def test_pickle_round_trip_keeps_the_codes(blobs):
    model = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.transform(blobs), model.transform(blobs))
    assert restored.loss_curve_ == model.loss_curve_


def _torch_objects(tree, path="state"):
    """Paths of every torch object anywhere in nested dicts, lists and tuples."""
    if isinstance(tree, dict):
        return [found for key, value in tree.items() for found in _torch_objects(value, f"{path}[{key!r}]")]
    if isinstance(tree, list | tuple):
        return [found for i, value in enumerate(tree) for found in _torch_objects(value, f"{path}[{i}]")]
    module = type(tree).__module__ or ""
    return [path] if module == "torch" or module.startswith("torch.") else []


@pytest.mark.parametrize("fit", ["fit", "partial_fit"])
def test_pickled_state_holds_no_torch_object_and_pickling_changes_nothing(fit, blobs):
    model = getattr(StackedAutoencoder((8, 4), **FAST), fit)(blobs)
    network = model.network_
    state = model.__getstate__()
    assert model.network_ is network and isinstance(model.device_, torch.device)
    assert _torch_objects(state) == []
    # partial_fit's optimiser and generator travel too, as numpy arrays.
    assert ("_optimizer" in state) == ("_generator" in state) == (fit == "partial_fit")
    saved = state["network_"]
    assert set(saved) == {"config", "state_dict"}
    assert all(isinstance(array, np.ndarray) for array in saved["state_dict"].values())
    assert state["device_"] == str(DEVICE)
    assert state["_sk_stackae_pickle_format"] == 2
    # The saved arrays are copies: changing them leaves the live model as it was.
    codes = model.transform(blobs)
    for array in saved["state_dict"].values():
        array += 1.0
    np.testing.assert_array_equal(model.transform(blobs), codes)


def test_model_saved_on_a_gpu_loads_on_a_machine_without_one(monkeypatch, blobs):
    model = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    state = model.__getstate__()
    state["device_"] = "cuda:0"  # as a GPU fit would have saved it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = StackedAutoencoder.__new__(StackedAutoencoder)
    with pytest.warns(UserWarning, match="saved on device 'cuda:0'.*loaded on the CPU"):
        restored.__setstate__(pickle.loads(pickle.dumps(state)))
    assert restored.device_ == torch.device("cpu")
    # Bit for bit when the model was fitted on the CPU too; to float32 rounding after a GPU fit.
    np.testing.assert_allclose(restored.transform(blobs), model.transform(blobs), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------ bad input and faults


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hidden_layer_sizes": ()}, "non-empty sequence of positive integers"),
        ({"hidden_layer_sizes": (8, 0)}, "must hold positive integers; got 0"),
        ({"hidden_layer_sizes": (8, 2.5)}, "must hold positive integers; got 2.5"),
        ({"hidden_layer_sizes": ((8, 4),)}, "non-empty sequence"),
        ({"loss": "bce"}, "loss='bce' needs output_activation='sigmoid'"),
        ({"pretrain_epochs": 0, "finetune_epochs": 0}, "nothing to train"),
        ({"device": "tpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'"),
    ],
)
def test_bad_hyperparameters_raise_before_training(params, message, blobs):
    model = StackedAutoencoder(**params)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(blobs)
    assert not hasattr(model, "n_features_in_")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"activation": "softmax"}, "activation"),
        ({"loss": "huber"}, "loss"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"alpha": -1.0}, "alpha"),
        ({"pretrain_epochs": -1}, "pretrain_epochs"),
        ({"hidden_layer_sizes": -3}, "hidden_layer_sizes"),
        ({"device": 3}, "device"),
    ],
)
def test_invalid_parameters_are_rejected_by_the_constraints(params, name, blobs):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        StackedAutoencoder(**params).fit(blobs)


def test_cuda_requested_without_cuda_raises(monkeypatch, blobs):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        StackedAutoencoder(device="cuda").fit(blobs)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "Input X contains NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "Input X contains infinity"),
        (np.empty((0, 4)), "0 sample"),
        (np.empty((3, 0)), "0 feature"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert string to float"),
    ],
)
def test_bad_training_data_raises_a_clear_value_error(X, message):
    model = StackedAutoencoder((4,), **FAST)
    with pytest.raises(ValueError, match=message):
        model.fit(X)
    assert not hasattr(model, "n_features_in_")


def test_bce_rejects_data_outside_the_unit_interval(digits):
    X = digits[0]
    model = StackedAutoencoder((8,), output_activation="sigmoid", loss="bce", **FAST)
    with pytest.raises(ValueError, match=r"loss='bce' needs X with values in \[0, 1\]; got values in \[0, 16\]"):
        model.fit(X * 16)
    with pytest.raises(ValueError, match=r"values in \[-1"):
        model.fit(sp.csr_matrix(X - 1))
    model.fit(X)
    with pytest.raises(ValueError, match=r"loss='bce' needs X with values in \[0, 1\]"):
        model.score(X * 16)


def test_wrong_widths_after_fitting_are_rejected(blobs):
    model = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    for method in (model.transform, model.score, model.score_samples):
        with pytest.raises(ValueError, match="X has 11 features, but StackedAutoencoder is expecting 12"):
            method(blobs[:, :11])
    with pytest.raises(ValueError, match=r"X has 5 columns, but the codes of this StackedAutoencoder have 4"):
        model.inverse_transform(np.zeros((3, 5)))


def test_methods_before_fit_raise_not_fitted(blobs):
    model = StackedAutoencoder()
    for method in (model.transform, model.inverse_transform, model.score, model.score_samples):
        with pytest.raises(NotFittedError):
            method(blobs)


def test_divergence_names_the_phase_and_epoch_and_leaves_nothing_fitted(blobs):
    model = StackedAutoencoder((8, 4), learning_rate_init=1e30, pretrain_epochs=3, finetune_epochs=3, random_state=0)
    with pytest.raises(ValueError, match=r"loss became (nan|inf) in pretrain layer 1/2 at epoch [1-3]/3"):
        model.fit(blobs * 1e6)
    assert not hasattr(model, "n_features_in_")
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_divergence_in_the_finetune_is_named_too(blobs):
    model = StackedAutoencoder((8, 4), learning_rate_init=1e30, pretrain_epochs=0, finetune_epochs=2, random_state=0)
    with pytest.raises(ValueError, match=r"loss became (nan|inf) in finetune at epoch [12]/2"):
        model.fit(blobs * 1e6)


def test_a_failed_refit_keeps_the_previous_model(blobs):
    model = StackedAutoencoder((8, 4), **FAST).fit(blobs)
    codes = model.transform(blobs)
    network = model.network_
    with pytest.raises(ValueError):
        model.fit(np.full((5, 3), np.nan))
    model.set_params(learning_rate_init=1e30)
    with pytest.raises(ValueError, match="diverged"):
        model.fit(blobs[:, :5] * 1e6)
    assert model.network_ is network
    assert model.n_features_in_ == 12
    np.testing.assert_array_equal(model.transform(blobs), codes)
