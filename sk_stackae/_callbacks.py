"""Epoch-level behaviour of a phase: callbacks that can act on it.

After every epoch the phase loop (:mod:`sk_stackae._loop`) hands an
:class:`EpochRecord` to each of its callbacks in turn; a callback may score
the epoch, average the weights, ask the phase to stop, change the learning
rate, or put other weights into the parameters when the phase ends. Early
stopping, weight averaging and the learning-rate schedules are callbacks;
:func:`callbacks_for` chooses a phase's, in the order they act.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ._accel import torch_private

# The schedules of ``learning_rate``, as MLPClassifier names them, and cosine.
SCHEDULES = ("constant", "invscaling", "adaptive", "cosine")

# "adaptive" divides the rate by this on a plateau, and stops lowering it
# (with early stopping: lets the phase stop) below the smallest rate, as
# scikit-learn's SGD does.
_ADAPTIVE_FACTOR = 5.0
_ADAPTIVE_SMALLEST_RATE = 1e-6


@dataclass
class EpochRecord:
    """What an epoch did, as the callbacks fill it in.

    Attributes
    ----------
    epoch : int
        The epoch, counted from 1.
    loss : float
        Its mean training loss.
    validation_score : float or None
        Its validation score, once a :class:`Validation` callback has taken it.
    stop : bool
        Whether a callback asks the phase to end after this epoch.
    """

    epoch: int
    loss: float
    validation_score: float | None = None
    stop: bool = False


class Callback:
    """Acts on a phase at its start, after each epoch and at its end; each hook does nothing by default.

    ``trainer`` is the phase's :class:`~sk_stackae._loop.PhaseTrainer`:
    ``trainer.phase``, ``trainer.parameters``, ``trainer.optimizer``,
    ``trainer.callbacks``.
    """

    #: Whether the callback may change the learning rate within the phase.
    changes_learning_rate = False

    def phase_started(self, trainer):
        """The phase is about to train its first epoch."""

    def epoch_ended(self, trainer, record):
        """An epoch ended; ``record`` says what it did, and the callback may add to it."""

    def phase_ended(self, trainer):
        """The phase ended (all epochs, stopped, or interrupted)."""

    def evaluation_weights(self):
        """Tensors that stand in for the phase's parameters when it is scored, or None (the parameters)."""
        return None

    def absorb_plateau(self, trainer):
        """Whether the callback answers a plateau of the validation score otherwise than by stopping."""
        return False


@contextmanager
def swapped_in(parameters, weights):
    """Within the block, ``parameters`` hold ``weights`` (when not None); afterwards their own values."""
    if weights is None:
        yield
        return
    with torch.no_grad():
        own = [parameter.detach().clone() for parameter in parameters]
        torch_private.copy_all_(parameters, weights)
    try:
        yield
    finally:
        with torch.no_grad():
            torch_private.copy_all_(parameters, own)


class WeightAverage(Callback):
    """The running mean of a phase's parameters at the ends of its epochs, from one epoch on, kept at the end.

    Stochastic weight averaging (Izmailov et al., 2018): with a constant
    step size, the weights at the ends of successive epochs scatter around
    a wide minimum, and their mean sits nearer its centre than any of them.
    ``torch.optim.swa_utils.AveragedModel`` averages a whole module; a phase
    trains a subset of the network's parameters, and validation needs the
    mean swapped in and out, so the mean is kept here, one tensor per
    parameter. Once it exists, the mean is what the phase is scored with.
    """

    def __init__(self, parameters, start_epoch):
        self.parameters = list(parameters)
        self.start_epoch = start_epoch
        self.mean = None
        self.count = 0

    @torch.no_grad()
    def epoch_ended(self, trainer, record):
        if record.epoch < self.start_epoch:
            return
        self.count += 1
        if self.mean is None:
            self.mean = [parameter.detach().clone() for parameter in self.parameters]
        else:
            torch_private.lerp_all_(self.mean, self.parameters, 1.0 / self.count)

    def evaluation_weights(self):
        return self.mean

    @torch.no_grad()
    def phase_ended(self, trainer):
        """Leave the mean in the parameters (nothing happens before the first averaged epoch)."""
        if self.mean is not None:
            torch_private.copy_all_(self.parameters, self.mean)


class Validation(Callback):
    """Scores every epoch on the phase's validation rows, with the weights the phase would end with."""

    def epoch_ended(self, trainer, record):
        with swapped_in(trainer.parameters, trainer.evaluation_weights()):
            record.validation_score = trainer.validation_score()


class NoImprovementCount:
    """Epochs since a monitored value last improved by ``tol``, counted as scikit-learn's MLP counts them."""

    def __init__(self, tol):
        self.tol = tol
        self.best = -math.inf
        self.count = 0

    def update(self, value):
        """Count ``value`` (higher is better); return whether it is the best so far."""
        if value < self.best + self.tol:
            self.count += 1
        else:
            self.count = 0
        if value > self.best:
            self.best = value
            return True
        return False


class EarlyStopping(Callback):
    """Stops a phase whose validation score has not improved by ``tol`` for more than ``n_iter_no_change`` epochs.

    As :class:`~sklearn.neural_network.MLPRegressor` does; the weights of
    the best-scoring epoch (the ones it was scored with) are put back when
    the phase ends. A callback may answer the plateau otherwise
    (:meth:`Callback.absorb_plateau`: the ``"adaptive"`` schedule lowers the
    rate instead, until it cannot).
    """

    def __init__(self, n_iter_no_change, tol):
        self.n_iter_no_change = n_iter_no_change
        self.count = NoImprovementCount(tol)
        self.best_weights = None

    def epoch_ended(self, trainer, record):
        if self.count.update(record.validation_score):
            weights = trainer.evaluation_weights() or trainer.parameters
            self.best_weights = [weight.detach().clone() for weight in weights]
        if self.count.count > self.n_iter_no_change:
            if any(callback.absorb_plateau(trainer) for callback in trainer.callbacks):
                self.count.count = 0
            else:
                record.stop = True

    @torch.no_grad()
    def phase_ended(self, trainer):
        if self.best_weights is not None:
            torch_private.copy_all_(trainer.parameters, self.best_weights)


class TrimmingWarmUp(Callback):
    """Turns the trimming of a :class:`~sk_stackae._losses.TrimmedReconstructionError` on from ``from_epoch``.

    (Epochs are counted from 1.)

    Until then every row counts: the errors of a network that has not yet
    learnt the rows' structure say nothing about which rows break it.
    """

    def __init__(self, error, from_epoch):
        self.error = error
        self.from_epoch = from_epoch

    def phase_started(self, trainer):
        self.error.trimming = self.from_epoch <= 1

    def epoch_ended(self, trainer, record):
        self.error.trimming = record.epoch + 1 >= self.from_epoch


def _lower_rate(optimizer):
    """Divide every group's learning rate by the adaptive factor; False when it is already the smallest."""
    if max(group["lr"] for group in optimizer.param_groups) <= _ADAPTIVE_SMALLEST_RATE:
        return False
    for group in optimizer.param_groups:
        group["lr"] /= _ADAPTIVE_FACTOR
    return True


class AdaptiveLearningRate(Callback):
    """``learning_rate="adaptive"``: the rate is divided by 5 whenever progress stalls.

    With early stopping, a plateau of the validation score (more than
    ``n_iter_no_change`` epochs without an improvement of ``tol``) lowers the
    rate instead of stopping the phase, until the rate is 1e-6 or less; the
    phase stops at the next plateau then. Without early stopping, a plateau
    of the training loss lowers it, down to 1e-6. scikit-learn's MLP does the
    same with its SGD solver.
    """

    changes_learning_rate = True

    def __init__(self, n_iter_no_change, tol, watches_loss):
        self.n_iter_no_change = n_iter_no_change
        self.count = NoImprovementCount(tol) if watches_loss else None

    def epoch_ended(self, trainer, record):
        if self.count is None:
            return
        self.count.update(-record.loss)
        if self.count.count > self.n_iter_no_change:
            _lower_rate(trainer.optimizer)
            self.count.count = 0

    def absorb_plateau(self, trainer):
        return _lower_rate(trainer.optimizer)


class ScheduledLearningRate(Callback):
    """A torch learning-rate scheduler stepped once per epoch.

    ``learning_rate="invscaling"`` is scikit-learn's inverse scaling,
    ``learning_rate_init / (t + 1) ** power_t`` with ``t`` the rows trained
    on so far (``torch.optim.lr_scheduler.LambdaLR``); ``"cosine"`` anneals
    the rate along half a cosine from ``learning_rate_init`` to 0 over the
    phase's epochs (``CosineAnnealingLR``).
    """

    changes_learning_rate = True

    def __init__(self, make_scheduler):
        self.make_scheduler = make_scheduler
        self.scheduler = None

    def phase_started(self, trainer):
        self.scheduler = self.make_scheduler(trainer)

    def epoch_ended(self, trainer, record):
        self.scheduler.step()


def _inverse_scaling(power_t):
    def make(trainer):
        rows = trainer.n_train
        return torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda epoch: 1.0 / (epoch * rows + 1) ** power_t)

    return make


def _cosine(trainer):
    return torch.optim.lr_scheduler.CosineAnnealingLR(trainer.optimizer, T_max=max(1, trainer.phase.epochs))


def callbacks_for(phase, options, *, incremental=False):
    """The callbacks of ``phase`` under ``options``, in the order they act after each epoch.

    The weights are averaged first (the mean is what is scored), then the
    epoch is scored, then early stopping decides, then the learning rate
    changes for the next epoch. An incremental phase (one epoch of
    ``partial_fit``, whose optimiser goes on to the next call) keeps its
    learning rate.
    """
    callbacks = list(phase.callbacks)
    if phase.average_from_epoch is not None:
        callbacks.append(WeightAverage(phase.parameters, phase.average_from_epoch))
    validating = options.early_stopping and phase.validation_indices is not None
    if validating:
        callbacks.append(Validation())
        callbacks.append(EarlyStopping(options.n_iter_no_change, options.tol))
    if incremental:
        return callbacks
    if options.learning_rate == "adaptive":
        callbacks.append(AdaptiveLearningRate(options.n_iter_no_change, options.tol, watches_loss=not validating))
    elif options.learning_rate == "invscaling":
        callbacks.append(ScheduledLearningRate(_inverse_scaling(options.power_t)))
    elif options.learning_rate == "cosine":
        callbacks.append(ScheduledLearningRate(_cosine))
    return callbacks
