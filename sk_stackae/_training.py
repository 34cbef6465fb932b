"""The one training loop that every phase of every stage uses.

A phase is "these parameters, these input rows, these targets, this forward
pass, this loss"; :func:`train_phase` runs any of them, with the same
corruption, dropout, sparsity penalty, early stopping and interruption
handling. It knows nothing about scikit-learn; :mod:`sk_stackae._engine`
decides which phases a fit runs.
"""

import gc
import math
import os
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from ._data import TensorRows, inference_batch_size
from ._denormals import denormals_flushed
from ._device import tree_to_numpy, tree_to_torch
from ._distributed import SingleProcess
from ._fast_step import DirectAdamUpdate, fast_step_for
from ._listeners import TrainingListener
from ._network import ACTIVATION_GRADIENTS, ACTIVATIONS, UNIT_INTERVAL_ACTIVATIONS
from ._warnings import warn_at_caller


class DivergenceError(ValueError):
    """The training loss stopped being finite."""


class ReconstructionLoss:
    """Error between a reconstruction, given before its final activation, and the clean rows.

    Every loss of a phase is called as ``loss(output, clean, target)``: the
    forward pass's output, the uncorrupted input rows, and the rows' targets
    (None when a phase has none). A reconstruction loss compares the output
    with ``clean`` and ignores ``target``.

    Parameters
    ----------
    kind : {"mse", "bce"}
        Mean squared error of the activated output, or binary cross-entropy
        computed from the logits (stable where the sigmoid saturates).
    activation : str
        The activation that turns the pre-activation into the reconstruction.
    """

    def __init__(self, kind, activation):
        self.kind = kind
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    def value_and_gradient(self, pre_activation, clean, target=None):
        """The loss of :meth:`__call__` and its gradient with respect to ``pre_activation``, by hand."""
        n_elements = pre_activation.numel()
        if self.kind == "bce":
            value = F.binary_cross_entropy_with_logits(pre_activation, clean)
            return value, torch.sigmoid(pre_activation).sub_(clean).div_(n_elements)
        output = self.activation(pre_activation)
        difference = output - clean
        flat = difference.view(-1)
        value = torch.dot(flat, flat).div_(n_elements)
        gradient = difference.mul_(2.0 / n_elements)
        return value, ACTIVATION_GRADIENTS[self.activation_name](gradient, pre_activation, output)

    def __call__(self, pre_activation, clean, target=None):
        """Mean over every element of the batch."""
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(pre_activation, clean)
        return F.mse_loss(self.activation(pre_activation), clean)

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
        return (self.activation(pre_activation) - clean).square()

    def per_sample(self, pre_activation, clean, target=None):
        """One error per row: the mean of its :meth:`feature_errors`."""
        return self.feature_errors(pre_activation, clean).mean(dim=1)


class MeanScore:
    """Validation score of a phase: minus the mean of its loss's per-sample errors.

    A metric turns each validation batch into a small tensor of sums
    (:meth:`partial`), which are added over batches and over the replicas of
    a process group, then into one score, higher is better
    (:meth:`finish`).
    """

    def __init__(self, loss):
        self.loss = loss

    def partial(self, output, clean, target):
        errors = self.loss.per_sample(output, clean, target)
        return torch.stack([-errors.double().sum(), errors.new_tensor(len(errors), dtype=torch.float64)])

    def finish(self, sums):
        total, count = sums.tolist()
        return total / count


class SupervisedLoss:
    """The loss of a supervised phase: the head's error on the labeled rows of a batch.

    Targets of unlabeled rows are ``-1`` (classes) or NaN (regression
    values) and count for nothing, unless one of the two semi-supervised
    terms is on. With ``reconstruction`` and a positive
    ``reconstruction_weight``, the forward pass returns ``(scores,
    reconstruction)`` and the loss adds the weighted reconstruction error of
    every row of the batch, labeled or not: the classic semi-supervised
    autoencoder objective. With a positive ``pseudo_label_weight``
    (classification), every unlabeled row of the batch adds the
    cross-entropy of its scores against the class they predict now, times
    the weight: the pseudo-labels of Lee (2013), which push the decision
    boundaries away from the unlabeled rows. With a positive
    ``consistency_weight`` and a ``teacher``, every row of the batch,
    labeled or not, adds the divergence of its scores (computed from the
    corrupted input, with dropout) from the teacher's scores of its clean
    input (no corruption, no dropout, no gradient), times the weight: the
    prediction is trained to stay the same under the noise, which carries
    the labels along the data's manifold (the random-perturbation
    consistency of Miyato et al., 2018, and Laine and Aila, 2017). With a
    positive ``adversarial_epsilon`` too, :attr:`perturbation` moves each
    corrupted input further, by that L2 norm, in the direction that changes
    its prediction most (one power iteration): virtual adversarial training
    (Miyato et al., 2018), where the consistency is trained against the
    perturbation that breaks it first.

    Parameters
    ----------
    task : {"classification", "regression"}
        Softmax cross-entropy over class indices, or the squared error of
        every output.
    reconstruction : ReconstructionLoss or None, default=None
        The reconstruction error to add.
    reconstruction_weight : float, default=0.0
        Its weight.
    pseudo_label_weight : float, default=0.0
        The weight of the pseudo-label term.
    consistency_weight : float, default=0.0
        The weight of the consistency term: the Kullback-Leibler divergence
        of the predicted class probabilities from the teacher's
        (classification), or the mean squared difference of the predictions
        (regression), averaged over the rows of the batch.
    teacher : callable or None, default=None
        ``teacher(clean)`` gives the scores the consistency term aims at;
        called without gradient (and, for ``adversarial_epsilon``, with
        gradient on the corrupted input).
    adversarial_epsilon : float, default=0.0
        The L2 norm, per row, of the virtual adversarial perturbation; 0
        adds none. Needs a consistency term.
    """

    def __init__(
        self,
        task,
        reconstruction=None,
        reconstruction_weight=0.0,
        pseudo_label_weight=0.0,
        consistency_weight=0.0,
        teacher=None,
        adversarial_epsilon=0.0,
    ):
        if consistency_weight and teacher is None:
            raise ValueError("A consistency term needs a teacher.")
        if adversarial_epsilon and not consistency_weight:
            raise ValueError("A virtual adversarial perturbation needs a consistency term.")
        self.task = task
        self.reconstruction = reconstruction
        self.reconstruction_weight = reconstruction_weight
        self.pseudo_label_weight = pseudo_label_weight
        self.consistency_weight = consistency_weight
        self.teacher = teacher
        self.adversarial_epsilon = adversarial_epsilon
        # The teacher's scores of the batch that the perturbation has just
        # computed, for the loss of the same batch to use once.
        self._pending_teacher = None

    @property
    def perturbation(self):
        """``perturbation(inputs, clean, generator)``, the corrupted inputs moved adversarially; None without."""
        return self.virtual_adversarial_perturbation if self.adversarial_epsilon else None

    def head_error(self, scores, target):
        """Summed error over the labeled rows, and how many there are (both tensors: no host sync)."""
        if self.task == "classification":
            labeled = target >= 0
            summed = F.cross_entropy(scores, target.clamp(min=0), reduction="none").mul(labeled).sum()
            return summed, labeled.sum()
        labeled = ~torch.isnan(target[:, 0])
        errors = (scores - target.nan_to_num()).square().mean(dim=1)
        return errors.mul(labeled).sum(), labeled.sum()

    def pseudo_label_error(self, scores, target):
        """Mean cross-entropy of the unlabeled rows against the classes they predict."""
        unlabeled = target < 0
        predicted = scores.detach().argmax(dim=1)
        summed = F.cross_entropy(scores, predicted, reduction="none").mul(unlabeled).sum()
        return summed / unlabeled.sum().clamp(min=1)

    def teacher_scores(self, clean):
        """The teacher's scores of the clean rows, in float32 and outside any graph."""
        pending, self._pending_teacher = self._pending_teacher, None
        if pending is not None and pending[0] is clean:
            return pending[1]
        with torch.no_grad():
            return self.teacher(clean).float()

    def virtual_adversarial_perturbation(self, inputs, clean, generator):
        """``inputs`` moved by ``adversarial_epsilon`` toward the largest change of the consistency error.

        The direction is one power iteration from a random one (Miyato et
        al., 2018): the gradient, with respect to a small random step from
        ``inputs``, of the divergence between the teacher's scores of
        ``clean`` and the scores at ``inputs`` plus that step. Where
        ``inputs`` is the clean row, this gradient is the Hessian of the
        divergence times the step, whose power iteration finds the
        direction the prediction is most sensitive to; where noise has
        already moved the row, it is, to first order, the direction that
        adds most to the divergence the noise caused. No dropout in this
        pass: the direction belongs to the network, not to one draw of it.
        """
        teacher_scores = self.teacher_scores(clean)
        self._pending_teacher = (clean, teacher_scores)
        step = torch.randn(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
        # The step's length: small against epsilon, so that the gradient
        # sees the divergence's local curvature, but not so small that
        # float32 rounds it away where it is added to inputs of order 1
        # (the paper's 1e-6 spread over 784 pixels would be).
        step = _unit_rows(step).mul_(_PROBE_FRACTION * self.adversarial_epsilon)
        with torch.enable_grad():
            step.requires_grad_(True)
            divergence = self.consistency_error(self.teacher(inputs + step).float(), teacher_scores)
            (direction,) = torch.autograd.grad(divergence, step)
        return inputs + _unit_rows(direction).mul_(self.adversarial_epsilon)

    def consistency_error(self, scores, teacher_scores):
        """Mean divergence of ``scores`` from ``teacher_scores`` over the rows (see ``consistency_weight``)."""
        if self.task == "classification":
            return F.kl_div(
                torch.log_softmax(scores, dim=1),
                torch.log_softmax(teacher_scores, dim=1),
                reduction="batchmean",
                log_target=True,
            )
        return F.mse_loss(scores, teacher_scores)

    def consistency_value_and_gradient(self, scores, teacher_scores):
        """:meth:`consistency_error` times the weight, and its gradient with respect to ``scores``."""
        weight = self.consistency_weight / len(scores)
        if self.task == "classification":
            teacher_log_probabilities = torch.log_softmax(teacher_scores, dim=1)
            teacher_probabilities = teacher_log_probabilities.exp()
            log_probabilities = torch.log_softmax(scores, dim=1)
            value = torch.sum(teacher_probabilities * (teacher_log_probabilities - log_probabilities)) * weight
            # d KL(p_teacher || softmax(scores)) / d scores = softmax(scores) - p_teacher.
            return value, log_probabilities.exp_().sub_(teacher_probabilities).mul_(weight)
        difference = scores - teacher_scores
        value = difference.square().sum() * (weight / scores.shape[1])
        return value, difference.mul_(2.0 * weight / scores.shape[1])

    def value_and_gradient(self, output, clean, target):
        """The loss of :meth:`__call__` and its gradient with respect to ``output``, by hand.

        The gradient has the structure of ``output``: one tensor, or a pair
        with the reconstruction's.
        """
        scores, reconstruction = output if self.reconstruction_weight else (output, None)
        if self.task == "classification":
            labeled = target >= 0
            count = labeled.sum().clamp(min=1)
            log_probabilities = torch.log_softmax(scores, dim=1)
            probabilities = log_probabilities.exp()
            picked = log_probabilities.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)
            row_weights = labeled.to(scores.dtype) / count
            value = -torch.dot(picked, row_weights)
            # Softmax cross-entropy: d/dscores = probabilities - one-hot(target).
            gradient = probabilities.scatter_add(
                1, target.clamp(min=0).unsqueeze(1), probabilities.new_full((len(scores), 1), -1.0)
            ).mul_(row_weights.unsqueeze(1))
            if self.pseudo_label_weight:
                unlabeled = ~labeled
                predicted = scores.argmax(dim=1, keepdim=True)
                pseudo_weights = unlabeled.to(scores.dtype) * (self.pseudo_label_weight / unlabeled.sum().clamp(min=1))
                value = value - torch.dot(log_probabilities.gather(1, predicted).squeeze(1), pseudo_weights)
                pseudo = probabilities.scatter_add(1, predicted, probabilities.new_full((len(scores), 1), -1.0))
                gradient.add_(pseudo.mul_(pseudo_weights.unsqueeze(1)))
        else:
            labeled = ~torch.isnan(target[:, 0])
            count = labeled.sum().clamp(min=1)
            difference = scores - target.nan_to_num()
            row_weights = labeled.to(scores.dtype) / count
            value = torch.dot(difference.square().mean(dim=1), row_weights)
            gradient = difference.mul_(row_weights.unsqueeze(1) * (2.0 / scores.shape[1]))
        if self.consistency_weight:
            consistency_value, consistency_gradient = self.consistency_value_and_gradient(
                scores, self.teacher_scores(clean)
            )
            value = value + consistency_value
            gradient.add_(consistency_gradient)
        if reconstruction is None:
            return value, gradient
        reconstruction_value, reconstruction_gradient = self.reconstruction.value_and_gradient(reconstruction, clean)
        value = value + self.reconstruction_weight * reconstruction_value
        return value, (gradient, reconstruction_gradient.mul_(self.reconstruction_weight))

    def __call__(self, output, clean, target):
        scores, reconstruction = output if self.reconstruction_weight else (output, None)
        summed, count = self.head_error(scores, target)
        loss = summed / count.clamp(min=1)
        if self.pseudo_label_weight:
            loss = loss + self.pseudo_label_weight * self.pseudo_label_error(scores, target)
        if self.consistency_weight:
            loss = loss + self.consistency_weight * self.consistency_error(scores, self.teacher_scores(clean))
        if reconstruction is None:
            return loss
        return loss + self.reconstruction_weight * self.reconstruction(reconstruction, clean)


# The probe step of the virtual adversarial perturbation, as a fraction of its epsilon.
_PROBE_FRACTION = 1e-2


def _unit_rows(matrix):
    """``matrix`` with each row scaled to unit L2 norm (a zero row stays zero), in place."""
    return matrix.div_(torch.linalg.vector_norm(matrix, dim=1, keepdim=True).clamp_(min=1e-12))


class AccuracyScore:
    """Validation score of a classification phase: the share of rows whose class is predicted right."""

    def partial(self, output, clean, target):
        scores = output[0] if isinstance(output, tuple) else output
        correct = (scores.argmax(dim=1) == target).sum().double()
        return torch.stack([correct, correct.new_tensor(len(target))])

    def finish(self, sums):
        correct, count = sums.tolist()
        return correct / count


class R2Score:
    """Validation score of a regression phase: R², averaged over the outputs as ``r2_score`` does.

    The sums it keeps per output (squared error, sum and sum of squares of
    the targets, count) give the same R² over several batches as over one.
    """

    def partial(self, output, clean, target):
        scores = output[0] if isinstance(output, tuple) else output
        target = target.double()
        return torch.cat(
            [
                (scores.double() - target).square().sum(dim=0),
                target.sum(dim=0),
                target.square().sum(dim=0),
                target.new_tensor([len(target)]),
            ]
        )

    def finish(self, sums):
        n_outputs = (len(sums) - 1) // 3
        squared_error, total, total_of_squares = sums[:-1].view(3, n_outputs)
        count = sums[-1]
        variance = total_of_squares - total.square() / count
        # A constant target: R² is 1 for a perfect fit, else 0 (r2_score's force_finite).
        constant = variance <= 1e-12 * total_of_squares.clamp(min=1e-300)
        r2 = torch.where(constant, (squared_error <= 1e-12).double(), 1.0 - squared_error / variance.clamp(min=1e-300))
        return float(r2.mean())


# ------------------------------------------------------------- optimisers


def _on_cuda(groups):
    return any(p.is_cuda for group in groups for p in group["params"])


def _adam(groups, options):
    # The fused kernels update every tensor in one launch, on CUDA and CPU;
    # on CUDA, capturable keeps the step count on the device, so that a CUDA
    # graph can hold the whole training step.
    return torch.optim.Adam(groups, lr=options.learning_rate, fused=True, capturable=_on_cuda(groups))


def _adamw(groups, options):
    return torch.optim.AdamW(groups, lr=options.learning_rate, fused=True, capturable=_on_cuda(groups))


def _sgd(groups, options):
    return torch.optim.SGD(groups, lr=options.learning_rate, momentum=options.momentum, fused=True)


OPTIMIZERS = {"adam": _adam, "adamw": _adamw, "sgd": _sgd}

# How a saved optimiser names its class, and the class that reads it back.
_OPTIMIZER_CLASSES = {cls.__name__: cls for cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)}


def make_optimizer(options, parameters, batch_size):
    """The optimiser for one phase, with the L2 penalty on weights only.

    For Adam and SGD, ``alpha`` is an L2 penalty scaled as in
    :class:`~sklearn.neural_network.MLPRegressor`, whose penalty gradient is
    ``alpha * W / batch_size`` next to half the squared error; our loss is
    the squared error itself, hence the factor 2. AdamW decouples weight
    decay from the gradient, so there ``alpha`` is its decay rate as is.
    """
    if options.alpha == 0:
        # One group: one fused update per step instead of two.
        return OPTIMIZERS[options.optimizer]([{"params": list(parameters), "weight_decay": 0.0}], options)
    weights = [p for p in parameters if p.ndim > 1]
    biases = [p for p in parameters if p.ndim <= 1]
    decay = options.alpha if options.optimizer == "adamw" else 2.0 * options.alpha / batch_size
    groups = [{"params": weights, "weight_decay": decay}, {"params": biases, "weight_decay": 0.0}]
    return OPTIMIZERS[options.optimizer]([g for g in groups if g["params"]], options)


def continue_optimizer(optimizer, options, parameters, batch_size):
    """The optimiser to carry on with: ``optimizer`` with today's settings, or a new one.

    Incremental training keeps the optimiser's state (Adam's moments, SGD's
    velocity) from call to call, but follows the estimator's current
    parameters: a changed learning rate or momentum applies at once, and a
    changed optimiser or penalty starts a new optimiser.
    """
    fresh = make_optimizer(options, parameters, batch_size)
    if (
        optimizer is None
        or type(optimizer) is not type(fresh)
        or len(optimizer.param_groups) != len(fresh.param_groups)
    ):
        return fresh
    for group, wanted in zip(optimizer.param_groups, fresh.param_groups, strict=True):
        if group["weight_decay"] != wanted["weight_decay"]:
            return fresh
        group["lr"] = wanted["lr"]
        if "momentum" in wanted:
            group["momentum"] = wanted["momentum"]
    return optimizer


def optimizer_to_numpy(optimizer, parameters):
    """Everything needed to rebuild ``optimizer`` over ``parameters``, with numpy arrays for tensors.

    It records the optimiser's own class and which of ``parameters`` each of
    its groups holds, not the settings that built it: an estimator whose
    parameters changed since still restores the optimiser it had.
    """
    position = {id(parameter): index for index, parameter in enumerate(parameters)}
    return {
        "class": type(optimizer).__name__,
        "groups": [[position[id(p)] for p in group["params"]] for group in optimizer.param_groups],
        "state_dict": tree_to_numpy(optimizer.state_dict()),
    }


def optimizer_saved_in_format_1(state_dict, parameters):
    """What :func:`optimizer_to_numpy` would have saved, from a bare ``state_dict`` of pickle format 1.

    Format 1 kept neither the class nor the groups; both follow from how
    :func:`make_optimizer` builds an optimiser: one group of every
    parameter, or a group of weights and a group of biases; SGD's groups
    have a dampening, AdamW's decouple their weight decay.
    """
    groups = state_dict["param_groups"]
    if len(groups) == 1:
        members = [list(range(len(parameters)))]
    else:
        weights = [i for i, p in enumerate(parameters) if p.ndim > 1]
        members = [weights, [i for i, p in enumerate(parameters) if p.ndim <= 1]]
    if "dampening" in groups[0]:
        name = "SGD"
    elif groups[0].get("decoupled_weight_decay"):
        name = "AdamW"
    else:
        name = "Adam"
    return {"class": name, "groups": members, "state_dict": state_dict}


def optimizer_from_numpy(saved, parameters):
    """Undo :func:`optimizer_to_numpy` over ``parameters`` (the same list, in the same order)."""
    groups = [{"params": [parameters[index] for index in group]} for group in saved["groups"]]
    optimizer = _OPTIMIZER_CLASSES[saved["class"]](groups)
    # load_state_dict restores every group's settings (learning rate, decay,
    # fused kernels) and moves the state to the parameters' device.
    optimizer.load_state_dict(tree_to_torch(saved["state_dict"]))
    return optimizer


# ------------------------------------------------------------ corruption


def _gaussian_noise(clean, level, generator):
    return clean + level * torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)


def _masking_noise(clean, level, generator):
    keep = torch.empty_like(clean).bernoulli_(1.0 - level, generator=generator)
    return clean * keep


# Vincent et al. (2010): additive isotropic Gaussian noise, and masking noise
# that sets a random fraction of the inputs to zero.
NOISES = {"gaussian": _gaussian_noise, "masking": _masking_noise}


# --------------------------------------------------------------- sparsity

_PROBABILITY_EPS = 1e-6


def _kl_sparsity(code, target):
    """KL divergence of each unit's mean activation from ``target``, averaged over units."""
    mean = code.mean(dim=0).clamp(_PROBABILITY_EPS, 1.0 - _PROBABILITY_EPS)
    kl = target * torch.log(target / mean) + (1.0 - target) * torch.log((1.0 - target) / (1.0 - mean))
    return kl.mean()


def _l1_sparsity(code, target):
    """Mean absolute activation: the L1 activity penalty."""
    return code.abs().mean()


def _kl_sparsity_gradient(code, target):
    """Gradient of :func:`_kl_sparsity` with respect to ``code``, for the hand-derived step."""
    n_rows, n_units = code.shape
    mean = code.mean(dim=0)
    inside = (mean >= _PROBABILITY_EPS) & (mean <= 1.0 - _PROBABILITY_EPS)
    mean = mean.clamp(_PROBABILITY_EPS, 1.0 - _PROBABILITY_EPS)
    per_unit = ((1.0 - target) / (1.0 - mean) - target / mean) * inside / (n_units * n_rows)
    return per_unit.expand(n_rows, n_units)


def _l1_sparsity_gradient(code, target):
    """Gradient of :func:`_l1_sparsity` with respect to ``code``, for the hand-derived step."""
    return torch.sign(code).div_(code.numel())


# Each sparsity penalty's gradient with respect to the code.
SPARSITY_GRADIENTS = {_kl_sparsity: _kl_sparsity_gradient, _l1_sparsity: _l1_sparsity_gradient}


def sparsity_penalty_for(activation):
    """KL toward the target for units in (0, 1), the L1 activity penalty otherwise."""
    return _kl_sparsity if activation in UNIT_INTERVAL_ACTIVATIONS else _l1_sparsity


# ---------------------------------------------------------------- phases


@dataclass
class TrainingOptions:
    """How every phase is optimised and regularised; one instance serves a whole fit."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    alpha: float = 0.0
    batch_size: int = 256
    noise: str | None = None
    noise_level: float = 0.0
    dropout: float = 0.0
    sparsity: float = 0.0
    sparsity_target: float = 0.05
    early_stopping: bool = False
    n_iter_no_change: int = 10
    tol: float = 1e-4
    precision: str = "float32"
    # The processes whose replicas of the network must stay equal.
    replicas: SingleProcess = field(default_factory=SingleProcess)
    # Whether full batches on a GPU may train as one CUDA graph per step;
    # SK_STACKAE_CUDA_GRAPHS=0 in the environment turns it off.
    cuda_graphs: bool = field(default_factory=lambda: os.environ.get("SK_STACKAE_CUDA_GRAPHS", "1") != "0")


@contextmanager
def matmul_precision(precision, device):
    """Let CUDA float32 matrix products use TF32 for ``precision="tf32"``, and only then.

    The flag is global in torch, so it is set for the duration of training
    and put back as the caller had it.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


@dataclass
class Phase:
    """One stretch of training with one optimiser.

    Attributes
    ----------
    name : str
        How logs and errors name the phase, e.g. ``"pretrain layer 2/3"``.
    parameters : list of torch.nn.Parameter
        What this phase trains; nothing else changes.
    forward : callable
        ``forward(inputs, dropout=0.0, generator=None) -> (output, codes)``:
        what the loss compares (a reconstruction before its final
        activation, or a head's output), and the hidden codes.
    loss : callable
        ``loss(output, clean, target)``, the mean loss of a batch, with a
        ``per_sample`` method of the same arguments (e.g.
        :class:`ReconstructionLoss`). ``clean`` are the uncorrupted input
        rows and ``target`` their rows of ``targets`` (None without). A
        loss whose ``perturbation`` is not None moves the corrupted rows
        with it before the forward pass (see :class:`SupervisedLoss`).
    code_activations : list of str
        The activation of each of the codes ``forward`` returns, which
        chooses their sparsity penalty.
    rows : Rows
        The input rows.
    epochs : int
        The most passes over the training rows.
    targets : Rows or None, default=None
        One target row per input row, for supervised losses; None when the
        loss needs the input rows alone.
    train_indices, validation_indices : torch.Tensor or None
        Row indices (on ``rows.index_device``) to train and to validate on;
        None trains on every row and validates on none.
    metric : object, default=None
        The validation score (``partial`` and ``finish``, see
        :class:`MeanScore`); None scores minus the mean per-sample loss.
    average_from_epoch : int or None, default=None
        From this epoch (counted from 1) on, keep the running mean of the
        parameters at the end of each epoch, and end the phase with it
        (stochastic weight averaging); with early stopping, the mean is what
        is validated once it exists. None: the phase ends with its last
        weights.
    """

    name: str
    parameters: list
    forward: Callable
    loss: Callable
    code_activations: list
    rows: object
    epochs: int
    targets: object = None
    train_indices: torch.Tensor | None = None
    validation_indices: torch.Tensor | None = None
    metric: object = None
    average_from_epoch: int | None = None

    def batch(self, indices):
        """The clean input rows and the targets (or None) at ``indices``."""
        return self.rows.take(indices), None if self.targets is None else self.targets.take(indices)

    @property
    def validation_metric(self):
        return MeanScore(self.loss) if self.metric is None else self.metric


@dataclass
class PhaseResult:
    """What a phase did: its loss curve, validation scores and how it ended.

    ``interrupted`` is True when the user interrupted the phase
    (``KeyboardInterrupt``); the curves then hold the epochs that finished.
    """

    name: str = ""
    loss_curve: list = field(default_factory=list)
    validation_scores: list | None = None
    stopped_early: bool = False
    interrupted: bool = False
    # How many optimiser steps ran as the replay of a CUDA graph.
    graphed_steps: int = 0


def seeded_generator(seed):
    """A CPU ``torch.Generator`` seeded with the integer ``seed``."""
    return torch.Generator().manual_seed(int(seed))


def _device_generator(generator, device):
    """A generator for random draws on ``device``, seeded from the CPU ``generator``."""
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


class _Objective:
    """The per-batch training objective of a phase: corrupt, forward, loss, penalties."""

    def __init__(self, phase, options, generator):
        self.phase = phase
        # autocast is thread-local: the caller's own torch code is unaffected.
        # Without bfloat16, no context at all: entering a disabled autocast
        # still costs about 3 microseconds per batch (measured on CPU).
        if options.precision == "bfloat16":
            self.products = partial(torch.autocast, phase.rows.device.type, dtype=torch.bfloat16)
        else:
            self.products = nullcontext
        self.noise = NOISES[options.noise] if options.noise is not None and options.noise_level > 0 else None
        self.noise_level = options.noise_level
        self.dropout = options.dropout
        self.sparsity = options.sparsity
        self.sparsity_target = options.sparsity_target
        self.penalties = [sparsity_penalty_for(name) for name in phase.code_activations]
        self.penalty_gradients = [SPARSITY_GRADIENTS[penalty] for penalty in self.penalties]
        self.generator = generator
        self.perturbation = getattr(phase.loss, "perturbation", None)
        self.draws_random_numbers = self.noise is not None or self.dropout > 0 or self.perturbation is not None

    @contextmanager
    def capturing(self):
        """Products fit for a CUDA graph: autocast without its cache of cast weights.

        The cache would keep tensors from one replay to the next, while the
        weights change at every step.
        """
        products = self.products
        if products is not nullcontext:
            self.products = partial(products, cache_enabled=False)
        try:
            yield
        finally:
            self.products = products

    def corrupt(self, clean):
        """The rows the network trains on: ``clean`` with the noise, then the loss's perturbation, if any."""
        inputs = clean if self.noise is None else self.noise(clean, self.noise_level, self.generator)
        if self.perturbation is not None:
            inputs = self.perturbation(inputs, clean, self.generator)
        return inputs

    def __call__(self, clean, target):
        """Return ``(objective, loss)`` for a batch of clean rows and their targets."""
        inputs = self.corrupt(clean)
        with self.products():
            output, codes = self.phase.forward(inputs, dropout=self.dropout, generator=self.generator)
        # Losses and penalties are computed in float32 whatever the products ran in.
        loss = self.phase.loss(_in_float32(output), clean, target)
        if not self.sparsity:
            return loss, loss
        penalty = sum(p(code.float(), self.sparsity_target) for p, code in zip(self.penalties, codes, strict=True))
        return loss + self.sparsity * penalty, loss


def _in_float32(output):
    """A forward pass's output (a tensor, or a tuple of them) in float32, whatever the products ran in."""
    if isinstance(output, tuple):
        return tuple(part.float() for part in output)
    return output.float()


@torch.no_grad()
def validation_score(phase, indices, batch_size, replicas=None):
    """The phase's validation score on the rows at ``indices`` (of every replica): no noise, no dropout."""
    metric = phase.validation_metric
    total = None
    for start in range(0, len(indices), batch_size):
        clean, target = phase.batch(indices[start : start + batch_size])
        output, _ = phase.forward(clean)
        sums = metric.partial(_in_float32(output), clean, target)
        total = sums if total is None else total + sums
    return metric.finish((replicas or SingleProcess()).sum(total))


class _EarlyStopping:
    """Tracks the validation score as MLPRegressor does, and keeps the best weights."""

    def __init__(self, parameters, n_iter_no_change, tol):
        self.parameters = parameters
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.best_score = -math.inf
        self.no_improvement_count = 0
        self.best_weights = None

    def should_stop(self, score):
        if score < self.best_score + self.tol:
            self.no_improvement_count += 1
        else:
            self.no_improvement_count = 0
        if score > self.best_score:
            self.best_score = score
            self.best_weights = [p.detach().clone() for p in self.parameters]
        return self.no_improvement_count > self.n_iter_no_change

    @torch.no_grad()
    def restore_best_weights(self):
        if self.best_weights is None:
            return
        for parameter, best in zip(self.parameters, self.best_weights, strict=True):
            parameter.copy_(best)


class _WeightAverage:
    """The running mean of a phase's parameters at the ends of its epochs, from one epoch on.

    Stochastic weight averaging (Izmailov et al., 2018): with a constant
    step size, the weights at the ends of successive epochs scatter around
    a wide minimum, and their mean sits nearer its centre than any of them.
    ``torch.optim.swa_utils.AveragedModel`` averages a whole module; a phase
    trains a subset of the network's parameters, and validation needs the
    mean swapped in and out, so the mean is kept here, one tensor per
    parameter.
    """

    def __init__(self, parameters, start_epoch):
        self.parameters = list(parameters)
        self.start_epoch = start_epoch
        self.mean = None
        self.count = 0

    @torch.no_grad()
    def epoch_ended(self, epoch):
        if epoch < self.start_epoch:
            return
        self.count += 1
        if self.mean is None:
            self.mean = [parameter.detach().clone() for parameter in self.parameters]
        else:
            torch._foreach_lerp_(self.mean, self.parameters, 1.0 / self.count)

    @contextmanager
    def swapped_in(self):
        """Within the block, the parameters hold the mean (once there is one); afterwards, their own values."""
        if self.mean is None:
            yield
            return
        with torch.no_grad():
            own = [parameter.detach().clone() for parameter in self.parameters]
            torch._foreach_copy_(self.parameters, self.mean)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.parameters, own)

    @torch.no_grad()
    def apply(self):
        """Leave the mean in the parameters (nothing happens before the first averaged epoch)."""
        if self.mean is not None:
            torch._foreach_copy_(self.parameters, self.mean)


def train_phase(phase, options, generator, listener=None, optimizer=None):
    """Train one phase.

    Parameters
    ----------
    phase : Phase
        What to train, on what.
    options : TrainingOptions
        How to optimise and regularise.
    generator : torch.Generator
        CPU generator for the shuffles, and the seed of every other draw.
    listener : TrainingListener, optional
        Told when the phase starts, after each epoch and when it ends.
    optimizer : torch.optim.Optimizer, optional
        An optimiser over ``phase.parameters`` to continue with (incremental
        training); by default a new one is made from ``options``.

    Returns
    -------
    PhaseResult
        The mean training loss of each epoch, the validation scores when
        early stopping, and how the phase ended. A ``KeyboardInterrupt``
        ends the phase: the result is marked ``interrupted`` and holds the
        epochs that finished, and with early stopping the best weights so
        far are restored.

    Raises
    ------
    DivergenceError
        When an epoch's loss is not finite; the message names the phase and
        the epoch.
    """
    return _PhaseTrainer(phase, options, generator, listener, optimizer).train()


class _PhaseTrainer:
    """Runs :func:`train_phase` in small steps: epochs, batches, validation."""

    def __init__(self, phase, options, generator, listener, optimizer):
        self.phase = phase
        self.options = options
        self.rows = phase.rows
        self.generator = generator
        self.listener = listener or TrainingListener()
        self.replicas = options.replicas
        self.n_train = self.rows.n_rows if phase.train_indices is None else len(phase.train_indices)
        self.batch_size = min(options.batch_size, self.n_train)
        # Replicas must take the same number of steps, whatever their shard sizes.
        self.n_steps = self.replicas.max(math.ceil(self.n_train / self.batch_size))
        self.optimizer = optimizer or make_optimizer(options, phase.parameters, self.batch_size)
        self.objective = _Objective(phase, options, _device_generator(generator, self.rows.device))
        # Dense passes skip autograd: gradients derived by hand (on a GPU,
        # also inside the CUDA graphs: fewer kernels per step).
        self.fast_step = fast_step_for(phase, self.objective, options)
        self.graphs = _CudaGraphSteps(self) if _worth_a_cuda_graph(self) else None
        self.direct_update = None
        self.result = PhaseResult(name=phase.name)
        self.early_stopping = None
        if options.early_stopping:
            self.early_stopping = _EarlyStopping(phase.parameters, options.n_iter_no_change, options.tol)
            self.result.validation_scores = []
        self.average = None
        if phase.average_from_epoch is not None:
            self.average = _WeightAverage(phase.parameters, phase.average_from_epoch)

    def train(self):
        try:
            self.listener.phase_started(self.phase)
            with (
                matmul_precision(self.options.precision, self.rows.device),
                denormals_flushed(self.rows.device),
                _threads_for(self),
            ):
                for epoch in range(1, self.phase.epochs + 1):
                    if self.run_epoch_and_check_stop(epoch):
                        self.result.stopped_early = True
                        break
        except KeyboardInterrupt:
            # As MLPRegressor does, an interrupted phase keeps the epochs that
            # finished and, with early stopping, its best weights.
            self.result.interrupted = True
        finally:
            if self.early_stopping is not None:
                # The best validated weights: the mean's, once it was validated.
                self.early_stopping.restore_best_weights()
            elif self.average is not None:
                self.average.apply()
            if self.graphs is not None:
                self.result.graphed_steps = self.graphs.replayed_steps
                self.graphs.release()
            self.listener.phase_ended(self.phase, self.result)
        return self.result

    def run_epoch_and_check_stop(self, epoch):
        """Train one epoch, record it, and say whether early stopping ends the phase."""
        started = time.perf_counter()
        loss = self.run_epoch(epoch)
        if self.average is not None:
            self.average.epoch_ended(epoch)
        score = None
        stop = False
        if self.early_stopping is not None:
            # With weight averaging, the mean is what the phase would end
            # with: it is what is validated, and kept if it scores best.
            with self.average.swapped_in() if self.average is not None else nullcontext():
                score = self.validation_score()
                stop = self.early_stopping.should_stop(score)
        # Recorded together, so that an interrupt leaves matching curves.
        self.result.loss_curve.append(loss)
        if score is not None:
            self.result.validation_scores.append(score)
        self.listener.epoch_ended(self.phase, epoch, loss, time.perf_counter() - started, score)
        return stop

    def run_epoch(self, epoch):
        """One pass over the training rows in shuffled batches; the mean loss."""
        order = torch.randperm(self.n_train, generator=self.generator).to(self.rows.index_device, non_blocking=True)
        if self.phase.train_indices is not None:
            order = self.phase.train_indices[order]
        # Summed on the device and read once per epoch: no host-device sync
        # inside the epoch.
        loss_sum = torch.zeros((), device=self.rows.device)
        n_seen = 0
        step = 0
        while step < self.n_steps:
            # A replica with a smaller shard wraps around to keep in step.
            start = (step * self.batch_size) % self.n_train
            if self.graphs is not None:
                steps, rows = self.graphs.train(order, start, self.n_steps - step, loss_sum)
                if steps:
                    step += steps
                    n_seen += rows
                    continue
            clean, target = self.phase.batch(order[start : start + self.batch_size])
            loss_sum.add_(self.train_step(clean, target), alpha=clean.shape[0])
            n_seen += clean.shape[0]
            step += 1
        total, count = self.replicas.sum(
            torch.stack([loss_sum.double(), loss_sum.new_tensor(n_seen).double()])
        ).tolist()
        loss = total / count
        if not math.isfinite(loss):
            raise DivergenceError(
                f"Training diverged: the loss became {loss} in {self.phase.name} at epoch "
                f"{epoch}/{self.phase.epochs}. Lower learning_rate (now {self.options.learning_rate}) "
                "or scale the input, e.g. with StandardScaler or MinMaxScaler."
            )
        return loss

    def train_step(self, clean, target):
        """One optimiser step on a batch, op by op; its loss, detached.

        On a GPU, most steps replay CUDA graphs instead (see
        :class:`_CudaGraphSteps`); this is every other step.
        """
        if self.fast_step is not None:
            loss = self.fast_step(clean, target)
            if self.direct_update:
                self.direct_update()
            else:
                self.optimizer.step()
                if self.direct_update is None:
                    # The first step creates the optimiser's state, which the
                    # direct update then works on; False: asked, not available
                    # (SGD, say), optimizer.step() from here on.
                    self.direct_update = DirectAdamUpdate.for_optimizer(self.optimizer) or False
            return loss
        total, loss = self.objective(clean, target)
        self.optimizer.zero_grad()
        total.backward()
        self.replicas.average_gradients(self.phase.parameters)
        self.optimizer.step()
        return loss.detach()

    def validation_score(self):
        indices = self.phase.validation_indices
        batch_size = inference_batch_size((self.rows.n_columns,), self.batch_size)
        return validation_score(self.phase, indices, batch_size, self.replicas)


# ---------------------------------------------------------------- threads

# A CPU step of fewer floating-point operations than this runs faster on one
# thread than on two: the second thread's share of the work is smaller than
# what handing it over costs. Measured on a 2-core Xeon, full fits of
# autoencoders at batch 256 (benchmarks/RESULTS.md, "Threads"): 7.9 MFLOP per
# step, one thread 17 % faster; 31 MFLOP, even; 113 MFLOP and up, two
# threads 36 to 63 % faster.
_ONE_THREAD_BELOW_FLOPS = 25e6


def step_flops(path, batch_size):
    """Floating-point operations of one training step over ``path``: forward, and backward twice."""
    return 6 * batch_size * sum(step.weight.numel() for step in path.steps())


@contextmanager
def _threads_for(trainer):
    """One torch thread for a CPU phase whose steps are too small to share, the caller's count back after.

    The count only ever goes down, so a limit set by the caller (``torch.set_num_threads``,
    threadpoolctl, joblib's workers) holds.
    """
    threads = torch.get_num_threads()
    path = trainer.fast_step.path if trainer.fast_step is not None else None
    small = path is not None and step_flops(path, trainer.batch_size) < _ONE_THREAD_BELOW_FLOPS
    if trainer.rows.device.type != "cpu" or threads == 1 or not small:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------ CUDA graphs

# Eager steps before the first capture: they warm up what capture needs
# (cuBLAS workspaces, the optimiser's state) and train as usual.
_GRAPH_WARMUP_STEPS = 3
# Consecutive full batches that one graph trains: its replay costs one
# launch from Python for all of their kernels.
_GRAPH_CHUNK_STEPS = 16
# A phase with fewer full-batch steps than this does not pay for captures.
_GRAPH_MIN_STEPS = 32


def _worth_a_cuda_graph(trainer):
    """Whether the trainer's batches should train as CUDA graph replays."""
    if not (trainer.options.cuda_graphs and trainer.rows.device.type == "cuda"):
        return False
    if trainer.replicas.world_size > 1:
        return False  # the gradient all-reduce stays outside graphs
    phase = trainer.phase
    if not all(isinstance(rows, TensorRows) for rows in (phase.rows, phase.targets) if rows is not None):
        return False  # rows streamed from the host are copied by the CPU, batch by batch
    if trainer.objective.draws_random_numbers and not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return False  # this torch cannot replay draws from our own generator
    if trainer.objective.perturbation is not None:
        return False  # its gradient pass, inside the step, is not recorded
    if not all(group.get("capturable", True) for group in trainer.optimizer.param_groups):
        return False  # an optimiser restored from elsewhere keeps its step count on the host
    full_steps_per_epoch = trainer.n_train // trainer.batch_size
    return full_steps_per_epoch * phase.epochs >= _GRAPH_MIN_STEPS + _GRAPH_WARMUP_STEPS


class _CapturedSteps:
    """``n_steps`` consecutive training steps of ``n_rows`` rows each, captured as one CUDA graph.

    Its input is a static buffer of row indices, one row of it per step;
    each step takes its batch from the device-resident rows by those
    indices, computes the gradients (the hand-derived step where the phase
    has one, else the objective and backward), runs the optimiser step, and
    adds its loss times its rows to a static sum.
    """

    def __init__(self, trainer, n_steps, n_rows, gradients, device):
        self.indices = torch.zeros((n_steps, n_rows), dtype=torch.int64, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.graph = torch.cuda.CUDAGraph()
        objective = trainer.objective
        if objective.draws_random_numbers:
            self.graph.register_generator_state(objective.generator)
        torch.cuda.synchronize(device)
        with objective.capturing(), torch.cuda.graph(self.graph):
            self.loss_sum.zero_()
            for step in range(n_steps):
                clean, target = trainer.phase.batch(self.indices[step])
                if trainer.fast_step is not None:
                    # Writes every gradient whole: nothing to zero first.
                    loss = trainer.fast_step(clean, target)
                else:
                    total, loss = objective(clean, target)
                    torch._foreach_zero_(gradients)
                    total.backward()
                trainer.optimizer.step()
                self.loss_sum.add_(loss.detach(), alpha=n_rows)

    def replay(self, indices):
        """Train on the batches of ``indices`` (``n_steps * n_rows`` of them, in order); the loss sum."""
        self.indices.copy_(indices.view_as(self.indices))
        self.graph.replay()
        return self.loss_sum


class _CudaGraphSteps:
    """The steps of a phase on a GPU, as replays of CUDA graphs.

    A step of a small network launches some fifty to seventy kernels
    (forward, backward, the optimiser); launched one by one from Python
    they cost more than they compute. A CUDA graph launches a whole
    recorded sequence at once. Here the first few steps train eagerly on a
    side stream (the warm-up that capture needs); then graphs are captured
    as the epoch needs them and replayed: one for a chunk of
    ``_GRAPH_CHUNK_STEPS`` full batches, one for a single full batch, and
    one for the last, smaller batch of an epoch. They all train the same
    parameters with the same optimiser state, and their gradients live in
    tensors held here, so that no other allocation can take their memory.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self.warmup_left = _GRAPH_WARMUP_STEPS
        self.graphs = {}
        self.gradients = None
        self.failed = False
        self.replayed_steps = 0

    def train(self, order, start, steps_left, loss_sum):
        """Train the batches of ``order`` from ``start`` on; ``(steps, rows)`` trained, ``(0, 0)`` to go eager."""
        if self.failed:
            return 0, 0
        trainer = self.trainer
        batch_size = trainer.batch_size
        rows_left = trainer.n_train - start
        if self.warmup_left > 0:
            self.warmup_left -= 1
            clean, target = trainer.phase.batch(order[start : start + batch_size])
            loss_sum.add_(self._warm_up(clean, target), alpha=clean.shape[0])
            return 1, clean.shape[0]
        full_batches = min(rows_left // batch_size, steps_left)
        if full_batches >= _GRAPH_CHUNK_STEPS:
            shape = (_GRAPH_CHUNK_STEPS, batch_size)
        elif full_batches >= 1:
            shape = (1, batch_size)
        else:
            shape = (1, rows_left)
        graph = self.graphs.get(shape)
        if graph is None:
            graph = self._capture(shape)
            if graph is None:
                return 0, 0
        n_steps, n_rows = shape
        loss_sum.add_(graph.replay(order[start : start + n_steps * n_rows]))
        self.replayed_steps += n_steps
        return n_steps, n_steps * n_rows

    def release(self):
        """Free the graphs and their memory now, while no capture is under way.

        A graph freed later, by the garbage collector during the capture of
        another phase's graph, would break that capture.
        """
        for captured in self.graphs.values():
            captured.graph.reset()
        self.graphs.clear()
        self.gradients = None
        self.trainer = None

    def _warm_up(self, clean, target):
        device = clean.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            loss = self.trainer.train_step(clean, target)
        torch.cuda.current_stream(device).wait_stream(side)
        return loss

    def _capture(self, shape):
        trainer = self.trainer
        device = trainer.rows.device
        if self.gradients is None:
            for parameter in trainer.phase.parameters:
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
            self.gradients = [parameter.grad for parameter in trainer.phase.parameters]
        # No garbage collection inside a capture: freeing CUDA memory or
        # graphs there is an error that invalidates the capture.
        # (torch.cuda.graph collects once as it starts.)
        collecting = gc.isenabled()
        gc.disable()
        try:
            graph = _CapturedSteps(trainer, *shape, self.gradients, device)
        except RuntimeError as error:
            self.failed = True
            torch.cuda.synchronize(device)
            warn_at_caller(
                f"Capturing training steps as a CUDA graph failed ({str(error).splitlines()[0]}); training "
                "goes on without CUDA graphs, which is slower for small networks. Set the environment variable "
                "SK_STACKAE_CUDA_GRAPHS=0 to skip the attempt.",
                RuntimeWarning,
            )
            return None
        finally:
            if collecting:
                gc.enable()
        self.graphs[shape] = graph
        return graph
