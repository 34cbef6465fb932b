"""Objective terms: reconstruction errors, sparsity penalties, noise and dropout."""

import dataclasses

import pytest
import torch
from conftest import DEVICE
from phases import finetune_phase, make_network

from sk_stackae._loop import TrainingOptions, train_phase
from sk_stackae._losses import Batch, ReconstructionError, SparsityPenalty
from sk_stackae._network import StackedAutoencoderNetwork


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 10, generator=generator)
    return (torch.randn(100, 3, generator=generator) @ basis).to(DEVICE)


def test_bce_loss_works_on_logits_and_matches_the_probability_form():
    loss = ReconstructionError("bce", "sigmoid")
    logits = torch.tensor([[-50.0, 0.0, 3.0]])
    target = torch.tensor([[0.0, 0.5, 1.0]])
    p = torch.sigmoid(logits).clamp(1e-12, 1 - 1e-12)
    cross_entropy = -(target * p.log() + (1 - target) * (1 - p).log())
    torch.testing.assert_close(loss.value(logits, Batch(target)), cross_entropy.mean())
    # Per sample: the relative entropy; the target 0.5 has entropy log 2.
    own_entropy = torch.tensor([[0.0, torch.log(torch.tensor(2.0)).item(), 0.0]])
    torch.testing.assert_close(loss.per_sample(logits, target), (cross_entropy - own_entropy).mean(dim=1))
    assert loss.per_sample(torch.zeros(1, 3), torch.full((1, 3), 0.5)).item() == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(loss.value(torch.tensor([[-1e4, 1e4]]), Batch(torch.tensor([[1.0, 0.0]]))))


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_row_weights_weigh_each_rows_error_and_its_gradient(kind):
    generator = torch.Generator().manual_seed(0)
    pre_activation = torch.randn(6, 4, generator=generator).requires_grad_()
    clean = torch.rand(6, 4, generator=generator)
    weights = torch.tensor([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    error = ReconstructionError(kind, "sigmoid", weight=0.7)
    value = error.value(pre_activation, Batch(clean, weights=weights))
    # The weighted mean equals the plain mean over rows repeated as often as their weights say (x2).
    repeats = (2 * weights).long()
    repeated = error.value(pre_activation.repeat_interleave(repeats, 0), Batch(clean.repeat_interleave(repeats, 0)))
    torch.testing.assert_close(value, repeated)
    (expected,) = torch.autograd.grad(value, pre_activation)
    got_value, got = error.value_and_gradient(pre_activation.detach().clone(), Batch(clean, weights=weights))
    torch.testing.assert_close(got_value, value.detach())
    torch.testing.assert_close(got, expected)


class _RecordingError(ReconstructionError):
    """A reconstruction error that keeps the clean rows it saw; autograd trains it, through the pass."""

    hand_derived = False

    def __init__(self):
        super().__init__("mse", "identity")
        self.targets = []

    def value(self, pre_activation, batch):
        self.targets.append(batch.clean)
        return super().value(pre_activation, batch)


def _recording_inputs(phase, seen):
    forward = phase.training_pass.forward

    def recording(inputs, **kwargs):
        seen["inputs"] = inputs
        return forward(inputs, **kwargs)

    phase.training_pass = dataclasses.replace(phase.training_pass, forward=recording)


def test_noise_corrupts_the_inputs_but_the_loss_targets_the_clean_rows(data):
    seen = {}
    error = _RecordingError()
    options = TrainingOptions(noise="masking", noise_level=0.5, batch_size=100, learning_rate_init=1e-3)
    phase = finetune_phase(make_network(), data, epochs=1, options=options, error=error)
    _recording_inputs(phase, seen)
    train_phase(phase, options, torch.Generator().manual_seed(0))
    inputs, target = seen["inputs"], error.targets[0]
    masked = inputs == 0
    assert 0.4 < masked.float().mean() < 0.6
    torch.testing.assert_close(inputs[~masked], target[~masked])
    assert (target[masked] != 0).all()


def test_gaussian_noise_has_the_requested_standard_deviation(data):
    seen = {}
    error = _RecordingError()
    options = TrainingOptions(noise="gaussian", noise_level=0.3, batch_size=100)
    phase = finetune_phase(make_network(), data, epochs=1, options=options, error=error)
    _recording_inputs(phase, seen)
    train_phase(phase, options, torch.Generator().manual_seed(0))
    difference = seen["inputs"] - error.targets[0]
    assert difference.std().item() == pytest.approx(0.3, rel=0.1)


def test_dropout_is_drawn_during_training_only(data):
    network = make_network()
    x = data[:20]
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    a, _ = network.reconstruct(x, dropout=0.5, generator=generator)
    b, _ = network.reconstruct(x, dropout=0.5, generator=generator)
    assert not torch.equal(a, b)
    c, _ = network.reconstruct(x)
    d, _ = network.reconstruct(x)
    assert torch.equal(c, d)


def test_dropout_keeps_the_mean_activation():
    hidden = torch.ones(2000, 50)
    dropped = StackedAutoencoderNetwork._drop(hidden, 0.3, torch.Generator().manual_seed(0))
    assert (dropped == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.02)


def test_kl_penalty_is_zero_at_the_target_and_grows_away_from_it():
    kl = SparsityPenalty(1.0, 0.05, ["sigmoid"])
    batch = Batch(torch.zeros(10, 1))
    assert kl.value([torch.full((10, 4), 0.05)], batch).item() == pytest.approx(0.0, abs=1e-7)
    assert kl.value([torch.full((10, 4), 0.5)], batch) > kl.value([torch.full((10, 4), 0.1)], batch) > 0


def test_l1_penalty_for_units_outside_the_unit_interval():
    penalty = SparsityPenalty(2.0, 0.05, ["relu", "tanh", "identity"])
    code = torch.tensor([[-2.0, 0.0], [1.0, 1.0]])
    # Mean absolute activation, 1.0 for each of the three codes, times the weight.
    assert penalty.value([code, code, code], Batch(code)).item() == pytest.approx(6.0)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_weighted_sparsity_penalties_weigh_the_rows_and_derive_their_gradients(activation):
    generator = torch.Generator().manual_seed(0)
    code = torch.rand(12, 5, generator=generator, dtype=torch.float64).requires_grad_()
    weights = torch.randint(0, 4, (12,), generator=generator).double()
    penalty = SparsityPenalty(0.7, 0.1, [activation])
    value = penalty.value([code], Batch(code, weights=weights))
    repeated = penalty.value([code.repeat_interleave(weights.long(), 0)], Batch(code))
    torch.testing.assert_close(value, repeated)
    (expected,) = torch.autograd.grad(value, code)
    torch.testing.assert_close(penalty.gradient(0, code.detach(), Batch(code, weights=weights)), expected)


def test_sparsity_moves_the_mean_code_toward_the_target(data):
    means = []
    for sparsity in (0.0, 3.0):
        network = StackedAutoencoderNetwork(
            10, (8,), activation="relu", code_activation="sigmoid", output_activation="identity"
        )
        network.reset_parameters(torch.Generator().manual_seed(0))
        network.to(DEVICE)
        options = TrainingOptions(sparsity=sparsity, sparsity_target=0.05, learning_rate_init=1e-2, batch_size=16)
        phase = finetune_phase(network, data, epochs=100, options=options)
        train_phase(phase, options, torch.Generator().manual_seed(0))
        with torch.no_grad():
            means.append(network.encode(data).mean().item())
    assert abs(means[1] - 0.05) < 0.5 * abs(means[0] - 0.05)
