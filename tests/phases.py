"""Phases to train in the tests of the loop, its callbacks, losses and optimisers."""

import torch
from conftest import DEVICE

from sk_stackae._data import TensorRows
from sk_stackae._engine import objective_for
from sk_stackae._loop import Phase, TrainingOptions
from sk_stackae._losses import ReconstructionError
from sk_stackae._network import StackedAutoencoderNetwork
from sk_stackae._tasks import ReconstructionScore

OPTIONS = TrainingOptions(optimizer="adam", learning_rate_init=1e-2, batch_size=16)


def make_network(code_activation="identity", hidden_layer_sizes=(6, 3)):
    network = StackedAutoencoderNetwork(
        10, hidden_layer_sizes, activation="relu", code_activation=code_activation, output_activation="identity"
    )
    network.reset_parameters(torch.Generator().manual_seed(0))
    return network.to(DEVICE)


def finetune_phase(network, data, epochs=5, options=OPTIONS, error=None):
    """The fine-tune of ``network`` on ``data``, with the regularisation of ``options``."""
    error = error or ReconstructionError("mse", "identity")
    return Phase(
        name="finetune",
        parameters=list(network.parameters()),
        training_pass=network.training_pass(("reconstruction",)),
        objective=objective_for(options, [error], network.encoder_activation_names),
        metric=ReconstructionScore(error),
        rows=TensorRows(data),
        epochs=epochs,
    )


def split(n, n_validation):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    return order[n_validation:], order[:n_validation]
