"""The torch modules: shapes, activations per layer, initialisation."""

import math

import pytest
import torch

from sk_stackae._activations import ACTIVATIONS
from sk_stackae._network import StackedAutoencoderNetwork, build_network


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
    activation = ACTIVATIONS[network.decoder_activation_names[1]].function
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


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_inverse_activations_recover_the_pre_activation_of_reachable_values(name):
    activation = ACTIVATIONS[name]
    pre_activation = torch.linspace(-0.5, 3.0, 50)
    values = activation.function(pre_activation)
    torch.testing.assert_close(activation.function(activation.inverse(values)), values, atol=1e-4, rtol=1e-4)


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


@pytest.mark.parametrize("outputs", [("reconstruction",), ("scores",), ("scores", "reconstruction")])
def test_a_training_pass_and_its_dense_path_compute_the_same_outputs(outputs):
    network = make_network(n_outputs=3)
    training_pass = network.training_pass(outputs)
    x = torch.randn(5, 20)
    computed, codes = training_pass.forward(x)
    assert len(computed) == len(outputs) and len(codes) == network.n_layers
    with torch.no_grad():
        hidden = x
        for step in training_pass.path.trunk:
            hidden = _dense(step, hidden)
        for branch, expected in zip(training_pass.path.branches, computed, strict=True):
            output = hidden
            for step in branch:
                output = _dense(step, output)
            torch.testing.assert_close(output, expected)


def test_a_pass_that_the_network_cannot_compute_is_refused():
    with pytest.raises(ValueError, match="no training pass that computes"):
        make_network().training_pass(("scores",))


def _dense(step, inputs):
    weight = step.weight if step.transposed else step.weight.t()
    output = inputs @ weight + step.bias
    return output if step.activation is None else ACTIVATIONS[step.activation].function(output)
