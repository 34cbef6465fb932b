"""The torch modules: shapes, activations per layer, initialisation."""

import math

import numpy as np
import pytest
import torch

from sk_stackae._network import (
    ACTIVATIONS,
    INVERSE_ACTIVATIONS,
    StackedAutoencoderNetwork,
    build_network,
    linear_filters,
    maximizing_inputs,
)


def make_network(hidden=(16, 8, 4), activation="relu", **kwargs):
    kwargs = {"code_activation": "identity", "output_activation": "identity", **kwargs}
    network = StackedAutoencoderNetwork(20, hidden, activation=activation, **kwargs)
    network.reset_parameters(torch.Generator().manual_seed(0))
    return network


def test_decoder_mirrors_the_encoder():
    network = make_network()
    assert [tuple(layer.weight.shape) for layer in network.encoder] == [(16, 20), (8, 16), (4, 8)]
    assert [tuple(layer.weight.shape) for layer in network.decoder] == [(20, 16), (16, 8), (8, 4)]
    x = torch.randn(5, 20)
    assert network.encode(x).shape == (5, 4)
    assert network.decode(network.encode(x)).shape == (5, 20)


def test_each_decoder_layer_ends_in_the_activation_of_what_it_rebuilds():
    network = make_network(activation="tanh", code_activation="sigmoid", output_activation="sigmoid")
    assert network.encoder_activation_names == ["tanh", "tanh", "sigmoid"]
    assert network.decoder_activation_names == ["sigmoid", "tanh", "tanh"]
    codes = network.encode(torch.randn(50, 20) * 10)
    assert codes.min() >= 0 and codes.max() <= 1


def test_reconstruct_returns_the_pre_activation_output_and_every_code():
    network = make_network(output_activation="sigmoid")
    x = torch.randn(5, 20)
    pre_activation, codes = network.reconstruct(x)
    torch.testing.assert_close(torch.sigmoid(pre_activation), network.decode(network.encode(x)))
    assert [c.shape[1] for c in codes] == [16, 8, 4]
    torch.testing.assert_close(codes[-1], network.encode(x))


def test_reconstruct_layer_is_a_shallow_autoencoder_on_its_input():
    network = make_network()
    h1 = torch.randn(5, 16)
    pre_activation, (code,) = network.reconstruct_layer(1, h1)
    torch.testing.assert_close(code, network.encode_layer(1, h1))
    activation = ACTIVATIONS[network.decoder_activation_names[1]]
    torch.testing.assert_close(activation(pre_activation), network.decode_layer(1, code))
    assert {id(p) for p in network.layer_parameters(1)} == {
        id(network.encoder[1].weight),
        id(network.encoder[1].bias),
        id(network.decoder[1].weight),
        id(network.decoder[1].bias),
    }


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu"])
def test_rectifier_networks_get_he_initialisation(activation):
    network = make_network(hidden=(256, 128), activation=activation)
    weight = network.encoder[0].weight
    bound = math.sqrt(6 / 20)  # He uniform: gain sqrt(2) * sqrt(3 / fan_in)
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.95 * bound
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 20), rel=0.05)


@pytest.mark.parametrize("activation", ["tanh", "logistic", "sigmoid", "identity"])
def test_saturating_networks_get_glorot_initialisation(activation):
    network = make_network(hidden=(256, 128), activation=activation)
    weight = network.encoder[0].weight
    bound = math.sqrt(6 / (20 + 256))
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.95 * bound


def test_biases_start_at_zero():
    network = make_network()
    assert all(torch.count_nonzero(layer.bias) == 0 for layer in (*network.encoder, *network.decoder))


def test_initialisation_comes_from_the_generator_alone():
    state = torch.get_rng_state()
    a = make_network()
    b = make_network()
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds_a_network_that_runs(name):
    network = make_network(activation=name, code_activation=name)
    out = network.decode(network.encode(torch.randn(3, 20)))
    assert torch.isfinite(out).all()


def test_build_network_rebuilds_the_architecture_from_its_config():
    network = make_network(activation="elu", output_activation="sigmoid")
    twin = build_network(network.config)
    twin.load_state_dict(network.state_dict())
    x = torch.randn(4, 20)
    torch.testing.assert_close(twin.decode(twin.encode(x)), network.decode(network.encode(x)))


@pytest.mark.parametrize("name", sorted(INVERSE_ACTIVATIONS))
def test_inverse_activations_recover_the_pre_activation_of_reachable_values(name):
    pre_activation = torch.linspace(-0.5, 3.0, 50)
    values = ACTIVATIONS[name](pre_activation)
    torch.testing.assert_close(ACTIVATIONS[name](INVERSE_ACTIVATIONS[name](values)), values, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("output_activation", ["identity", "sigmoid"])
def test_a_reconstruction_started_at_the_mean_predicts_the_mean_for_any_input(output_activation):
    network = make_network(output_activation=output_activation)
    mean = torch.rand(20) * 0.8 + 0.1
    network.start_reconstruction_at(0, mean)
    assert torch.count_nonzero(network.decoder[0].weight) == 0
    reconstruction = network.decode(network.encode(torch.randn(7, 20)))
    torch.testing.assert_close(reconstruction, mean.expand(7, 20), atol=1e-5, rtol=1e-5)


def test_a_tied_reconstruction_keeps_the_shared_weight_and_moves_only_its_bias():
    network = make_network(tied_weights=True)
    weight = network.encoder[1].weight.detach().clone()
    network.start_reconstruction_at(1, torch.full((16,), 0.3))
    assert torch.equal(network.encoder[1].weight, weight)
    torch.testing.assert_close(network.decoder[1].bias, torch.full((16,), 0.3))


# ------------------------------------------------- a module for PyTorch users


@pytest.mark.parametrize("tied_weights", [False, True])
def test_the_network_is_a_module_whose_forward_is_the_reconstruction(tied_weights):
    network = make_network(activation="elu", output_activation="sigmoid", tied_weights=tied_weights)
    x = torch.randn(6, 20)
    torch.testing.assert_close(network(x), network.decode(network.encode(x)))
    pre_activation, _ = network.reconstruct(x)
    torch.testing.assert_close(network(x), torch.sigmoid(pre_activation))


@pytest.mark.parametrize("tied_weights", [False, True])
def test_encoder_and_decoder_modules_stand_alone_and_share_the_weights(tied_weights):
    network = make_network(activation="tanh", code_activation="sigmoid", tied_weights=tied_weights)
    encoder, decoder = network.encoder_module(), network.decoder_module()
    x = torch.randn(6, 20)
    assert torch.equal(encoder(x), network.encode(x))
    codes = torch.rand(6, 4)
    assert torch.equal(decoder(codes), network.decode(codes))
    # The halves hold the network's own parameters: every tensor they use.
    network_parameters = {id(p) for p in network.parameters()}
    assert {id(p) for p in encoder.parameters()} == {id(p) for p in network.encoder.parameters()}
    assert {id(p) for p in decoder.parameters()} <= network_parameters
    if tied_weights:
        assert {id(layer.weight) for layer in network.encoder} <= {id(p) for p in decoder.parameters()}
    with torch.no_grad():
        network.encoder[0].weight.mul_(2)
    assert torch.equal(encoder(x), network.encode(x))


@pytest.mark.parametrize("tied_weights", [False, True])
def test_encoder_and_decoder_modules_export_with_torch_export(tied_weights):
    network = make_network(tied_weights=tied_weights)
    encoder = torch.export.export(network.encoder_module(), (torch.randn(3, 20),))
    decoder = torch.export.export(network.decoder_module(), (torch.randn(3, 4),))
    x = torch.randn(3, 20)
    torch.testing.assert_close(decoder.module()(encoder.module()(x)), network(x))


# ------------------------------------------------ what the units respond to


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
