"""The Display objects of sk_stackae.plotting: what they draw, checked artist by artist."""

import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_stackae import StackedAutoencoder
from sk_stackae.plotting import FeatureDisplay, LossCurveDisplay, ReconstructionDisplay

FAST = {"pretrain_epochs": 2, "finetune_epochs": 3, "batch_size": 64, "device": "cpu", "random_state": 0}
DIGIT_SHAPE = (8, 8)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted(digits):
    """A small two-layer autoencoder fitted on the digits."""
    X, _ = digits
    return StackedAutoencoder((16, 4), **FAST).fit(X)


@pytest.fixture(scope="module")
def fitted_with_early_stopping(digits):
    X, _ = digits
    model = StackedAutoencoder((16, 8, 4), early_stopping=True, n_iter_no_change=1, tol=0.0, **FAST)
    with warnings.catch_warnings():
        # Two or three epochs a phase, to stay fast: still improving, as it warns.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def image_data(image):
    return np.asarray(image.get_array())


# ------------------------------------------------------------- matplotlib


def test_importing_the_package_and_the_plotting_module_does_not_import_matplotlib():
    code = "import sys, sk_stackae, sk_stackae.plotting; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "draw",
    [
        lambda model, X: ReconstructionDisplay.from_estimator(model, X, image_shape=DIGIT_SHAPE),
        lambda model, X: FeatureDisplay.from_estimator(model, image_shape=DIGIT_SHAPE),
        lambda model, X: LossCurveDisplay.from_estimator(model),
        lambda model, X: LossCurveDisplay(pretrain_loss_curves=[[1.0]], loss_curve=[1.0]).plot(),
    ],
    ids=["ReconstructionDisplay", "FeatureDisplay", "LossCurveDisplay", "LossCurveDisplay.plot"],
)
def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch, draw, fitted, digits):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ImportError, match=r"needs matplotlib.*pip install 'sk-stackae\[plot\]'"):
        draw(fitted, digits[0])


# --------------------------------------------------- ReconstructionDisplay


def test_reconstruction_display_draws_originals_above_their_reconstructions(fitted, digits):
    X, _ = digits
    display = ReconstructionDisplay.from_estimator(fitted, X, image_shape=DIGIT_SHAPE, n_images=7)

    assert display.images_.shape == (2, 7)
    assert len(display.figure_.axes) == 1
    assert len(display.ax_.images) == 14
    expected = fitted.inverse_transform(fitted.transform(X[:7]))
    for i in range(7):
        np.testing.assert_array_equal(image_data(display.images_[0, i]), X[i].reshape(DIGIT_SHAPE))
        np.testing.assert_allclose(image_data(display.images_[1, i]), expected[i].reshape(DIGIT_SHAPE), rtol=1e-6)
        # Originals in the top row, reconstructions below, columns aligned.
        original_left, _, original_bottom, _ = display.images_[0, i].get_extent()
        reconstruction_left, _, _, reconstruction_top = display.images_[1, i].get_extent()
        assert original_left == reconstruction_left
        assert original_bottom < reconstruction_top
    assert display.ax_.yaxis_inverted()
    assert [label.get_text() for label in display.ax_.get_yticklabels()] == ["original", "reconstruction"]
    assert display.ax_.get_title() == "StackedAutoencoder"


def test_reconstruction_display_puts_every_image_on_the_scale_of_the_originals(fitted, digits):
    X, _ = digits
    display = ReconstructionDisplay.from_estimator(fitted, X, image_shape=DIGIT_SHAPE, n_images=5)
    limits = {image.get_clim() for image in display.images_.ravel()}
    assert limits == {(X[:5].min(), X[:5].max())}


def test_reconstruction_display_shows_any_transformer_with_an_inverse(digits):
    X, _ = digits
    pca = PCA(n_components=4).fit(X)
    display = ReconstructionDisplay.from_estimator(
        pca, X, image_shape=DIGIT_SHAPE, n_images=3, name="PCA, 4 components"
    )
    np.testing.assert_allclose(
        image_data(display.images_[1, 2]), pca.inverse_transform(pca.transform(X[2:3])).reshape(DIGIT_SHAPE)
    )
    assert display.ax_.get_title() == "PCA, 4 components"


def test_reconstruction_display_takes_a_pipeline_and_a_dataframe(digits):
    X, _ = digits
    frame = pd.DataFrame(X * 16, columns=[f"pixel_{i}" for i in range(64)])
    pipeline = make_pipeline(MinMaxScaler(), StackedAutoencoder((16, 4), **FAST)).fit(frame)
    display = ReconstructionDisplay.from_estimator(pipeline, frame, image_shape=DIGIT_SHAPE, n_images=4)
    expected = pipeline.inverse_transform(pipeline.transform(frame.iloc[:4]))
    np.testing.assert_allclose(image_data(display.images_[1, 3]), expected[3].reshape(DIGIT_SHAPE), rtol=1e-6)
    np.testing.assert_array_equal(image_data(display.images_[0, 0]), frame.iloc[0].to_numpy().reshape(DIGIT_SHAPE))
    assert display.ax_.get_title() == "Pipeline"


def test_reconstruction_display_shows_at_most_the_rows_of_x(fitted, digits):
    X, _ = digits
    display = ReconstructionDisplay.from_estimator(fitted, X[:3], image_shape=DIGIT_SHAPE, n_images=10)
    assert display.images_.shape == (2, 3)


def test_displays_draw_on_the_axes_they_are_given(fitted, digits):
    X, _ = digits
    figure, (left, middle, right) = plt.subplots(1, 3)
    reconstruction = ReconstructionDisplay.from_estimator(fitted, X, image_shape=DIGIT_SHAPE, ax=left)
    features = FeatureDisplay.from_estimator(fitted, image_shape=DIGIT_SHAPE, ax=middle)
    losses = LossCurveDisplay.from_estimator(fitted, ax=right)

    assert plt.get_fignums() == [figure.number]
    assert (reconstruction.ax_, features.ax_, losses.ax_) == (left, middle, right)
    assert reconstruction.figure_ is features.figure_ is losses.figure_ is figure
    assert (len(left.images), len(middle.images), len(right.lines)) == (20, 16, 3)


def test_plot_draws_precomputed_values_again_on_new_axes():
    originals = np.arange(12.0).reshape(2, 6)
    display = ReconstructionDisplay(originals=originals, reconstructions=originals + 1, image_shape=(2, 3))
    first_axes = display.plot(name="first").ax_
    second_axes = display.plot(name="second").ax_
    assert first_axes is not second_axes
    assert second_axes.get_title() == "second"
    np.testing.assert_array_equal(image_data(display.images_[1, 1]), (originals[1] + 1).reshape(2, 3))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"image_shape": (8, 7)}, ValueError, r"image_shape=\(8, 7\) holds 56 pixels, but the data have 64"),
        ({"image_shape": (64,)}, ValueError, "image_shape must be \\(height, width\\)"),
        ({"image_shape": (8, 8.0)}, ValueError, "positive integer sizes; got \\(8, 8.0\\)"),
        ({"image_shape": (2.5, 25.6)}, ValueError, "positive integer sizes"),
        ({"image_shape": (True, 64)}, ValueError, "positive integer sizes"),
        ({"image_shape": DIGIT_SHAPE, "n_images": 0}, ValueError, "n_images must be a positive integer"),
    ],
)
def test_reconstruction_display_rejects_bad_arguments(kwargs, error, message, fitted, digits):
    with pytest.raises(error, match=message):
        ReconstructionDisplay.from_estimator(fitted, digits[0], **kwargs)


def test_reconstruction_display_needs_a_fitted_transformer_with_an_inverse(digits):
    X, _ = digits
    with pytest.raises(TypeError, match="KMeans has no inverse_transform"):
        ReconstructionDisplay.from_estimator(KMeans(n_clusters=2, n_init=1).fit(X), X, image_shape=DIGIT_SHAPE)
    with pytest.raises(NotFittedError):
        ReconstructionDisplay.from_estimator(StackedAutoencoder(), X, image_shape=DIGIT_SHAPE)


# ---------------------------------------------------------- FeatureDisplay


def test_first_layer_features_are_the_encoder_weights(fitted):
    display = FeatureDisplay.from_estimator(fitted, image_shape=DIGIT_SHAPE)
    weights = fitted.network_.encoder[0].weight.detach().numpy()
    assert len(display.ax_.images) == len(display.images_) == 16
    for unit, image in enumerate(display.images_):
        np.testing.assert_allclose(image_data(image), weights[unit].reshape(DIGIT_SHAPE), rtol=1e-6)
    assert display.ax_.get_title() == "Layer 1: weights"


def test_deeper_layer_weight_features_are_the_product_of_the_weights(fitted):
    display = FeatureDisplay.from_estimator(fitted, image_shape=DIGIT_SHAPE, layer=2, units=[3, 0])
    first = fitted.network_.encoder[0].weight.detach().double().numpy()
    second = fitted.network_.encoder[1].weight.detach().double().numpy()
    product = second @ first
    assert len(display.images_) == 2
    np.testing.assert_allclose(image_data(display.images_[0]), product[3].reshape(DIGIT_SHAPE))
    np.testing.assert_allclose(image_data(display.images_[1]), product[0].reshape(DIGIT_SHAPE))
    assert display.ax_.get_title() == "Layer 2: product of weights"


def unit_activations(model, inputs, layer):
    with torch.no_grad():
        hidden = torch.as_tensor(inputs, dtype=torch.float32)
        for k in range(layer):
            hidden = model.network_.encode_layer(k, hidden)
    return hidden.numpy()


def test_maximizing_inputs_have_the_data_norm_and_beat_every_data_row_of_that_norm(digits):
    X, _ = digits
    model = StackedAutoencoder((16, 6), activation="tanh", **FAST).fit(X)
    display = FeatureDisplay.from_estimator(model, X, image_shape=DIGIT_SHAPE, layer=2, method="maximize")
    patterns = np.stack([image_data(image).ravel() for image in display.images_])
    norm = np.linalg.norm(X, axis=1).mean()
    np.testing.assert_allclose(np.linalg.norm(patterns, axis=1), norm, rtol=1e-4)

    achieved = np.diag(unit_activations(model, patterns, layer=2))
    rows_at_norm = X / np.linalg.norm(X, axis=1, keepdims=True) * norm
    best_row = unit_activations(model, rows_at_norm, layer=2).max(axis=0)
    assert np.all(achieved >= best_row)
    assert display.ax_.get_title() == "Layer 2: maximising inputs"


def test_maximizing_input_of_a_first_layer_unit_points_along_its_weights(fitted, digits):
    # A first-layer unit is a monotone function of w.x + b: on a sphere it
    # peaks where x points along w.
    X, _ = digits
    display = FeatureDisplay.from_estimator(fitted, X, image_shape=DIGIT_SHAPE, layer=1, method="maximize")
    weights = fitted.network_.encoder[0].weight.detach().double().numpy()
    patterns = np.stack([image_data(image).ravel() for image in display.images_])
    cosines = np.sum(patterns * weights, axis=1) / np.linalg.norm(patterns, axis=1) / np.linalg.norm(weights, axis=1)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)


def test_feature_tiles_have_their_own_scale_centred_on_zero():
    features = np.array([[1.0, -3.0, 2.0, 0.5], [0.1, 0.2, -0.05, 0.0]])
    display = FeatureDisplay(features=features, image_shape=(2, 2)).plot()
    assert [image.get_clim() for image in display.images_] == [(-3.0, 3.0), (-0.2, 0.2)]
    assert display.ax_.get_title() == ""


def test_feature_grid_has_n_cols_tiles_per_row():
    display = FeatureDisplay(features=np.eye(6), image_shape=(2, 3)).plot(n_cols=4)
    lefts = [image.get_extent()[0] for image in display.images_]
    tops = [image.get_extent()[3] for image in display.images_]
    assert len(set(lefts[:4])) == 4 and lefts[4:] == lefts[:2]
    assert len(set(tops[:4])) == 1 and tops[4] == tops[5] > tops[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layer": 0}, ValueError, r"layer must be an integer from 1 \(the first hidden layer\) to 2"),
        ({"layer": 3}, ValueError, "layer must be an integer from 1"),
        ({"layer": True}, ValueError, "layer must be an integer from 1"),
        ({"layer": 1.0}, ValueError, "layer must be an integer from 1"),
        ({"method": "gradient"}, ValueError, "method must be one of"),
        ({"method": "maximize"}, ValueError, "method='maximize' needs X"),
        ({"units": [16]}, ValueError, "units must be indices of units of layer 1, from 0 to 15"),
        ({"image_shape": (4, 4)}, ValueError, "holds 16 pixels, but the data have 64"),
    ],
)
def test_feature_display_rejects_bad_arguments(kwargs, error, message, fitted):
    with pytest.raises(error, match=message):
        FeatureDisplay.from_estimator(fitted, **{"image_shape": DIGIT_SHAPE, **kwargs})


def test_feature_display_finds_the_autoencoder_step_of_a_pipeline(digits):
    X, y = digits
    scaler = MinMaxScaler().fit(X * 16)
    autoencoder = StackedAutoencoder((16, 4), **FAST).fit(scaler.transform(X * 16))
    pipeline = make_pipeline(scaler, autoencoder, LogisticRegression(max_iter=50)).fit(X * 16, y)
    alone = FeatureDisplay.from_estimator(autoencoder, scaler.transform(X * 16), image_shape=DIGIT_SHAPE, layer=2)
    through = FeatureDisplay.from_estimator(pipeline, X * 16, image_shape=DIGIT_SHAPE, layer=2)
    for a, b in zip(alone.images_, through.images_, strict=True):
        np.testing.assert_array_equal(image_data(a), image_data(b))
    # X goes through the steps before the autoencoder for the maximising search.
    alone = FeatureDisplay.from_estimator(
        autoencoder, scaler.transform(X * 16), image_shape=DIGIT_SHAPE, method="maximize"
    )
    through = FeatureDisplay.from_estimator(pipeline, X * 16, image_shape=DIGIT_SHAPE, method="maximize")
    for a, b in zip(alone.images_, through.images_, strict=True):
        np.testing.assert_allclose(image_data(a), image_data(b), rtol=1e-5, atol=1e-6)


def test_displays_refuse_a_pipeline_without_exactly_one_autoencoder(fitted):
    for pipeline in (make_pipeline(MinMaxScaler()), make_pipeline(fitted, StackedAutoencoder((2,)))):
        with pytest.raises(ValueError, match="needs a pipeline with one autoencoder step"):
            FeatureDisplay.from_estimator(pipeline, image_shape=DIGIT_SHAPE)
        with pytest.raises(ValueError, match="needs a pipeline with one autoencoder step"):
            LossCurveDisplay.from_estimator(pipeline)


def test_reconstruction_display_reconstructs_through_the_steps_up_to_the_autoencoder(digits):
    X, y = digits
    pipeline = make_pipeline(MinMaxScaler(), StackedAutoencoder((16, 4), **FAST), LogisticRegression(max_iter=50))
    pipeline.fit(X * 16, y)
    display = ReconstructionDisplay.from_estimator(pipeline, X * 16, image_shape=DIGIT_SHAPE, n_images=3)
    expected = pipeline[:2].inverse_transform(pipeline[:2].transform(X[:3] * 16))
    for image, row in zip(display.images_[1], expected, strict=True):
        np.testing.assert_allclose(image_data(image), row.reshape(DIGIT_SHAPE))


def test_loss_curve_display_finds_the_autoencoder_step_of_a_pipeline(fitted):
    display = LossCurveDisplay.from_estimator(make_pipeline(MinMaxScaler(), fitted))
    np.testing.assert_array_equal(display.lines_[-1].get_ydata(), fitted.loss_curve_)


# -------------------------------------------------------- LossCurveDisplay


def test_loss_curves_of_every_phase_follow_one_another(fitted):
    display = LossCurveDisplay.from_estimator(fitted)
    curves = [*fitted.pretrain_loss_curves_, fitted.loss_curve_]

    assert [line.get_label() for line in display.lines_] == ["pretrain layer 1/2", "pretrain layer 2/2", "finetune"]
    assert len(display.ax_.get_lines()) == 3
    assert display.validation_lines_ is None
    first_epoch = 1
    for line, curve in zip(display.lines_, curves, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(first_epoch, first_epoch + len(curve)))
        np.testing.assert_array_equal(line.get_ydata(), curve)
        first_epoch += len(curve)
    assert len({line.get_color() for line in display.lines_}) == 3
    assert display.ax_.get_yscale() == "log"
    assert [text.get_text() for text in display.ax_.get_legend().get_texts()] == [
        "pretrain layer 1/2",
        "pretrain layer 2/2",
        "finetune",
    ]


def test_validation_losses_are_dashed_beside_their_phase(fitted_with_early_stopping):
    model = fitted_with_early_stopping
    display = LossCurveDisplay.from_estimator(model, yscale="linear")
    scores = [*model.pretrain_validation_scores_, model.validation_scores_]

    assert len(display.lines_) == len(display.validation_lines_) == 4
    assert len(display.ax_.get_lines()) == 8
    for line, validation_line, phase_scores in zip(display.lines_, display.validation_lines_, scores, strict=True):
        np.testing.assert_array_equal(validation_line.get_xdata(), line.get_xdata())
        np.testing.assert_allclose(validation_line.get_ydata(), -np.asarray(phase_scores))
        assert validation_line.get_color() == line.get_color()
        assert validation_line.get_linestyle() == "--"
        assert validation_line.get_label() == f"{line.get_label()} (validation)"
    assert display.ax_.get_yscale() == "linear"
    # One legend entry per phase, then a key to the line styles.
    assert [text.get_text() for text in display.ax_.get_legend().get_texts()] == [
        "pretrain layer 1/3",
        "pretrain layer 2/3",
        "pretrain layer 3/3",
        "finetune",
        "training",
        "validation",
    ]


def test_phases_without_epochs_are_left_out(digits):
    X, _ = digits
    model = StackedAutoencoder((16, 4), **{**FAST, "pretrain_epochs": 0}).fit(X)
    display = LossCurveDisplay.from_estimator(model)
    assert [line.get_label() for line in display.lines_] == ["finetune"]
    np.testing.assert_array_equal(display.lines_[0].get_xdata(), np.arange(1, 4))

    model = StackedAutoencoder((16, 4), **FAST).partial_fit(X).partial_fit(X)
    display = LossCurveDisplay.from_estimator(model)
    assert [line.get_label() for line in display.lines_] == ["finetune"]
    np.testing.assert_array_equal(display.lines_[0].get_ydata(), model.loss_curve_)


def test_loss_curve_display_rejects_bad_values():
    with pytest.raises(ValueError, match="every phase has an empty loss curve"):
        LossCurveDisplay(pretrain_loss_curves=[[], []], loss_curve=[]).plot()
    with pytest.raises(ValueError, match="pretrain_validation_scores has 1 phases, but pretrain_loss_curves has 2"):
        LossCurveDisplay(pretrain_loss_curves=[[1.0], [1.0]], loss_curve=[], pretrain_validation_scores=[[-1.0]]).plot()
    with pytest.raises(ValueError, match="yscale must be 'log' or 'linear'"):
        LossCurveDisplay(pretrain_loss_curves=[[1.0]], loss_curve=[1.0]).plot(yscale="symlog")
    with pytest.raises(TypeError, match=r"needs an sk-stackae estimator .* or a Pipeline with one; got PCA"):
        LossCurveDisplay.from_estimator(PCA())


# ------------------------------------------------ every estimator of the stack


def _every_estimator(X, y):
    from sk_stackae import (
        StackedAutoencoderClassifier,
        StackedAutoencoderOutlierDetector,
        StackedAutoencoderRegressor,
    )

    return [
        StackedAutoencoderClassifier((16, 4), **FAST).fit(X, y),
        StackedAutoencoderRegressor((16, 4), **FAST).fit(X, y.astype(float)),
        StackedAutoencoderOutlierDetector((16, 4), **FAST).fit(X),
    ]


def test_every_display_draws_the_classifier_the_regressor_and_the_detector(digits):
    X, y = digits[0][:300], digits[1][:300]
    for model in _every_estimator(X, y):
        reconstruction = ReconstructionDisplay.from_estimator(model, X, image_shape=DIGIT_SHAPE, n_images=4)
        assert reconstruction.images_.shape == (2, 4)
        assert reconstruction.ax_.get_title() == type(model).__name__
        features = FeatureDisplay.from_estimator(model, image_shape=DIGIT_SHAPE, layer=1, units=[0, 1, 2])
        assert len(features.images_) == 3
        curves = LossCurveDisplay.from_estimator(model)
        assert len(curves.lines_) >= 1
        plt.close("all")


def test_the_detectors_reconstructions_are_in_the_units_of_the_rows(digits):
    X = digits[0][:300] * 16  # pixels in 0..16: the detector standardises them for its network
    detector = _every_estimator(X / 16, digits[1][:300])[2].set_params(standardize=True).fit(X)
    display = ReconstructionDisplay.from_estimator(detector, X, image_shape=DIGIT_SHAPE, n_images=5)
    # Back in the rows' units: the error is small against the pixels' spread, not off by the scaling.
    assert np.abs(display.reconstructions - display.originals).mean() < 0.5 * X[:5].std()
    plt.close("all")
