"""What a phase minimises: objective terms, each with its gradient beside it.

A phase's :class:`Objective` is a sum of terms on the outputs of its
training pass (a reconstruction, a head's scores), penalties on its codes
(sparsity), and what is done to the rows before the pass (noise, a virtual
adversarial perturbation, dropout inside it). Every term computes its value
for autograd (:meth:`Term.value`); a term whose gradient is derived by hand
also has :meth:`Term.value_and_gradient` and says so
(``hand_derived = True``). The hand-derived training step
(:mod:`sk_stackae._accel.fast_step`) runs a phase only when every term of its
objective is hand-derived; any other phase trains through autograd, so a
term is never trained on one path and left out on the other.

Terms read a :class:`Batch`: the clean rows, their targets and weights, and
a cache for what several terms share (the teacher's scores).
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ._activations import ACTIVATIONS


@dataclass
class Batch:
    """One batch of a phase, as every term of its objective sees it.

    Attributes
    ----------
    clean : torch.Tensor
        The uncorrupted input rows.
    target : torch.Tensor or None
        Their targets, for a phase that has them.
    weights : torch.Tensor or None
        A weight per row (``sample_weight``); None weighs every row alike.
    cache : dict
        What terms of the same batch share (the teacher's scores).
    """

    clean: torch.Tensor
    target: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    cache: dict = field(default_factory=dict)


class Term:
    """One term of an objective: a weighted error of one output of the training pass.

    Attributes
    ----------
    output : str
        The name of the output it reads (``"reconstruction"`` or
        ``"scores"``; see :class:`sk_stackae._network.TrainingPass`).
    hand_derived : bool
        Whether :meth:`value_and_gradient` gives the gradient by hand. False:
        autograd differentiates :meth:`value`, and the phase trains through
        autograd.
    """

    output = "reconstruction"
    hand_derived = False

    def value(self, output, batch):
        """The term, weighted, as a differentiable scalar tensor."""
        raise NotImplementedError

    def value_and_gradient(self, output, batch):
        """The term's value and its gradient with respect to ``output`` (a tensor the caller may overwrite)."""
        raise NotImplementedError(f"{type(self).__name__} derives no gradient by hand")


class ReconstructionError(Term):
    """Error between a reconstruction, given before its final activation, and the clean rows.

    Parameters
    ----------
    kind : {"mse", "bce"}
        Mean squared error of the activated output, or binary cross-entropy
        computed from the logits (stable where the sigmoid saturates).
    activation : str
        The activation that turns the pre-activation into the reconstruction.
    weight : float, default=1.0
        The term's weight in the objective.
    """

    hand_derived = True

    def __init__(self, kind, activation, weight=1.0):
        self.kind = kind
        self.activation = ACTIVATIONS[activation]
        self.weight = weight

    def value(self, pre_activation, batch):
        """Mean over every element of the batch (rows weighted by their weights), times the weight."""
        if batch.weights is not None:
            error = weighted_mean(self.training_errors(pre_activation, batch.clean).mean(dim=1), batch.weights)
        elif self.kind == "bce":
            error = F.binary_cross_entropy_with_logits(pre_activation, batch.clean)
        else:
            error = F.mse_loss(self.activation.function(pre_activation), batch.clean)
        return error if self.weight == 1.0 else self.weight * error

    def value_and_gradient(self, pre_activation, batch):
        clean = batch.clean
        if batch.weights is not None:
            return self._weighted_value_and_gradient(pre_activation, batch)
        n_elements = pre_activation.numel()
        if self.kind == "bce":
            value = F.binary_cross_entropy_with_logits(pre_activation, clean)
            gradient = torch.sigmoid(pre_activation).sub_(clean).div_(n_elements)
        else:
            output = self.activation.function(pre_activation)
            difference = output - clean
            flat = difference.view(-1)
            value = torch.dot(flat, flat).div_(n_elements)
            gradient = self.activation.gradient(difference.mul_(2.0 / n_elements), pre_activation, output)
        return self._weighted(value, gradient)

    def _weighted_value_and_gradient(self, pre_activation, batch):
        clean = batch.clean
        # Each row's share of the mean: its weight over the batch's, spread over its features.
        share = row_shares(batch.weights).unsqueeze(1).div_(pre_activation.shape[1])
        if self.kind == "bce":
            value = (self.training_errors(pre_activation, clean) * share).sum()
            gradient = torch.sigmoid(pre_activation).sub_(clean).mul_(share)
        else:
            output = self.activation.function(pre_activation)
            difference = output - clean
            value = (difference.square() * share).sum()
            gradient = self.activation.gradient(difference.mul_(2.0 * share), pre_activation, output)
        return self._weighted(value, gradient)

    def _weighted(self, value, gradient):
        if self.weight == 1.0:
            return value, gradient
        return self.weight * value, gradient.mul_(self.weight)

    def training_errors(self, pre_activation, clean):
        """The error that training minimises, per row and feature: squared error, or cross-entropy."""
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(pre_activation, clean, reduction="none")
        return (self.activation.function(pre_activation) - clean).square()

    def feature_errors(self, pre_activation, clean):
        """One error per row and feature: the squared error, or for ``"bce"`` the relative entropy.

        The relative entropy is the cross-entropy less the target's own
        entropy: zero for a perfect reconstruction, so that a grey pixel
        reproduced exactly costs nothing (its cross-entropy does not
        vanish). Training follows the same gradients either way.
        """
        if self.kind == "bce":
            cross_entropy = F.binary_cross_entropy_with_logits(pre_activation, clean, reduction="none")
            return cross_entropy - torch.special.entr(clean) - torch.special.entr(1.0 - clean)
        return (self.activation.function(pre_activation) - clean).square()

    def per_sample(self, pre_activation, clean):
        """One error per row: the mean of its :meth:`feature_errors`."""
        return self.feature_errors(pre_activation, clean).mean(dim=1)


# Relative width of a tie at a trimming threshold: above float32 rounding.
_TIES = 1e-5


class TrimmedReconstructionError(ReconstructionError):
    """A reconstruction error that, while ``trimming``, leaves out each batch's rows with the largest errors.

    The rows whose error is above the ``keep`` quantile of their batch's
    (the rows weighed by their sample weights, an inverted-CDF quantile)
    weigh 0 in that step: the network stops fitting the rows it
    reconstructs worst, which among a detector's training rows are the
    likeliest outliers (a trimmed, robust autoencoder). The choice of rows
    is a constant for the gradient. :class:`~sk_stackae._callbacks.TrimmingWarmUp`
    turns the trimming on after a warm-up, once the errors mean something.

    Parameters
    ----------
    kind, activation, weight
        As for :class:`ReconstructionError`.
    keep : float
        The share of each batch's (weighted) rows that counts.
    """

    def __init__(self, kind, activation, keep, weight=1.0):
        super().__init__(kind, activation, weight)
        self.keep = keep
        self.trimming = False

    @torch.no_grad()
    def _kept(self, pre_activation, batch):
        """The batch with the rows above the ``keep`` quantile of its errors weighing 0."""
        errors = self.training_errors(pre_activation, batch.clean).mean(dim=1)
        weights = torch.ones_like(errors) if batch.weights is None else batch.weights.to(errors.dtype)
        order = torch.argsort(errors)
        cumulative = torch.cumsum(weights[order], dim=0)
        # The relative tolerance absorbs the rounding of the cumulative sums.
        target = (cumulative[-1] * (self.keep * (1 - 1e-12))).reshape(1)
        last = torch.searchsorted(cumulative, target).clamp_(max=len(errors) - 1)
        # Within rounding of the threshold counts as at it: copies of one row may round apart.
        threshold = errors[order][last] * (1 + _TIES)
        return Batch(batch.clean, batch.target, weights * (errors <= threshold), batch.cache)

    def value(self, pre_activation, batch):
        if self.trimming:
            batch = self._kept(pre_activation, batch)
        return super().value(pre_activation, batch)

    def value_and_gradient(self, pre_activation, batch):
        if self.trimming:
            batch = self._kept(pre_activation, batch)
        return super().value_and_gradient(pre_activation, batch)


def full_precision(tensor):
    """``tensor`` in float32 if autocast left it in a half-precision dtype; as it is otherwise."""
    return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor


def row_shares(weights, mask=None):
    """Each row's share of a batch's weighted mean: its weight over the batch's total (0 where ``mask`` is False).

    As in :class:`~sklearn.neural_network.MLPClassifier`, rows are weighed
    within their minibatch. A batch whose rows all weigh 0 gets shares of 0.
    """
    if mask is not None:
        weights = weights * mask
    return weights / weights.sum().clamp(min=torch.finfo(weights.dtype).tiny)


def weighted_mean(values, weights):
    """The mean of ``values`` (one per row) weighted by ``weights``; the plain mean without weights."""
    if weights is None:
        return values.mean()
    return torch.dot(values, row_shares(weights))


# ------------------------------------------------------------- penalties


class SparsityPenalty:
    """Keeps the codes sparse: a penalty on each code a pass returns (before dropout), times a weight.

    Units in (0, 1) get the KL divergence between ``target`` and each unit's
    mean activation over the batch, averaged over units; other units the L1
    penalty on their mean absolute activation.

    Parameters
    ----------
    weight : float
        The penalty's weight.
    target : float
        The mean activation the KL penalty pulls each unit toward.
    code_activations : list of str
        The activation of each code, which chooses its penalty.
    """

    hand_derived = True

    def __init__(self, weight, target, code_activations):
        self.weight = weight
        self.target = target
        self.penalties = [
            _KL_SPARSITY if ACTIVATIONS[name].unit_interval else _L1_SPARSITY for name in code_activations
        ]

    def value(self, codes, batch):
        """The weighted sum of every code's penalty (differentiable); rows weigh as their weights say."""
        shares = None if batch.weights is None else row_shares(batch.weights)
        penalty = sum(
            p.value(full_precision(code), self.target, shares) for p, code in zip(self.penalties, codes, strict=True)
        )
        return self.weight * penalty

    def gradient(self, index, code, batch):
        """The gradient of the weighted penalty with respect to code ``index`` (counted from 0)."""
        shares = None if batch.weights is None else row_shares(batch.weights)
        return self.penalties[index].gradient(code, self.target, shares).mul(self.weight)


_PROBABILITY_EPS = 1e-6


def _unit_means(code, shares):
    """Each unit's mean activation over the rows, weighted by their ``shares`` (the plain mean without)."""
    return code.mean(dim=0) if shares is None else shares @ code


class _KLSparsity:
    """KL divergence of each unit's mean activation from the target, averaged over units."""

    @staticmethod
    def value(code, target, shares=None):
        mean = _unit_means(code, shares).clamp(_PROBABILITY_EPS, 1.0 - _PROBABILITY_EPS)
        kl = target * torch.log(target / mean) + (1.0 - target) * torch.log((1.0 - target) / (1.0 - mean))
        return kl.mean()

    @staticmethod
    def gradient(code, target, shares=None):
        n_rows, n_units = code.shape
        mean = _unit_means(code, shares)
        inside = (mean >= _PROBABILITY_EPS) & (mean <= 1.0 - _PROBABILITY_EPS)
        mean = mean.clamp(_PROBABILITY_EPS, 1.0 - _PROBABILITY_EPS)
        if shares is None:
            per_unit = ((1.0 - target) / (1.0 - mean) - target / mean) * inside / (n_units * n_rows)
            return per_unit.expand(n_rows, n_units)
        per_unit = ((1.0 - target) / (1.0 - mean) - target / mean) * inside / n_units
        return torch.outer(shares, per_unit)


class _L1Sparsity:
    """Mean absolute activation: the L1 activity penalty."""

    @staticmethod
    def value(code, target, shares=None):
        if shares is None:
            return code.abs().mean()
        return torch.dot(shares, code.abs().mean(dim=1))

    @staticmethod
    def gradient(code, target, shares=None):
        if shares is None:
            return torch.sign(code).div_(code.numel())
        return torch.sign(code).mul_(shares.unsqueeze(1) / code.shape[1])


_KL_SPARSITY = _KLSparsity()
_L1_SPARSITY = _L1Sparsity()


# ------------------------------------------------------------ corruption


def _gaussian_noise(clean, level, generator):
    return clean + level * torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)


def _masking_noise(clean, level, generator):
    keep = torch.empty_like(clean).bernoulli_(1.0 - level, generator=generator)
    return clean * keep


# Vincent et al. (2010): additive isotropic Gaussian noise, and masking noise
# that sets a random fraction of the inputs to zero.
NOISES = {"gaussian": _gaussian_noise, "masking": _masking_noise}


@dataclass(frozen=True)
class Noise:
    """Corruption of a phase's input rows: ``NOISES[kind]`` at ``level``."""

    kind: str
    level: float

    def __call__(self, clean, generator):
        return NOISES[self.kind](clean, self.level, generator)


# ------------------------------------------------------------- objective


@dataclass
class Objective:
    """What a phase minimises on a batch, and what is done to the batch first.

    Attributes
    ----------
    terms : tuple of Term
        Summed, they are the phase's loss (its loss curve).
    penalty : SparsityPenalty or None
        Added to the loss for training, not reported in the loss curve.
    noise : Noise or None
        Corruption of the input rows before the pass.
    perturbation : object or None
        ``perturbation(inputs, batch, generator)``: moves the corrupted rows
        further (virtual adversarial training); the moved rows carry no
        gradient to the parameters.
    dropout : float
        Probability of zeroing each hidden unit in the pass.
    """

    terms: tuple
    penalty: SparsityPenalty | None = None
    noise: Noise | None = None
    perturbation: object = None
    dropout: float = 0.0

    @property
    def hand_derived(self):
        """Whether every term and the penalty derive their gradients by hand."""
        return all(term.hand_derived for term in self.terms) and (self.penalty is None or self.penalty.hand_derived)

    @property
    def not_hand_derived(self):
        """The names of the terms that derive no gradient by hand (autograd must train them)."""
        parts = [*self.terms, *([self.penalty] if self.penalty is not None else [])]
        return [type(part).__name__ for part in parts if not part.hand_derived]

    @property
    def draws_random_numbers(self):
        return self.noise is not None or self.dropout > 0 or self.perturbation is not None

    def corrupt(self, batch, generator):
        """The rows the network trains on: the clean rows with the noise, then the perturbation, if any."""
        inputs = batch.clean if self.noise is None else self.noise(batch.clean, generator)
        if self.perturbation is not None:
            inputs = self.perturbation(inputs, batch, generator)
        return inputs

    def loss(self, outputs, batch):
        """The sum of the terms (differentiable), from the pass's outputs by name."""
        total = None
        for term in self.terms:
            value = term.value(outputs[term.output], batch)
            total = value if total is None else total + value
        return total

    def loss_and_gradients(self, outputs, batch):
        """The loss and its gradient with respect to each output, by hand (every term must be hand-derived)."""
        total = None
        gradients = {}
        for term in self.terms:
            value, gradient = term.value_and_gradient(outputs[term.output], batch)
            total = value if total is None else total + value
            if term.output in gradients:
                gradients[term.output].add_(gradient)
            else:
                gradients[term.output] = gradient
        return total, gradients


def objective_for(options, terms, code_activations, perturbation=None):
    """A phase's objective: ``terms``, with the noise, dropout and sparsity penalty of ``options``.

    ``code_activations`` are the activations of the codes the phase's pass
    returns, which choose their sparsity penalty.
    """
    noisy = options.noise is not None and options.noise_level > 0
    return Objective(
        terms=tuple(terms),
        penalty=(
            SparsityPenalty(options.sparsity, options.sparsity_target, list(code_activations))
            if options.sparsity
            else None
        ),
        noise=Noise(options.noise, options.noise_level) if noisy else None,
        perturbation=perturbation,
        dropout=options.dropout,
    )
