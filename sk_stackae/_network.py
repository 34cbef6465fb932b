"""The torch modules of a symmetric stacked autoencoder, and what can be read off them.

Nothing here knows about scikit-learn or about optimisers: the network maps
inputs to codes and codes to reconstructions, layer by layer or all at once.
:class:`StackedAutoencoderNetwork` is an ordinary ``torch.nn.Module`` whose
``forward`` reconstructs its input; :meth:`~StackedAutoencoderNetwork.encoder_module`
and :meth:`~StackedAutoencoderNetwork.decoder_module` give its two halves as
standalone modules (to call from PyTorch code, or to export with
``torch.onnx.export``).

Layer ``k`` (0-based) is the pair (encoder layer ``k``, decoder layer ``k``):
encoder layer ``k`` maps ``h[k] -> h[k + 1]`` and its mirror, decoder layer
``k``, maps ``h[k + 1]`` back to the width of ``h[k]``, where ``h[0]`` is the
input. Decoding runs the decoder layers from the deepest to layer 0, whose
output is the reconstruction. Pretraining phase ``k`` trains exactly the pair
``k`` as a shallow autoencoder on ``h[k]``.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _identity(x):
    return x


ACTIVATIONS = {
    "identity": _identity,
    "logistic": torch.sigmoid,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "gelu": F.gelu,
}

# The gradient with respect to an activation's input, from the gradient with
# respect to its output: ``gradient(grad_output, input, output)``. These are
# the kernels autograd itself runs for each activation, each writing its
# result over ``grad_output``: both callers (the hand-derived step and the
# losses' own gradients) own that tensor and no longer need it, and an
# elementwise kernel reads each element before it writes it. Written in
# place, the gradient needs no fresh tensor per layer and per step.
ACTIVATION_GRADIENTS = {
    "identity": lambda grad, z, h: grad,
    "logistic": lambda grad, z, h: torch.ops.aten.sigmoid_backward.grad_input(grad, h, grad_input=grad),
    "sigmoid": lambda grad, z, h: torch.ops.aten.sigmoid_backward.grad_input(grad, h, grad_input=grad),
    "tanh": lambda grad, z, h: torch.ops.aten.tanh_backward.grad_input(grad, h, grad_input=grad),
    "relu": lambda grad, z, h: torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=grad),
    "leaky_relu": lambda grad, z, h: torch.ops.aten.leaky_relu_backward.grad_input(
        grad, z, 0.01, False, grad_input=grad
    ),
    "elu": lambda grad, z, h: torch.ops.aten.elu_backward.grad_input(grad, 1.0, 1, 1, False, z, grad_input=grad),
    "gelu": lambda grad, z, h: torch.ops.aten.gelu_backward.grad_input(grad, z, grad_input=grad),
}

# Activations that keep every value inside (0, 1): the KL sparsity penalty
# needs a mean activation that is a probability.
UNIT_INTERVAL_ACTIVATIONS = frozenset({"logistic", "sigmoid"})


def _logit(p):
    return torch.logit(p, eps=1e-6)


def _atanh(y):
    return torch.atanh(y.clamp(-1 + 1e-6, 1 - 1e-6))


def _inverse_relu(y):
    return y.clamp(min=0)


def _inverse_leaky_relu(y):
    return torch.where(y >= 0, y, y / 0.01)


def _inverse_elu(y):
    return torch.where(y >= 0, y, torch.log1p(y.clamp(min=-1 + 1e-6)))


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


# Pre-activation values that give a wanted activation: used to start a
# reconstruction layer at the mean of its target.
INVERSE_ACTIVATIONS = {
    "identity": _identity,
    "logistic": _logit,
    "sigmoid": _logit,
    "tanh": _atanh,
    "relu": _inverse_relu,
    "leaky_relu": _inverse_leaky_relu,
    "elu": _inverse_elu,
    "gelu": _inverse_gelu,
}


def _he_uniform(weight, generator):
    nn.init.kaiming_uniform_(weight, nonlinearity="relu", generator=generator)


def _glorot_uniform(weight, generator):
    nn.init.xavier_uniform_(weight, generator=generator)


# He et al. (2015) for rectifier-like units, Glorot & Bengio (2010) for the
# saturating and linear ones.
INITIALIZERS = {
    "identity": _glorot_uniform,
    "logistic": _glorot_uniform,
    "sigmoid": _glorot_uniform,
    "tanh": _glorot_uniform,
    "relu": _he_uniform,
    "leaky_relu": _he_uniform,
    "elu": _he_uniform,
    "gelu": _he_uniform,
}


class DenseLayer(nn.Module):
    """An affine map ``x @ weight.T + bias`` with its own weight."""

    def __init__(self, in_features, out_features):
        super().__init__()
        # torch.empty draws nothing: initialisation happens later, from the
        # estimator's own generator, so the global RNG is never touched.
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))

    def reset_parameters(self, initializer, generator):
        initializer(self.weight, generator)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class TiedDenseLayer(nn.Module):
    """The transpose of an encoder layer's affine map, with its own bias.

    The encoder layer is referenced, not registered, so its weight is owned
    (and counted, saved and trained) once, by the encoder.
    """

    def __init__(self, encoder_layer):
        super().__init__()
        object.__setattr__(self, "encoder_layer", encoder_layer)
        self.bias = nn.Parameter(torch.empty(encoder_layer.weight.shape[1]))

    def reset_parameters(self, initializer, generator):
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return F.linear(x, self.encoder_layer.weight.t(), self.bias)


@dataclass(frozen=True)
class AffineStep:
    """One dense layer of a training pass: ``activation(x @ weight.T + bias)``, then dropout.

    Attributes
    ----------
    weight, bias : torch.nn.Parameter
        The layer's parameters; a tied decoder layer holds its encoder
        layer's weight.
    transposed : bool
        Whether the layer multiplies by ``weight`` instead of ``weight.T``
        (a tied decoder layer).
    activation : str or None
        A key of ``ACTIVATIONS``; None for a pass's output, which the loss
        takes before its activation.
    dropout : bool
        Whether the pass drops units of this layer's output.
    """

    weight: nn.Parameter
    bias: nn.Parameter
    transposed: bool
    activation: str | None
    dropout: bool


@dataclass(frozen=True)
class DensePath:
    """A training pass as plain layers: a trunk, then one or more branches on its output.

    The trunk's layer outputs are the pass's codes (sparsity penalties act
    on them, before dropout). Each branch starts from the trunk's output
    (after dropout) and ends in one of the pass's outputs: one branch gives
    one output, two give the tuple ``(head output, reconstruction)`` of
    :meth:`StackedAutoencoderNetwork.predict_and_reconstruct`. Dropout masks
    are drawn in the order of the trunk, then of the branches, as the
    passes of the network draw them.
    """

    trunk: list
    branches: list

    def steps(self):
        """Every layer of the pass: the trunk's, then each branch's."""
        return [*self.trunk, *(step for branch in self.branches for step in branch)]


class StackedAutoencoderNetwork(nn.Module):
    """A deep autoencoder whose decoder mirrors its encoder.

    Parameters
    ----------
    n_features : int
        Width of the input and of the reconstruction.
    hidden_layer_sizes : tuple of int
        Widths of the encoder layers; the last is the code size.
    activation : str
        Activation of every hidden layer but the code layer, in the encoder
        and in the decoder. A key of ``ACTIVATIONS``.
    code_activation : str
        Activation of the code layer.
    output_activation : str
        Activation of the reconstruction.
    tied_weights : bool, default=False
        Whether decoder layer ``k`` uses the transpose of encoder layer
        ``k``'s weight instead of a weight of its own.
    n_outputs : int or None, default=None
        Width of a prediction head on the codes (a dense layer without
        activation: class scores or regression values); None for an
        autoencoder alone.

    Attributes
    ----------
    config : dict
        The constructor's arguments: what :func:`build_network` needs to
        rebuild the architecture.

    Notes
    -----
    ``network(x)`` (:meth:`forward`) is the reconstruction of ``x``, final
    activation included, as :meth:`decode` of :meth:`encode` gives it.
    :meth:`reconstruct` and :meth:`reconstruct_layer` take ``dropout`` and a
    ``generator`` for training; every other method is inference and
    deterministic.

    Examples
    --------
    >>> import torch
    >>> network = StackedAutoencoderNetwork(
    ...     4, (3, 2), activation="relu", code_activation="identity", output_activation="identity")
    >>> network.reset_parameters(torch.Generator().manual_seed(0))
    >>> x = torch.randn(5, 4)
    >>> network(x).shape
    torch.Size([5, 4])
    >>> encoder, decoder = network.encoder_module(), network.decoder_module()
    >>> torch.equal(decoder(encoder(x)), network(x))
    True
    """

    def __init__(
        self,
        n_features,
        hidden_layer_sizes,
        *,
        activation,
        code_activation,
        output_activation,
        tied_weights=False,
        n_outputs=None,
    ):
        super().__init__()
        self.config = {
            "n_features": int(n_features),
            "hidden_layer_sizes": tuple(int(width) for width in hidden_layer_sizes),
            "activation": activation,
            "code_activation": code_activation,
            "output_activation": output_activation,
            "tied_weights": bool(tied_weights),
        }
        if n_outputs is not None:
            self.config["n_outputs"] = int(n_outputs)
        widths = (self.config["n_features"], *self.config["hidden_layer_sizes"])
        self.widths = widths
        self.n_layers = len(widths) - 1
        self.activation = activation
        self.encoder = nn.ModuleList(DenseLayer(widths[k], widths[k + 1]) for k in range(self.n_layers))
        if tied_weights:
            self.decoder = nn.ModuleList(TiedDenseLayer(layer) for layer in self.encoder)
        else:
            self.decoder = nn.ModuleList(DenseLayer(widths[k + 1], widths[k]) for k in range(self.n_layers))
        self.encoder_activation_names = [activation] * (self.n_layers - 1) + [code_activation]
        # Decoder layer k rebuilds h[k], so it ends in h[k]'s activation; h[0]
        # is the reconstruction.
        self.decoder_activation_names = [output_activation, *self.encoder_activation_names[:-1]]
        self._encoder_activations = [ACTIVATIONS[name] for name in self.encoder_activation_names]
        self._decoder_activations = [ACTIVATIONS[name] for name in self.decoder_activation_names]
        # Registered after the encoder and the decoder, so that an
        # autoencoder's parameters come first, in the same order, with or
        # without a head.
        self.head = None if n_outputs is None else DenseLayer(widths[-1], int(n_outputs))

    @property
    def code_size(self):
        return self.widths[-1]

    def reset_parameters(self, generator):
        """Draw every weight from ``generator`` (a CPU ``torch.Generator``)."""
        initializer = INITIALIZERS[self.activation]
        for layer in (*self.encoder, *self.decoder):
            layer.reset_parameters(initializer, generator)
        if self.head is not None:
            # The head is linear: Glorot, whatever the hidden units are.
            self.head.reset_parameters(_glorot_uniform, generator)

    def autoencoder_parameters(self):
        """The encoder's and the decoder's parameters: everything but the head."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def predict_scores(self, inputs, *, dropout=0.0, generator=None):
        """The head's output on the codes of ``inputs``, and every code (before dropout).

        ``dropout`` acts on every hidden layer, the code layer included, as
        in :meth:`reconstruct`.
        """
        hidden, codes = self._encode_for_training(inputs, dropout, generator)
        return self.head(hidden), codes

    def predict_and_reconstruct(self, inputs, *, dropout=0.0, generator=None):
        """``((head output, reconstruction before its activation), codes)``, from one pass through the encoder."""
        hidden, codes = self._encode_for_training(inputs, dropout, generator)
        return (self.head(hidden), self._decode_for_training(hidden, dropout, generator)), codes

    @torch.no_grad()
    def start_reconstruction_at(self, k, target_mean):
        """Make decoder layer ``k`` output ``target_mean`` whatever its input.

        Its weight starts at zero (unless tied to the encoder's) and its bias
        at the pre-activation of the mean, so a shallow autoencoder begins by
        predicting the mean of what it reconstructs, as PCA centres the data,
        instead of adding the noise of a random map to it.
        """
        layer = self.decoder[k]
        if isinstance(layer, DenseLayer):
            layer.weight.zero_()
        inverse = INVERSE_ACTIVATIONS[self.decoder_activation_names[k]]
        layer.bias.copy_(inverse(target_mean.to(layer.bias)))

    @torch.no_grad()
    def start_head_at(self, target_mean):
        """Make the head output ``target_mean`` for any input: zero weights, the mean as bias."""
        self.head.weight.zero_()
        self.head.bias.copy_(target_mean.to(self.head.bias))

    def layer_parameters(self, k):
        """The parameters that pretraining phase ``k`` trains: layer pair ``k``."""
        return [*self.encoder[k].parameters(), *self.decoder[k].parameters()]

    @staticmethod
    def _drop(hidden, dropout, generator):
        if dropout == 0.0:
            return hidden
        keep = 1.0 - dropout
        mask = torch.empty_like(hidden).bernoulli_(keep, generator=generator).div_(keep)
        return hidden * mask

    def encode_layer(self, k, inputs):
        """``h[k + 1]`` from ``h[k]``."""
        return self._encoder_activations[k](self.encoder[k](inputs))

    def decode_layer(self, k, hidden):
        """Decoder layer ``k`` applied to ``hidden``, activation included."""
        return self._decoder_activations[k](self.decoder[k](hidden))

    def encode(self, inputs, n_layers=None):
        """The codes of ``inputs``: every encoder layer in turn, or the first ``n_layers``."""
        hidden = inputs
        for k in range(self.n_layers if n_layers is None else n_layers):
            hidden = self.encode_layer(k, hidden)
        return hidden

    def decode(self, codes):
        """The reconstruction of ``codes``: every decoder layer, deepest first."""
        hidden = codes
        for k in reversed(range(self.n_layers)):
            hidden = self.decode_layer(k, hidden)
        return hidden

    def forward(self, inputs):
        """The reconstruction of ``inputs``: encode, then decode."""
        return self.decode(self.encode(inputs))

    def encoder_module(self):
        """The encoder as a standalone module: ``encoder(x)`` gives the codes of ``x``.

        It shares this network's parameters (training one trains the
        other) and holds nothing else, so it can be called, scripted or
        exported (``torch.onnx.export``) on its own.
        """
        return Encoder(self.encoder, self.encoder_activation_names)

    def decoder_module(self):
        """The decoder as a standalone module: ``decoder(codes)`` gives the reconstruction.

        It shares this network's parameters; with tied weights it holds the
        encoder layers too, whose transposed weights it uses.
        """
        return Decoder(
            self.decoder, self.decoder_activation_names, self.encoder if self.config["tied_weights"] else None
        )

    def reconstruct_layer(self, k, inputs, *, dropout=0.0, generator=None):
        """Run layer pair ``k`` as a shallow autoencoder on ``h[k]``.

        ``dropout`` zeroes each hidden unit with that probability, drawing
        from ``generator`` (and scales the rest up to keep the mean).

        Returns
        -------
        pre_activation : torch.Tensor
            Decoder layer ``k``'s output before its activation (the losses
            apply it, so that BCE can work on logits).
        codes : list of torch.Tensor
            ``[h[k + 1]]`` before dropout, for activity penalties.
        """
        code = self.encode_layer(k, inputs)
        return self.decoder[k](self._drop(code, dropout, generator)), [code]

    def reconstruct(self, inputs, *, dropout=0.0, generator=None):
        """Run the whole stack; same return values as :meth:`reconstruct_layer`.

        ``codes`` holds the output of every encoder layer, before dropout.
        """
        hidden, codes = self._encode_for_training(inputs, dropout, generator)
        return self._decode_for_training(hidden, dropout, generator), codes

    def training_path(self, forward):
        """The layers that a training pass runs, as plain steps (see :class:`DensePath`).

        Parameters
        ----------
        forward : callable
            One of this network's training passes: :meth:`reconstruct`,
            :meth:`predict_scores`, :meth:`predict_and_reconstruct`, or
            ``functools.partial(network.reconstruct_layer, k)``.

        Returns
        -------
        DensePath or None
            The same computation, layer by layer, for a step that computes
            its gradients by hand; None for any other callable.
        """
        encoder = [self._affine(self.encoder[k], self.encoder_activation_names[k], True) for k in range(self.n_layers)]
        decoder = [
            self._affine(self.decoder[k], self.decoder_activation_names[k], True)
            for k in range(self.n_layers - 1, 0, -1)
        ]
        decoder.append(self._affine(self.decoder[0], None, False))
        head = [] if self.head is None else [self._affine(self.head, None, False)]
        layer = getattr(forward, "func", None)
        if getattr(layer, "__self__", None) is self and layer.__func__ is StackedAutoencoderNetwork.reconstruct_layer:
            (k,) = forward.args
            return DensePath([encoder[k]], [[self._affine(self.decoder[k], None, False)]])
        if getattr(forward, "__self__", None) is not self:
            return None
        paths = {
            StackedAutoencoderNetwork.reconstruct: lambda: DensePath(encoder, [decoder]),
            StackedAutoencoderNetwork.predict_scores: lambda: DensePath(encoder, [head]),
            StackedAutoencoderNetwork.predict_and_reconstruct: lambda: DensePath(encoder, [head, decoder]),
        }
        path = paths.get(forward.__func__)
        return None if path is None else path()

    @staticmethod
    def _affine(layer, activation, dropout):
        if isinstance(layer, TiedDenseLayer):
            return AffineStep(layer.encoder_layer.weight, layer.bias, True, activation, dropout)
        return AffineStep(layer.weight, layer.bias, False, activation, dropout)

    def _encode_for_training(self, inputs, dropout, generator):
        """The codes after dropout, and every layer's output before it."""
        codes = []
        hidden = inputs
        for k in range(self.n_layers):
            code = self.encode_layer(k, hidden)
            codes.append(code)
            hidden = self._drop(code, dropout, generator)
        return hidden, codes

    def _decode_for_training(self, codes, dropout, generator):
        """The reconstruction of ``codes`` before its activation, with dropout on the hidden layers."""
        hidden = codes
        for k in range(self.n_layers - 1, 0, -1):
            hidden = self._drop(self.decode_layer(k, hidden), dropout, generator)
        return self.decoder[0](hidden)


class Encoder(nn.Module):
    """Dense layers and their activations, applied in order: the encoder half of a network.

    Parameters
    ----------
    layers : torch.nn.ModuleList
        The encoder layers (shared with the network they come from).
    activation_names : list of str
        The activation after each layer, keys of ``ACTIVATIONS``.
    """

    def __init__(self, layers, activation_names):
        super().__init__()
        self.layers = layers
        self.activation_names = list(activation_names)

    def forward(self, inputs):
        hidden = inputs
        for layer, name in zip(self.layers, self.activation_names, strict=True):
            hidden = ACTIVATIONS[name](layer(hidden))
        return hidden


class Decoder(nn.Module):
    """The decoder half of a network: its layers from the deepest to the reconstruction.

    Parameters
    ----------
    layers : torch.nn.ModuleList
        The decoder layers, layer 0 last applied (shared with the network).
    activation_names : list of str
        The activation after each layer, in the same order as ``layers``.
    tied_encoder : torch.nn.ModuleList or None
        With tied weights, the encoder layers whose transposed weights the
        decoder layers use; registered here so that the module holds every
        tensor it computes with.
    """

    def __init__(self, layers, activation_names, tied_encoder=None):
        super().__init__()
        self.layers = layers
        self.activation_names = list(activation_names)
        self.tied_encoder = tied_encoder

    def forward(self, codes):
        hidden = codes
        for k in reversed(range(len(self.layers))):
            hidden = ACTIVATIONS[self.activation_names[k]](self.layers[k](hidden))
        return hidden


def build_network(config):
    """Rebuild a network (parameters uninitialised) from its ``config``."""
    return StackedAutoencoderNetwork(**config)


# --------------------------------------------- what the units respond to

# Activation maximisation by projected gradient ascent: this many steps, the
# first this fraction of the input norm long, each later one a little shorter.
_MAXIMIZE_STEPS = 300
_MAXIMIZE_FIRST_STEP = 0.1
# Rows per no-grad batch when searching the data for each unit's best row.
_ACTIVATION_BATCH_SIZE = 4096


def linear_filters(network, layer):
    """``W_layer @ ... @ W_1`` as a float64 array: each unit's linear response to the input.

    For ``layer=1`` these are the first layer's weights, the units' exact
    linear filters; deeper, the product leaves out the activations and
    biases in between.
    """
    product = None
    for k in range(layer):
        weight = network.encoder[k].weight.detach().cpu().double().numpy()
        product = weight if product is None else weight @ product
    return product


def _onto_sphere(rows, norm):
    """Each row scaled to Euclidean norm ``norm``; rows of zeros stay zero."""
    lengths = rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
    return rows / lengths * norm


@torch.no_grad()
def _most_activating_rows(network, layer, units, X, norm):
    """For each unit, the row of ``X``, scaled to ``norm``, that activates it most.

    ``X`` stays in host memory; it goes to the network's device a batch at
    a time.
    """
    device = units.device
    best_activations = torch.full((len(units),), -torch.inf, device=device)
    best_rows = torch.zeros((len(units), X.shape[1]), device=device)
    for start in range(0, len(X), _ACTIVATION_BATCH_SIZE):
        batch = torch.as_tensor(X[start : start + _ACTIVATION_BATCH_SIZE], dtype=torch.float32, device=device)
        batch = _onto_sphere(batch, norm)
        activations, indices = network.encode(batch, n_layers=layer)[:, units].max(dim=0)
        better = activations > best_activations
        best_activations = torch.where(better, activations, best_activations)
        best_rows[better] = batch[indices[better]]
    return best_rows


def maximizing_inputs(network, layer, units, X):
    """Inputs of the mean norm of the rows of ``X`` that maximise each unit, as a float64 array.

    Erhan et al. (2009) "activation maximisation": for unit ``j`` of hidden
    layer ``layer`` (counted from 1), find ``x`` with ``||x|| = norm`` that
    maximises ``h_j(x)``, by projected gradient ascent. Each unit starts
    from the row of ``X`` (a float ndarray), scaled to that norm, that
    activates it most: a start inside the data, away from the stationary
    points that symmetric starts (such as the unit's weights) can sit on.
    Every unit's input is a row of one batch; as no row affects another's
    unit, one backward pass gives every unit's gradient.
    """
    device = next(network.parameters()).device
    norm = float(np.linalg.norm(X, axis=1).mean())
    units = torch.as_tensor(units, device=device)
    inputs = _most_activating_rows(network, layer, units, X, norm)
    rows = torch.arange(len(units), device=device)
    with torch.enable_grad():
        for step in range(_MAXIMIZE_STEPS):
            inputs.requires_grad_(True)
            activations = network.encode(inputs, n_layers=layer)[rows, units]
            (gradient,) = torch.autograd.grad(activations.sum(), inputs)
            with torch.no_grad():
                # Normalised steps of a shrinking length: the size of a
                # unit's gradient says nothing about how far its optimum is.
                step_length = _MAXIMIZE_FIRST_STEP * norm * (1 - step / _MAXIMIZE_STEPS)
                inputs = _onto_sphere(inputs.detach() + step_length * _onto_sphere(gradient, 1.0), norm)
    return inputs.cpu().double().numpy()
