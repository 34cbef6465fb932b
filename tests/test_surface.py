"""What a scikit-learn user reaches for: a fitted autoencoder as the start, the
early-stopping split on few labels, float32 containers, out-of-memory errors,
``set_output``, the HTML repr's link and the resolved architecture."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sk_stackae import (
    StackedAutoencoder,
    StackedAutoencoderClassifier,
    StackedAutoencoderOutlierDetector,
    StackedAutoencoderRegressor,
)
from sk_stackae._splits import stratified_quotas, stratified_split

FAST = {"batch_size": 64, "random_state": 0}


@pytest.fixture(scope="module")
def fitted_autoencoder(digits):
    X, _ = digits
    return StackedAutoencoder((32, 8), pretrain_epochs=3, finetune_epochs=2, **FAST).fit(X)


def parameters_of(network):
    return {name: value.detach().clone() for name, value in network.state_dict().items()}


# ------------------------------------------------------- a pretrained start


def test_a_pretrained_start_copies_the_autoencoder_and_skips_pretraining(digits, fitted_autoencoder):
    X, y = digits
    before = parameters_of(fitted_autoencoder.network_)
    classifier = StackedAutoencoderClassifier(
        pretrained=fitted_autoencoder, head_warmup_epochs=2, finetune_epochs=0, **FAST
    ).fit(X, y)
    # The head alone trained: the encoder is the autoencoder's, bit for bit.
    assert classifier.hidden_layer_sizes_ == (32, 8)
    np.testing.assert_array_equal(classifier.transform(X[:20]), fitted_autoencoder.transform(X[:20]))
    assert all(not curve for curve in classifier.pretrain_loss_curves_)
    # Training the classifier never changes the autoencoder it started from.
    StackedAutoencoderClassifier(pretrained=fitted_autoencoder, finetune_epochs=3, **FAST).fit(X, y)
    after = parameters_of(fitted_autoencoder.network_)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_a_pretrained_start_beats_a_head_on_an_untrained_stack(digits, fitted_autoencoder):
    X, y = digits
    train, test = np.arange(0, len(y), 2), np.arange(1, len(y), 2)
    settings = {"head_warmup_epochs": 5, "finetune_epochs": 0, **FAST}
    started = StackedAutoencoderClassifier(pretrained=fitted_autoencoder, **settings).fit(X[train], y[train])
    untrained = StackedAutoencoderClassifier((32, 8), pretrain_epochs=0, **settings).fit(X[train], y[train])
    assert started.score(X[test], y[test]) > untrained.score(X[test], y[test]) + 0.1


def test_a_pretrained_start_serves_a_grid_search_over_heads_and_survives_clone_and_pickle(digits, fitted_autoencoder):
    X, y = digits
    regressor = StackedAutoencoderRegressor(pretrained=fitted_autoencoder, finetune_epochs=2, **FAST)
    assert clone(regressor).pretrained is fitted_autoencoder
    search = GridSearchCV(regressor, {"learning_rate_init": [1e-3, 3e-3]}, cv=2).fit(X, y.astype(float))
    assert search.best_estimator_.pretrained is fitted_autoencoder
    restored = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(restored.predict(X[:10]), search.best_estimator_.predict(X[:10]))


@pytest.mark.parametrize(
    "pretrained, settings, message",
    [
        (StackedAutoencoder((8,)), {}, "must be a fitted StackedAutoencoder"),
        ("fitted", {"hidden_layer_sizes": (16, 4)}, "hidden_layer_sizes=\\(16, 4\\)"),
        ("fitted", {"loss": "bce"}, "loss='bce'"),
    ],
)
def test_a_pretrained_start_it_cannot_use_is_refused_before_training(
    digits, fitted_autoencoder, pretrained, settings, message
):
    X, y = digits
    pretrained = fitted_autoencoder if pretrained == "fitted" else pretrained
    classifier = StackedAutoencoderClassifier(pretrained=pretrained, **settings, **FAST)
    with pytest.raises(ValueError, match=message):
        classifier.fit(X, y)
    assert not hasattr(classifier, "network_")


def test_a_pretrained_start_of_other_width_is_refused(digits, fitted_autoencoder):
    X, y = digits
    with pytest.raises(ValueError, match="64"):
        StackedAutoencoderClassifier(pretrained=fitted_autoencoder, **FAST).fit(X[:, :10], y)


def test_settings_equal_to_the_pretrained_autoencoders_are_accepted(digits, fitted_autoencoder):
    X, y = digits
    classifier = StackedAutoencoderClassifier(
        (32, 8), pretrained=fitted_autoencoder, head_warmup_epochs=1, finetune_epochs=0, **FAST
    )
    assert classifier.fit(X, y).hidden_layer_sizes_ == (32, 8)


# ------------------------------------------------- the split on few labels


@pytest.mark.parametrize("per_class", [2, 5, 10, 30])
def test_the_stratified_split_holds_out_the_fraction_it_is_given(per_class):
    counts = np.full(10, per_class)
    quotas = stratified_quotas(counts, 0.1)
    assert quotas.sum() == int(np.ceil(0.1 * counts.sum()))
    assert (quotas <= counts - 1).all()  # every class keeps a row to train on


def test_the_stratified_split_keeps_the_unlabeled_rows_apart():
    groups = np.array([0] * 20 + [1] * 20 + [-1] * 60)
    train, validation = stratified_split(groups, 0.1, torch.Generator().manual_seed(0))
    assert sorted(np.concatenate([train.numpy(), validation.numpy()])) == list(range(100))
    held_out = groups[validation.numpy()]
    assert (held_out == -1).sum() == 6
    assert (held_out == 0).sum() == (held_out == 1).sum() == 2


def test_early_stopping_on_one_label_per_class_fits(digits):
    X, y = digits
    one_each = np.full(len(y), -1)
    one_each[[np.flatnonzero(y == label)[0] for label in range(10)]] = range(10)
    classifier = StackedAutoencoderClassifier(
        (16,), unlabeled_label=-1, early_stopping=True, finetune_epochs=3, **FAST
    ).fit(X, one_each)
    assert len(classifier.validation_scores_) >= 1


def test_early_stopping_warns_when_it_must_hold_out_more_than_the_fraction(digits):
    X, _ = digits
    with pytest.warns(UserWarning, match="holds out 1 of the 3 labeled rows"):
        StackedAutoencoderClassifier((16,), early_stopping=True, finetune_epochs=2, **FAST).fit(X[:3], [0, 1, 2])


def test_early_stopping_on_enough_labels_does_not_warn_about_the_split(digits):
    X, y = digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StackedAutoencoderClassifier((16,), early_stopping=True, finetune_epochs=2, **FAST).fit(X, y)
    assert not [warning for warning in caught if "labeled rows" in str(warning.message)]


# ---------------------------------------------------------- float32 input


def test_polars_and_torch_float32_input_stays_float32(digits):
    polars = pytest.importorskip("polars")
    X, _ = digits
    X32 = X[:200].astype(np.float32)
    model = StackedAutoencoder((16,), pretrain_epochs=1, finetune_epochs=1, **FAST)
    for container in (polars.DataFrame(X32), torch.from_numpy(X32)):
        assert model.fit(container).transform(container).dtype == np.float32
    assert model.fit(polars.DataFrame(X[:200])).transform(X[:200]).dtype == np.float64


# ---------------------------------------------------------- out of memory


def test_running_out_of_memory_allocating_the_network_names_the_sizes(blobs, monkeypatch):
    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory")

    import sk_stackae._engine as engine

    monkeypatch.setattr(engine, "build_network", no_memory)
    model = StackedAutoencoder((4096, 2), **FAST)
    with pytest.raises(MemoryError, match="4096") as caught:
        model.fit(blobs)
    assert "hidden_layer_sizes" in str(caught.value)
    assert not hasattr(model, "network_")


# --------------------------------------------- set_output, repr, attributes


def test_feature_errors_honour_set_output(blobs):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(blobs, columns=[f"sensor_{i}" for i in range(blobs.shape[1])])
    detector = StackedAutoencoderOutlierDetector(finetune_epochs=2, **FAST).fit(frame)
    assert isinstance(detector.feature_errors(frame), np.ndarray)
    errors = detector.set_output(transform="pandas").feature_errors(frame)
    assert list(errors.columns) == list(frame.columns)
    assert list(errors.index) == list(frame.index)


@pytest.mark.parametrize(
    "estimator",
    [
        StackedAutoencoder(),
        StackedAutoencoderClassifier(),
        StackedAutoencoderRegressor(),
        StackedAutoencoderOutlierDetector(),
    ],
)
def test_the_html_repr_links_to_the_estimators_api_page(estimator):
    name = type(estimator).__name__
    assert estimator._get_doc_link().endswith(f"/generated/sk_stackae.{name}.html")
    assert estimator._get_doc_link() in estimator._repr_html_()


def test_auto_hidden_layer_sizes_are_a_fitted_attribute(blobs):
    model = StackedAutoencoderOutlierDetector(finetune_epochs=1, **FAST).fit(blobs)
    assert model.hidden_layer_sizes == "auto"
    widths = model.hidden_layer_sizes_
    assert widths == (12, 3)  # (d, round(sqrt(d))) for the 12 columns
    assert tuple(model.network_.widths[1:]) == tuple(widths)
