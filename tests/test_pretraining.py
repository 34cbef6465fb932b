"""Greedy layer-wise pretraining: each phase trains on cached codes, lower layers frozen."""

from collections import Counter

import numpy as np
import pytest
import torch

from sk_stackae import StackedAutoencoder
from sk_stackae._accel.fast_step import FastStep
from sk_stackae._data import inference_batch_size
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._losses import Batch
from sk_stackae._network import DenseLayer


class PhaseRecorder(TrainingListener):
    """Records, for every phase, its rows, the forward calls it made and its parameters at the end."""

    def __init__(self, forward_calls=None):
        self.forward_calls = Counter() if forward_calls is None else forward_calls
        self.phases = []
        self.caches = []

    def phase_started(self, phase):
        self.phases.append(
            {
                "name": phase.name,
                "phase": phase,
                "rows": phase.rows,
                "rows_at_start": phase.rows.tensor.clone(),
                "calls_before": Counter(self.forward_calls),
                "start": [p.detach().clone() for p in phase.parameters],
            }
        )

    def phase_ended(self, phase, result):
        record = self.phases[-1]
        record["calls"] = Counter(self.forward_calls) - record["calls_before"]
        record["end"] = [p.detach().clone() for p in phase.parameters]

    def cache_started(self, layer, rows, width):
        self.caches.append({"layer": layer, "calls_before": Counter(self.forward_calls)})

    def cache_ended(self, layer, cache):
        self.caches[-1]["calls"] = Counter(self.forward_calls) - self.caches[-1]["calls_before"]


@pytest.fixture
def counting_forward(monkeypatch):
    """Count the forward calls of every dense layer, by its bias, on either training step.

    The autograd step calls the layer modules; the fast step of the CPU runs
    the same layers from their parameters (a tied decoder layer's weight is
    its encoder's, so its own bias is what names it).
    """
    forward_calls = Counter()
    original_forward = DenseLayer.forward
    original_fast_forward = FastStep._layer_forward

    def counted(layer, x):
        forward_calls[layer.bias] += 1
        return original_forward(layer, x)

    def counted_fast(fast_step, step, inputs):
        forward_calls[step.bias] += 1
        return original_fast_forward(fast_step, step, inputs)

    monkeypatch.setattr(DenseLayer, "forward", counted)
    monkeypatch.setattr(FastStep, "_layer_forward", counted_fast)
    return forward_calls


@pytest.fixture
def recorded_fit(counting_forward, blobs):
    """Fit a 3-layer stack while recording forward calls and weights per phase."""
    recorder = PhaseRecorder(counting_forward)
    model = StackedAutoencoder((10, 6, 3), pretrain_epochs=3, finetune_epochs=0, batch_size=16, random_state=0)
    with listening(recorder):
        model.fit(blobs)
    return model, recorder.phases, counting_forward


def test_each_phase_runs_only_its_own_layer_pair(recorded_fit, blobs):
    model, phases, _ = recorded_fit
    network = model.network_
    n_batches = 3 * int(np.ceil(len(blobs) / 16))
    assert [p["name"] for p in phases] == ["pretrain layer 1/3", "pretrain layer 2/3", "pretrain layer 3/3"]
    for k, phase in enumerate(phases):
        expected = Counter({network.encoder[k].bias: n_batches, network.decoder[k].bias: n_batches})
        assert phase["calls"] == expected, phase["name"]


def test_lower_layers_run_once_to_fill_the_cache(recorded_fit, blobs):
    model, phases, calls = recorded_fit
    network = model.network_
    n_batches = 3 * int(np.ceil(len(blobs) / 16))
    # Between phase k and phase k+1, encoder layer k runs once over the whole
    # set (one large no-grad batch here), and nothing else runs.
    for k in range(2):
        between = phases[k + 1]["calls_before"] - (phases[k]["calls_before"] + phases[k]["calls"])
        assert between == Counter({network.encoder[k].bias: 1})
    # Over the whole fit, the first layer ran for its own phase and the cache
    # only, not once per batch of the deeper phases.
    assert calls[network.encoder[0].bias] == n_batches + 1


def test_later_phases_leave_frozen_weights_bit_for_bit_unchanged(recorded_fit):
    model, phases, _ = recorded_fit
    network = model.network_
    for k, phase in enumerate(phases):
        # What phase k trained is exactly what the fitted network holds...
        assert all(p is q for p, q in zip(phase["phase"].parameters, network.layer_parameters(k), strict=True))
        for at_end, final in zip(phase["end"], network.layer_parameters(k), strict=True):
            assert torch.equal(at_end, final)
        # ... and the phase did change its own layer pair.
        assert not any(torch.equal(a, b) for a, b in zip(phase["start"], phase["end"], strict=True))


def test_the_cache_runs_in_inference_batches_not_training_batches(counting_forward, monkeypatch, digits):
    # Inference batches of 100 rows, training batches of 16: a cache over
    # 1000 rows runs the frozen layer 10 times, not 63 times.
    monkeypatch.setattr("sk_stackae._data._INFERENCE_VALUES_PER_BATCH", 100 * 64)
    X = digits[0][:1000]
    assert inference_batch_size((64, 32), 16) == 100
    recorder = PhaseRecorder(counting_forward)
    model = StackedAutoencoder((32, 8), pretrain_epochs=1, finetune_epochs=0, batch_size=16, random_state=0)
    with listening(recorder):
        model.fit(X)
    (cache,) = recorder.caches
    assert cache["layer"] == 1
    assert cache["calls"] == Counter({model.network_.encoder[0].bias: 10})


def test_cached_codes_are_the_frozen_layers_output_without_autograd(recorded_fit, blobs):
    model, phases, _ = recorded_fit
    network = model.network_
    inputs = torch.as_tensor(blobs, dtype=torch.float32, device=model.device_)
    with torch.no_grad():
        h1 = network.encode_layer(0, inputs)
        h2 = network.encode_layer(1, h1)
    for phase, expected in ((phases[1], h1), (phases[2], h2)):
        cache = phase["rows_at_start"]
        assert not phase["rows"].tensor.requires_grad and phase["rows"].tensor.grad_fn is None
        torch.testing.assert_close(cache, expected, rtol=1e-5, atol=1e-6)


def test_deeper_phases_reconstruct_codes_with_mse(digits):
    X, _ = digits
    recorder = PhaseRecorder()
    with listening(recorder):
        StackedAutoencoder(
            (16, 8, 4), output_activation="sigmoid", loss="bce", pretrain_epochs=1, finetune_epochs=1, random_state=0
        ).fit(X[:200])
    assert [phase["phase"].objective.terms[0].kind for phase in recorder.phases] == ["bce", "mse", "mse", "bce"]


def test_pretraining_lowers_each_phase_loss(blobs):
    model = StackedAutoencoder((10, 6), pretrain_epochs=15, finetune_epochs=0, batch_size=16, random_state=0)
    model.fit(blobs)
    assert len(model.pretrain_loss_curves_) == 2
    for curve in model.pretrain_loss_curves_:
        assert len(curve) == 15
        assert curve[-1] < 0.7 * curve[0]


def test_pretrain_epochs_zero_skips_pretraining(blobs):
    recorder = PhaseRecorder()
    with listening(recorder):
        model = StackedAutoencoder((8, 4), pretrain_epochs=0, finetune_epochs=2, random_state=0).fit(blobs)
    assert [phase["name"] for phase in recorder.phases] == ["finetune"]
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


class _StartingLoss(TrainingListener):
    def __init__(self):
        self.starts = []

    def phase_started(self, phase):
        rows = phase.rows.tensor
        with torch.no_grad():
            (pre_activation,), _ = phase.training_pass.forward(rows)
        loss = phase.objective.loss({"reconstruction": pre_activation}, Batch(rows))
        self.starts.append((loss.item(), rows.var(dim=0, unbiased=False).mean().item()))


@pytest.mark.parametrize("pretrain_epochs", [1, 0])
def test_each_phase_starts_by_predicting_the_mean_of_what_it_reconstructs(pretrain_epochs, blobs):
    listener = _StartingLoss()
    with listening(listener):
        StackedAutoencoder((10, 6), pretrain_epochs=pretrain_epochs, finetune_epochs=1, random_state=0).fit(blobs)
    assert len(listener.starts) == (3 if pretrain_epochs else 1)
    # The loss of predicting every column's mean is the mean column variance
    # (the fine-tune after pretraining starts from what pretraining left).
    for loss, variance in listener.starts[: 2 if pretrain_epochs else 1]:
        assert loss == pytest.approx(variance, rel=1e-4)


def test_narrower_caches_overwrite_the_previous_cache_and_never_the_data(recorded_fit, blobs):
    _, phases, _ = recorded_fit
    data, h1, h2 = (phase["rows"].tensor for phase in phases)
    assert data.data_ptr() != h1.data_ptr()
    assert h2.data_ptr() == h1.data_ptr()
    # The data the user passed is untouched.
    np.testing.assert_array_equal(data.cpu().numpy(), blobs.astype(np.float32))
