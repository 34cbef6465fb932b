"""The one training loop that every pretraining phase and the fine-tune use.

A phase is "these parameters, these input rows, this forward pass, this
loss"; :func:`train_phase` runs any of them, with the same corruption,
dropout, sparsity penalty and early stopping. It knows nothing about
scikit-learn, and the estimator knows nothing about optimiser steps.
"""

import math
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from ._data import inference_batch_size
from ._distributed import SingleProcess
from ._network import ACTIVATIONS, UNIT_INTERVAL_ACTIVATIONS
from ._progress import SilentProgress


class DivergenceError(ValueError):
    """The training loss stopped being finite."""


class ReconstructionLoss:
    """Error between a reconstruction, given before its final activation, and its target.

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
        self.activation = ACTIVATIONS[activation]

    def elementwise(self, pre_activation, target):
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(pre_activation, target, reduction="none")
        return (self.activation(pre_activation) - target).square()

    def __call__(self, pre_activation, target):
        """Mean over every element of the batch."""
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(pre_activation, target)
        return F.mse_loss(self.activation(pre_activation), target)

    def per_sample(self, pre_activation, target):
        """One error per row: the mean over its features.

        For ``"bce"`` this is the relative entropy, the cross-entropy less
        the target's own entropy: zero for a perfect reconstruction, so that
        a grey pixel reproduced exactly costs nothing (its cross-entropy
        does not vanish). Training follows the same gradients either way.
        """
        errors = self.elementwise(pre_activation, target)
        if self.kind == "bce":
            errors = errors - torch.special.entr(target) - torch.special.entr(1.0 - target)
        return errors.mean(dim=1)


# ------------------------------------------------------------- optimisers


def _adam(groups, options):
    # The fused kernels update every tensor in one launch, on CUDA and CPU.
    return torch.optim.Adam(groups, lr=options.learning_rate, fused=True)


def _adamw(groups, options):
    return torch.optim.AdamW(groups, lr=options.learning_rate, fused=True)


def _sgd(groups, options):
    return torch.optim.SGD(groups, lr=options.learning_rate, momentum=options.momentum, fused=True)


OPTIMIZERS = {"adam": _adam, "adamw": _adamw, "sgd": _sgd}


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
    """One stage of training.

    Attributes
    ----------
    name : str
        How logs and errors name the stage, e.g. ``"pretrain layer 2/3"``.
    parameters : list of torch.nn.Parameter
        What this phase trains; nothing else changes.
    forward : callable
        ``forward(inputs, dropout=0.0, generator=None) -> (pre_activation,
        codes)``: the reconstruction before its final activation, and the
        hidden codes.
    loss : ReconstructionLoss
        Compares the reconstruction with the uncorrupted input rows.
    code_activations : list of str
        The activation of each of the codes ``forward`` returns, which
        chooses their sparsity penalty.
    rows : Rows
        The input rows, which are also the targets.
    epochs : int
        The most passes over the training rows.
    train_indices, validation_indices : torch.Tensor or None
        Row indices (on ``rows.index_device``) to train and to validate on;
        None trains on every row and validates on none.
    """

    name: str
    parameters: list
    forward: Callable
    loss: ReconstructionLoss
    code_activations: list
    rows: object
    epochs: int
    train_indices: torch.Tensor | None = None
    validation_indices: torch.Tensor | None = None


@dataclass
class PhaseResult:
    """What a phase did: its loss curve, validation scores and how it ended."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list | None = None
    stopped_early: bool = False


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
        self.generator = generator

    def __call__(self, clean):
        """Return ``(objective, reconstruction_loss)`` for a batch of clean rows."""
        inputs = clean if self.noise is None else self.noise(clean, self.noise_level, self.generator)
        with self.products():
            pre_activation, codes = self.phase.forward(inputs, dropout=self.dropout, generator=self.generator)
        # Losses and penalties are computed in float32 whatever the products ran in.
        loss = self.phase.loss(pre_activation.float(), clean)
        if not self.sparsity:
            return loss, loss
        penalty = sum(p(code.float(), self.sparsity_target) for p, code in zip(self.penalties, codes, strict=True))
        return loss + self.sparsity * penalty, loss


@torch.no_grad()
def validation_loss(phase, indices, batch_size, replicas=None):
    """Mean reconstruction loss of the rows at ``indices`` (of every replica): no noise, no dropout."""
    total = torch.zeros(2, dtype=torch.float64, device=phase.rows.device)
    total[1] = len(indices)
    for start in range(0, len(indices), batch_size):
        clean = phase.rows.take(indices[start : start + batch_size])
        pre_activation, _ = phase.forward(clean)
        total[0] += phase.loss.per_sample(pre_activation.float(), clean).sum()
    loss_sum, count = (replicas or SingleProcess()).sum(total).tolist()
    return loss_sum / count


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
        for parameter, best in zip(self.parameters, self.best_weights, strict=True):
            parameter.copy_(best)


def train_phase(phase, options, generator, progress=None, optimizer=None, result=None):
    """Train one phase.

    Parameters
    ----------
    phase : Phase
        What to train, on what.
    options : TrainingOptions
        How to optimise and regularise.
    generator : torch.Generator
        CPU generator for the shuffles, and the seed of every other draw.
    progress : SilentProgress, optional
        Told when the phase starts, after each epoch and when it ends.
    optimizer : torch.optim.Optimizer, optional
        An optimiser over ``phase.parameters`` to continue with (incremental
        training); by default a new one is made from ``options``.
    result : PhaseResult, optional
        Filled in epoch by epoch and returned; pass one to keep the epochs
        that finished when training is interrupted (``KeyboardInterrupt``
        propagates, after the best weights are restored with early stopping).

    Returns
    -------
    PhaseResult
        The mean reconstruction loss of each epoch over the training rows,
        the validation scores (minus the validation loss) when early
        stopping, and whether the phase stopped early.

    Raises
    ------
    DivergenceError
        When an epoch's loss is not finite; the message names the phase and
        the epoch.
    """
    return _PhaseTrainer(phase, options, generator, progress, optimizer, result).train()


class _PhaseTrainer:
    """Runs :func:`train_phase` in small steps: epochs, batches, validation."""

    def __init__(self, phase, options, generator, progress, optimizer, result):
        self.phase = phase
        self.options = options
        self.rows = phase.rows
        self.generator = generator
        self.progress = progress or SilentProgress()
        self.replicas = options.replicas
        self.n_train = self.rows.n_rows if phase.train_indices is None else len(phase.train_indices)
        self.batch_size = min(options.batch_size, self.n_train)
        # Replicas must take the same number of steps, whatever their shard sizes.
        self.n_steps = self.replicas.max(math.ceil(self.n_train / self.batch_size))
        self.optimizer = optimizer or make_optimizer(options, phase.parameters, self.batch_size)
        self.objective = _Objective(phase, options, _device_generator(generator, self.rows.device))
        self.result = PhaseResult() if result is None else result
        self.early_stopping = None
        if options.early_stopping:
            self.early_stopping = _EarlyStopping(phase.parameters, options.n_iter_no_change, options.tol)
            self.result.validation_scores = []

    def train(self):
        self.progress.phase_started(self.phase)
        try:
            with matmul_precision(self.options.precision, self.rows.device):
                for epoch in range(1, self.phase.epochs + 1):
                    if self.run_epoch_and_check_stop(epoch):
                        self.result.stopped_early = True
                        break
        except KeyboardInterrupt:
            # As MLPRegressor does, an interrupted phase keeps its best weights.
            self.restore_best_weights()
            raise
        finally:
            self.progress.phase_ended(self.phase)
        self.restore_best_weights()
        return self.result

    def run_epoch_and_check_stop(self, epoch):
        """Train one epoch, record it, and say whether early stopping ends the phase."""
        started = time.perf_counter()
        loss = self.run_epoch(epoch)
        self.result.loss_curve.append(loss)
        score = None
        if self.early_stopping is not None:
            score = self.validation_score()
            self.result.validation_scores.append(score)
        self.progress.epoch_ended(self.phase, epoch, loss, time.perf_counter() - started, score)
        return self.early_stopping is not None and self.early_stopping.should_stop(score)

    def restore_best_weights(self):
        if self.early_stopping is not None and self.early_stopping.best_weights is not None:
            self.early_stopping.restore_best_weights()

    def run_epoch(self, epoch):
        """One pass over the training rows in shuffled batches; the mean loss."""
        order = torch.randperm(self.n_train, generator=self.generator).to(self.rows.index_device, non_blocking=True)
        if self.phase.train_indices is not None:
            order = self.phase.train_indices[order]
        # Summed on the device and read once per epoch: no host-device sync
        # inside the epoch.
        loss_sum = torch.zeros((), device=self.rows.device)
        n_seen = 0
        for step in range(self.n_steps):
            # A replica with a smaller shard wraps around to keep in step.
            start = (step * self.batch_size) % self.n_train
            clean = self.rows.take(order[start : start + self.batch_size])
            loss_sum.add_(self.train_step(clean), alpha=clean.shape[0])
            n_seen += clean.shape[0]
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

    def train_step(self, clean):
        """One optimiser step on a batch; its reconstruction loss, detached."""
        total, loss = self.objective(clean)
        self.optimizer.zero_grad()
        total.backward()
        self.replicas.average_gradients(self.phase.parameters)
        self.optimizer.step()
        return loss.detach()

    def validation_score(self):
        indices = self.phase.validation_indices
        batch_size = inference_batch_size((self.rows.n_columns,), self.batch_size)
        return -validation_loss(self.phase, indices, batch_size, self.replicas)
