"""The fit engine: one whole fit of a network, from plain data to plain results.

It knows no scikit-learn. Its caller (an estimator) validates the input,
describes the fit as a :class:`FitPlan` (an architecture and a sequence of
stages) and calls :func:`fit_network` once; what comes back is a
:class:`FitResult`: the trained network, what each phase did, and whether
and where the user interrupted the fit.

A stage is one kind of training: :class:`GreedyPretraining` trains the
layer pairs one after another, each on the cached codes of the frozen
layers below it; :class:`Finetune` trains the whole autoencoder end to end.
Every stage builds :class:`~sk_stackae._training.Phase` objects and runs
them through the one training loop, :func:`~sk_stackae._training.train_phase`;
a new kind of stage (a supervised head, say) adds a phase, never a loop.

The engine also owns what happens around training: a fresh network or a
copy of the fitted one to continue, the early-stopping split, the code
caches, listeners, interruption and out-of-memory errors that say what to
change.
"""

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import torch

from ._data import cache_codes, column_means, inference_batch_size, training_rows
from ._distributed import SingleProcess
from ._listeners import Listeners
from ._network import build_network
from ._training import Phase, ReconstructionLoss, continue_optimizer, train_phase

FINETUNE_NAME = "finetune"


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
            phase = Phase(
                name=pretrain_phase_name(k + 1, n_layers),
                parameters=network.layer_parameters(k),
                forward=partial(network.reconstruct_layer, k),
                loss=ReconstructionLoss(self.loss if k == 0 else "mse", network.decoder_activation_names[k]),
                code_activations=[network.encoder_activation_names[k]],
                rows=layer_rows,
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
    """

    epochs: int
    loss: str
    output_activation: str

    def run(self, fit):
        network = fit.network
        phase = Phase(
            name=FINETUNE_NAME,
            parameters=list(network.parameters()),
            forward=network.reconstruct,
            loss=ReconstructionLoss(self.loss, self.output_activation),
            code_activations=list(network.encoder_activation_names),
            rows=fit.rows,
            epochs=self.epochs,
            **fit.split_on(fit.rows),
        )
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
    """

    architecture: dict
    stages: tuple
    validation_fraction: float | None = None
    incremental: bool = False


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


# ----------------------------------------------------------------- errors


def is_out_of_memory(error):
    """Whether ``error`` is torch's or the allocator's way of saying memory ran out."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error)
    return "can't allocate memory" in message or "not enough memory" in message


@contextmanager
def out_of_memory_explained(device, doing, size, advice):
    """Re-raise running out of memory in the block as an error that says where, how big, and what to change."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        message = f"Out of memory on {device} while {doing}, with {size}: {first_line}. To fit, {advice}."
        explained = type(error)(message) if isinstance(error, torch.OutOfMemoryError) else MemoryError(message)
        raise explained from error


# ------------------------------------------------------------------- fit


def fit_network(X, plan, options, device, generator, *, previous=None, listeners=()):
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

    Returns
    -------
    FitResult
    """
    fit = _Fit(plan, options, device, generator, Listeners(listeners))
    fit.start(X, previous)
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
        self.listener = listener
        self.replicas = options.replicas or SingleProcess()
        self.network = None
        self.rows = None
        self.split = None
        self.optimizer = None
        self.result = None

    # -------------------------------------------------------- setting up

    def start(self, X, previous):
        if previous is None:
            network = build_network(self.plan.architecture)
            # Initialised on the CPU from our own generator, then moved: the
            # same seed gives the same starting weights on every device.
            network.reset_parameters(self.generator)
            network, optimizer = network.to(self.device), None
        else:
            network, optimizer = self._continued(previous)
        self.replicas.broadcast_parameters(network.parameters())
        self.network = network
        self.optimizer = optimizer
        self.result = FitResult(network=network)
        self.rows = training_rows(X, self.device)
        if self.options.early_stopping:
            self.split = self._validation_split(self.rows.n_rows)
        if previous is None and not any(isinstance(stage, GreedyPretraining) for stage in self.plan.stages):
            # No pretraining phase will start the reconstruction at the mean.
            self.start_reconstruction_at_mean(0, self.rows)

    def _continued(self, previous):
        """Copies of the fitted network and of its optimiser, which refers to it, on the device."""
        optimizer = previous.optimizer if self.plan.incremental else None
        if optimizer is not None and next(previous.network.parameters()).device != self.device:
            optimizer = None  # its state lives on the old device; start afresh on the new one
        network, optimizer = copy.deepcopy((previous.network, optimizer))
        return network.to(self.device), optimizer

    def _validation_split(self, n_rows):
        """Indices of the training and the held-out rows, for early stopping."""
        n_validation = math.ceil(self.plan.validation_fraction * n_rows)
        order = torch.randperm(n_rows, generator=self.generator)
        return order[n_validation:], order[:n_validation]

    def split_on(self, rows):
        """The Phase fields for the early-stopping split, with indices where ``rows`` wants them."""
        if self.split is None:
            return {}
        train, validation = self.split
        return {"train_indices": train.to(rows.index_device), "validation_indices": validation.to(rows.index_device)}

    def start_reconstruction_at_mean(self, k, rows):
        """Start layer pair ``k``'s reconstruction at the mean of its training rows (on every replica)."""
        train_indices = None if self.split is None else self.split[0].to(rows.index_device)
        self.network.start_reconstruction_at(k, column_means(rows, train_indices, self.replicas))

    # --------------------------------------------------------- steps

    def train(self, stage, phase):
        """Run ``phase`` of ``stage`` and record its result; returns the result."""
        optimizer = None
        if self.plan.incremental:
            batch_size = min(self.options.batch_size, phase.rows.n_rows)
            optimizer = continue_optimizer(self.optimizer, self.options, phase.parameters, batch_size)
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
                f"a cache of {rows.n_rows} x {width} float32 values ({rows.n_rows * width * 4 / 2**30:.2f} GiB)",
                "use fewer samples or a narrower layer, or pretrain_epochs=0 to skip the caches",
            ):
                cache = cache_codes(
                    partial(self.network.encode_layer, layer - 1),
                    rows,
                    width,
                    inference_batch_size(self.network.widths[layer - 1 : layer + 1], self.options.batch_size),
                    # The previous cache is ours to overwrite; X is not.
                    reuse_storage=rows is not self.rows,
                )
        except KeyboardInterrupt:
            self.result.interrupted_in = doing
            return None
        self.listener.cache_ended(layer, cache)
        return cache
