"""ONNX export: every estimator, alone and in pipelines, run by onnxruntime against its own methods."""

import copy
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime
import pytest
import skl2onnx
import torch
from conftest import DEVICE
from skl2onnx.common.data_types import Int64TensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import sk_stackae.onnx  # noqa: F401  (registers the converters)
from sk_stackae import (
    StackedAutoencoder,
    StackedAutoencoderClassifier,
    StackedAutoencoderOutlierDetector,
    StackedAutoencoderRegressor,
)
from sk_stackae._activations import ACTIVATIONS

FAST = {"pretrain_epochs": 1, "finetune_epochs": 2, "batch_size": 64, "device": DEVICE, "random_state": 0}
DTYPES = [np.float32, np.float64]

# float32 graphs and torch round their products differently; float64 graphs
# compute in float64, as the estimators do for float64 input.
TOLERANCES = {np.float32: {"rtol": 1e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}
# onnxruntime evaluates erf in float32 in a float64 graph (sk_stackae._onnx.NetworkNodes.erf).
FLOAT64_GELU_TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture(scope="module")
def digits_small(digits):
    """The first 400 digits, in [0, 1], with their labels."""
    X, y = digits
    return X[:400], y[:400]


def session_for(model, X, options=None):
    """An onnxruntime session for ``model`` converted with an input like ``X``."""
    onx = skl2onnx.to_onnx(model, X[:1], options=options)
    return onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def run(session, X):
    """The outputs of ``session`` on ``X``, by name."""
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X}), strict=True))


def tolerance(dtype, activation="relu"):
    return FLOAT64_GELU_TOLERANCE if dtype == np.float64 and activation == "gelu" else TOLERANCES[dtype]


# ------------------------------------------------------------ activations


@pytest.fixture(scope="module")
def autoencoders(digits_small):
    """One tied autoencoder with a sigmoid output and BCE per activation, every layer using it, fitted once."""
    X, _ = digits_small
    return {
        activation: StackedAutoencoder(
            (16, 6),
            activation=activation,
            code_activation=activation,
            tied_weights=True,
            output_activation="sigmoid",
            loss="bce",
            **FAST,
        ).fit(X)
        for activation in ACTIVATIONS
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_transform_and_score_samples_match_the_estimator_for_every_activation(
    autoencoders, digits_small, activation, dtype
):
    model = autoencoders[activation]
    X = digits_small[0].astype(dtype)
    outputs = run(session_for(model, X, options={id(model): {"score_samples": True}}), X)
    assert outputs["variable"].dtype == dtype
    assert outputs["score_samples"].shape == (len(X), 1)
    np.testing.assert_allclose(outputs["variable"], model.transform(X), **tolerance(dtype, activation))
    np.testing.assert_allclose(outputs["score_samples"].ravel(), model.score_samples(X), **tolerance(dtype, activation))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_score_samples_of_an_untied_autoencoder_with_squared_error_match(digits_small, dtype):
    X = digits_small[0].astype(dtype)
    model = StackedAutoencoder((24, 12, 6), activation="elu", **FAST).fit(X)
    outputs = run(session_for(model, X, options={id(model): {"score_samples": True}}), X)
    np.testing.assert_allclose(outputs["variable"], model.transform(X), **TOLERANCES[dtype])
    np.testing.assert_allclose(outputs["score_samples"].ravel(), model.score_samples(X), **TOLERANCES[dtype])


def test_without_the_option_the_autoencoder_has_only_the_codes(autoencoders, digits_small):
    X = digits_small[0].astype(np.float32)
    session = session_for(autoencoders["relu"], X)
    assert [output.name for output in session.get_outputs()] == ["variable"]


def test_a_tied_weight_is_stored_once_for_the_encoder_and_the_decoder(autoencoders, digits_small):
    model = autoencoders["relu"]
    onx = skl2onnx.to_onnx(model, digits_small[0][:1].astype(np.float32), options={id(model): {"score_samples": True}})
    gemms = [node for node in onx.graph.node if node.op_type == "Gemm"]
    assert len(gemms) == 2 * model.network_.n_layers  # every encoder and every decoder layer
    assert len({node.input[1] for node in gemms}) == model.network_.n_layers  # but one weight per pair


def test_an_integer_input_type_is_refused(autoencoders):
    with pytest.raises(RuntimeError, match="FloatTensorType"):
        skl2onnx.to_onnx(autoencoders["relu"], initial_types=[("X", Int64TensorType([None, 64]))])


# ------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def classifier(digits_small):
    X, y = digits_small
    return StackedAutoencoderClassifier((24, 12), activation="gelu", **FAST).fit(X, y)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_classifier_labels_and_probabilities_match_predict_and_predict_proba(classifier, digits_small, dtype):
    X = digits_small[0].astype(dtype)
    outputs = run(session_for(classifier, X, options={id(classifier): {"zipmap": False}}), X)
    assert outputs["label"].dtype == np.int64
    np.testing.assert_array_equal(outputs["label"], classifier.predict(X))
    assert outputs["probabilities"].dtype == dtype
    np.testing.assert_allclose(outputs["probabilities"], classifier.predict_proba(X), **tolerance(dtype, "gelu"))


def test_classifier_probabilities_follow_the_zipmap_option(classifier, digits_small):
    X = digits_small[0][:20].astype(np.float32)
    expected = classifier.predict_proba(X)
    by_default = run(session_for(classifier, X), X)
    np.testing.assert_array_equal(by_default["output_label"], classifier.predict(X))
    assert [sorted(row) for row in by_default["output_probability"]] == [list(classifier.classes_)] * len(X)
    np.testing.assert_allclose(
        [[row[label] for label in classifier.classes_] for row in by_default["output_probability"]], expected, atol=1e-5
    )
    columns = run(session_for(classifier, X, options={id(classifier): {"zipmap": "columns"}}), X)
    assert [name for name in columns if name != "output_label"] == [f"i{label}" for label in classifier.classes_]
    np.testing.assert_allclose(
        np.column_stack([columns[f"i{label}"] for label in classifier.classes_]), expected, atol=1e-5
    )


def test_classifier_with_string_labels_outputs_them_and_nocl_gives_class_indices(digits_small):
    X, y = digits_small
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    model = StackedAutoencoderClassifier((24, 12), **FAST).fit(X, names[y])
    X = X.astype(np.float32)
    labels = run(session_for(model, X, options={id(model): {"zipmap": False}}), X)["label"]
    np.testing.assert_array_equal(labels, model.predict(X))
    indices = run(session_for(model, X, options={id(model): {"zipmap": False, "nocl": True}}), X)["label"]
    np.testing.assert_array_equal(model.classes_[indices], model.predict(X))


def test_classifier_with_float_labels_outputs_them_as_int64(digits_small):
    X, y = digits_small
    model = StackedAutoencoderClassifier((12,), **FAST).fit(X, y.astype(np.float64))
    X = X.astype(np.float32)
    labels = run(session_for(model, X, options={id(model): {"zipmap": False}}), X)["label"]
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, model.predict(X))


# -------------------------------------------------------------- regressor


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_predictions_match_predict_one_column_per_output(digits_small, dtype, n_outputs):
    X, y = digits_small
    # Targets far from zero mean and unit scale, which predict maps the head's output back to.
    targets = 100.0 + 10.0 * (y if n_outputs == 1 else np.column_stack([y, X[:, 20]]))
    model = StackedAutoencoderRegressor((24, 12), activation="tanh", **FAST).fit(X, targets)
    X = X.astype(dtype)
    predictions = run(session_for(model, X), X)["variable"]
    assert predictions.shape == (len(X), n_outputs)
    assert predictions.dtype == dtype
    np.testing.assert_allclose(predictions, model.predict(X).reshape(len(X), n_outputs), **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("standardize", [True, False])
def test_detector_labels_and_scores_match_predict_and_decision_function(digits_small, dtype, standardize):
    X, _ = digits_small
    model = StackedAutoencoderOutlierDetector(standardize=standardize, contamination=0.1, **FAST).fit(X)
    X = X.astype(dtype)
    outputs = run(session_for(model, X), X)
    assert outputs["scores"].dtype == dtype and outputs["label"].dtype == np.int64
    np.testing.assert_allclose(outputs["scores"].ravel(), model.decision_function(X), **TOLERANCES[dtype])
    # A row right at the threshold could fall either way by rounding: none is here.
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    assert set(outputs["label"]) == {-1, 1}


def test_scaler_then_detector_pipeline_matches_predict(digits):
    X = (digits[0] * 16).astype(np.float32)
    pipeline = make_pipeline(StandardScaler(), StackedAutoencoderOutlierDetector(standardize=False, **FAST)).fit(X)
    outputs = run(session_for(pipeline, X), X)
    np.testing.assert_array_equal(outputs["label"], pipeline.predict(X))
    np.testing.assert_allclose(outputs["scores"].ravel(), pipeline.decision_function(X), **TOLERANCES[np.float32])


# -------------------------------------------------------------- pipelines


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_scaler_then_autoencoder_pipeline_matches_transform(digits, dtype):
    X = (digits[0] * 16).astype(dtype)
    pipeline = make_pipeline(StandardScaler(), StackedAutoencoder((16, 6), activation="leaky_relu", **FAST)).fit(X)
    codes = run(session_for(pipeline, X), X)["variable"]
    np.testing.assert_allclose(codes, pipeline.transform(X), **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_scaler_tied_sigmoid_autoencoder_logistic_regression_pipeline_matches_predict(digits, dtype):
    X, y = digits
    X = (X * 16).astype(dtype)
    autoencoder = StackedAutoencoder((32, 8), tied_weights=True, output_activation="sigmoid", loss="bce", **FAST)
    pipeline = make_pipeline(MinMaxScaler(), autoencoder, LogisticRegression(max_iter=500)).fit(X, y)
    outputs = run(session_for(pipeline, X, options={id(pipeline[-1]): {"zipmap": False}}), X)
    np.testing.assert_array_equal(outputs["label"], pipeline.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], pipeline.predict_proba(X), **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_scaler_then_classifier_and_scaler_then_regressor_pipelines_match_predict(digits, dtype):
    X, y = digits
    X = (X * 16).astype(dtype)
    classifier = make_pipeline(StandardScaler(), StackedAutoencoderClassifier((24, 12), **FAST)).fit(X, y)
    outputs = run(session_for(classifier, X, options={id(classifier[-1]): {"zipmap": False}}), X)
    np.testing.assert_array_equal(outputs["label"], classifier.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], classifier.predict_proba(X), **TOLERANCES[dtype])
    regressor = make_pipeline(StandardScaler(), StackedAutoencoderRegressor((24, 12), **FAST)).fit(X, y * 1.0)
    predictions = run(session_for(regressor, X), X)["variable"]
    np.testing.assert_allclose(predictions.ravel(), regressor.predict(X), **TOLERANCES[dtype])


def test_the_score_samples_option_is_refused_inside_a_pipeline_where_the_next_step_gets_both_outputs(digits):
    X, y = digits
    X = X.astype(np.float32)
    pipeline = make_pipeline(StackedAutoencoder((16, 6), **FAST), LogisticRegression(max_iter=1000)).fit(X, y)
    with pytest.raises(RuntimeError, match=r"at most 1 input\(s\).*score_samples"):
        skl2onnx.to_onnx(pipeline, X[:1], options={id(pipeline[0]): {"score_samples": True}})


# ------------------------------------------------------ another process


def test_a_converted_pipeline_runs_in_a_process_without_torch_scikit_learn_or_sk_stackae(digits, tmp_path):
    X, y = digits
    X = X.astype(np.float32)
    pipeline = make_pipeline(StandardScaler(), StackedAutoencoderClassifier((24, 12), **FAST)).fit(X, y)
    onx = skl2onnx.to_onnx(pipeline, X[:1], options={id(pipeline[-1]): {"zipmap": False}})
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    np.save(tmp_path / "X.npy", X)
    serve = textwrap.dedent(
        """
        import sys
        import numpy as np
        import onnxruntime

        session = onnxruntime.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
        labels, probabilities = session.run(None, {"X": np.load("X.npy")})
        np.save("labels.npy", labels)
        np.save("probabilities.npy", probabilities)
        print(sorted({"torch", "sklearn", "sk_stackae", "skl2onnx"} & set(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", serve], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), pipeline.predict(X))
    np.testing.assert_allclose(
        np.load(tmp_path / "probabilities.npy"), pipeline.predict_proba(X), **TOLERANCES[np.float32]
    )


# --------------------------------------------------- the optional extra


def test_sk_stackae_imports_without_the_onnx_packages_and_sk_stackae_onnx_says_how_to_install_them():
    check = textwrap.dedent(
        """
        import sys
        for name in ("skl2onnx", "onnx", "onnxruntime"):
            sys.modules[name] = None  # makes `import name` raise ImportError
        import sk_stackae
        try:
            import sk_stackae.onnx
        except ImportError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=120)
    assert "pip install 'sk-stackae[onnx]'" in result.stdout


# ----------------------------------------------------- torch.onnx.export


@pytest.mark.parametrize("half", ["encoder", "decoder"])
def test_a_half_exported_by_torch_onnx_export_gives_the_codes_or_reconstructions_in_onnxruntime(
    autoencoders, digits_small, tmp_path, half
):
    # A tied autoencoder with a sigmoid output: its decoder computes with the encoder's weights.
    model = autoencoders["gelu"]
    X = digits_small[0].astype(np.float32)
    codes = model.transform(X)
    inputs, expected = (X, codes) if half == "encoder" else (codes, model.inverse_transform(codes))
    module = model.network_.encoder_module() if half == "encoder" else model.network_.decoder_module()
    # A copy: the module shares the estimator's parameters, which .cpu() would move.
    module = copy.deepcopy(module).cpu().eval()
    path = tmp_path / f"{half}.onnx"
    torch.onnx.export(
        module,
        (torch.zeros(2, inputs.shape[1]),),
        path,
        input_names=["X"],
        output_names=["output"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"X": inputs})
    np.testing.assert_allclose(output, expected, **TOLERANCES[np.float32])
