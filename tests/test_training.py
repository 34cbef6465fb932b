"""The training loop shared by every phase."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from sk_stackae._data import TensorRows
from sk_stackae._network import StackedAutoencoderNetwork
from sk_stackae._training import (
    DivergenceError,
    Phase,
    ReconstructionLoss,
    TrainingOptions,
    make_optimizer,
    train_phase,
)

OPTIONS = TrainingOptions(optimizer="adam", learning_rate=1e-2, alpha=0.0, batch_size=16)


def make_network():
    network = StackedAutoencoderNetwork(
        10, (6, 3), activation="relu", code_activation="identity", output_activation="identity"
    )
    network.reset_parameters(torch.Generator().manual_seed(0))
    return network


def finetune_phase(network, data, epochs=5):
    return Phase(
        name="finetune",
        parameters=list(network.parameters()),
        forward=network.reconstruct,
        loss=ReconstructionLoss("mse", "identity"),
        rows=TensorRows(data),
        epochs=epochs,
    )


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 10, generator=generator)
    return torch.randn(100, 3, generator=generator) @ basis


def test_loss_curve_has_one_falling_entry_per_epoch(data):
    curve = train_phase(finetune_phase(make_network(), data, epochs=30), OPTIONS, torch.Generator().manual_seed(0))
    assert len(curve) == 30
    assert curve[-1] < 0.3 * curve[0]


def test_epoch_loss_is_the_mean_over_rows_of_the_batch_losses(data):
    # learning rate ~0: the weights stay put, so the epoch loss must equal the
    # loss of the whole set, last (smaller) batch weighted by its size.
    network = make_network()
    options = TrainingOptions(optimizer="adam", learning_rate=1e-30, alpha=0.0, batch_size=32)
    (epoch_loss,) = train_phase(finetune_phase(network, data, epochs=1), options, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(network.decode(network.encode(data)), data).item()
    assert epoch_loss == pytest.approx(expected, rel=1e-5)


def test_only_the_phase_parameters_change(data):
    network = make_network()
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    phase = Phase(
        name="pretrain layer 1/2",
        parameters=network.layer_parameters(0),
        forward=lambda x: network.reconstruct_layer(0, x),
        loss=ReconstructionLoss("mse", "identity"),
        rows=TensorRows(data),
        epochs=2,
    )
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0))
    changed = {name for name, p in network.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"encoder.0.weight", "encoder.0.bias", "decoder.0.weight", "decoder.0.bias"}


class _CountItemCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.item:
            self.calls += 1
        return func(*args, **(kwargs or {}))


def test_the_loss_is_read_back_once_per_epoch_not_per_batch(data):
    # Reading a tensor's value is what forces a host-device sync on a GPU.
    counter = _CountItemCalls()
    with counter:
        train_phase(finetune_phase(make_network(), data, epochs=4), OPTIONS, torch.Generator().manual_seed(0))
    assert counter.calls == 4  # 7 batches per epoch


def test_report_is_called_after_every_epoch(data):
    reports = []
    phase = finetune_phase(make_network(), data, epochs=3)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), lambda *args: reports.append(args))
    assert [(r[0], r[1]) for r in reports] == [(phase, 1), (phase, 2), (phase, 3)]
    assert all(r[3] >= 0 for r in reports)


def test_non_finite_loss_raises_naming_phase_and_epoch(data):
    options = TrainingOptions(optimizer="adam", learning_rate=1e30, alpha=0.0, batch_size=16)
    phase = finetune_phase(make_network(), data * 1e10, epochs=5)
    phase.name = "pretrain layer 2/3"
    with pytest.raises(DivergenceError, match=r"became (nan|inf) in pretrain layer 2/3 at epoch \d/5"):
        train_phase(phase, options, torch.Generator().manual_seed(0))


def test_same_generator_seed_gives_identical_training(data):
    curves = []
    for _ in range(2):
        network = make_network()
        curves.append(train_phase(finetune_phase(network, data), OPTIONS, torch.Generator().manual_seed(5)))
    assert curves[0] == curves[1]


def test_alpha_penalises_weights_not_biases():
    network = make_network()
    options = TrainingOptions(optimizer="adam", learning_rate=1e-3, alpha=0.5, batch_size=16)
    optimizer = make_optimizer(options, list(network.parameters()), 16, torch.device("cpu"))
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay[id(network.encoder[0].weight)] == pytest.approx(2 * 0.5 / 16)
    assert decay[id(network.encoder[0].bias)] == 0.0


def test_alpha_shrinks_the_weights(data):
    norms = []
    for alpha in (0.0, 50.0):
        network = make_network()
        options = TrainingOptions(optimizer="adam", learning_rate=1e-2, alpha=alpha, batch_size=16)
        train_phase(finetune_phase(network, data, epochs=20), options, torch.Generator().manual_seed(0))
        norms.append(sum(layer.weight.norm() ** 2 for layer in network.encoder).item())
    assert norms[1] < 0.5 * norms[0]


def test_bce_loss_works_on_logits_and_matches_the_probability_form():
    loss = ReconstructionLoss("bce", "sigmoid")
    logits = torch.tensor([[-50.0, 0.0, 3.0]])
    target = torch.tensor([[0.0, 0.5, 1.0]])
    p = torch.sigmoid(logits).clamp(1e-12, 1 - 1e-12)
    expected = -(target * p.log() + (1 - target) * (1 - p).log())
    torch.testing.assert_close(loss.per_sample(logits, target), expected.mean(dim=1))
    assert torch.isfinite(loss(torch.tensor([[-1e4, 1e4]]), torch.tensor([[1.0, 0.0]])))
