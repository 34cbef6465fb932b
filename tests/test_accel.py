"""The fast paths' parts: denormals, threads, and the private torch APIs with their public fallbacks."""

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from conftest import DEVICE
from phases import OPTIONS, finetune_phase, make_network
from sklearn.datasets import load_digits

from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier
from sk_stackae import _loop as loop_module
from sk_stackae._accel import denormals, torch_private
from sk_stackae._accel import threads as threads_module
from sk_stackae._accel.denormals import flushing_denormals
from sk_stackae._activations import ACTIVATIONS
from sk_stackae._listeners import TrainingListener
from sk_stackae._loop import train_phase
from sk_stackae._optim import make_optimizer


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 10, generator=generator)
    return (torch.randn(100, 3, generator=generator) @ basis).to(DEVICE)


# ------------------------------------------------------------- denormals


def denormal_share_on_two_threads():
    """The share of a product's elements that come out denormal, computed by two torch threads.

    Each thread computes half of them: 0.5 where only the calling thread
    flushes denormals, 0 where both do, 1 where neither does.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        products = torch.full((1 << 20,), 1e-30) * 1e-10
    finally:
        torch.set_num_threads(threads)
    return (products != 0).double().mean().item()


class FlushingSeen(TrainingListener):
    def __init__(self):
        self.seen = set()
        self.denormal_shares = set()

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.seen.add(flushing_denormals())
        self.denormal_shares.add(denormal_share_on_two_threads())


@pytest.fixture
def two_torch_threads(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    # The test network is small enough to train on one thread; it keeps two,
    # as a large one does: when the team shrinks to one thread and grows
    # again, libgomp starts a new thread, which takes the flags of the
    # thread that starts it, and the test would not tell the two apart.
    monkeypatch.setattr(threads_module, "_ONE_THREAD_BELOW_FLOPS", 0)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)
    # The OpenMP team's threads take the calling thread's flags back.
    with denormals.denormals_flushed(torch.device("cpu")):
        pass


@pytest.mark.parametrize("caller_flushes", [False, True])
def test_cpu_training_flushes_denormals_in_every_thread_and_gives_the_callers_setting_back(
    caller_flushes, data, two_torch_threads
):
    torch.set_flush_denormal(caller_flushes)
    seen = FlushingSeen()
    phase = finetune_phase(make_network().cpu(), data.cpu(), epochs=2)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), listener=seen)
    assert seen.seen == {True}
    # Both threads of the OpenMP team flush, not only the one that trains.
    assert seen.denormal_shares == {0.0}
    assert flushing_denormals() is caller_flushes
    assert denormal_share_on_two_threads() == (0.0 if caller_flushes else 1.0)


def test_without_the_openmp_team_only_the_training_thread_flushes(data, two_torch_threads, monkeypatch):
    # What the test above rules out: the second thread's half of each op
    # still meets denormals where the flags are set in one thread alone.
    monkeypatch.setattr(denormals, "_openmp_team", lambda: None)
    seen = FlushingSeen()
    phase = finetune_phase(make_network().cpu(), data.cpu(), epochs=2)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), listener=seen)
    assert seen.seen == {True}
    (share,) = seen.denormal_shares
    assert 0.0 < share < 1.0
    assert not flushing_denormals()


def moments_of_weights_without_gradient(data):
    """Adam's first moments of weights whose gradient is exactly zero, started at 1e-37, after 63 more steps."""
    data = data.cpu().clone()
    data[:, 0] = 0.0  # the weights from input column 0 get no gradient
    network = make_network().cpu()
    phase = finetune_phase(network, data, epochs=1)
    optimizer = make_optimizer(OPTIONS, phase.parameters, OPTIONS.batch_size)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), optimizer=optimizer)
    first_weight = next(p for p in phase.parameters if p.shape == (6, 10))
    moments = optimizer.state[first_weight]["exp_avg"]
    moments[:, 0] = 1e-37  # just above the smallest normal float32, 1.2e-38
    # 7 steps an epoch: beta1**63 = 1.3e-3 takes the moments to about 1e-40.
    train_phase(finetune_phase(network, data, epochs=9), OPTIONS, torch.Generator().manual_seed(1), optimizer=optimizer)
    return moments[:, 0].clone()


def test_adams_moments_decay_to_zero_not_into_denormal_floats(data, monkeypatch):
    assert not flushing_denormals()
    assert torch.all(moments_of_weights_without_gradient(data) == 0)
    # Without the flush, the same moments end as denormals (which are ~10x
    # slower to compute with): the test above is not vacuous.
    monkeypatch.setattr(loop_module, "denormals_flushed", lambda device: nullcontext())
    kept = moments_of_weights_without_gradient(data)
    assert torch.all((kept != 0) & (kept.abs() < torch.finfo(torch.float32).tiny))


# ------------------------------------------------------ private torch APIs


def test_the_private_apis_are_in_use_on_this_torch():
    # The suite runs on a tested torch: the fast paths are what it measures.
    assert torch_private.private_apis_in_use()
    with torch_private.public_apis_only():
        assert not torch_private.private_apis_in_use()
    assert torch_private.private_apis_in_use()


@pytest.mark.parametrize("version", ["2.3.1", "2.15.0", "3.0.0+cpu"])
def test_an_untested_torch_gets_the_public_apis(version):
    assert not torch_private._version_is_tested(version)


@pytest.mark.parametrize("version", ["2.4.0", "2.13.0+cpu", "2.14.1"])
def test_a_tested_torch_gets_the_private_apis(version):
    assert torch_private._version_is_tested(version)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_gradient_falls_back_to_the_same_values(name):
    activation = ACTIVATIONS[name]
    generator = torch.Generator().manual_seed(0)
    pre_activation = torch.randn(32, 17, generator=generator).to(DEVICE)
    output = activation.function(pre_activation)
    incoming = torch.randn(32, 17, generator=generator).to(DEVICE)
    private = activation.gradient(incoming.clone(), pre_activation, output)
    with torch_private.public_apis_only():
        public = activation.gradient(incoming.clone(), pre_activation, output)
    torch.testing.assert_close(public, private, rtol=1e-6, atol=1e-7)


def test_the_fused_relu_product_falls_back_to_the_same_values():
    generator = torch.Generator().manual_seed(0)
    bias, inputs, weight = (torch.randn(*shape, generator=generator).to(DEVICE) for shape in ((5,), (8, 3), (3, 5)))
    private = torch_private.addmm_relu(bias, inputs, weight)
    with torch_private.public_apis_only():
        public = torch_private.addmm_relu(bias, inputs, weight)
    torch.testing.assert_close(public, private)


def test_the_foreach_ops_fall_back_to_the_same_values():
    def run():
        tensors = [torch.zeros(3), torch.ones(2)]
        torch_private.lerp_all_(tensors, [torch.full((3,), 4.0), torch.full((2,), 3.0)], 0.25)
        copied = [torch.empty(3), torch.empty(2)]
        torch_private.copy_all_(copied, tensors)
        zeroed = [torch.ones(2)]
        torch_private.zero_all_(zeroed)
        return [*tensors, *copied, *zeroed]

    private = run()
    with torch_private.public_apis_only():
        public = run()
    for got, expected in zip(public, private, strict=True):
        torch.testing.assert_close(got, expected)


def test_the_optimizers_fall_back_to_their_guarded_steps(data):
    results = []
    for gate in (nullcontext, torch_private.public_apis_only):
        with gate():
            network = make_network()
            phase = finetune_phase(network, data, epochs=2)
            optimizer = make_optimizer(OPTIONS, phase.parameters, 16)
            train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), optimizer=optimizer)
            results.append([p.detach().clone() for p in network.parameters()])
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_fits_on_the_public_apis_follow_the_same_loss_curves():
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]

    def fits():
        autoencoder = StackedAutoencoder(
            (16, 8), pretrain_epochs=2, finetune_epochs=3, activation="elu", dropout=0.1, random_state=0
        ).fit(X)
        classifier = StackedAutoencoderClassifier(
            (16,), pretrain_epochs=1, finetune_epochs=3, average_from_epoch=2, activation="gelu", random_state=0
        ).fit(X, y)
        return [*autoencoder.pretrain_loss_curves_, autoencoder.loss_curve_, classifier.loss_curve_]

    private = fits()
    with torch_private.public_apis_only():
        public = fits()
    for got, expected in zip(public, private, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4)
