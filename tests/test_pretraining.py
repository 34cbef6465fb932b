"""Greedy layer-wise pretraining: each phase trains on cached codes, lower layers frozen."""

from collections import Counter

import numpy as np
import pytest
import torch

import sk_stackae._estimator as estimator_module
from sk_stackae import StackedAutoencoder
from sk_stackae._network import DenseLayer, StackedAutoencoderNetwork


@pytest.fixture
def recorded_fit(monkeypatch, blobs):
    """Fit a 3-layer stack while recording forward calls and weights per phase."""
    forward_calls = Counter()
    original_forward = DenseLayer.forward

    def counting_forward(layer, x):
        forward_calls[layer] += 1
        return original_forward(layer, x)

    monkeypatch.setattr(DenseLayer, "forward", counting_forward)

    networks = []
    original_reset = StackedAutoencoderNetwork.reset_parameters

    def capturing_reset(network, generator):
        networks.append(network)
        return original_reset(network, generator)

    monkeypatch.setattr(StackedAutoencoderNetwork, "reset_parameters", capturing_reset)

    phases = []
    original_train_phase = estimator_module.train_phase

    def recording_train_phase(phase, *args, **kwargs):
        before = Counter(forward_calls)
        curve = original_train_phase(phase, *args, **kwargs)
        phases.append(
            {
                "name": phase.name,
                "rows": phase.rows,
                "rows_at_start": phase.rows.tensor.clone(),
                "calls": Counter(forward_calls) - before,
                "calls_before": before,
                "state": {k: v.clone() for k, v in networks[-1].state_dict().items()},
            }
        )
        return curve

    monkeypatch.setattr(estimator_module, "train_phase", recording_train_phase)
    model = StackedAutoencoder((10, 6, 3), pretrain_epochs=3, finetune_epochs=0, batch_size=16, random_state=0)
    model.fit(blobs)
    return model, phases, forward_calls


def test_each_phase_runs_only_its_own_layer_pair(recorded_fit, blobs):
    model, phases, _ = recorded_fit
    network = model.network_
    n_batches = 3 * int(np.ceil(len(blobs) / 16))
    assert [p["name"] for p in phases] == ["pretrain layer 1/3", "pretrain layer 2/3", "pretrain layer 3/3"]
    for k, phase in enumerate(phases):
        expected = Counter({network.encoder[k]: n_batches, network.decoder[k]: n_batches})
        assert phase["calls"] == expected, phase["name"]


def test_lower_layers_run_once_to_fill_the_cache(recorded_fit, blobs):
    model, phases, calls = recorded_fit
    network = model.network_
    n_batches = 3 * int(np.ceil(len(blobs) / 16))
    # Between phase k and phase k+1, encoder layer k runs once over the whole
    # set (one large no-grad batch here), and nothing else runs.
    for k in range(2):
        between = phases[k + 1]["calls_before"] - (phases[k]["calls_before"] + phases[k]["calls"])
        assert between == Counter({network.encoder[k]: 1})
    # Over the whole fit, the first layer ran for its own phase and the cache
    # only, not once per batch of the deeper phases.
    assert calls[network.encoder[0]] == n_batches + 1


def test_later_phases_leave_frozen_weights_bit_for_bit_unchanged(recorded_fit):
    model, phases, _ = recorded_fit
    final = model.network_.state_dict()
    for k, phase in enumerate(phases):
        for name in (f"encoder.{k}.weight", f"encoder.{k}.bias", f"decoder.{k}.weight", f"decoder.{k}.bias"):
            assert torch.equal(phase["state"][name], final[name]), name
    # ... and each phase did change its own layer pair.
    assert not torch.equal(phases[0]["state"]["encoder.1.weight"], final["encoder.1.weight"])


def test_cached_codes_are_the_frozen_layers_output_without_autograd(recorded_fit, blobs):
    model, phases, _ = recorded_fit
    network = model.network_
    inputs = torch.as_tensor(blobs, dtype=torch.float32)
    with torch.no_grad():
        h1 = network.encode_layer(0, inputs)
        h2 = network.encode_layer(1, h1)
    for phase, expected in ((phases[1], h1), (phases[2], h2)):
        cache = phase["rows_at_start"]
        assert not phase["rows"].tensor.requires_grad and phase["rows"].tensor.grad_fn is None
        torch.testing.assert_close(cache, expected, rtol=1e-5, atol=1e-6)


def test_deeper_phases_reconstruct_codes_with_mse(monkeypatch, digits):
    X, _ = digits
    losses = []
    original_train_phase = estimator_module.train_phase

    def recording_train_phase(phase, *args, **kwargs):
        losses.append(phase.loss.kind)
        return original_train_phase(phase, *args, **kwargs)

    monkeypatch.setattr(estimator_module, "train_phase", recording_train_phase)
    StackedAutoencoder(
        (16, 8, 4), output_activation="sigmoid", loss="bce", pretrain_epochs=1, finetune_epochs=1, random_state=0
    ).fit(X[:200])
    assert losses == ["bce", "mse", "mse", "bce"]


def test_pretraining_lowers_each_phase_loss(blobs):
    model = StackedAutoencoder((10, 6), pretrain_epochs=15, finetune_epochs=0, batch_size=16, random_state=0)
    model.fit(blobs)
    assert len(model.pretrain_loss_curves_) == 2
    for curve in model.pretrain_loss_curves_:
        assert len(curve) == 15
        assert curve[-1] < 0.7 * curve[0]


def test_pretrain_epochs_zero_skips_pretraining(monkeypatch, blobs):
    names = []
    original_train_phase = estimator_module.train_phase

    def recording_train_phase(phase, *args, **kwargs):
        names.append(phase.name)
        return original_train_phase(phase, *args, **kwargs)

    monkeypatch.setattr(estimator_module, "train_phase", recording_train_phase)
    model = StackedAutoencoder((8, 4), pretrain_epochs=0, finetune_epochs=2, random_state=0).fit(blobs)
    assert names == ["finetune"]
    assert model.pretrain_loss_curves_ == [[], []]
    assert len(model.loss_curve_) == 2


def test_pretraining_gives_the_finetune_a_better_start(digits):
    # A deep sigmoid stack barely moves from a random start in a few epochs;
    # greedy pretraining hands the fine-tune a working autoencoder.
    X, _ = digits
    common = {"activation": "logistic", "output_activation": "sigmoid", "batch_size": 32, "random_state": 0}
    pretrained = StackedAutoencoder((32, 16, 8), pretrain_epochs=10, finetune_epochs=2, **common).fit(X)
    scratch = StackedAutoencoder((32, 16, 8), pretrain_epochs=0, finetune_epochs=2, **common).fit(X)
    assert pretrained.loss_curve_[0] < scratch.loss_curve_[0]


def test_each_phase_starts_by_predicting_the_mean_of_what_it_reconstructs(monkeypatch, blobs):
    starts = []
    original_train_phase = estimator_module.train_phase

    def recording_train_phase(phase, *args, **kwargs):
        rows = phase.rows.tensor
        with torch.no_grad():
            pre_activation, _ = phase.forward(rows)
        starts.append((phase.loss(pre_activation, rows).item(), rows.var(dim=0, unbiased=False).mean().item()))
        return original_train_phase(phase, *args, **kwargs)

    monkeypatch.setattr(estimator_module, "train_phase", recording_train_phase)
    StackedAutoencoder((10, 6), pretrain_epochs=1, finetune_epochs=0, random_state=0).fit(blobs)
    # The loss of predicting every column's mean is the mean column variance.
    for loss, variance in starts:
        assert loss == pytest.approx(variance, rel=1e-4)


def test_narrower_caches_overwrite_the_previous_cache_and_never_the_data(recorded_fit, blobs):
    _, phases, _ = recorded_fit
    data, h1, h2 = (phase["rows"].tensor for phase in phases)
    assert data.data_ptr() != h1.data_ptr()
    assert h2.data_ptr() == h1.data_ptr()
    # The data the user passed is untouched.
    np.testing.assert_array_equal(data.numpy(), blobs.astype(np.float32))
