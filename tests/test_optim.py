"""The phases' optimisers: torch's, their settings, and how they are saved and loaded."""

import subprocess
import sys

import pytest
import torch
from conftest import DEVICE
from phases import finetune_phase, make_network

from sk_stackae._loop import TrainingOptions, train_phase
from sk_stackae._optim import (
    make_optimizer,
    optimizer_from_numpy,
    optimizer_saved_in_format_1,
    optimizer_to_numpy,
)


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 10, generator=generator)
    return (torch.randn(100, 3, generator=generator) @ basis).to(DEVICE)


def test_alpha_penalises_weights_not_biases():
    network = make_network()
    options = TrainingOptions(optimizer="adam", learning_rate_init=1e-3, alpha=0.5, batch_size=16)
    optimizer = make_optimizer(options, list(network.parameters()), 16)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay[id(network.encoder[0].weight)] == pytest.approx(2 * 0.5 / 16)
    assert decay[id(network.encoder[0].bias)] == 0.0


def test_alpha_shrinks_the_weights(data):
    norms = []
    for alpha in (0.0, 50.0):
        network = make_network()
        options = TrainingOptions(optimizer="adam", learning_rate_init=1e-2, alpha=alpha, batch_size=16)
        train_phase(finetune_phase(network, data, epochs=20), options, torch.Generator().manual_seed(0))
        norms.append(sum(layer.weight.norm() ** 2 for layer in network.encoder).item())
    assert norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_every_optimizer_trains(name, data):
    options = TrainingOptions(optimizer=name, learning_rate_init=1e-2, batch_size=16)
    curve = train_phase(finetune_phase(make_network(), data, epochs=20), options, torch.Generator().manual_seed(0))
    assert curve.loss_curve[-1] < 0.5 * curve.loss_curve[0]


def test_optimizers_are_the_torch_ones_with_their_settings():
    network = make_network()
    parameters = list(network.parameters())
    sgd = make_optimizer(TrainingOptions(optimizer="sgd", momentum=0.5, learning_rate_init=0.1), parameters, 16)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.5 and sgd.param_groups[0]["lr"] == 0.1
    adamw = make_optimizer(TrainingOptions(optimizer="adamw", alpha=0.01), parameters, 16)
    assert isinstance(adamw, torch.optim.AdamW)
    # AdamW's decay is decoupled: alpha is its rate as is, not rescaled.
    assert adamw.param_groups[0]["weight_decay"] == 0.01
    assert adamw.param_groups[1]["weight_decay"] == 0.0


# ------------------------------------------------------ saved optimisers


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (TrainingOptions(optimizer="adam"), torch.optim.Adam),
        (TrainingOptions(optimizer="adamw", alpha=0.1), torch.optim.AdamW),
        (TrainingOptions(optimizer="sgd", alpha=0.5, momentum=0.3), torch.optim.SGD),
    ],
)
def test_a_saved_optimizer_comes_back_with_its_class_groups_and_state(options, expected, data):
    network = make_network()
    parameters = list(network.parameters())
    optimizer = make_optimizer(options, parameters, 16)
    train_phase(finetune_phase(network, data, epochs=2), options, torch.Generator().manual_seed(0), None, optimizer)
    saved = optimizer_to_numpy(optimizer, parameters)
    twin = make_network()
    twin.load_state_dict(network.state_dict())
    restored = optimizer_from_numpy(saved, list(twin.parameters()))
    assert isinstance(restored, expected) and type(restored) is type(optimizer)
    assert restored.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for before, after in zip(optimizer.param_groups, restored.param_groups, strict=True):
        assert [p.shape for p in before["params"]] == [p.shape for p in after["params"]]
    # Both carry on alike: same state, same next steps.
    for net, opt in ((network, optimizer), (twin, restored)):
        train_phase(finetune_phase(net, data, epochs=1), options, torch.Generator().manual_seed(1), None, opt)
    for p, q in zip(network.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("options", [TrainingOptions(optimizer="adamw", alpha=0.1), TrainingOptions(optimizer="sgd")])
def test_a_bare_state_dict_of_pickle_format_1_is_read_with_its_class_and_groups(options):
    network = make_network()
    parameters = list(network.parameters())
    optimizer = make_optimizer(options, parameters, 16)
    saved = optimizer_to_numpy(optimizer, parameters)
    upgraded = optimizer_saved_in_format_1(saved["state_dict"], parameters)
    assert upgraded["class"] == saved["class"] and upgraded["groups"] == saved["groups"]


FIRST_FIT = """
import sys
import numpy as np
from sk_stackae import StackedAutoencoder
X = np.random.default_rng(0).random((200, 12), dtype=np.float32)
StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, optimizer={optimizer!r}, random_state=0).fit(X)
print("torch._dynamo" in sys.modules)
"""


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_a_fit_does_not_import_torch_dynamo(optimizer):
    # torch's optimisers import torch._dynamo (and sympy) on their first
    # step, about 1.5 s of a process's first fit; the package's do not.
    code = FIRST_FIT.format(optimizer=optimizer)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
