"""Each training option, tested for its effect through the estimator."""

import copy
import pickle
import re
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoder
from sk_stackae._listeners import TrainingListener, listening


class PhaseLog(TrainingListener):
    """The phases a fit runs, as they start."""

    def __init__(self):
        self.phases = []

    def phase_started(self, phase):
        self.phases.append(phase)

    @property
    def names(self):
        return [phase.name for phase in self.phases]


@pytest.fixture(scope="module")
def digit_split():
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, test_size=0.3, random_state=0)


def n_parameters(model):
    return sum(p.numel() for p in model.network_.parameters())


# ------------------------------------------------------------ tied weights


def test_tied_weights_drop_the_decoder_weights_from_the_parameter_count(blobs):
    untied = StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, random_state=0).fit(blobs)
    tied = StackedAutoencoder((8, 4), tied_weights=True, pretrain_epochs=1, finetune_epochs=1, random_state=0)
    tied.fit(blobs)
    decoder_weights = 12 * 8 + 8 * 4
    assert n_parameters(untied) - n_parameters(tied) == decoder_weights


def test_tied_decoder_always_uses_the_transposed_encoder_weight(blobs):
    model = StackedAutoencoder((8, 4), tied_weights=True, pretrain_epochs=3, finetune_epochs=3, random_state=0)
    model.fit(blobs)
    network = model.network_
    codes = torch.randn(5, 4, device=model.device_)
    expected = torch.nn.functional.linear(codes, network.encoder[1].weight.t(), network.decoder[1].bias)
    torch.testing.assert_close(network.decoder[1](codes), expected)


def test_pretraining_phases_train_the_tied_weight_through_both_uses(blobs):
    log = PhaseLog()
    model = StackedAutoencoder((8, 4), tied_weights=True, pretrain_epochs=2, finetune_epochs=0, random_state=0)
    with listening(log):
        model.fit(blobs)
    trained = [{id(p) for p in phase.parameters} for phase in log.phases]
    network = model.network_
    for k in range(2):
        expected = {id(network.encoder[k].weight), id(network.encoder[k].bias), id(network.decoder[k].bias)}
        assert trained[k] == expected


@pytest.mark.parametrize("roundtrip", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
def test_pickling_and_copying_keep_the_weights_tied(roundtrip, blobs):
    model = StackedAutoencoder((8, 4), tied_weights=True, pretrain_epochs=1, finetune_epochs=1, random_state=0)
    restored = roundtrip(model.fit(blobs))
    network = restored.network_
    assert network.decoder[0].encoder_layer is network.encoder[0]
    assert n_parameters(restored) == n_parameters(model)
    np.testing.assert_array_equal(restored.transform(blobs), model.transform(blobs))
    with torch.no_grad():
        network.encoder[0].weight.mul_(2)
    torch.testing.assert_close(network.decoder[0].encoder_layer.weight, network.encoder[0].weight)


# -------------------------------------------------------------- denoising


@pytest.mark.parametrize(("noise", "level"), [("masking", 0.4), ("gaussian", 0.3)])
def test_denoising_model_reconstructs_clean_data_from_corrupted_input_better(noise, level, digit_split):
    X_train, X_test = digit_split
    rng = np.random.RandomState(1)
    if noise == "masking":
        corrupted = X_test * (rng.uniform(size=X_test.shape) >= level)
    else:
        corrupted = X_test + level * rng.normal(size=X_test.shape)
    errors = {}
    for name, params in {"plain": {}, "denoising": {"noise": noise, "noise_level": level}}.items():
        model = StackedAutoencoder(
            (64, 16),
            output_activation="sigmoid",
            pretrain_epochs=10,
            finetune_epochs=40,
            batch_size=64,
            random_state=0,
            **params,
        ).fit(X_train)
        reconstruction = model.inverse_transform(model.transform(corrupted))
        errors[name] = np.mean((reconstruction - X_test) ** 2)
    assert errors["denoising"] < 0.85 * errors["plain"]


def test_noise_is_never_applied_at_inference(blobs):
    model = StackedAutoencoder((8, 4), noise="gaussian", noise_level=1.0, pretrain_epochs=2, finetune_epochs=2)
    model.fit(blobs)
    np.testing.assert_array_equal(model.transform(blobs), model.transform(blobs))
    np.testing.assert_array_equal(model.score_samples(blobs), model.score_samples(blobs))


# ---------------------------------------------------------------- dropout


def test_dropout_acts_in_training_and_not_at_inference(blobs):
    # The training loss is measured with units dropped; score measures the
    # same loss with every unit on. Only dropout separates the two.
    gaps = {}
    for dropout in (0.0, 0.5):
        model = StackedAutoencoder(
            (32, 4), dropout=dropout, pretrain_epochs=5, finetune_epochs=30, batch_size=32, random_state=0
        ).fit(blobs)
        gaps[dropout] = model.loss_curve_[-1] / -model.score(blobs)
        np.testing.assert_array_equal(model.transform(blobs), model.transform(blobs))
    assert gaps[0.0] == pytest.approx(1.0, rel=0.2)
    assert gaps[0.5] > 1.5


# --------------------------------------------------------------- sparsity


def test_kl_sparsity_pulls_the_mean_sigmoid_code_toward_the_target(digits):
    X, _ = digits
    means = {}
    for sparsity in (0.0, 1.0):
        model = StackedAutoencoder(
            (32,),
            code_activation="sigmoid",
            sparsity=sparsity,
            sparsity_target=0.05,
            pretrain_epochs=30,
            finetune_epochs=0,
            batch_size=64,
            random_state=0,
        ).fit(X)
        means[sparsity] = model.transform(X).mean()
    assert abs(means[1.0] - 0.05) < 0.5 * abs(means[0.0] - 0.05)


def test_l1_sparsity_shrinks_relu_codes(digits):
    X, _ = digits
    activity = {}
    for sparsity in (0.0, 0.05):
        model = StackedAutoencoder(
            (32, 8),
            code_activation="relu",
            sparsity=sparsity,
            pretrain_epochs=10,
            finetune_epochs=10,
            batch_size=64,
            random_state=0,
        ).fit(X)
        activity[sparsity] = np.abs(model.transform(X)).mean()
    assert activity[0.05] < 0.5 * activity[0.0]


# ------------------------------------------------------------- optimizers


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_every_optimizer_fits(optimizer, digits):
    X, _ = digits
    model = StackedAutoencoder(
        (32, 8),
        optimizer=optimizer,
        learning_rate_init=0.05 if optimizer == "sgd" else 1e-3,
        pretrain_epochs=0,
        finetune_epochs=10,
        batch_size=64,
        random_state=0,
    ).fit(X)
    assert model.loss_curve_[-1] < 0.6 * model.loss_curve_[0]


def test_sgd_momentum_speeds_up_training(digits):
    X, _ = digits
    final = {}
    for momentum in (0.0, 0.9):
        model = StackedAutoencoder(
            (32, 8),
            optimizer="sgd",
            momentum=momentum,
            learning_rate_init=0.01,
            pretrain_epochs=0,
            finetune_epochs=10,
            batch_size=64,
            random_state=0,
        ).fit(X)
        final[momentum] = model.loss_curve_[-1]
    assert final[0.9] < 0.9 * final[0.0]


def test_alpha_shrinks_the_weights_with_every_optimizer(digits):
    X, _ = digits
    for optimizer in ("adam", "adamw", "sgd"):
        norms = []
        for alpha in (0.0, 5.0):
            model = StackedAutoencoder(
                (32, 8),
                optimizer=optimizer,
                alpha=alpha,
                learning_rate_init=0.05 if optimizer == "sgd" else 1e-2,
                pretrain_epochs=0,
                finetune_epochs=10,
                batch_size=64,
                random_state=0,
            ).fit(X)
            norms.append(sum(float(layer.weight.detach().norm()) ** 2 for layer in model.network_.encoder))
        assert norms[1] < 0.8 * norms[0], optimizer


# --------------------------------------------------------- early stopping


def early_stopper(**params):
    defaults = {
        "hidden_layer_sizes": (16, 4),
        "early_stopping": True,
        "pretrain_epochs": 200,
        "finetune_epochs": 200,
        "n_iter_no_change": 2,
        "tol": 1e-3,
        "batch_size": 64,
        "random_state": 0,
    }
    return StackedAutoencoder(**{**defaults, **params})


def test_early_stopping_ends_every_phase_before_its_budget_and_records_scores(digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = early_stopper().fit(X)
    assert len(model.loss_curve_) == len(model.validation_scores_) == model.n_iter_ < 200
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert len(model.pretrain_validation_scores_) == 2
    for curve, scores in zip(model.pretrain_loss_curves_, model.pretrain_validation_scores_, strict=True):
        assert len(curve) == len(scores) < 200


def test_early_stopping_keeps_the_weights_of_the_best_validation_score(digits):
    X, _ = digits
    log = PhaseLog()
    with listening(log):
        model = early_stopper(pretrain_epochs=0).fit(X)
    (phase,) = log.phases
    train, validation = phase.train_indices, phase.validation_indices
    assert len(validation) == np.ceil(0.1 * len(X)) and len(train) + len(validation) == len(X)
    assert model.score(X[validation.cpu().numpy()]) == pytest.approx(model.best_validation_score_, rel=1e-4)
    assert model.best_validation_score_ >= model.validation_scores_[-1]


def test_running_out_of_epochs_while_improving_warns_at_the_callers_line(digits):
    X, _ = digits
    with pytest.warns(
        ConvergenceWarning, match=r"still improving .* pretrain layer 1 \(3 epochs\).*finetune \(3 epochs\)"
    ) as record:
        early_stopper(pretrain_epochs=3, finetune_epochs=3, n_iter_no_change=10).fit(X)
    assert record[0].filename == __file__


def test_no_convergence_warning_without_early_stopping(digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = StackedAutoencoder((16, 4), pretrain_epochs=2, finetune_epochs=2, random_state=0).fit(X)
    assert model.validation_scores_ is None and model.pretrain_validation_scores_ is None
    assert model.best_validation_score_ is None


def test_the_validation_split_comes_from_random_state(digits):
    X, _ = digits
    runs = [early_stopper(random_state=seed, pretrain_epochs=0).fit(X).validation_scores_ for seed in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize(
    ("n_samples", "fraction", "message"),
    [
        (1, 0.1, "holds out 1 of 1 sample(s), which leaves none to train on"),
        (10, 0.0, "holds out 0 of 10 sample(s), which leaves none to validate on"),
        (3, 0.99, "holds out 3 of 3 sample(s), which leaves none to train on"),
    ],
)
def test_too_few_samples_for_a_validation_split_is_a_clear_error(n_samples, fraction, message, blobs):
    model = early_stopper(validation_fraction=fraction)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(blobs[:n_samples])
    assert not hasattr(model, "n_features_in_")


def test_two_samples_are_enough_for_early_stopping(blobs):
    model = early_stopper(pretrain_epochs=2, finetune_epochs=2)
    with pytest.warns(ConvergenceWarning):
        model.fit(blobs[:2])
    assert len(model.validation_scores_) == 2


# ------------------------------------------------------------- warm start


def test_warm_start_continues_the_finetune_without_pretraining_again(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), pretrain_epochs=3, finetune_epochs=5, warm_start=True, random_state=0)
    model.fit(X)
    first_curve = list(model.loss_curve_)
    pretrain_curves = model.pretrain_loss_curves_
    log = PhaseLog()
    with listening(log):
        model.fit(X)
    assert log.names == ["finetune"]
    assert model.loss_curve_[:5] == first_curve
    assert len(model.loss_curve_) == model.n_iter_ == 10
    assert model.pretrain_loss_curves_ is pretrain_curves
    # It picks up where it stopped, not from a new random network.
    assert model.loss_curve_[5] < first_curve[-1]
    fresh = StackedAutoencoder((32, 8), pretrain_epochs=0, finetune_epochs=1, random_state=0).fit(X)
    assert model.loss_curve_[5] < fresh.loss_curve_[0]


def test_without_warm_start_a_second_fit_starts_over(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), pretrain_epochs=2, finetune_epochs=3, random_state=0)
    first = model.fit(X).transform(X)
    assert len(model.fit(X).loss_curve_) == 3
    np.testing.assert_array_equal(model.transform(X), first)


def test_warm_start_refuses_another_architecture(blobs):
    model = StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, warm_start=True).fit(blobs)
    model.set_params(hidden_layer_sizes=(8, 3))
    with pytest.raises(ValueError, match=r"another architecture \(hidden_layer_sizes: \(8, 4\) -> \(8, 3\)\)"):
        model.fit(blobs)
    with pytest.raises(ValueError, match="X has 5 features, but StackedAutoencoder is expecting 12"):
        model.set_params(hidden_layer_sizes=(8, 4)).fit(blobs[:, :5])


def test_warm_start_with_nothing_to_finetune_is_an_error(blobs):
    model = StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, warm_start=True).fit(blobs)
    with pytest.raises(ValueError, match="finetune_epochs=0 leaves nothing to train"):
        model.set_params(finetune_epochs=0).fit(blobs)


# ------------------------------------------------------------ partial_fit


def test_partial_fit_trains_one_epoch_per_call_and_returns_self(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), random_state=0)
    for call in range(1, 11):
        assert model.partial_fit(X) is model
        assert model.n_iter_ == len(model.loss_curve_) == call
    assert model.pretrain_loss_curves_ == [[], []]
    assert model.loss_curve_[-1] < 0.6 * model.loss_curve_[0]


def test_partial_fit_keeps_the_optimizer_state_between_calls(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), batch_size=256, random_state=0)
    model.partial_fit(X)
    model.partial_fit(X)
    steps = {float(state["step"]) for state in model._optimizer.state.values()}
    assert steps == {2 * np.ceil(len(X) / 256)}
    weight = model.network_.encoder[0].weight
    assert all(any(p is weight for p in group["params"]) for group in model._optimizer.param_groups[:1])


def test_partial_fit_after_pickling_continues_with_the_same_optimizer_state(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), random_state=0).partial_fit(X)
    restored = pickle.loads(pickle.dumps(model))
    model.partial_fit(X)
    restored.partial_fit(X)
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))


def test_partial_fit_continues_a_fitted_model(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), pretrain_epochs=2, finetune_epochs=5, random_state=0).fit(X)
    before = model.loss_curve_[-1]
    model.partial_fit(X)
    assert len(model.loss_curve_) == 6
    assert model.loss_curve_[-1] < 1.2 * before


def test_partial_fit_rejects_a_changed_number_of_features(blobs):
    model = StackedAutoencoder((8, 4)).partial_fit(blobs)
    with pytest.raises(ValueError, match="X has 5 features, but StackedAutoencoder is expecting 12"):
        model.partial_fit(blobs[:, :5])


def test_fit_after_partial_fit_starts_afresh(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), pretrain_epochs=1, finetune_epochs=2, random_state=0)
    model.partial_fit(X).fit(X)
    assert not hasattr(model, "_optimizer")
    assert len(model.loss_curve_) == 2


# -------------------------------------------------------------- progress


def test_verbose_2_shows_a_progress_bar_per_phase(capsys, blobs):
    StackedAutoencoder((8, 4), pretrain_epochs=2, finetune_epochs=3, verbose=2, random_state=0).fit(blobs)
    captured = capsys.readouterr()
    assert captured.out == ""
    for name in ("pretrain layer 1/2", "pretrain layer 2/2", "finetune"):
        assert name in captured.err
    assert re.search(r"finetune: 100%.*3/3.*loss=", captured.err)


def test_verbose_2_without_tqdm_prints_lines_and_says_why(monkeypatch, capsys, blobs):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.warns(UserWarning, match="tqdm, which is not installed") as record:
        StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, verbose=2, random_state=0).fit(blobs)
    assert record[0].filename == __file__
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_verbose_1_lines_carry_the_validation_score_with_early_stopping(capsys, blobs):
    with pytest.warns(ConvergenceWarning):
        early_stopper(pretrain_epochs=0, finetune_epochs=1, verbose=1).fit(blobs)
    (line,) = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"finetune epoch 1/1 loss \S+ validation score -\S+ \d+\.\d\ds", line)


# -------------------------------------------------------------- precision


def test_bfloat16_precision_trains_and_keeps_float_outputs(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), precision="bfloat16", pretrain_epochs=2, finetune_epochs=5, random_state=0)
    model.fit(X.astype(np.float32))
    reference = StackedAutoencoder((32, 8), pretrain_epochs=2, finetune_epochs=5, random_state=0).fit(X)
    assert model.transform(X.astype(np.float32)).dtype == np.float32
    assert model.score(X) == pytest.approx(reference.score(X), rel=0.1)
    assert not torch.is_autocast_enabled("cpu")


def test_partial_fit_follows_changed_settings(digits):
    X, _ = digits
    model = StackedAutoencoder((32, 8), random_state=0).partial_fit(X)
    adam = model._optimizer
    model.set_params(learning_rate_init=0.01).partial_fit(X)
    assert model._optimizer.param_groups[0]["lr"] == 0.01
    assert isinstance(model._optimizer, torch.optim.Adam) and len(model._optimizer.state) == len(adam.state)
    model.set_params(optimizer="sgd", momentum=0.5).partial_fit(X)
    assert isinstance(model._optimizer, torch.optim.SGD)
    assert model._optimizer.param_groups[0]["momentum"] == 0.5
