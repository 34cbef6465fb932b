"""The fit engine: one whole fit of a network, from plain data to plain results.

It knows no scikit-learn. Its caller (an estimator) validates the input,
describes the fit as a :class:`FitPlan` (an architecture and a sequence of
stages) and calls :func:`fit_network` once; what comes back is a
:class:`FitResult`: the trained network, what each phase did, and whether
and where the user interrupted the fit.

A stage is one kind of training: :class:`GreedyPretraining` trains the
layer pairs one after another, each on the cached codes of the frozen
layers below it; :class:`Finetune` trains the whole autoencoder end to end.
Every stage builds :class:`~sk_stackae._loop.Phase` objects (a training
pass of the network, an objective of terms from :mod:`sk_stackae._losses`
and :mod:`sk_stackae._tasks`, rows) and runs them through the one training
loop, :func:`~sk_stackae._loop.train_phase`; a new kind of stage adds
phases, never a loop.

The engine also owns what happens around training: a fresh network or a
copy of the fitted one to continue, the early-stopping split, the code
caches, listeners, interruption and out-of-memory errors that say what to
change.
"""

import copy
import itertools
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

from ._callbacks import TrimmingWarmUp
from ._data import TensorRows, cache_codes, column_means, inference_batch_size, training_rows
from ._distributed import SingleProcess
from ._listeners import Listeners
from ._loop import Phase, train_phase, weighted_batch_rows
from ._losses import ReconstructionError, TrimmedReconstructionError, objective_for
from ._memory import out_of_memory_explained
from ._network import build_network
from ._optim import continue_optimizer
from ._splits import random_split, stratified_split
from ._tasks import ReconstructionScore, Teacher, VirtualAdversarialPerturbation

FINETUNE_NAME = "finetune"
HEAD_WARMUP_NAME = "head warm-up"
SUPERVISED_NAME = "supervised finetune"


def pretrain_phase_name(layer, n_layers):
    """How logs, errors and plots name the pretraining phase of ``layer`` (counted from 1)."""
    return f"pretrain layer {layer}/{n_layers}"


# ------------------------------------------------------------------ plan


@dataclass(frozen=True)
class GreedyPretraining:
    """Greedy layer-wise pretraining: one phase per layer pair, each on the codes below it.

    Parameters
    ----------
    epochs : int
        Epochs of each phase (the most, with early stopping).
    loss : {"mse", "bce"}
        Loss of the first phase, which reconstructs the input; the deeper
        phases reconstruct codes with the mean squared error.
    """

    epochs: int
    loss: str

    def run(self, fit):
        network = fit.network
        n_layers = network.n_layers
        layer_rows = fit.rows
        for k in range(n_layers):
            if k > 0:
                # Layer k-1 is frozen from here on: run it once over its input
                # and let phase k train on the result.
                layer_rows = fit.cache(k, layer_rows)
                if layer_rows is None:
                    return  # interrupted while caching
            error = ReconstructionError(self.loss if k == 0 else "mse", network.decoder_activation_names[k])
            phase = Phase(
                name=pretrain_phase_name(k + 1, n_layers),
                parameters=network.layer_parameters(k),
                training_pass=network.layer_pass(k),
                objective=fit.objective([error], [network.encoder_activation_names[k]]),
                metric=ReconstructionScore(error),
                rows=layer_rows,
                weights=fit.weights,
                epochs=self.epochs,
                **fit.split_on(layer_rows),
            )
            fit.start_reconstruction_at_mean(k, layer_rows)
            if fit.train(self, phase).interrupted:
                return


@dataclass(frozen=True)
class Finetune:
    """End-to-end training of the whole autoencoder on the reconstruction loss.

    Parameters
    ----------
    epochs : int
        Epochs (the most, with early stopping).
    loss : {"mse", "bce"}
        Reconstruction loss.
    output_activation : str
        Activation of the reconstruction.
    trim_fraction : float, default=0.0
        After a warm-up of the first quarter of the epochs, each batch
        leaves out this share of its rows, those it reconstructs worst
        (:class:`~sk_stackae._losses.TrimmedReconstructionError`); 0 trains
        on every row.
    """

    epochs: int
    loss: str
    output_activation: str
    trim_fraction: float = 0.0

    def run(self, fit):
        network = fit.network
        callbacks = ()
        if self.trim_fraction > 0:
            error = TrimmedReconstructionError(self.loss, self.output_activation, keep=1.0 - self.trim_fraction)
            callbacks = (TrimmingWarmUp(error, from_epoch=self.epochs // 4 + 1),)
        else:
            error = ReconstructionError(self.loss, self.output_activation)
        phase = Phase(
            name=FINETUNE_NAME,
            # The encoder and the decoder: a prediction head plays no part in
            # reconstructing.
            parameters=network.autoencoder_parameters(),
            training_pass=network.training_pass(("reconstruction",)),
            objective=fit.objective([error], network.encoder_activation_names),
            metric=ReconstructionScore(error),
            rows=fit.rows,
            weights=fit.weights,
            epochs=self.epochs,
            callbacks=callbacks,
            **fit.split_on(fit.rows),
        )
        fit.train(self, phase)


@dataclass(frozen=True)
class SupervisedFinetune:
    """Training the encoder and the prediction head end to end on the labeled rows.

    Parameters
    ----------
    epochs : int
        Epochs (the most, with early stopping).
    head_only : bool, default=False
        Train the head alone, the encoder frozen (a warm-up that lets the
        head fit the pretrained codes before they move).
    reconstruction_weight : float, default=0.0
        With a positive weight, every row (labeled or not) also contributes
        its reconstruction error, times this weight; the decoder then trains
        too.
    pseudo_label_weight : float, default=0.0
        With a positive weight (classification), every unlabeled row also
        contributes the cross-entropy against the class it is predicted now,
        times this weight. With either weight, each epoch sees the unlabeled
        rows once and the labeled rows as often as it takes them to make up
        half of it.
    consistency_weight : float, default=0.0
        With a positive weight, every row (labeled or not) also contributes
        the divergence of its prediction (from corrupted input, with
        dropout) from the prediction of its clean input, times this weight;
        each epoch then sees the rows as with the other two weights.
    adversarial_epsilon : float, default=0.0
        With a positive value (and a consistency weight), each corrupted
        input also moves by this L2 norm in the direction that changes its
        prediction most: virtual adversarial training (see
        :class:`~sk_stackae._tasks.VirtualAdversarialPerturbation`).
    average_from_epoch : int or None, default=None
        From this epoch on, average the weights at the ends of the epochs
        and end with the mean (see :class:`~sk_stackae._loop.Phase`);
        None ends with the last weights. Not for ``head_only``.
    loss, output_activation : str, default="mse", "identity"
        The reconstruction error and the reconstruction's activation, for
        ``reconstruction_weight``.
    """

    epochs: int
    head_only: bool = False
    reconstruction_weight: float = 0.0
    pseudo_label_weight: float = 0.0
    consistency_weight: float = 0.0
    adversarial_epsilon: float = 0.0
    average_from_epoch: int | None = None
    loss: str = "mse"
    output_activation: str = "identity"

    @property
    def name(self):
        return HEAD_WARMUP_NAME if self.head_only else SUPERVISED_NAME

    def run(self, fit):
        network = fit.network
        reconstruction = self.reconstruction_weight > 0 and not self.head_only
        if self.head_only:
            parameters = list(network.head.parameters())
        elif reconstruction:
            parameters = list(network.parameters())
        else:
            parameters = [*network.encoder.parameters(), *network.head.parameters()]
        train, validation = fit.labeled_split()
        pseudo_labels = self.pseudo_label_weight > 0 and not self.head_only
        consistency = self.consistency_weight > 0 and not self.head_only
        if reconstruction or pseudo_labels or consistency:
            train = fit.with_unlabeled_rows(train)
        # What the head predicts (its error, semi-supervised terms, metric) comes with the targets.
        task = fit.target_values.task
        terms = [task.head_error(fit.class_weights)]
        if pseudo_labels:
            terms.append(task.pseudo_labels(self.pseudo_label_weight))
        perturbation = None
        if consistency:
            # The clean pass: no corruption (it reads the clean rows), no dropout.
            teacher = Teacher(lambda clean: network.predict_scores(clean)[0])
            terms.append(task.consistency(self.consistency_weight, teacher))
            if self.adversarial_epsilon > 0:
                perturbation = VirtualAdversarialPerturbation(self.adversarial_epsilon, teacher, task.divergence)
        if reconstruction:
            terms.append(ReconstructionError(self.loss, self.output_activation, self.reconstruction_weight))
        phase = Phase(
            name=self.name,
            parameters=parameters,
            training_pass=network.training_pass(("scores", "reconstruction") if reconstruction else ("scores",)),
            objective=fit.objective(terms, network.encoder_activation_names, perturbation),
            metric=task.metric(),
            rows=fit.rows,
            targets=fit.targets,
            weights=fit.weights,
            epochs=self.epochs,
            train_indices=train,
            validation_indices=validation,
            average_from_epoch=None if self.head_only else self.average_from_epoch,
        )
        fit.start_head()
        fit.train(self, phase)


@dataclass(frozen=True)
class FitPlan:
    """What one call of :func:`fit_network` trains.

    Parameters
    ----------
    architecture : dict
        The network's ``config`` (see :func:`~sk_stackae._network.build_network`).
    stages : tuple
        The stages to run, in order (:class:`GreedyPretraining`,
        :class:`Finetune`).
    validation_fraction : float or None, default=None
        Fraction of the rows held out for early stopping, when the options
        ask for it.
    incremental : bool, default=False
        Whether the optimiser carries on from the fitted state and is handed
        back (``partial_fit``); otherwise each phase starts a new one.
    start_from : StackedAutoencoderNetwork or None, default=None
        A trained autoencoder whose encoder and decoder a fresh network
        starts with (copied, never changed); its architecture must be the
        plan's, but for the head.
    """

    architecture: dict
    stages: tuple
    validation_fraction: float | None = None
    incremental: bool = False
    start_from: object = None


@dataclass
class Targets:
    """What supervised stages learn to predict, one row per training row.

    Attributes
    ----------
    values : ndarray
        The task's target values (for classes: int64 indices, ``-1`` for an
        unlabeled row; for regression and multilabel targets: float values
        of shape (n_samples, n_outputs), NaN for an unlabeled row, cast to
        the training dtype).
    task : Task
        What the values are (:mod:`sk_stackae._tasks`).
    class_weights : ndarray of shape (n_classes,) or None
        A weight per class that multiplies its rows' in the head's error
        (``class_weight``); None weighs the classes alike.
    """

    values: np.ndarray
    task: object
    class_weights: np.ndarray | None = None

    @property
    def labeled(self):
        """Which rows have a target."""
        return self.task.labeled(self.values)

    @property
    def groups(self):
        """The group of every row that an early-stopping split stratifies on."""
        return self.task.groups(self.values)


@dataclass
class FittedState:
    """What a fit continues from: the network, and the optimiser of incremental training."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer | None = None


@dataclass
class FitResult:
    """What :func:`fit_network` did.

    Attributes
    ----------
    network : StackedAutoencoderNetwork
        The trained network (a new object; a network to continue is copied,
        never trained in place).
    phases : list of (stage, PhaseResult)
        Every phase that ran, in order, with the stage it belongs to.
    interrupted_in : str or None
        The name of what was running when the user interrupted the fit, or
        None when it ran to the end.
    optimizer : torch.optim.Optimizer or None
        The optimiser to continue with, for an incremental plan.
    """

    network: torch.nn.Module
    phases: list = field(default_factory=list)
    interrupted_in: str | None = None
    optimizer: torch.optim.Optimizer | None = None

    def results_of(self, stage_type):
        """The results of the phases of every stage of ``stage_type``, in order."""
        return [result for stage, result in self.phases if isinstance(stage, stage_type)]


# ------------------------------------------------------------------- fit


def fit_network(X, plan, options, device, generator, *, previous=None, listeners=(), targets=None, weights=None):
    """Train a network as ``plan`` says, on the rows of ``X``.

    Parameters
    ----------
    X : ndarray, memmap or CSR matrix of shape (n_samples, n_features)
        Validated training rows, float32 or float64.
    plan : FitPlan
        The architecture and the stages.
    options : TrainingOptions
        How every phase is optimised and regularised.
    device : torch.device
        Where to train.
    generator : torch.Generator
        CPU generator of every random draw: a fresh network's weights, the
        validation split, the shuffles, noise and dropout.
    previous : FittedState, optional
        A fitted state to continue (its architecture must be the plan's);
        it is copied, never changed. None builds a fresh network.
    listeners : sequence of TrainingListener
        Told about phases, epochs and caches.
    targets : Targets, optional
        What supervised stages predict; every row, labeled or not, takes
        part in the unsupervised stages.
    weights : ndarray of shape (n_samples,), optional
        A non-negative weight per row (``sample_weight``), which every
        objective term, validation score, mean and head start weighs the
        rows by; None weighs them alike.

    Returns
    -------
    FitResult
    """
    fit = _Fit(plan, options, device, generator, Listeners(listeners))
    fit.start(X, previous, targets, weights)
    for stage in plan.stages:
        stage.run(fit)
        if fit.result.interrupted_in is not None:
            break
    return fit.result


class _Fit:
    """The state of one :func:`fit_network` call, and the steps that stages use."""

    def __init__(self, plan, options, device, generator, listener):
        self.plan = plan
        self.options = options
        self.device = device
        self.generator = generator
        # Parameters created mid-fit (the ladder's) draw from their own stream, seeded from a copy of
        # ``generator``: their values must not depend on how many rows the phases before them shuffled.
        fork = torch.Generator().set_state(generator.get_state())
        self.parameter_generator = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=fork)))
        self.listener = listener
        self.replicas = options.replicas or SingleProcess()
        self.network = None
        self.rows = None
        self.targets = None
        self.target_values = None
        self.weights = None
        self.weight_values = None
        self.class_weights = None
        self.split = None
        self.optimizer = None
        self.result = None
        self.head_started = False
        self.continuing = False

    # -------------------------------------------------------- setting up

    def start(self, X, previous, targets=None, weights=None):
        if previous is None:
            widths = (self.plan.architecture["n_features"], *self.plan.architecture["hidden_layer_sizes"])
            n_weights = 2 * sum(a * b for a, b in itertools.pairwise(widths))
            with out_of_memory_explained(
                "cpu",
                "allocating the network",
                f"layers {'-'.join(map(str, widths))} ({n_weights:,} weights)",
                "use narrower hidden_layer_sizes",
            ):
                network = build_network(self.plan.architecture)
            # Initialised on the CPU from our own generator, then moved: the
            # same seed gives the same starting weights on every device.
            network.reset_parameters(self.generator)
            with out_of_memory_explained(
                self.device,
                "moving the network to the device",
                f"{n_weights:,} weights",
                "use narrower hidden_layer_sizes",
            ):
                network, optimizer = network.to(self.device, self.options.dtype), None
        else:
            network, optimizer = self._continued(previous)
        self.replicas.broadcast_parameters(network.parameters())
        self.network = network
        self.optimizer = optimizer
        self.result = FitResult(network=network)
        self.continuing = previous is not None
        dtype = self.options.dtype
        self.rows = training_rows(X, self.device, np.float64 if dtype == torch.float64 else np.float32)
        if weights is not None:
            self.weight_values = np.asarray(weights, dtype=np.float64)
            self.weights = TensorRows(torch.from_numpy(self.weight_values).to(self.device, dtype))
        if targets is not None:
            self.target_values = targets
            values = torch.from_numpy(targets.values)
            # Class indices stay integers; real targets follow the training dtype.
            self.targets = TensorRows(values.to(self.device, dtype if values.is_floating_point() else values.dtype))
            if targets.class_weights is not None:
                self.class_weights = torch.as_tensor(targets.class_weights, dtype=dtype, device=self.device)
            # A continued network keeps its head as it is.
            self.head_started = previous is not None
        if self.options.early_stopping:
            if targets is None:
                self.split = random_split(self.rows.n_rows, self.plan.validation_fraction, self.generator)
            else:
                self.split = stratified_split(targets.groups, self.plan.validation_fraction, self.generator)
        if previous is None and self.plan.start_from is not None:
            network.load_autoencoder_from(self.plan.start_from)
        elif previous is None and not any(isinstance(stage, GreedyPretraining) for stage in self.plan.stages):
            # No pretraining phase will start the reconstruction at the mean.
            self.start_reconstruction_at_mean(0, self.rows)

    def _continued(self, previous):
        """Copies of the fitted network and of its optimiser, which refers to it, on the device."""
        optimizer = previous.optimizer if self.plan.incremental else None
        if optimizer is not None and next(previous.network.parameters()).device != self.device:
            optimizer = None  # its state lives on the old device; start afresh on the new one
        if optimizer is not None and next(previous.network.parameters()).dtype != self.options.dtype:
            optimizer = None  # its state holds the old precision; start afresh in the new one
        network, optimizer = copy.deepcopy((previous.network, optimizer))
        return network.to(self.device, self.options.dtype), optimizer

    def labeled_split(self):
        """The labeled training rows and the labeled validation rows (None without early stopping)."""
        labeled = torch.from_numpy(self.target_values.labeled)
        if self.split is None:
            train, validation = torch.nonzero(labeled).flatten(), None
        else:
            train, validation = (part[labeled[part]] for part in self.split)
        train = train.to(self.rows.index_device)
        return train, None if validation is None else validation.to(self.rows.index_device)

    def with_unlabeled_rows(self, labeled_train):
        """The training rows of a semi-supervised epoch: every unlabeled row once, the labeled ones repeated.

        The labeled rows are repeated until they make up about half of the
        epoch, so that every batch holds some.
        """
        unlabeled = ~torch.from_numpy(self.target_values.labeled)
        rows = torch.nonzero(unlabeled).flatten() if self.split is None else self.split[0][unlabeled[self.split[0]]]
        rows = rows.to(self.rows.index_device)
        repeats = max(1, round(len(rows) / max(1, len(labeled_train))))
        return torch.cat([labeled_train.repeat(repeats), rows])

    def start_head(self):
        """Start a fresh head at zero weights, with the bias that predicts the training targets' mean.

        For classes, the mean is taken of the log class frequencies, so the
        head starts by predicting the class prior; for regression values, the
        mean of each output. It learns from there, as each reconstruction
        layer starts at the mean of what it reconstructs.
        """
        if self.head_started:
            return
        self.head_started = True
        train, _ = self.labeled_split()
        train = train.cpu().numpy()
        values = self.target_values.values[train]
        weights = None if self.weight_values is None else self.weight_values[train].astype(np.float64)
        start = self.target_values.task.head_start(values, self.network.head.bias.shape[0], weights)
        self.network.start_head_at(torch.as_tensor(start, dtype=self.options.dtype))
        # Replicas see different labeled rows: they all start from rank 0's head.
        self.replicas.broadcast_parameters(self.network.head.parameters())

    def objective(self, terms, code_activations, perturbation=None):
        """The objective of a phase of this fit (see :func:`~sk_stackae._losses.objective_for`)."""
        return objective_for(self.options, terms, code_activations, perturbation)

    def split_on(self, rows):
        """The Phase fields for the early-stopping split, with indices where ``rows`` wants them."""
        if self.split is None:
            return {}
        train, validation = self.split
        return {"train_indices": train.to(rows.index_device), "validation_indices": validation.to(rows.index_device)}

    def start_reconstruction_at_mean(self, k, rows):
        """Start layer pair ``k``'s reconstruction at the mean of its training rows (on every replica)."""
        train_indices = None if self.split is None else self.split[0].to(rows.index_device)
        means = column_means(rows, train_indices, self.replicas, self.weights, self.options.dtype)
        self.network.start_reconstruction_at(k, means)

    # --------------------------------------------------------- steps

    def train(self, stage, phase):
        """Run ``phase`` of ``stage`` and record its result; returns the result."""
        optimizer = None
        if self.plan.incremental:
            batch_size = min(self.options.batch_size, phase.rows.n_rows)
            optimizer = continue_optimizer(
                self.optimizer, self.options, phase.parameters, weighted_batch_rows(phase, batch_size)
            )
            self.optimizer = self.result.optimizer = optimizer
        widest = max(phase.rows.n_columns, *(p.shape[0] for p in phase.parameters if p.ndim > 1))
        with out_of_memory_explained(
            self.device,
            phase.name,
            f"batches of {self.options.batch_size} rows through layers up to {widest} units wide",
            f"lower batch_size (now {self.options.batch_size}), use narrower hidden_layer_sizes, "
            "precision='bfloat16', or device='cpu'",
        ):
            result = train_phase(phase, self.options, self.generator, self.listener, optimizer)
        self.result.phases.append((stage, result))
        if result.interrupted:
            self.result.interrupted_in = phase.name
        return result

    def cache(self, layer, rows):
        """The codes of encoder layer ``layer`` (counted from 1) over ``rows``, computed once.

        Returns None when the user interrupts the caching; the fit then
        stops there, with what the earlier phases trained.
        """
        width = self.network.widths[layer]
        doing = f"caching the codes of layer {layer} for pretraining"
        try:
            self.listener.cache_started(layer, rows, width)
            with out_of_memory_explained(
                self.device,
                doing,
                f"a cache of {rows.n_rows} x {width} {str(self.options.dtype).removeprefix('torch.')} values "
                f"({rows.n_rows * width * self.options.dtype.itemsize / 2**30:.2f} GiB)",
                "use fewer samples or a narrower layer, or pretrain_epochs=0 to skip the caches",
            ):
                cache = cache_codes(
                    partial(self.network.encode_layer, layer - 1),
                    rows,
                    width,
                    inference_batch_size(self.network.widths[layer - 1 : layer + 1], self.options.batch_size),
                    # The previous cache is ours to overwrite; X is not.
                    reuse_storage=rows is not self.rows,
                    dtype=self.options.dtype,
                )
        except KeyboardInterrupt:
            self.result.interrupted_in = doing
            return None
        self.listener.cache_ended(layer, cache)
        return cache
