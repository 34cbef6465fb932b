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
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ._activations import ACTIVATIONS, LINEAR_INITIALIZER


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
    (after dropout) and ends in one of the pass's outputs, in the order of
    :attr:`TrainingPass.outputs`. Dropout masks are drawn in the order of
    the trunk, then of the branches, as the passes of the network draw them.
    """

    trunk: list
    branches: list

    def steps(self):
        """Every layer of the pass: the trunk's, then each branch's."""
        return [*self.trunk, *(step for branch in self.branches for step in branch)]


@dataclass(frozen=True)
class TrainingPass:
    """One of the network's training computations, as a module call and as plain layers.

    Attributes
    ----------
    outputs : tuple of str
        What the pass computes, by name: ``"reconstruction"`` (before its
        final activation) and/or ``"scores"`` (the head's output).
    forward : callable
        ``forward(inputs, dropout=0.0, generator=None) -> (outputs, codes)``:
        a tuple of one tensor per name of :attr:`outputs`, and every code
        of the trunk before dropout. Autograd differentiates it.
    path : DensePath or None
        The same computation layer by layer, for a step that derives its
        gradients by hand; None for a pass that only autograd trains.
    network : torch.nn.Module or None
        The network whose pass this is (for listeners that evaluate it).
    reads_batch : bool, default=False
        Whether ``forward`` also takes ``batch=``, the
        :class:`~sk_stackae._losses.Batch` (a pass that needs the clean
        rows beside the corrupted ones, or the rows' weights).
    """

    outputs: tuple
    forward: object
    path: DensePath | None
    network: object = None
    reads_batch: bool = False


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
        self._encoder_activations = [ACTIVATIONS[name].function for name in self.encoder_activation_names]
        self._decoder_activations = [ACTIVATIONS[name].function for name in self.decoder_activation_names]
        # Registered after the encoder and the decoder, so that an
        # autoencoder's parameters come first, in the same order, with or
        # without a head.
        self.head = None if n_outputs is None else DenseLayer(widths[-1], int(n_outputs))

    @property
    def code_size(self):
        return self.widths[-1]

    def reset_parameters(self, generator):
        """Draw every weight from ``generator`` (a CPU ``torch.Generator``)."""
        initializer = ACTIVATIONS[self.activation].initializer
        for layer in (*self.encoder, *self.decoder):
            layer.reset_parameters(initializer, generator)
        if self.head is not None:
            self.head.reset_parameters(LINEAR_INITIALIZER, generator)

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
        inverse = ACTIVATIONS[self.decoder_activation_names[k]].inverse
        layer.bias.copy_(inverse(target_mean.to(layer.bias)))

    @torch.no_grad()
    def load_autoencoder_from(self, trained):
        """Copy the encoder's and the decoder's parameters of ``trained`` (a network of the same widths)."""
        for own, theirs in zip(self.autoencoder_parameters(), trained.autoencoder_parameters(), strict=True):
            own.copy_(theirs)

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

    def layer_pass(self, k):
        """Pretraining phase ``k``'s pass: layer pair ``k`` as a shallow autoencoder on ``h[k]``."""
        return TrainingPass(
            outputs=("reconstruction",),
            forward=_as_outputs(partial(self.reconstruct_layer, k)),
            path=DensePath(
                [self._affine(self.encoder[k], self.encoder_activation_names[k], True)],
                [[self._affine(self.decoder[k], None, False)]],
            ),
            network=self,
        )

    def training_pass(self, outputs):
        """The pass through the whole stack that computes ``outputs``.

        Parameters
        ----------
        outputs : tuple of str
            ``("reconstruction",)`` (:meth:`reconstruct`), ``("scores",)``
            (:meth:`predict_scores`) or ``("scores", "reconstruction")``
            (:meth:`predict_and_reconstruct`).

        Returns
        -------
        TrainingPass
        """
        outputs = tuple(outputs)
        encoder = [self._affine(self.encoder[k], self.encoder_activation_names[k], True) for k in range(self.n_layers)]
        decoder = [
            self._affine(self.decoder[k], self.decoder_activation_names[k], True)
            for k in range(self.n_layers - 1, 0, -1)
        ]
        decoder.append(self._affine(self.decoder[0], None, False))
        branches = {"reconstruction": decoder}
        if self.head is not None:
            branches["scores"] = [self._affine(self.head, None, False)]
        forwards = {
            ("reconstruction",): _as_outputs(self.reconstruct),
            ("scores",): _as_outputs(self.predict_scores),
            ("scores", "reconstruction"): self.predict_and_reconstruct,
        }
        if outputs not in forwards or any(name not in branches for name in outputs):
            raise ValueError(f"This network has no training pass that computes {outputs}.")
        path = DensePath(encoder, [branches[name] for name in outputs])
        return TrainingPass(outputs, forwards[outputs], path, network=self)

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
            hidden = ACTIVATIONS[name].function(layer(hidden))
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
            hidden = ACTIVATIONS[self.activation_names[k]].function(self.layers[k](hidden))
        return hidden


def build_network(config):
    """Rebuild a network (parameters uninitialised) from its ``config``."""
    return StackedAutoencoderNetwork(**config)


def _as_outputs(forward):
    """A pass with one output, returning it as a one-tuple like every training pass."""

    def one_output(inputs, *, dropout=0.0, generator=None):
        output, codes = forward(inputs, dropout=dropout, generator=generator)
        return (output,), codes

    return one_output
