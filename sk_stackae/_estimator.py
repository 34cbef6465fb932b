"""StackedAutoencoder: the scikit-learn surface, input validation and orchestration."""

import copy
import math
import warnings
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import FLOAT_DTYPES, check_is_fitted, validate_data

from . import __version__
from ._data import cache_codes, column_means, inference_batch_size, map_row_batches, training_rows
from ._device import device_for_loading, resolve_device, tree_to_numpy, tree_to_torch
from ._distributed import replicas_for
from ._network import ACTIVATIONS, build_network
from ._progress import make_progress
from ._training import (
    NOISES,
    OPTIMIZERS,
    Phase,
    PhaseResult,
    ReconstructionLoss,
    TrainingOptions,
    continue_optimizer,
    make_optimizer,
    train_phase,
)

# Version of what __getstate__ writes; raise it when an older reader could
# not make sense of the new layout.
_PICKLE_FORMAT = 1


class StackedAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Deep autoencoder trained by greedy layer-wise pretraining, then end to end.

    The encoder has one dense layer per entry of ``hidden_layer_sizes``; the
    decoder mirrors it. :meth:`fit` trains the stack in two stages:

    1. **Greedy layer-wise pretraining** (``pretrain_epochs``). Phase 1
       trains the first encoder layer with the last decoder layer as a
       shallow autoencoder on ``X``. Phase ``k`` trains encoder layer ``k``
       with its mirror decoder layer to reconstruct the codes of layer
       ``k - 1``, with every lower layer frozen. Frozen layers give the same
       codes every epoch, so those codes are computed once, in large no-grad
       batches, and phase ``k`` trains on that cache: it costs only layer
       ``k``'s own work.
    2. **Joint fine-tuning** (``finetune_epochs``) of the whole stack on the
       reconstruction loss.

    :meth:`transform` returns the codes (the output of the last encoder
    layer), :meth:`inverse_transform` decodes them, and :meth:`score` is
    minus the mean reconstruction error, so the estimator works in a
    :class:`~sklearn.pipeline.Pipeline` and in
    :class:`~sklearn.model_selection.GridSearchCV` with or without a
    supervised step after it.

    The network is a PyTorch module that computes in float32, on a GPU when
    there is one; outputs keep the input's float dtype.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int or int, default=(256, 64)
        Widths of the encoder layers. The last is the code size; the decoder
        mirrors the encoder back to the input width.

    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "logistic", \
            "sigmoid", "identity"}, default="relu"
        Activation of the hidden layers of the encoder and the decoder, all
        but the code layer. ``"logistic"`` and ``"sigmoid"`` are the same
        function. Weights are initialised for it: He uniform for
        rectifier-like units, Glorot uniform otherwise.

    code_activation : {"identity", "relu", "leaky_relu", "elu", "gelu", \
            "tanh", "logistic", "sigmoid"}, default="identity"
        Activation of the code layer. Linear codes, as in Hinton &
        Salakhutdinov (2006), lose no information to saturated or dead units.

    output_activation : {"identity", "sigmoid", "logistic"}, default="identity"
        Activation of the reconstruction. ``"sigmoid"`` suits data in [0, 1].

    loss : {"mse", "bce"}, default="mse"
        Reconstruction error of the first pretraining phase, of the
        fine-tune and of :meth:`score`: mean squared error, or binary
        cross-entropy for data in [0, 1] (which needs a sigmoid output). The
        deeper pretraining phases always reconstruct codes with the mean
        squared error. With ``"bce"``, the loss curves report the
        cross-entropy that training minimises, while :meth:`score_samples`
        and the validation scores report the relative entropy (the
        cross-entropy less the sample's own entropy), which is zero for a
        perfect reconstruction whatever the pixels' grey levels.

    tied_weights : bool, default=False
        Whether decoder layer ``k`` uses the transpose of encoder layer
        ``k``'s weight (with a bias of its own) instead of a weight of its
        own. Halves the weights to learn; pretraining phases train the shared
        weight through both of its uses.

    pretrain_epochs : int, default=10
        Epochs of each greedy pretraining phase (the most, with early
        stopping); 0 skips pretraining, and the fine-tune then starts from
        the random initialisation.

    finetune_epochs : int, default=10
        Epochs of joint fine-tuning (the most, with early stopping); 0 skips
        it.

    batch_size : int, default=256
        Rows per minibatch, clipped to the number of training samples.

    learning_rate : float, default=1e-3
        Step size of the optimiser.

    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The PyTorch optimiser of every phase: ``torch.optim.Adam``,
        ``AdamW`` or ``SGD`` with ``momentum`` (their fused kernels).

    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``; ignored otherwise.

    alpha : float, default=0.0
        Strength of the penalty on the weights (not the biases). With Adam
        and SGD it is an L2 penalty scaled as in
        :class:`~sklearn.neural_network.MLPRegressor`; with AdamW it is the
        decoupled weight-decay rate.

    noise : {"gaussian", "masking"} or None, default=None
        Corruption of each phase's input during training, which makes a
        denoising autoencoder (Vincent et al., 2010): every phase learns to
        reconstruct its clean input from a corrupted copy. ``"gaussian"``
        adds noise of standard deviation ``noise_level``; ``"masking"`` sets
        a fraction ``noise_level`` of the inputs to zero. Pretraining phase
        ``k`` corrupts the codes it trains on; the fine-tune corrupts ``X``.
        Never applied by :meth:`transform`, :meth:`score` and friends.

    noise_level : float, default=0.1
        Standard deviation of the Gaussian noise, or fraction of masked
        inputs (below 1). Ignored when ``noise`` is None.

    dropout : float, default=0.0
        Probability of zeroing each hidden unit (code layer included) during
        training, in every phase; inference never drops units, so
        :meth:`transform` stays deterministic.

    sparsity : float, default=0.0
        Weight of a penalty that keeps the codes sparse, added for every
        code layer a phase trains. Units in (0, 1) (``"logistic"`` or
        ``"sigmoid"`` activations) get the KL divergence between
        ``sparsity_target`` and each unit's mean activation over the batch,
        averaged over units; other units get the L1 penalty on their mean
        absolute activation.

    sparsity_target : float, default=0.05
        The mean activation, in (0, 1), that the KL penalty pulls each
        sigmoid unit toward. Not used by the L1 penalty.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data and
        stop each phase when its validation score (minus the mean
        reconstruction loss on the held-out rows) has not improved by
        ``tol`` for more than ``n_iter_no_change`` epochs, as
        :class:`~sklearn.neural_network.MLPRegressor` does; each phase then
        ends with the weights of its best epoch. A phase that uses up its
        epochs first raises a :class:`~sklearn.exceptions.ConvergenceWarning`.
        Without early stopping every phase runs all its epochs and ``tol``
        and ``n_iter_no_change`` are not used.

    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping, drawn
        from ``random_state``. Must leave at least one sample on each side.

    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before a phase
        stops, with early stopping.

    tol : float, default=1e-4
        The smallest improvement of the validation score that counts, with
        early stopping.

    precision : {"float32", "tf32", "bfloat16"}, default="float32"
        Arithmetic of the matrix products during training; the weights, the
        optimiser and the losses stay float32, and inference always
        computes in the input's float dtype. ``"bfloat16"`` runs forward and
        backward passes under ``torch.autocast`` in bfloat16, which pays on
        GPUs and on CPUs with bfloat16 units (AMX, AVX512-BF16), and rounds
        the products to about three significant digits. ``"tf32"`` lets
        NVIDIA GPUs use TensorFloat-32 products (the flag is set during
        training only and put back); on the CPU it is ``"float32"``.

    device : {"auto", "cpu", "cuda"} or str or torch.device, default="auto"
        Where the network trains and runs: ``"auto"`` picks CUDA when it is
        available, else the CPU; ``"cuda:N"`` picks a GPU by index.

    distributed : bool, default=False
        Whether to train data-parallel across the processes of the default
        ``torch.distributed`` process group (start them with ``torchrun``
        and call ``torch.distributed.init_process_group`` before fitting;
        gloo on CPUs, nccl with one GPU per process). Each process fits on
        its own shard of the data; the replicas start from rank 0's weights,
        average their gradients at every step, and share the epoch losses,
        validation losses and column means that decisions depend on, so
        greedy phases, caches (one per shard) and early stopping proceed in
        step and every process ends with the same network. ``batch_size`` is
        per process.

    random_state : int, RandomState instance or None, default=None
        Seeds every random draw (initialisation, shuffling, validation
        split, noise, dropout) through a ``torch.Generator`` of this
        estimator's own; the global torch and numpy generators are neither
        read nor changed. An int gives bit-identical results on the CPU.

    verbose : int, default=0
        ``1`` prints one line per epoch of every phase; ``2`` shows a
        progress bar per phase instead when tqdm is installed (the
        ``progress`` extra).

    warm_start : bool, default=False
        When True, :meth:`fit` continues from the fitted network, without
        pretraining it again, and ``loss_curve_`` goes on from where it
        stopped. The architecture (``hidden_layer_sizes``, activations,
        ``tied_weights``) and the number of features must stay the same.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained network (``encode``, ``decode``, ``reconstruct``).

    device_ : torch.device
        The device the network lives on.

    pretrain_loss_curves_ : list of list of float
        For each layer, the mean training loss of every pretraining epoch
        (empty lists when ``pretrain_epochs=0``, and kept from the first fit
        by warm starts, which do not pretrain).

    pretrain_validation_scores_ : list of list of float or None
        For each layer, the validation score of every pretraining epoch,
        with early stopping; None without.

    loss_curve_ : list of float
        The mean training loss of every fine-tune epoch (and of every
        :meth:`partial_fit` call), continued by warm starts.

    validation_scores_ : list of float or None
        The validation score of every fine-tune epoch, with early stopping;
        None without.

    best_validation_score_ : float or None
        The best fine-tune validation score, whose weights the fine-tune
        kept; None without early stopping.

    n_iter_ : int
        Number of fine-tune epochs run, counting earlier fits when warm
        starting and one per :meth:`partial_fit` call.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neural_network.MLPRegressor : A multilayer perceptron; fitted with
        ``X`` as the target it is an autoencoder without pretraining.
    sklearn.neural_network.BernoulliRBM : The building block of the original
        greedy pretraining.

    References
    ----------
    Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality
    of data with neural networks. Science, 313(5786), 504-507.

    Bengio, Y., Lamblin, P., Popovici, D. and Larochelle, H. (2007). Greedy
    layer-wise training of deep networks. NeurIPS 19.

    Vincent, P., Larochelle, H., Lajoie, I., Bengio, Y. and Manzagol, P.-A.
    (2010). Stacked denoising autoencoders: learning useful representations
    in a deep network with a local denoising criterion. JMLR 11, 3371-3408.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_stackae import StackedAutoencoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> autoencoder = StackedAutoencoder(
    ...     hidden_layer_sizes=(32, 8), pretrain_epochs=2, finetune_epochs=2,
    ...     device="cpu", random_state=0)
    >>> codes = autoencoder.fit_transform(X)
    >>> codes.shape
    (1797, 8)
    >>> autoencoder.inverse_transform(codes).shape
    (1797, 64)
    >>> autoencoder.score(X) < 0
    True
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "code_activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({"identity", "sigmoid", "logistic"})],
        "loss": [StrOptions({"mse", "bce"})],
        "tied_weights": ["boolean"],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "finetune_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "noise": [StrOptions(set(NOISES)), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "sparsity": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "precision": [StrOptions({"float32", "tf32", "bfloat16"})],
        "device": [str, torch.device],
        "distributed": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256, 64),
        *,
        activation="relu",
        code_activation="identity",
        output_activation="identity",
        loss="mse",
        tied_weights=False,
        pretrain_epochs=10,
        finetune_epochs=10,
        batch_size=256,
        learning_rate=1e-3,
        optimizer="adam",
        momentum=0.9,
        alpha=0.0,
        noise=None,
        noise_level=0.1,
        dropout=0.0,
        sparsity=0.0,
        sparsity_target=0.05,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        precision="float32",
        device="auto",
        distributed=False,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.tied_weights = tied_weights
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.momentum = momentum
        self.alpha = alpha
        self.noise = noise
        self.noise_level = noise_level
        self.dropout = dropout
        self.sparsity = sparsity
        self.sparsity_target = sparsity_target
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.precision = precision
        self.device = device
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Pretrain the stack layer by layer, then fine-tune it end to end.

        With ``warm_start=True`` and a fitted network, pretraining is
        skipped and the fine-tune continues from the fitted weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse input is densified one batch at a time.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with _unchanged_on_failure(self):
            self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train the whole stack end to end for one epoch on ``X``.

        The first call initialises the network (without greedy pretraining,
        which needs the whole training set and belongs to :meth:`fit`);
        later calls, and calls after :meth:`fit`, continue from the current
        weights, with the optimiser's state kept from call to call. Early
        stopping does not apply: there is no held-out set in one batch.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data, with the features of earlier calls.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        with _unchanged_on_failure(self):
            self._partial_fit(X)
        return self

    def _fit(self, X):
        continuing = self.warm_start and hasattr(self, "network_")
        self._check_epochs(continuing)
        X, hidden_layer_sizes = self._validate_training_input(X, reset=not continuing)
        device = resolve_device(self.device)
        replicas = replicas_for(self.distributed, device)
        generator = _seeded_generator(self.random_state)
        options = replace(self._training_options(), replicas=replicas)
        progress = make_progress(self.verbose)

        record = _TrainingRecord(device=device, batch_size=options.batch_size)
        with record.guard():
            if continuing:
                network = self._continued_network(X.shape[1], hidden_layer_sizes, device)
            else:
                network = self._new_network(X.shape[1], hidden_layer_sizes, device, generator)
            replicas.broadcast_parameters(network.parameters())
            record.network = network
            rows = training_rows(X, device)
            split = self._validation_split(rows.n_rows, generator) if self.early_stopping else None
            if not continuing:
                self._pretrain(network, rows, split, options, generator, progress, record)
                if self.pretrain_epochs == 0:
                    _start_reconstruction_at_mean(network, 0, rows, split, replicas)
            self._finetune(network, rows, split, options, generator, progress, record)
        if record.interrupted_in is None:
            self._warn_if_not_converged(record)
        else:
            record.warn_interrupted()

        self.network_ = record.network
        self.device_ = device
        if not continuing:
            n_layers = len(hidden_layer_sizes)
            pretraining = record.pretraining + [PhaseResult() for _ in range(n_layers - len(record.pretraining))]
            self.pretrain_loss_curves_ = [result.loss_curve for result in pretraining]
            self.pretrain_validation_scores_ = (
                [result.validation_scores or [] for result in pretraining] if self.early_stopping else None
            )
        finetune = record.finetune
        previous_curve = self.loss_curve_ if continuing else []
        self.loss_curve_ = previous_curve + finetune.loss_curve
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_ = (finetune.validation_scores or []) if self.early_stopping else None
        self.best_validation_score_ = max(self.validation_scores_, default=None) if self.early_stopping else None
        # A fit starts the optimiser afresh; only partial_fit carries it on.
        self.__dict__.pop("_optimizer", None)
        self.__dict__.pop("_generator", None)

    def _partial_fit(self, X):
        first_call = not hasattr(self, "network_")
        X, hidden_layer_sizes = self._validate_training_input(X, reset=first_call)
        device = resolve_device(self.device)
        replicas = replicas_for(self.distributed, device)
        options = replace(self._training_options(), early_stopping=False, replicas=replicas)
        record = _TrainingRecord(device=device, batch_size=options.batch_size)
        with record.guard():
            rows = training_rows(X, device)
            if first_call:
                generator = _seeded_generator(self.random_state)
                network = self._new_network(X.shape[1], hidden_layer_sizes, device, generator)
                replicas.broadcast_parameters(network.parameters())
                _start_reconstruction_at_mean(network, 0, rows, None, replicas)
                optimizer = None
            else:
                generator = getattr(self, "_generator", None) or _seeded_generator(self.random_state)
                network, optimizer = self._continued_training_state(X.shape[1], hidden_layer_sizes, device)
            record.network = network
            phase = self._finetune_phase(network, rows, None, epochs=1)
            optimizer = continue_optimizer(optimizer, options, phase.parameters, min(options.batch_size, X.shape[0]))
            record.start(phase.name, max(network.widths))
            record.finetune = PhaseResult()
            train_phase(phase, options, generator, make_progress(self.verbose), optimizer, record.finetune)
        if record.interrupted_in is not None:
            record.warn_interrupted()

        self.network_ = network
        self.device_ = device
        self._optimizer = optimizer
        self._generator = generator
        if first_call:
            self.pretrain_loss_curves_ = [[] for _ in hidden_layer_sizes]
            self.pretrain_validation_scores_ = None
            self.loss_curve_ = []
        self.loss_curve_ = self.loss_curve_ + record.finetune.loss_curve
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_ = None
        self.best_validation_score_ = None

    def _validate_training_input(self, X, reset):
        """Check the hyperparameters and the data before any training."""
        hidden_layer_sizes = self._check_hyperparameters()
        X = validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=reset)
        self._check_value_range(X)
        return X, hidden_layer_sizes

    def _training_options(self):
        return TrainingOptions(
            optimizer=self.optimizer,
            learning_rate=float(self.learning_rate),
            momentum=float(self.momentum),
            alpha=float(self.alpha),
            batch_size=int(self.batch_size),
            noise=self.noise,
            noise_level=float(self.noise_level),
            dropout=float(self.dropout),
            sparsity=float(self.sparsity),
            sparsity_target=float(self.sparsity_target),
            early_stopping=bool(self.early_stopping),
            n_iter_no_change=int(self.n_iter_no_change),
            tol=float(self.tol),
            precision=self.precision,
        )

    def _architecture(self, n_features, hidden_layer_sizes):
        return {
            "n_features": n_features,
            "hidden_layer_sizes": hidden_layer_sizes,
            "activation": self.activation,
            "code_activation": self.code_activation,
            "output_activation": self.output_activation,
            "tied_weights": bool(self.tied_weights),
        }

    def _new_network(self, n_features, hidden_layer_sizes, device, generator):
        network = build_network(self._architecture(n_features, hidden_layer_sizes))
        # Initialised on the CPU from our own generator, then moved: the same
        # seed gives the same starting weights on every device.
        network.reset_parameters(generator)
        return network.to(device)

    def _check_same_architecture(self, n_features, hidden_layer_sizes):
        wanted = self._architecture(n_features, hidden_layer_sizes)
        fitted = self.network_.config
        changes = [f"{key}: {fitted[key]!r} -> {wanted[key]!r}" for key in wanted if wanted[key] != fitted[key]]
        if changes:
            raise ValueError(
                "warm_start and partial_fit continue the fitted network, but the parameters now ask for "
                f"another architecture ({'; '.join(changes)}). Call fit with warm_start=False to train a new network."
            )

    def _continued_network(self, n_features, hidden_layer_sizes, device):
        """A copy of the fitted network to train on, so a failure leaves the original intact."""
        self._check_same_architecture(n_features, hidden_layer_sizes)
        return copy.deepcopy(self.network_).to(device)

    def _continued_training_state(self, n_features, hidden_layer_sizes, device):
        """Copies of the fitted network and of partial_fit's optimiser, which refers to it."""
        self._check_same_architecture(n_features, hidden_layer_sizes)
        optimizer = getattr(self, "_optimizer", None)
        if optimizer is not None and self.device_ != device:
            optimizer = None  # its state lives on the old device; start afresh on the new one
        network, optimizer = copy.deepcopy((self.network_, optimizer))
        return network.to(device), optimizer

    def _validation_split(self, n_samples, generator):
        """Indices of the training and the held-out rows, for early stopping."""
        n_validation = math.ceil(self.validation_fraction * n_samples)
        if n_validation < 1 or n_validation >= n_samples:
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} holds out "
                f"{n_validation} of {n_samples} sample(s), which leaves "
                f"{'none to validate on' if n_validation < 1 else 'none to train on'}. "
                "Use more samples, another validation_fraction, or early_stopping=False."
            )
        order = torch.randperm(n_samples, generator=generator)
        return order[n_validation:], order[:n_validation]

    def _pretrain(self, network, rows, split, options, generator, progress, record):
        """Greedy layer-wise pretraining, each phase on the cached codes below it."""
        n_layers = network.n_layers
        if self.pretrain_epochs == 0:
            return
        layer_rows = rows
        for k in range(n_layers):
            if k > 0:
                # Layer k-1 is frozen from here on: run it once over its input
                # and let phase k train on the result.
                record.start(f"caching the codes of layer {k} for pretraining", network.widths[k], layer_rows.n_rows)
                layer_rows = cache_codes(
                    partial(network.encode_layer, k - 1),
                    layer_rows,
                    network.widths[k],
                    inference_batch_size(network.widths[k - 1 : k + 1], options.batch_size),
                    # The previous cache is ours to overwrite; X is not.
                    reuse_storage=k > 1,
                )
            phase = Phase(
                name=f"pretrain layer {k + 1}/{n_layers}",
                parameters=network.layer_parameters(k),
                forward=partial(network.reconstruct_layer, k),
                loss=ReconstructionLoss(self.loss if k == 0 else "mse", network.decoder_activation_names[k]),
                code_activations=[network.encoder_activation_names[k]],
                rows=layer_rows,
                epochs=self.pretrain_epochs,
                **_split_on(split, layer_rows),
            )
            record.start(phase.name, max(network.widths[k : k + 2]))
            _start_reconstruction_at_mean(network, k, layer_rows, split, options.replicas)
            result = PhaseResult()
            record.pretraining.append(result)
            train_phase(phase, options, generator, progress, result=result)

    def _finetune_phase(self, network, rows, split, epochs):
        return Phase(
            name="finetune",
            parameters=list(network.parameters()),
            forward=network.reconstruct,
            loss=ReconstructionLoss(self.loss, self.output_activation),
            code_activations=list(network.encoder_activation_names),
            rows=rows,
            epochs=epochs,
            **_split_on(split, rows),
        )

    def _finetune(self, network, rows, split, options, generator, progress, record):
        """Train the whole stack end to end on the reconstruction loss."""
        if self.finetune_epochs == 0:
            return
        phase = self._finetune_phase(network, rows, split, self.finetune_epochs)
        record.start(phase.name, max(network.widths))
        record.finetune = PhaseResult()
        train_phase(phase, options, generator, progress, result=record.finetune)

    def _warn_if_not_converged(self, record):
        """One ConvergenceWarning naming every phase that ran out of epochs while still improving."""
        if not self.early_stopping:
            return
        unfinished = []
        for k, result in enumerate(record.pretraining):
            if result.loss_curve and not result.stopped_early:
                unfinished.append(f"pretrain layer {k + 1} ({len(result.loss_curve)} epochs)")
        finetune = record.finetune
        if finetune.loss_curve and not finetune.stopped_early:
            unfinished.append(f"finetune ({len(finetune.loss_curve)} epochs)")
        if unfinished:
            warnings.warn(
                "The validation score was still improving when the epoch budget ran out in "
                f"{', '.join(unfinished)}. Increase pretrain_epochs or finetune_epochs, or raise tol.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _check_hyperparameters(self):
        """Checks that ``_parameter_constraints`` cannot express, for fit and partial_fit.

        Returns the hidden layer sizes as a tuple of ints.
        """
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes, dtype=object))
        if sizes.ndim != 1 or sizes.size == 0:
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of positive integers; "
                f"got {self.hidden_layer_sizes!r}."
            )
        for size in sizes:
            if not isinstance(size, Integral) or isinstance(size, bool) or size < 1:
                raise ValueError(
                    f"hidden_layer_sizes must hold positive integers; got {size!r} in {self.hidden_layer_sizes!r}."
                )
        if self.loss == "bce" and ACTIVATIONS[self.output_activation] is not torch.sigmoid:
            raise ValueError(
                "loss='bce' needs output_activation='sigmoid' (binary cross-entropy compares "
                f"probabilities); got output_activation={self.output_activation!r}."
            )
        if self.noise == "masking" and self.noise_level >= 1:
            raise ValueError(
                f"noise='masking' with noise_level={self.noise_level} would mask every input; "
                "noise_level is the fraction of inputs set to zero and must be below 1."
            )
        return tuple(int(size) for size in sizes)

    def _check_epochs(self, continuing):
        """Check that a call of fit has something to train."""
        if continuing and self.finetune_epochs == 0:
            raise ValueError(
                "warm_start=True continues the fitted network with the fine-tune alone, "
                "and finetune_epochs=0 leaves nothing to train."
            )
        if self.pretrain_epochs == 0 and self.finetune_epochs == 0:
            raise ValueError(
                "pretrain_epochs and finetune_epochs are both 0: there would be nothing to train. "
                "Set at least one of them to a positive number of epochs."
            )

    def _check_value_range(self, X):
        """Binary cross-entropy is defined for targets in [0, 1] only."""
        if self.loss != "bce":
            return
        values = X.data if sp.issparse(X) else X
        if values.size == 0:
            return
        low, high = values.min(), values.max()
        if low < 0 or high > 1:
            # "Negative values in data" is scikit-learn's wording for inputs
            # that must be non-negative (the positive_only tag).
            prefix = "Negative values in data: " if low < 0 else ""
            raise ValueError(
                f"{prefix}loss='bce' needs X with values in [0, 1]; got values in [{low:.4g}, {high:.4g}]. "
                "Scale X first (e.g. MinMaxScaler) or use loss='mse'."
            )

    # ---------------------------------------------------------- inference

    def _inference_network(self, dtype):
        """The fitted network, computing in ``dtype``.

        float64 input is encoded in float64 by an upcast twin of the float32
        network, at about half the float32 speed: a sample's code then does
        not depend on which other samples share its batch (float32 matrix
        products round differently for different batch sizes).
        """
        if dtype == np.float32:
            return self.network_
        twin = build_network(self.network_.config).to(self.device_, torch.float64)
        twin.load_state_dict(self.network_.state_dict())
        return twin

    def _map_rows(self, function, X, width):
        batch_size = inference_batch_size(self.network_.widths, int(self.batch_size))
        return map_row_batches(function, X, batch_size=batch_size, device=self.device_, width=width, dtype=X.dtype)

    def transform(self, X):
        """Encode ``X``: the output of the last encoder layer.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            The codes, in ``X``'s float dtype (float64 for integer input).
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False)
        network = self._inference_network(X.dtype)
        return self._map_rows(network.encode, X, network.code_size)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_layer_sizes[-1])
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, `n_features_in_`)
            The reconstruction, in the codes' float dtype.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if codes.shape[1] != self.network_.code_size:
            raise ValueError(
                f"X has {codes.shape[1]} columns, but the codes of this StackedAutoencoder have "
                f"{self.network_.code_size} (hidden_layer_sizes[-1]); pass the output of transform."
            )
        return self._map_rows(self._inference_network(codes.dtype).decode, codes, self.n_features_in_)

    def score_samples(self, X):
        """Minus the reconstruction error of each sample.

        The error of a sample is the mean over its features of the squared
        error, or with ``loss="bce"`` of the relative entropy (binary
        cross-entropy less the sample's own entropy, zero for a perfect
        reconstruction); low scores flag samples the autoencoder
        reconstructs badly, such as outliers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus each sample's reconstruction error, in ``X``'s float dtype.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False)
        self._check_value_range(X)
        loss = ReconstructionLoss(self.loss, self.output_activation)
        network = self._inference_network(X.dtype)

        def negative_errors(batch):
            pre_activation, _ = network.reconstruct(batch)
            return -loss.per_sample(pre_activation, batch)

        return self._map_rows(negative_errors, X, None)

    def score(self, X, y=None):
        """Minus the mean reconstruction error, so that higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            The mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    @property
    def _n_features_out(self):
        return self.network_.code_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self.loss == "bce"
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ----------------------------------------------------------- pickling

    def __getstate__(self):
        # BaseEstimator may hand back __dict__ itself: never edit it in place.
        state = dict(super().__getstate__())
        state["_sk_stackae_pickle_format"] = _PICKLE_FORMAT
        state["_sk_stackae_version"] = __version__
        # Tensors are saved as numpy arrays and devices as strings: the
        # pickle holds no torch object, so a model fitted on a GPU loads on a
        # machine without one, and skops can read it.
        if "network_" in state:
            network = state["network_"]
            state["network_"] = {"config": dict(network.config), "state_dict": tree_to_numpy(network.state_dict())}
            state["device_"] = str(state["device_"])
        if "_optimizer" in state:
            state["_optimizer"] = tree_to_numpy(state["_optimizer"].state_dict())
        if "_generator" in state:
            state["_generator"] = state["_generator"].get_state().numpy()
        return state

    def __setstate__(self, state):
        state = dict(state)
        pickle_format = state.pop("_sk_stackae_pickle_format", None)
        version = state.pop("_sk_stackae_version", "an unknown version")
        if pickle_format != _PICKLE_FORMAT:
            raise ValueError(
                f"This StackedAutoencoder was saved by sk-stackae {version} in pickle format {pickle_format}, "
                f"which sk-stackae {__version__} cannot read (it reads format {_PICKLE_FORMAT}). Load it with "
                f"sk-stackae {version} and refit, or refit it with this version."
            )
        saved_network = state.get("network_")
        saved_optimizer = state.get("_optimizer")
        if saved_network is not None:
            device = device_for_loading(state["device_"])
            network = build_network(saved_network["config"])
            network.load_state_dict(tree_to_torch(saved_network["state_dict"]))
            state["network_"] = network.to(device)
            state["device_"] = device
        if "_generator" in state:
            state["_generator"] = torch.Generator().set_state(torch.from_numpy(state["_generator"]))
        super().__setstate__(state)
        if saved_optimizer is not None:
            # Rebound to the restored parameters; load_state_dict restores the
            # saved hyperparameters and moves the state to their device.
            self._optimizer = make_optimizer(self._training_options(), list(self.network_.parameters()), 1)
            self._optimizer.load_state_dict(tree_to_torch(saved_optimizer))


class _TrainingRecord:
    """What a fit has done so far, kept when the user interrupts it.

    It also turns running out of memory into an error that says where, with
    which sizes, and what to change.
    """

    def __init__(self, device, batch_size):
        self.device = device
        self.batch_size = batch_size
        self.network = None
        self.pretraining = []
        self.finetune = PhaseResult()
        self.interrupted_in = None
        self.training_started = False
        self._stage = "setting up"
        self._width = None
        self._rows = None

    def start(self, stage, width, rows=None):
        """Note the stage that runs next and the widest layer it computes (a cache: its rows too)."""
        self.training_started = self.training_started or rows is None
        self._stage = stage
        self._width = width
        self._rows = rows

    @contextmanager
    def guard(self):
        try:
            yield
        except KeyboardInterrupt:
            if not self.training_started:
                raise  # nothing trained yet: nothing worth keeping
            self.interrupted_in = self._stage
        except (RuntimeError, MemoryError) as error:
            if not _is_out_of_memory(error):
                raise
            raise self._out_of_memory(error) from error

    def warn_interrupted(self):
        warnings.warn(
            f"Training interrupted by user during {self.interrupted_in}; the estimator keeps the network "
            "as it was then, with the loss curves of the epochs that finished.",
            UserWarning,
            stacklevel=4,
        )

    def _out_of_memory(self, error):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if self._rows is not None:
            gibibytes = self._rows * self._width * 4 / 2**30
            size = f"a cache of {self._rows} x {self._width} float32 values ({gibibytes:.2f} GiB)"
            advice = "use fewer samples or a narrower layer, or pretrain_epochs=0 to skip the caches"
        else:
            size = f"batches of {self.batch_size} rows through layers up to {self._width} units wide"
            advice = (
                f"lower batch_size (now {self.batch_size}), use narrower hidden_layer_sizes, "
                "precision='bfloat16', or device='cpu'"
            )
        message = f"Out of memory on {self.device} while {self._stage}, with {size}: {first_line}. To fit, {advice}."
        if isinstance(error, torch.OutOfMemoryError):
            return type(error)(message)
        return MemoryError(message)


def _is_out_of_memory(error):
    """Whether ``error`` is torch's or the allocator's way of saying memory ran out."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error)
    return "can't allocate memory" in message or "not enough memory" in message


@contextmanager
def _unchanged_on_failure(estimator):
    """Put the estimator's attributes back as they were if the block raises.

    A fit that fails leaves no half-fitted estimator behind: neither new
    fitted attributes nor a changed ``n_features_in_``.
    """
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


def _start_reconstruction_at_mean(network, k, rows, split, replicas):
    """Start layer pair ``k``'s reconstruction at the mean of its training rows (on every replica)."""
    train_indices = None if split is None else split[0].to(rows.index_device)
    network.start_reconstruction_at(k, column_means(rows, train_indices, replicas))


def _split_on(split, rows):
    """The Phase fields for an early-stopping split, with indices where ``rows`` wants them."""
    if split is None:
        return {}
    train, validation = split
    return {"train_indices": train.to(rows.index_device), "validation_indices": validation.to(rows.index_device)}


def _seeded_generator(random_state):
    """A CPU ``torch.Generator`` seeded from ``random_state``.

    ``None`` seeds from fresh OS entropy rather than from numpy's global
    generator, which this estimator never reads.
    """
    if random_state is None:
        seed = np.random.SeedSequence().entropy % 2**63
    elif isinstance(random_state, np.random.RandomState):
        seed = random_state.randint(np.iinfo(np.int32).max)
    else:
        seed = random_state
    return torch.Generator().manual_seed(int(seed))
