"""The one training loop that every phase of every stage uses.

A phase is "these parameters, these input rows, these targets, this
training pass, this objective"; :func:`train_phase` runs any of them: the
shuffled batches, the step (hand-derived where the objective allows, else
autograd), the epoch losses read once per epoch, the epoch-level callbacks
(:mod:`sk_stackae._callbacks`), interruption and divergence. It knows
nothing about scikit-learn; :mod:`sk_stackae._engine` decides which phases
a fit runs.
"""

import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch

from ._accel.cuda_graphs import CudaGraphSteps, worth_a_cuda_graph
from ._accel.denormals import denormals_flushed
from ._accel.direct_update import DirectAdamUpdate
from ._accel.fast_step import fast_step_for
from ._accel.switches import Acceleration
from ._accel.threads import threads_for
from ._callbacks import EpochRecord, callbacks_for
from ._data import inference_batch_size
from ._distributed import SingleProcess
from ._listeners import TrainingListener
from ._losses import Batch, Objective, full_precision
from ._optim import make_optimizer


class DivergenceError(ValueError):
    """The training loss stopped being finite.

    Raised by ``fit`` and ``partial_fit`` with a message that names the
    phase and the epoch; the estimator is left as it was before the call.
    """


@dataclass
class TrainingOptions:
    """How every phase is optimised and regularised; one instance serves a whole fit.

    ``noise`` to ``sparsity_target`` are the regularisation that the engine
    builds into every phase's objective
    (:func:`sk_stackae._losses.objective_for`); the rest is how the loop
    optimises.
    """

    optimizer: str = "adam"
    learning_rate_init: float = 1e-3
    learning_rate: str = "constant"
    power_t: float = 0.5
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
    acceleration: Acceleration = field(default_factory=Acceleration)

    @property
    def dtype(self):
        """The dtype of the network, the rows and the losses: float64 for ``precision="float64"``, else float32."""
        return torch.float64 if self.precision == "float64" else torch.float32


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
    training_pass : TrainingPass
        The network's computation from the (corrupted) rows to the outputs
        the objective reads (:class:`sk_stackae._network.TrainingPass`).
    objective : Objective
        What the phase minimises, and the corruption and dropout it trains
        under (:class:`sk_stackae._losses.Objective`).
    metric : object
        The validation score (``partial(outputs, batch)`` and ``finish``;
        see :mod:`sk_stackae._tasks`).
    rows : Rows
        The input rows.
    epochs : int
        The most passes over the training rows.
    targets : Rows or None, default=None
        One target row per input row, for supervised terms.
    weights : Rows or None, default=None
        One weight per input row; None weighs the rows alike.
    train_indices, validation_indices : torch.Tensor or None
        Row indices (on ``rows.index_device``) to train and to validate on;
        None trains on every row and validates on none.
    average_from_epoch : int or None, default=None
        From this epoch (counted from 1) on, keep the running mean of the
        parameters at the end of each epoch, and end the phase with it
        (stochastic weight averaging); with early stopping, the mean is what
        is validated once it exists. None: the phase ends with its last
        weights.
    callbacks : tuple of Callback, default=()
        The phase's own epoch callbacks (a term's warm-up, say), acting
        before those that the options ask for.
    """

    name: str
    parameters: list
    training_pass: object
    objective: Objective
    metric: object
    rows: object
    epochs: int
    targets: object = None
    weights: object = None
    train_indices: torch.Tensor | None = None
    validation_indices: torch.Tensor | None = None
    average_from_epoch: int | None = None
    callbacks: tuple = ()

    def batch(self, indices):
        """The :class:`~sk_stackae._losses.Batch` of the rows at ``indices``."""
        return Batch(self.rows.take(indices), _take(self.targets, indices), _take(self.weights, indices))


def _take(rows, indices):
    """``rows.take(indices)``, the indices moved to where ``rows`` wants them (rows streamed from the host)."""
    if rows is None:
        return None
    if indices.device != rows.index_device:
        indices = indices.to(rows.index_device, non_blocking=True)
    return rows.take(indices)


@dataclass
class PhaseResult:
    """What a phase did: its loss curve, validation scores and how it ended.

    ``interrupted`` is True when the user interrupted the phase
    (``KeyboardInterrupt``); the curves then hold the epochs that finished.
    ``step`` says how its gradients were computed (``"hand-derived"`` or
    ``"autograd"``), and ``autograd_because`` why the hand-derived step did
    not run.
    """

    name: str = ""
    loss_curve: list = field(default_factory=list)
    validation_scores: list | None = None
    stopped_early: bool = False
    interrupted: bool = False
    step: str = "autograd"
    autograd_because: str | None = None
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


class ObjectiveRunner:
    """A phase's objective on batches through autograd, with the phase's generator and precision."""

    def __init__(self, phase, options, generator):
        self.phase = phase
        self.objective = phase.objective
        self.generator = generator
        # autocast is thread-local: the caller's own torch code is unaffected.
        # Without bfloat16, no context at all: entering a disabled autocast
        # still costs a few microseconds per batch.
        if options.precision == "bfloat16":
            self.products = partial(torch.autocast, phase.rows.device.type, dtype=torch.bfloat16)
        else:
            self.products = nullcontext

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

    def autograd_loss(self, batch):
        """``(objective, loss)`` of a batch: what autograd differentiates, and the loss to report."""
        objective = self.objective
        inputs = objective.corrupt(batch, self.generator)
        training_pass = self.phase.training_pass
        extra = {"batch": batch} if training_pass.reads_batch else {}
        with self.products():
            outputs, codes = training_pass.forward(inputs, dropout=objective.dropout, generator=self.generator, **extra)
        # Losses and penalties are computed in the network's dtype whatever the products ran in.
        outputs = {
            name: full_precision(output) for name, output in zip(self.phase.training_pass.outputs, outputs, strict=True)
        }
        loss = objective.loss(outputs, batch)
        if objective.penalty is None:
            return loss, loss
        return loss + objective.penalty.value(codes, batch), loss


@torch.no_grad()
def validation_score(phase, indices, batch_size, replicas=None):
    """The phase's validation score on the rows at ``indices`` (of every replica): no noise, no dropout."""
    metric = phase.metric
    total = None
    for start in range(0, len(indices), batch_size):
        batch = phase.batch(indices[start : start + batch_size])
        extra = {"batch": batch} if phase.training_pass.reads_batch else {}
        outputs, _ = phase.training_pass.forward(batch.clean, **extra)
        outputs = {
            name: full_precision(output) for name, output in zip(phase.training_pass.outputs, outputs, strict=True)
        }
        sums = metric.partial(outputs, batch)
        total = sums if total is None else total + sums
    return metric.finish((replicas or SingleProcess()).sum(total))


def weighted_batch_rows(phase, batch_size):
    """How many rows a batch of ``phase`` weighs: ``batch_size`` times its training rows' mean weight.

    The L2 penalty is scaled by it, as scikit-learn's MLP scales it by the
    sum of a batch's sample weights.
    """
    if phase.weights is None:
        return batch_size
    weights = phase.weights.tensor
    if phase.train_indices is not None:
        weights = weights[phase.train_indices.to(weights.device)]
    return batch_size * float(weights.double().mean())


def train_phase(phase, options, generator, listener=None, optimizer=None):
    """Train one phase.

    Parameters
    ----------
    phase : Phase
        What to train, on what.
    options : TrainingOptions
        How to optimise.
    generator : torch.Generator
        CPU generator for the shuffles, and the seed of every other draw.
    listener : TrainingListener, optional
        Told when the phase starts, after each epoch and when it ends.
    optimizer : torch.optim.Optimizer, optional
        An optimiser over ``phase.parameters`` to continue with (incremental
        training, which keeps its learning rate); by default a new one is
        made from ``options``.

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
    return PhaseTrainer(phase, options, generator, listener, optimizer).train()


class PhaseTrainer:
    """Runs :func:`train_phase` in small steps: epochs, batches, callbacks."""

    def __init__(self, phase, options, generator, listener, optimizer):
        self.phase = phase
        self.parameters = phase.parameters
        self.options = options
        self.rows = phase.rows
        self.generator = generator
        self.listener = listener or TrainingListener()
        self.replicas = options.replicas
        self.n_train = self.rows.n_rows if phase.train_indices is None else len(phase.train_indices)
        self.batch_size = min(options.batch_size, self.n_train)
        # Replicas must take the same number of steps, whatever their shard sizes.
        self.n_steps = self.replicas.max(math.ceil(self.n_train / self.batch_size))
        incremental = optimizer is not None
        self.optimizer = optimizer or make_optimizer(
            options, phase.parameters, weighted_batch_rows(phase, self.batch_size)
        )
        self.callbacks = callbacks_for(phase, options, incremental=incremental)
        self.runner = ObjectiveRunner(phase, options, _device_generator(generator, self.rows.device))
        # Dense passes skip autograd: gradients derived by hand (on a GPU,
        # also inside the CUDA graphs: fewer kernels per step).
        self.fast_step, autograd_because = fast_step_for(phase, self.runner, options)
        self.graphs = CudaGraphSteps(self) if worth_a_cuda_graph(self) else None
        self.direct_update = None
        self.result = PhaseResult(
            name=phase.name,
            step="autograd" if self.fast_step is None else "hand-derived",
            autograd_because=autograd_because,
        )
        if options.early_stopping and phase.validation_indices is not None:
            self.result.validation_scores = []

    def evaluation_weights(self):
        """What stands in for the parameters when the phase is scored (the averaged weights), or None."""
        for callback in self.callbacks:
            weights = callback.evaluation_weights()
            if weights is not None:
                return weights
        return None

    def train(self):
        try:
            for callback in self.callbacks:
                callback.phase_started(self)
            self.listener.phase_started(self.phase)
            with (
                matmul_precision(self.options.precision, self.rows.device),
                denormals_flushed(self.rows.device),
                threads_for(self),
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
            for callback in self.callbacks:
                callback.phase_ended(self)
            if self.graphs is not None:
                self.result.graphed_steps = self.graphs.replayed_steps
                self.graphs.release()
            self.listener.phase_ended(self.phase, self.result)
        return self.result

    def run_epoch_and_check_stop(self, epoch):
        """Train one epoch, let the callbacks act on it, record it, and say whether it ends the phase."""
        started = time.perf_counter()
        record = EpochRecord(epoch, self.run_epoch(epoch))
        for callback in self.callbacks:
            callback.epoch_ended(self, record)
        # Recorded together, so that an interrupt leaves matching curves.
        self.result.loss_curve.append(record.loss)
        if record.validation_score is not None:
            self.result.validation_scores.append(record.validation_score)
        self.listener.epoch_ended(
            self.phase, epoch, record.loss, time.perf_counter() - started, record.validation_score
        )
        return record.stop

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
            batch = self.phase.batch(order[start : start + self.batch_size])
            loss_sum.add_(self.train_step(batch), alpha=batch.clean.shape[0])
            n_seen += batch.clean.shape[0]
            step += 1
        total, count = self.replicas.sum(
            torch.stack([loss_sum.double(), loss_sum.new_tensor(n_seen).double()])
        ).tolist()
        loss = total / count
        if not math.isfinite(loss):
            raise DivergenceError(
                f"Training diverged: the loss became {loss} in {self.phase.name} at epoch "
                f"{epoch}/{self.phase.epochs}. Lower learning_rate_init (now {self.options.learning_rate_init}) "
                "or scale the input, e.g. with StandardScaler or MinMaxScaler."
            )
        return loss

    def train_step(self, batch):
        """One optimiser step on a batch, op by op; its loss, detached.

        On a GPU, most steps replay CUDA graphs instead (see
        :class:`~sk_stackae._accel.cuda_graphs.CudaGraphSteps`); this is every
        other step.
        """
        if self.fast_step is not None:
            loss = self.fast_step(batch)
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
        total, loss = self.runner.autograd_loss(batch)
        for parameter in self.parameters:
            parameter.grad = None
        total.backward()
        self.replicas.average_gradients(self.parameters)
        self.optimizer.step()
        return loss.detach()

    def validation_score(self):
        indices = self.phase.validation_indices
        batch_size = inference_batch_size((self.rows.n_columns,), self.batch_size)
        return validation_score(self.phase, indices, batch_size, self.replicas)
