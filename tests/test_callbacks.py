"""Epoch-level callbacks: early stopping, weight averaging and the learning-rate schedules."""

import math
import warnings

import numpy as np
import pytest
import torch
from conftest import DEVICE
from phases import finetune_phase, make_network, split
from sklearn.datasets import load_digits

from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier
from sk_stackae._callbacks import EarlyStopping, EpochRecord, callbacks_for
from sk_stackae._loop import PhaseTrainer, TrainingOptions


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 10, generator=generator)
    return (torch.randn(100, 3, generator=generator) @ basis).to(DEVICE)


class _Trainer:
    """What a callback reads of the loop, for a callback on its own."""

    def __init__(self, parameters, callbacks=()):
        self.parameters = parameters
        self.callbacks = list(callbacks)

    def evaluation_weights(self):
        return None


def test_early_stopping_restores_the_weights_of_the_best_score_not_the_last():
    weight = torch.nn.Parameter(torch.zeros(3))
    stopping = EarlyStopping(n_iter_no_change=2, tol=0.0)
    trainer = _Trainer([weight], [stopping])
    for epoch, score in enumerate([1.0, 3.0, 2.0, 2.5, 1.0], start=1):
        with torch.no_grad():
            weight.fill_(epoch - 1)
        record = EpochRecord(epoch, loss=0.0, validation_score=score)
        stopping.epoch_ended(trainer, record)
    assert record.stop
    stopping.phase_ended(trainer)
    assert torch.equal(weight, torch.full((3,), 1.0))


def _rates(phase, options):
    """The learning rate each epoch trained at, and the phase's result."""
    seen = []
    trainer = PhaseTrainer(phase, options, torch.Generator().manual_seed(0), None, None)
    step = trainer.run_epoch_and_check_stop

    def recording(epoch):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return step(epoch)

    trainer.run_epoch_and_check_stop = recording
    return seen, trainer.train()


def test_constant_keeps_the_initial_rate(data):
    options = TrainingOptions(learning_rate_init=0.02, batch_size=16)
    rates, _ = _rates(finetune_phase(make_network(), data, epochs=4, options=options), options)
    assert rates == [0.02] * 4


def test_invscaling_is_scikit_learns_inverse_scaling_by_the_rows_seen(data):
    options = TrainingOptions(learning_rate_init=0.02, learning_rate="invscaling", power_t=0.5, batch_size=16)
    rates, _ = _rates(finetune_phase(make_network(), data, epochs=4, options=options), options)
    # After epoch e the phase has trained on e * 100 rows.
    assert rates == pytest.approx([0.02 / (100 * e + 1) ** 0.5 for e in range(4)])


def test_cosine_anneals_from_the_initial_rate_toward_zero(data):
    options = TrainingOptions(learning_rate_init=0.02, learning_rate="cosine", batch_size=16)
    rates, _ = _rates(finetune_phase(make_network(), data, epochs=4, options=options), options)
    assert rates == pytest.approx([0.01 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


def test_adaptive_divides_the_rate_by_five_when_the_training_loss_stalls(data):
    # A huge tol: no epoch improves enough, so every n_iter_no_change + 1
    # epochs the rate is divided by 5, and the phase runs all its epochs.
    options = TrainingOptions(
        learning_rate_init=0.02, learning_rate="adaptive", n_iter_no_change=1, tol=1e9, batch_size=16
    )
    rates, result = _rates(finetune_phase(make_network(), data, epochs=6, options=options), options)
    assert rates == pytest.approx([0.02, 0.02, 0.02, 0.004, 0.004, 0.0008])
    assert len(result.loss_curve) == 6


def test_adaptive_with_early_stopping_lowers_the_rate_before_it_stops(data):
    options = TrainingOptions(
        learning_rate_init=1e-5,
        learning_rate="adaptive",
        early_stopping=True,
        n_iter_no_change=1,
        tol=1e9,
        batch_size=16,
    )
    phase = finetune_phase(make_network(), data, epochs=50, options=options)
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    rates, result = _rates(phase, options)
    # 1e-5 / 5 = 2e-6 is still above 1e-6: one more plateau, then the rate is
    # 4e-7, below the smallest one, and the next plateau stops the phase.
    assert result.stopped_early
    assert rates == pytest.approx([1e-5, 1e-5, 1e-5, 2e-6, 2e-6, 4e-7, 4e-7])


def test_early_stopping_without_adaptive_stops_at_the_first_plateau(data):
    options = TrainingOptions(early_stopping=True, n_iter_no_change=1, tol=1e9, batch_size=16)
    phase = finetune_phase(make_network(), data, epochs=50, options=options)
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    _, result = _rates(phase, options)
    assert result.stopped_early and len(result.loss_curve) == 3


def test_incremental_phases_keep_their_learning_rate(data):
    options = TrainingOptions(learning_rate="cosine")
    phase = finetune_phase(make_network(), data, epochs=1, options=options)
    assert callbacks_for(phase, options, incremental=True) == []
    assert len(callbacks_for(phase, options)) == 1


@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive", "cosine"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_every_schedule_trains_with_every_optimizer_without_warnings(schedule, optimizer):
    X = load_digits().data[:200] / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = StackedAutoencoder(
            (16, 4),
            pretrain_epochs=2,
            finetune_epochs=3,
            learning_rate=schedule,
            learning_rate_init=0.05 if optimizer == "sgd" else 1e-2,
            optimizer=optimizer,
            random_state=0,
        ).fit(X)
    assert all(np.isfinite(model.loss_curve_))


def test_a_float_learning_rate_is_the_initial_rate_under_its_old_name():
    X = load_digits().data[:200] / 16.0
    params = {"pretrain_epochs": 1, "finetune_epochs": 2, "random_state": 0}
    with pytest.warns(FutureWarning, match="learning_rate_init=0.003 instead"):
        old = StackedAutoencoder((8,), learning_rate=0.003, **params).fit(X)
    new = StackedAutoencoder((8,), learning_rate_init=0.003, **params).fit(X)
    assert old.loss_curve_ == new.loss_curve_


def test_the_supervised_fine_tune_follows_the_schedule():
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16.0, y[:200]
    params = {"pretrain_epochs": 1, "finetune_epochs": 4, "learning_rate_init": 1e-2, "random_state": 0}
    constant = StackedAutoencoderClassifier((16,), **params).fit(X, y)
    cosine = StackedAutoencoderClassifier((16,), learning_rate="cosine", **params).fit(X, y)
    # The first epoch trains at the initial rate under both; the later ones at lower rates.
    assert cosine.loss_curve_[0] == constant.loss_curve_[0]
    assert cosine.loss_curve_[1:] != constant.loss_curve_[1:]
