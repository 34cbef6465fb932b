"""What the units of a network respond to: linear filters and activation maximisation."""

import numpy as np
import torch

from sk_stackae._features import linear_filters, maximizing_inputs
from sk_stackae._network import StackedAutoencoderNetwork


def make_network(hidden=(16, 8, 4), activation="relu"):
    network = StackedAutoencoderNetwork(
        20, hidden, activation=activation, code_activation="identity", output_activation="identity"
    )
    network.reset_parameters(torch.Generator().manual_seed(0))
    return network


def test_linear_filters_are_the_product_of_the_encoder_weights():
    network = make_network()
    first = network.encoder[0].weight.detach().double().numpy()
    second = network.encoder[1].weight.detach().double().numpy()
    np.testing.assert_array_equal(linear_filters(network, 1), first)
    np.testing.assert_allclose(linear_filters(network, 2), second @ first)


def test_maximizing_inputs_have_the_data_norm_and_beat_every_data_row_of_that_norm():
    network = make_network(activation="tanh")
    X = np.random.RandomState(0).uniform(size=(300, 20))
    units = [0, 3, 5]
    patterns = maximizing_inputs(network, 2, units, X)
    assert patterns.shape == (3, 20) and patterns.dtype == np.float64
    norm = np.linalg.norm(X, axis=1).mean()
    np.testing.assert_allclose(np.linalg.norm(patterns, axis=1), norm, rtol=1e-4)
    with torch.no_grad():
        achieved = network.encode(torch.as_tensor(patterns, dtype=torch.float32), n_layers=2).numpy()
        rows = torch.as_tensor(X / np.linalg.norm(X, axis=1, keepdims=True) * norm, dtype=torch.float32)
        best_row = network.encode(rows, n_layers=2).numpy().max(axis=0)
    assert np.all(achieved[np.arange(3), units] >= best_row[units])


def test_the_maximizing_input_of_a_first_layer_unit_points_along_its_weights():
    network = make_network()
    X = np.random.RandomState(1).normal(size=(200, 20))
    patterns = maximizing_inputs(network, 1, np.arange(16), X)
    weights = network.encoder[0].weight.detach().double().numpy()
    cosines = np.sum(patterns * weights, axis=1) / np.linalg.norm(patterns, axis=1) / np.linalg.norm(weights, axis=1)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)
