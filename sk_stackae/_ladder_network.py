"""The ladder network (Rasmus et al., 2015) built around a stacked autoencoder's encoder and head.

A ladder trains a corrupted encoder, a clean one and a denoising decoder
together. Both encoders are the network's own encoder layers and head, with
every layer's pre-activation batch-normalised (``W h`` standardised by its
batch's mean and standard deviation, then ``scale * z + shift`` before
the activation); the corrupted one adds Gaussian noise to the input and to
every normalised pre-activation. The decoder runs from the head down:
layer ``l``'s estimate of the clean ``z`` combines the corrupted ``z`` (the
lateral connection) with the batch-normalised projection of the estimate
above it (the paper's vanilla combinator), and the denoising cost of layer
``l`` is its mean squared difference from the clean pass's ``z``, both
standardised by the clean batch's statistics.

:class:`LadderNetwork` holds what the ladder adds (the shifts and scales, the
decoder's projections and combinators, running statistics); the encoder
weights stay the network's, referenced and trained in place.
:func:`layer_statistics` walks the layers over the training rows, which is
how a ladder starts from a plain network (:meth:`LadderNetwork.start_from`)
and how it is folded back into one (:meth:`LadderNetwork.fold_into`): with
the statistics of the training rows, the batch normalisation is an affine
map per unit, so the fitted network is a plain encoder and head again, for
``transform``, ``predict``, pickling and ONNX export alike.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._activations import ACTIVATIONS, LINEAR_INITIALIZER
from ._data import cache_codes, inference_batch_size
from ._network import TrainingPass

# Added to a variance before its square root (as torch.nn.BatchNorm1d does).
VARIANCE_EPS = 1e-5
# How far the running statistics (for validation) move toward each batch's.
_RUNNING_MOMENTUM = 0.1


def _draw(tensor, generator):
    """Fill ``tensor`` with Glorot-uniform values drawn on the CPU: the same seed gives the same on every device."""
    values = torch.empty(tensor.shape, dtype=tensor.dtype)
    LINEAR_INITIALIZER(values, generator)
    tensor.copy_(values)


def data_weights(batch, labeled_rows, labeled_repeats):
    """Each row's weight as a row of the data: its own weight, divided by its repeats if it is labeled.

    An epoch that repeats the labeled rows to make up half of it shows each
    ``labeled_repeats`` times more often than an unlabeled one; weighed
    so, a batch's means estimate the means over the rows as they are.
    None when every row weighs alike.
    """
    weights = batch.weights
    if labeled_repeats == 1.0 or batch.target is None:
        return weights
    shares = torch.where(labeled_rows(batch.target), 1.0 / labeled_repeats, 1.0).to(batch.clean.dtype)
    return shares if weights is None else weights * shares


def _standardise(pre, weights):
    """``pre`` with each column standardised by its batch mean and standard deviation (rows weighed), and the two."""
    if weights is None:
        mean = pre.mean(dim=0)
        variance = (pre - mean).square().mean(dim=0)
    else:
        shares = weights / weights.sum().clamp(min=torch.finfo(weights.dtype).tiny)
        mean = shares @ pre
        variance = shares @ (pre - mean).square()
    std = (variance + VARIANCE_EPS).sqrt()
    return (pre - mean) / std, mean, std


class VanillaCombinator(nn.Module):
    """The denoising function of Rasmus et al. (2015), ten coefficients per unit.

    ``g(z, u) = (z - m(u)) * v(u) + m(u)`` with ``m(u) = a1 sigmoid(a2 u +
    a3) + a4 u + a5`` and ``v(u) = a6 sigmoid(a7 u + a8) + a9 u + a10``:
    ``z`` is the corrupted pre-activation of the layer (lateral), ``u`` the
    top-down signal from the layer above. It starts at ``a2 = a7 = 1`` and
    every other coefficient 0, as the paper's code does.
    """

    def __init__(self, width):
        super().__init__()
        self.coefficients = nn.Parameter(torch.empty(10, width))

    @torch.no_grad()
    def reset_parameters(self):
        self.coefficients.zero_()
        self.coefficients[1] = 1.0
        self.coefficients[6] = 1.0

    def forward(self, corrupted, top_down):
        a = self.coefficients
        mean = a[0] * torch.sigmoid(a[1] * top_down + a[2]) + a[3] * top_down + a[4]
        scale = a[5] * torch.sigmoid(a[6] * top_down + a[7]) + a[8] * top_down + a[9]
        return (corrupted - mean) * scale + mean


class LadderNetwork(nn.Module):
    """The ladder's own parameters around a :class:`~sk_stackae._network.StackedAutoencoderNetwork` with a head.

    Layer ``l`` is the input for ``l = 0``, encoder layer ``l`` for ``1 <= l
    <= n_layers`` and the head for ``l = n_layers + 1``; the head's output
    (the scores) is its top ``z`` scaled and shifted, without activation.

    Parameters
    ----------
    network : StackedAutoencoderNetwork
        The network whose encoder weights and head weight the ladder trains
        (referenced, not copied). Their biases play no part: the batch
        normalisation removes them, and :meth:`fold_into` sets them.
    noise : float
        Standard deviation of the Gaussian noise of the corrupted pass, on
        the input and on every standardised pre-activation.
    labeled_rows : callable or None, default=None
        ``labeled_rows(target)``: which rows of a batch are labeled.
    labeled_repeats : float, default=1.0
        How many times more often than the others an epoch shows each
        labeled row: the batch statistics weigh a labeled row by its
        inverse, so that they estimate the statistics of the rows as they
        are (those that inference normalises by), not of the epoch.
    """

    def __init__(self, network, noise, labeled_rows=None, labeled_repeats=1.0):
        super().__init__()
        object.__setattr__(self, "network", network)
        self.noise = float(noise)
        self.labeled_rows = labeled_rows
        self.labeled_repeats = float(labeled_repeats)
        layers = [*network.encoder, network.head]
        self.widths = [network.widths[0], *(layer.weight.shape[0] for layer in layers)]
        self.n_levels = len(self.widths)  # the input and every layer above it
        self.activations = [ACTIVATIONS[name].function for name in network.encoder_activation_names]
        self.scales = nn.ParameterList(nn.Parameter(torch.ones(width)) for width in self.widths[1:])
        self.shifts = nn.ParameterList(nn.Parameter(torch.zeros(width)) for width in self.widths[1:])
        # Projection l maps the estimate of level l + 1 down to level l's width (no bias: normalised next).
        self.projections = nn.ParameterList(
            nn.Parameter(torch.empty(self.widths[level], self.widths[level + 1])) for level in range(len(layers))
        )
        self.combinators = nn.ModuleList(VanillaCombinator(width) for width in self.widths)
        for level, width in enumerate(self.widths[1:]):
            self.register_buffer(f"running_mean_{level}", torch.zeros(width))
            self.register_buffer(f"running_std_{level}", torch.ones(width))
        parameter = next(network.parameters())
        self.to(parameter.device, parameter.dtype)

    def layer_weight(self, level):
        """The weight of layer ``level`` (counted from 1): an encoder layer's, or the head's."""
        return (self.network.encoder[level - 1] if level <= self.network.n_layers else self.network.head).weight

    def trained_parameters(self):
        """What the ladder fine-tune trains: the encoder and head weights, and the ladder's own parameters."""
        return [self.layer_weight(level) for level in range(1, self.n_levels)] + list(self.parameters())

    @torch.no_grad()
    def reset_parameters(self, generator):
        """Draw the decoder's projections from ``generator`` (on the CPU); combinators at their start."""
        for projection in self.projections:
            _draw(projection, generator)
        for combinator in self.combinators:
            combinator.reset_parameters()

    @torch.no_grad()
    def draw_head(self, generator):
        """Draw the head's weight (a fresh head starts at 0, which leaves nothing to standardise)."""
        _draw(self.network.head.weight, generator)

    def _running(self, index):
        return getattr(self, f"running_mean_{index}"), getattr(self, f"running_std_{index}")

    def _activate(self, index, z):
        """Layer ``index + 1``'s output from its standardised pre-activation: scaled, shifted, activated."""
        out = self.scales[index] * z + self.shifts[index]
        return out if index == len(self.activations) else self.activations[index](out)

    def _noisy(self, tensor, generator):
        if self.noise == 0.0:
            return tensor
        return tensor + self.noise * torch.randn(
            tensor.shape, generator=generator, device=tensor.device, dtype=tensor.dtype
        )

    @torch.no_grad()
    def _clean_pass(self, clean, weights):
        """The clean encoder on batch statistics: every level's ``z`` (targets), means and deviations."""
        targets, means, stds = [clean], [], []
        hidden = clean
        for index in range(self.n_levels - 1):
            z, mean, std = _standardise(hidden @ self.layer_weight(index + 1).t(), weights)
            targets.append(z)
            means.append(mean)
            stds.append(std)
            running_mean, running_std = self._running(index)
            running_mean.lerp_(mean, _RUNNING_MOMENTUM)
            running_std.lerp_(std, _RUNNING_MOMENTUM)
            hidden = self._activate(index, z)
        return targets, means, stds

    def _inference_scores(self, clean):
        """The clean encoder on the running statistics: the scores (for validation)."""
        hidden = clean
        for index in range(self.n_levels - 1):
            mean, std = self._running(index)
            hidden = self._activate(index, (hidden @ self.layer_weight(index + 1).t() - mean) / std)
        return hidden

    def forward(self, inputs, *, dropout=0.0, generator=None, batch=None):
        """``((scores, denoising costs), codes)`` of a training batch; the clean scores without a generator.

        Parameters
        ----------
        inputs : torch.Tensor
            The rows of the corrupted pass (the batch's clean rows).
        dropout : float, default=0.0
            Probability of zeroing each hidden unit of the corrupted pass.
        generator : torch.Generator or None
            The noise's and the dropout's generator. None (validation): the
            clean pass on the running statistics, and costs of 0.
        batch : Batch or None
            The batch (its clean rows are the clean pass's, its weights weigh
            the batch statistics).

        Returns
        -------
        outputs : tuple of torch.Tensor
            The corrupted pass's scores, and the denoising cost of every
            level per row, shape (n_rows, n_levels).
        codes : list of torch.Tensor
            The corrupted pass's hidden layers, before dropout.
        """
        if generator is None:
            scores = self._inference_scores(inputs)
            return (scores, scores.new_zeros(len(scores), self.n_levels)), []
        clean = inputs if batch is None else batch.clean
        weights = self._statistics_weights(batch)
        targets, means, stds = self._clean_pass(clean, weights)
        hidden = self._noisy(inputs, generator)
        corrupted, codes = [hidden], []
        for index in range(self.n_levels - 1):
            z, _, _ = _standardise(hidden @ self.layer_weight(index + 1).t(), weights)
            z = self._noisy(z, generator)
            corrupted.append(z)
            hidden = self._activate(index, z)
            if index < self.n_levels - 2:
                codes.append(hidden)
                hidden = self.network._drop(hidden, dropout, generator)
        scores = hidden
        costs = [None] * self.n_levels
        estimate = None
        for level in reversed(range(self.n_levels)):
            top_down = scores if level == self.n_levels - 1 else estimate @ self.projections[level].t()
            estimate = self.combinators[level](corrupted[level], _standardise(top_down, weights)[0])
            standardised = estimate if level == 0 else (estimate - means[level - 1]) / stds[level - 1]
            costs[level] = (standardised - targets[level]).square().mean(dim=1)
        return (scores, torch.stack(costs, dim=1)), codes

    def _statistics_weights(self, batch):
        """What each row of ``batch`` weighs in its statistics (see :func:`data_weights`)."""
        return None if batch is None else data_weights(batch, self.labeled_rows, self.labeled_repeats)

    def training_pass(self):
        """The ladder fine-tune's pass: outputs ``("scores", "denoising")``; it reads the batch."""
        return TrainingPass(("scores", "denoising"), self.forward, path=None, network=self.network, reads_batch=True)

    @torch.no_grad()
    def start_from(self, rows, indices, weights, batch_size, trained_layers):
        """Start the shifts and scales; the layers in ``trained_layers`` where the network has them.

        Layer ``l`` computes ``W h + b``; with ``m`` and ``s`` the mean and
        standard deviation of ``W h`` over the rows, a scale of ``s`` and a
        shift of ``m + b`` give it back from the standardised ``W h``, so a
        pretrained or continued layer keeps what it learnt. Any other layer
        starts at a scale of 1 and a shift of its bias (0, or a fresh
        head's class prior), as the paper starts its layers.

        Parameters
        ----------
        rows, indices, weights, batch_size
            As for :func:`layer_statistics`.
        trained_layers : set of int
            The layers (counted from 0, the head last) to start where they are.
        """
        network = self.network
        layers = [*network.encoder, network.head]

        def start_layer(index, mean, std):
            if index in trained_layers:
                self.scales[index].copy_(std)
                self.shifts[index].copy_(mean + layers[index].bias)
            else:
                self.scales[index].fill_(1.0)
                self.shifts[index].copy_(layers[index].bias)
            running_mean, running_std = self._running(index)
            running_mean.copy_(mean)
            running_std.copy_(std)

        layer_statistics(network, rows, indices, weights, batch_size, start_layer)

    @torch.no_grad()
    def fold_into(self, rows, indices, weights, batch_size):
        """Fold the batch normalisation, on the rows' statistics, into the network's weights and biases.

        Layer ``l`` becomes ``(scale / s) * W h + scale * (shift - m / s)``,
        the clean pass as inference runs it, layer after layer, each on the
        outputs of the folded layers below.
        """
        network = self.network
        layers = [*network.encoder, network.head]

        def fold_layer(index, mean, std):
            ratio = self.scales[index] / std
            layers[index].weight.mul_(ratio.unsqueeze(1))
            layers[index].bias.copy_(self.shifts[index] - ratio * mean)

        layer_statistics(network, rows, indices, weights, batch_size, fold_layer)


@torch.no_grad()
def layer_statistics(network, rows, indices, weights, batch_size, on_layer):
    """Walk the layers (the encoder's, then the head) over ``rows``, from the bottom up.

    For each layer in turn, ``on_layer(index, mean, std)`` receives the mean
    and standard deviation (over the rows at ``indices``, weighed by
    ``weights``, accumulated in float64) of its input times its weight,
    bias left out; it may change the layer, and the layer above then sees
    the outputs of the layer as ``on_layer`` left it.

    Parameters
    ----------
    network : StackedAutoencoderNetwork
        A network with a head.
    rows : Rows
        The training rows.
    indices : torch.Tensor
        The rows the statistics are taken over (the training split).
    weights : Rows or None
        A weight per row; None weighs them alike.
    batch_size : int
        The training batch size (inference batches are larger).
    on_layer : callable
        ``on_layer(index, mean, std)``, ``index`` counted from 0.
    """
    layers = [*network.encoder, network.head]
    dtype = network.head.weight.dtype
    level_rows = rows
    for index, layer in enumerate(layers):
        width = layer.weight.shape[0]
        step = inference_batch_size((level_rows.n_columns, width), batch_size)
        sums = torch.zeros(3, width, dtype=torch.float64, device=layer.weight.device)
        for start in range(0, len(indices), step):
            batch_indices = indices[start : start + step]
            pre = F.linear(level_rows.take(batch_indices), layer.weight).double()
            if weights is None:
                row_weights = pre.new_ones(len(pre))
            else:
                row_weights = weights.take(batch_indices.to(weights.index_device)).double()
            sums[0] += row_weights.sum()
            sums[1] += row_weights @ pre
            sums[2] += row_weights @ pre.square()
        total = sums[0].clamp(min=torch.finfo(torch.float64).tiny)
        mean = sums[1] / total
        variance = (sums[2] / total - mean.square()).clamp(min=0.0)
        on_layer(index, mean.to(dtype), (variance + VARIANCE_EPS).sqrt().to(dtype))
        if index < len(layers) - 1:
            level_rows = cache_codes(
                lambda hidden, k=index: network.encode_layer(k, hidden),
                level_rows,
                width,
                step,
                reuse_storage=level_rows is not rows,
                dtype=dtype,
            )
