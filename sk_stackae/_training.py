"""The one training loop that every pretraining phase and the fine-tune use.

A phase is "these parameters, these input rows, this forward pass, this
loss"; :func:`train_phase` runs any of them. It knows nothing about
scikit-learn, and the estimator knows nothing about optimiser steps.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._network import ACTIVATIONS


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
        """One error per row: the mean over its features."""
        return self.elementwise(pre_activation, target).mean(dim=1)


def _adam(parameter_groups, learning_rate, device):
    # The fused kernel updates every tensor in one launch on CUDA and CPU.
    return torch.optim.Adam(parameter_groups, lr=learning_rate, fused=True)


OPTIMIZERS = {"adam": _adam}


@dataclass
class TrainingOptions:
    """How every phase is optimised; one instance serves a whole fit."""

    optimizer: str
    learning_rate: float
    alpha: float
    batch_size: int


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
        ``forward(inputs) -> (pre_activation, codes)``: the reconstruction
        before its final activation and the hidden codes.
    loss : ReconstructionLoss
        Compares the reconstruction with the uncorrupted input rows.
    rows : Rows
        The input rows, which are also the targets.
    epochs : int
        Passes over ``rows``.
    """

    name: str
    parameters: list
    forward: Callable
    loss: ReconstructionLoss
    rows: object
    epochs: int


def make_optimizer(options, parameters, batch_size, device):
    """The optimiser for one phase, with the L2 penalty on weights only.

    ``alpha`` scales as in :class:`~sklearn.neural_network.MLPRegressor`,
    whose penalty gradient is ``alpha * W / batch_size`` next to half the
    squared error; our loss is the squared error itself, hence the factor 2.
    """
    weights = [p for p in parameters if p.ndim > 1]
    biases = [p for p in parameters if p.ndim <= 1]
    groups = [
        {"params": weights, "weight_decay": 2.0 * options.alpha / batch_size},
        {"params": biases, "weight_decay": 0.0},
    ]
    return OPTIMIZERS[options.optimizer]([g for g in groups if g["params"]], options.learning_rate, device)


def train_phase(phase, options, generator, report=None):
    """Train one phase and return its loss curve.

    Parameters
    ----------
    phase : Phase
        What to train, on what.
    options : TrainingOptions
        How to optimise.
    generator : torch.Generator
        CPU generator for the per-epoch shuffles.
    report : callable, optional
        Called as ``report(phase, epoch, loss, seconds)`` after each epoch.

    Returns
    -------
    list of float
        Mean reconstruction loss of each epoch over the training rows.

    Raises
    ------
    DivergenceError
        When an epoch's loss is not finite; the message names the phase and
        the epoch.
    """
    rows = phase.rows
    n_rows = rows.n_rows
    batch_size = min(options.batch_size, n_rows)
    optimizer = make_optimizer(options, phase.parameters, batch_size, rows.device)
    curve = []
    for epoch in range(1, phase.epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(n_rows, generator=generator).to(rows.index_device, non_blocking=True)
        # Summed on the device and read once per epoch: no host-device sync
        # inside the epoch.
        epoch_loss_sum = torch.zeros((), device=rows.device)
        for start in range(0, n_rows, batch_size):
            batch = rows.take(order[start : start + batch_size])
            pre_activation, _ = phase.forward(batch)
            loss = phase.loss(pre_activation, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_loss_sum.add_(loss.detach(), alpha=batch.shape[0])
        epoch_loss = epoch_loss_sum.item() / n_rows
        if not math.isfinite(epoch_loss):
            raise DivergenceError(
                f"Training diverged: the loss became {epoch_loss} in {phase.name} at epoch "
                f"{epoch}/{phase.epochs}. Lower learning_rate (now {options.learning_rate}) "
                "or scale the input, e.g. with StandardScaler or MinMaxScaler."
            )
        curve.append(epoch_loss)
        if report is not None:
            report(phase, epoch, epoch_loss, time.perf_counter() - started)
    return curve
