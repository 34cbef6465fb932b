"""Every option that changes what a phase minimises is trained on both paths, or falls back to autograd.

For every parameter of every estimator, this module says either which
settings change the objective or the pass (and tests each of them), or why
the parameter does not. Each setting is fitted on a few rows; every phase
of the fit is checked as it starts: where its objective is hand-derived,
the hand-derived step's gradients must equal autograd's to float32
rounding, and a phase that trains through autograd must say why. A new
parameter that is in neither table fails the first test; a new term
without a hand-derived gradient makes its phases fall back.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sk_stackae import (
    StackedAutoencoder,
    StackedAutoencoderClassifier,
    StackedAutoencoderOutlierDetector,
    StackedAutoencoderRegressor,
)
from sk_stackae._accel.fast_step import fast_step_for
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._loop import ObjectiveRunner, TrainingOptions

# Parameters that do not change what a phase minimises, and why.
NOT_OBJECTIVE = {
    "pretrain_epochs": "how long phases train",
    "finetune_epochs": "how long phases train",
    "batch_size": "how many rows a step takes",
    "learning_rate": "the step size's schedule, applied by the optimiser on either path",
    "learning_rate_init": "the step size",
    "power_t": "the step size's schedule",
    "optimizer": "how a gradient is followed, on either path",
    "momentum": "how a gradient is followed",
    "alpha": "the optimiser's weight decay, applied on either path",
    "early_stopping": "when a phase stops, and which weights it keeps",
    "validation_fraction": "which rows are held out",
    "n_iter_no_change": "when a phase stops",
    "tol": "when a phase stops",
    "average_from_epoch": "which weights a phase ends with",
    "device": "where the phase trains",
    "distributed": "how many processes share a phase",
    "random_state": "the random draws",
    "verbose": "what is printed",
    "warm_start": "where a fit starts",
    "contamination": "the threshold on the trained network's errors",
    "standardize": "the units of the rows",
    "code_distance": "how the trained network's outputs are scored",
    "pretrained": "where a fit starts (and that it skips greedy pretraining)",
}

COMMON = {
    "hidden_layer_sizes": [{"hidden_layer_sizes": (6,)}, {"hidden_layer_sizes": (7, 5, 3)}],
    "activation": [{"activation": name} for name in ("relu", "leaky_relu", "elu", "gelu", "tanh", "logistic")],
    "code_activation": [{"code_activation": name} for name in ("relu", "sigmoid", "tanh")],
    "tied_weights": [{"tied_weights": True}],
    "noise": [{"noise": "gaussian", "noise_level": 0.2}, {"noise": "masking", "noise_level": 0.3}],
    "noise_level": [{"noise": "masking", "noise_level": 0.1}],
    "dropout": [{"dropout": 0.2}],
    "sparsity": [{"sparsity": 0.3}, {"sparsity": 0.3, "code_activation": "sigmoid", "activation": "logistic"}],
    "sparsity_target": [{"sparsity": 0.3, "sparsity_target": 0.2, "code_activation": "sigmoid"}],
    "precision": [{"precision": "tf32"}, {"precision": "bfloat16"}],
}
RECONSTRUCTION = {
    "output_activation": [{"output_activation": "sigmoid"}],
    "loss": [{"loss": "bce", "output_activation": "sigmoid"}],
}
SUPERVISED = {
    **COMMON,
    "output_activation": [{"output_activation": "sigmoid", "reconstruction_weight": 0.5}],
    "loss": [{"loss": "bce", "output_activation": "sigmoid", "reconstruction_weight": 0.5}],
    "unsupervised_finetune_epochs": [{"unsupervised_finetune_epochs": 1}],
    "head_warmup_epochs": [{"head_warmup_epochs": 1}],
    "reconstruction_weight": [{"reconstruction_weight": 0.5}, {"reconstruction_weight": 0.5, "dropout": 0.2}],
    "consistency_weight": [{"consistency_weight": 1.0}, {"consistency_weight": 1.0, "reconstruction_weight": 0.3}],
    "adversarial_epsilon": [
        {"consistency_weight": 1.0, "adversarial_epsilon": 0.3},
        {"consistency_weight": 1.0, "adversarial_epsilon": 0.3, "noise": None},
    ],
    "unlabeled_label": [{}],  # every setting here already marks unlabeled rows
    "ladder": [{"ladder": "full"}, {"ladder": "gamma", "dropout": 0.2}],
    "ladder_noise": [{"ladder": "full", "ladder_noise": 0.1}],
    "ladder_weights": [{"ladder": "full", "ladder_weights": [1.0, 1.0, 1.0, 1.0]}],
}
SETTINGS = {
    StackedAutoencoder: {**COMMON, **RECONSTRUCTION},
    StackedAutoencoderOutlierDetector: {
        **COMMON,
        "output_activation": [{"output_activation": "sigmoid", "standardize": False}],
        "loss": [{"loss": "bce", "output_activation": "sigmoid", "standardize": False}],
        # One epoch: the trimming is on from the first (a quarter of the epochs, rounded down, is the warm-up).
        "trim_fraction": [{"trim_fraction": 0.3}, {"trim_fraction": 0.2, "sparsity": 0.2, "dropout": 0.2}],
    },
    StackedAutoencoderClassifier: {
        **SUPERVISED,
        "pseudo_label_weight": [{"pseudo_label_weight": 0.5}, {"pseudo_label_weight": 0.5, "consistency_weight": 1.0}],
        "class_weight": [{"class_weight": "balanced"}, {"class_weight": {0: 3.0}, "pseudo_label_weight": 0.5}],
    },
    StackedAutoencoderRegressor: SUPERVISED,
}
BASE = {"pretrain_epochs": 1, "finetune_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}


@pytest.mark.parametrize("estimator", list(SETTINGS), ids=lambda cls: cls.__name__)
def test_every_parameter_is_either_tested_or_said_not_to_change_the_objective(estimator):
    parameters = set(estimator().get_params())
    classified = set(SETTINGS[estimator]) | set(NOT_OBJECTIVE)
    assert parameters <= classified, f"unclassified: {sorted(parameters - classified)}"
    assert not set(SETTINGS[estimator]) & set(NOT_OBJECTIVE)


class GradientCheck(TrainingListener):
    """Compares, at the start of every phase, the hand-derived gradients with autograd's on one batch."""

    def __init__(self):
        self.checked = {}
        self.steps = {}

    def phase_started(self, phase):
        options = TrainingOptions()
        indices = torch.arange(min(16, phase.rows.n_rows), device=phase.rows.index_device)
        if phase.train_indices is not None:
            indices = phase.train_indices[: len(indices)]
        batch = phase.batch(indices)
        fast, reason = fast_step_for(phase, ObjectiveRunner(phase, options, torch.Generator().manual_seed(3)), options)
        if fast is None:
            self.checked[phase.name] = reason
            return
        reference = ObjectiveRunner(phase, options, torch.Generator().manual_seed(3))
        for parameter in phase.parameters:
            parameter.grad = None
        total, expected_loss = reference.autograd_loss(batch)
        total.backward()
        expected = [parameter.grad.clone() for parameter in phase.parameters]
        for parameter in phase.parameters:
            parameter.grad = torch.full_like(parameter, float("nan"))
        fast = fast_step_for(phase, ObjectiveRunner(phase, options, torch.Generator().manual_seed(3)), options)[0]
        loss = fast(phase.batch(indices))
        torch.testing.assert_close(loss, expected_loss.detach(), rtol=1e-4, atol=1e-6)
        for parameter, want in zip(phase.parameters, expected, strict=True):
            torch.testing.assert_close(parameter.grad, want, rtol=1e-4, atol=1e-6)
        for parameter in phase.parameters:
            # The phase's own hand-derived step writes into .grad buffers of the parameters' shape.
            parameter.grad = torch.zeros_like(parameter)
        self.checked[phase.name] = "same gradients"

    def phase_ended(self, phase, result):
        self.steps[phase.name] = (result.step, result.autograd_because)


def _data(estimator):
    X, y = load_digits(return_X_y=True)
    X, y = X[:96, ::4] / 16.0, y[:96]
    if estimator is StackedAutoencoderClassifier:
        return X, np.where(np.arange(len(y)) % 3 == 0, y, -1)
    if estimator is StackedAutoencoderRegressor:
        target = X.sum(axis=1)
        target[1::3] = np.nan
        return X, target
    return X, None


CASES = [
    pytest.param(estimator, setting, id=f"{estimator.__name__}-{parameter}-{i}")
    for estimator, table in SETTINGS.items()
    for parameter, settings in table.items()
    for i, setting in enumerate(settings)
]


# Sample weights reach every term through the rows of a batch: the settings whose terms weigh rows.
WEIGHTED_CASES = [
    pytest.param(estimator, setting, id=f"{estimator.__name__}-weighted-{i}")
    for i, (estimator, setting) in enumerate(
        [
            (StackedAutoencoder, {"loss": "bce", "output_activation": "sigmoid", "sparsity": 0.3}),
            (StackedAutoencoder, {"sparsity": 0.3, "code_activation": "sigmoid", "activation": "logistic"}),
            (StackedAutoencoderOutlierDetector, {}),
            (StackedAutoencoderClassifier, {"reconstruction_weight": 0.5, "consistency_weight": 1.0}),
            (StackedAutoencoderClassifier, {"pseudo_label_weight": 0.5, "class_weight": "balanced"}),
            (StackedAutoencoderRegressor, {"reconstruction_weight": 0.5, "consistency_weight": 1.0}),
        ]
    )
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("estimator", "setting"), CASES)
def test_each_setting_trains_every_term_on_the_hand_derived_step_or_falls_back(estimator, setting):
    _check_every_phase(estimator, setting)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("estimator", "setting"), WEIGHTED_CASES)
def test_weighted_rows_train_every_term_on_the_hand_derived_step(estimator, setting):
    _check_every_phase(estimator, setting, sample_weight=np.random.RandomState(0).randint(0, 4, size=96))


def _check_every_phase(estimator, setting, sample_weight=None):
    params = {**BASE, **setting}
    if estimator in (StackedAutoencoderClassifier, StackedAutoencoderRegressor):
        params.setdefault("unlabeled_label", -1 if estimator is StackedAutoencoderClassifier else np.nan)
    X, y = _data(estimator)
    check = GradientCheck()
    with listening(check):
        estimator(**params).fit(X, y, sample_weight=sample_weight)
    assert check.steps and set(check.steps) == set(check.checked)
    for name, (step, because) in check.steps.items():
        if step == "hand-derived":
            assert check.checked[name] == "same gradients", name
        else:
            assert because, f"{name} trained through autograd without saying why"
    if setting.get("precision") == "bfloat16":
        assert {because for _, because in check.steps.values()} == {"bfloat16 autocast"}
    elif setting.get("ladder") is not None:
        # The ladder's denoising costs have no hand-derived gradient: its supervised phase says so.
        fallbacks = {name: because for name, (step, because) in check.steps.items() if step != "hand-derived"}
        assert fallbacks and all("LadderDenoisingCosts" in because for because in fallbacks.values()), check.steps
        assert all(name.startswith(("finetune", "supervised")) for name in fallbacks), check.steps
    else:
        assert all(step == "hand-derived" for step, _ in check.steps.values()), check.steps
