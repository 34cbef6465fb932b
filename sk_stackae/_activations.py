"""One record per activation: everything the package knows about it, in one place.

A hidden or output unit's activation is used by the network's modules (the
function), the hand-derived training step (the in-place form and the
gradient), the start of a reconstruction at the mean of its target (the
inverse), the initialisation (He or Glorot), the sparsity penalty (whether
its values are probabilities) and the ONNX converters (the nodes that
compute it). :data:`ACTIVATIONS` maps each name the estimators accept to
its :class:`Activation`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ._accel import torch_private

# torch's defaults, which the functions below use, and which the ONNX nodes
# and the gradients must spell out.
LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


@dataclass(frozen=True)
class Activation:
    """An activation, with what every part of the package needs of it.

    Attributes
    ----------
    name : str
        The name the estimators accept (``"relu"``...).
    function : callable
        ``function(pre_activation)``: the activation, as the network's
        modules apply it.
    gradient : callable
        ``gradient(grad_output, pre_activation, output)``: the gradient with
        respect to the pre-activation, written over ``grad_output`` (which
        the caller owns and needs no more). The kernels are the ones autograd
        runs (see :mod:`sk_stackae._accel.torch_private`).
    in_place : callable or None
        The activation written over its input, for activations whose
        gradient needs only their output: the hand-derived step then keeps no
        pre-activation. None where the gradient needs the pre-activation.
    inverse : callable
        A pre-activation that gives a wanted output (clamped into the
        activation's range): a reconstruction layer starts at the mean of
        its target through it.
    initializer : callable
        ``initializer(weight, generator)``: He uniform for rectifier-like
        units, Glorot uniform for the others.
    onnx_nodes : callable
        ``onnx_nodes(nodes, inputs)``: adds the nodes that compute the
        activation to an ONNX graph (``nodes`` is a
        :class:`sk_stackae._onnx.NetworkNodes`) and returns their output's
        name.
    unit_interval : bool
        Whether every value lies in (0, 1): a mean activation is then a
        probability, which the KL sparsity penalty and binary cross-entropy
        need.
    """

    name: str
    function: Callable
    gradient: Callable
    in_place: Callable | None
    inverse: Callable
    initializer: Callable
    onnx_nodes: Callable
    unit_interval: bool = False


def _identity(x):
    return x


def _identity_gradient(grad, pre_activation, output):
    return grad


def _he_uniform(weight, generator):
    nn.init.kaiming_uniform_(weight, nonlinearity="relu", generator=generator)


def _glorot_uniform(weight, generator):
    nn.init.xavier_uniform_(weight, generator=generator)


def _logit(p):
    return torch.logit(p, eps=1e-6)


def _atanh(y):
    return torch.atanh(y.clamp(-1 + 1e-6, 1 - 1e-6))


def _inverse_relu(y):
    return y.clamp(min=0)


def _inverse_leaky_relu(y):
    return torch.where(y >= 0, y, y / LEAKY_RELU_SLOPE)


def _inverse_elu(y):
    return torch.where(y >= 0, y, torch.log1p((y / ELU_ALPHA).clamp(min=-1 + 1e-6)))


def _inverse_gelu(y, iterations=50):
    # GELU has no closed-form inverse; bisect on its increasing branch.
    y = y.clamp(min=-0.16)
    low = torch.full_like(y, -0.75)
    high = y.abs() + 1.0
    for _ in range(iterations):
        middle = (low + high) / 2
        too_low = F.gelu(middle) < y
        low = torch.where(too_low, middle, low)
        high = torch.where(too_low, high, middle)
    return (low + high) / 2


def _leaky_relu(x):
    return F.leaky_relu(x, LEAKY_RELU_SLOPE)


def _elu(x):
    return F.elu(x, ELU_ALPHA)


# ------------------------------------------------------------ ONNX nodes


def _identity_nodes(nodes, inputs):
    return inputs


def _sigmoid_nodes(nodes, inputs):
    return nodes.node("Sigmoid", inputs)


def _tanh_nodes(nodes, inputs):
    return nodes.node("Tanh", inputs)


def _relu_nodes(nodes, inputs):
    return nodes.node("Relu", inputs)


def _leaky_relu_nodes(nodes, inputs):
    # onnxruntime has no float64 LeakyRelu; for a slope below 1, max(x, slope * x) is the same function.
    return nodes.node("Max", inputs, nodes.node("Mul", inputs, nodes.scalar(LEAKY_RELU_SLOPE)))


def _elu_nodes(nodes, inputs):
    # onnxruntime has no float64 Elu. Min keeps Exp finite on the branch that Where discards.
    zero = nodes.scalar(0.0)
    negative_branch = nodes.node(
        "Mul",
        nodes.scalar(ELU_ALPHA),
        nodes.node("Sub", nodes.node("Exp", nodes.node("Min", inputs, zero)), nodes.scalar(1.0)),
    )
    return nodes.node("Where", nodes.node("Greater", inputs, zero), inputs, negative_branch)


def _gelu_nodes(nodes, inputs):
    # The exact form, x / 2 * (1 + erf(x / sqrt(2))), as torch computes it by default.
    erf = nodes.erf(nodes.node("Mul", inputs, nodes.scalar(1.0 / math.sqrt(2.0))))
    return nodes.node("Mul", nodes.node("Mul", inputs, nodes.scalar(0.5)), nodes.node("Add", nodes.scalar(1.0), erf))


_SIGMOID = Activation(
    name="logistic",
    function=torch.sigmoid,
    gradient=torch_private.sigmoid_gradient,
    in_place=torch.sigmoid_,
    inverse=_logit,
    initializer=_glorot_uniform,
    onnx_nodes=_sigmoid_nodes,
    unit_interval=True,
)

ACTIVATIONS = {
    "identity": Activation(
        "identity", _identity, _identity_gradient, _identity, _identity, _glorot_uniform, _identity_nodes
    ),
    "logistic": _SIGMOID,
    # The same function under its other common name.
    "sigmoid": replace(_SIGMOID, name="sigmoid"),
    "tanh": Activation(
        "tanh", torch.tanh, torch_private.tanh_gradient, torch.tanh_, _atanh, _glorot_uniform, _tanh_nodes
    ),
    "relu": Activation(
        "relu", torch.relu, torch_private.relu_gradient, torch.relu_, _inverse_relu, _he_uniform, _relu_nodes
    ),
    "leaky_relu": Activation(
        "leaky_relu",
        _leaky_relu,
        torch_private.leaky_relu_gradient(LEAKY_RELU_SLOPE),
        None,
        _inverse_leaky_relu,
        _he_uniform,
        _leaky_relu_nodes,
    ),
    "elu": Activation("elu", _elu, torch_private.elu_gradient(ELU_ALPHA), None, _inverse_elu, _he_uniform, _elu_nodes),
    "gelu": Activation("gelu", F.gelu, torch_private.gelu_gradient, None, _inverse_gelu, _he_uniform, _gelu_nodes),
}

# What initialises a prediction head, whatever the hidden units are: it is linear.
LINEAR_INITIALIZER = _glorot_uniform
