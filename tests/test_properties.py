"""Properties that hold for any shape, width and option: checked with hypothesis."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sk_stackae import DivergenceError, StackedAutoencoder

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw):
    n_samples = draw(st.integers(1, 30))
    n_features = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    values = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32)
    return draw(arrays(dtype, (n_samples, n_features), elements=values))


@st.composite
def estimators(draw):
    depth = draw(st.integers(1, 3))
    widths = tuple(draw(st.lists(st.integers(1, 10), min_size=depth, max_size=depth)))
    params = {
        "hidden_layer_sizes": widths,
        "activation": draw(st.sampled_from(["relu", "tanh", "logistic", "elu", "gelu", "identity", "leaky_relu"])),
        "code_activation": draw(st.sampled_from(["identity", "relu", "sigmoid", "tanh"])),
        "tied_weights": draw(st.booleans()),
        "pretrain_epochs": draw(st.integers(0, 2)),
        "finetune_epochs": draw(st.integers(1, 2)),
        "batch_size": draw(st.integers(4, 64)),
        "dropout": draw(st.sampled_from([0.0, 0.3])),
        "noise": draw(st.sampled_from([None, "gaussian", "masking"])),
        "sparsity": draw(st.sampled_from([0.0, 0.1])),
        "optimizer": draw(st.sampled_from(["adam", "adamw", "sgd"])),
        "random_state": draw(st.integers(0, 2**31 - 1)),
    }
    return StackedAutoencoder(**params, learning_rate_init=1e-4)


@FAST
@given(X=datasets(), model=estimators())
def test_codes_have_the_right_shape_and_dtype_and_are_finite(X, model):
    # Unscaled data can make SGD diverge; that must end in a clear error and
    # an unfitted estimator, never in NaN codes.
    try:
        model.fit(X)
    except DivergenceError as error:
        assert "Training diverged" in str(error) and not hasattr(model, "network_")
        return
    codes = model.transform(X)
    assert codes.shape == (X.shape[0], model.hidden_layer_sizes[-1])
    assert codes.dtype == X.dtype
    assert np.isfinite(codes).all()
    reconstruction = model.inverse_transform(codes)
    assert reconstruction.shape == X.shape and reconstruction.dtype == X.dtype
    scores = model.score_samples(X)
    assert scores.shape == (X.shape[0],) and np.isfinite(scores).all() and (scores <= 0).all()


@FAST
@given(X=datasets(), model=estimators())
def test_no_method_changes_its_input(X, model):
    original = X.copy()
    model.set_params(optimizer="adam").fit(X)
    for method in (model.transform, model.score_samples, model.partial_fit):
        method(X)
        np.testing.assert_array_equal(X, original)
    codes = model.transform(X)
    codes_before = codes.copy()
    model.inverse_transform(codes)
    np.testing.assert_array_equal(codes, codes_before)


@FAST
@given(X=datasets(), model=estimators())
def test_transform_is_deterministic_and_independent_of_row_order(X, model):
    model.set_params(optimizer="adam").fit(X)
    codes = model.transform(X)
    np.testing.assert_array_equal(model.transform(X), codes)
    order = np.arange(X.shape[0])[::-1]
    tolerance = 1e-5 if X.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(model.transform(X[order]), codes[order], rtol=tolerance, atol=tolerance)
