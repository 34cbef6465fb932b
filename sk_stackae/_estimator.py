"""StackedAutoencoder: the scikit-learn surface, input validation and orchestration."""

import math
from contextlib import contextmanager
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
from ._data import inference_batch_size, map_row_batches
from ._device import cpu_has_bfloat16_units, device_for_loading, resolve_device, tree_to_numpy, tree_to_torch
from ._distributed import replicas_for
from ._engine import Finetune, FitPlan, FittedState, GreedyPretraining, fit_network
from ._listeners import attached_listeners
from ._network import ACTIVATIONS, build_network
from ._progress import make_progress
from ._training import (
    NOISES,
    OPTIMIZERS,
    PhaseResult,
    ReconstructionLoss,
    TrainingOptions,
    optimizer_from_numpy,
    optimizer_saved_in_format_1,
    optimizer_to_numpy,
    seeded_generator,
)
from ._warnings import warn_at_caller

# Version of what __getstate__ writes; raise it when an older reader could
# not make sense of the new layout.
_PICKLE_FORMAT = 2
# Formats this version reads: 1 saved partial_fit's optimiser without its class.
_READABLE_PICKLE_FORMATS = (1, 2)


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

    The network is a PyTorch module that trains in float32, on a GPU when
    there is one; outputs keep the input's float dtype (float16 input gives
    float32). float64 input is encoded in float64, so that a row's code
    depends on the rest of its batch by float64 rounding only; that is
    slower than float32 (3x for 200,000 x 64 rows into a 256-16 encoder on
    two CPU cores, see the User Guide): pass float32 when its precision is
    enough.

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
        the products to about three significant digits. On a CPU without
        them torch emulates bfloat16 and training is 2x to 10x slower than
        float32 (measured), so :meth:`fit` warns there. ``"tf32"`` lets
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
        read nor changed. On the CPU, an int and the same rows give
        bit-identical results (the rows in memory or memory-mapped, float32
        or float64).

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
        return self._fit(X, incremental=False)

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
        return self._fit(X, incremental=True)

    def _fit(self, X, *, incremental):
        """The one fit path: ``fit`` (fresh or warm-started) and ``partial_fit``.

        It validates everything, plans the stages, calls the engine once and
        stores what comes back; a fit that raises leaves the estimator as
        it was.
        """
        continuing = hasattr(self, "network_") and (incremental or self.warm_start)
        with _unchanged_on_failure(self):
            if not incremental:
                self._check_epochs(continuing)
            X, hidden_layer_sizes = self._validate_training_input(X, reset=not continuing)
            architecture = self._architecture(X.shape[1], hidden_layer_sizes)
            if continuing:
                self._check_same_architecture(architecture)
            device = resolve_device(self.device)
            options = self._training_options(device, incremental)
            if options.early_stopping:
                _check_validation_split(self.validation_fraction, X.shape[0])
            self._warn_about_wasted_settings(X.shape[1], hidden_layer_sizes, device)
            if incremental and continuing and getattr(self, "_generator", None) is not None:
                generator = self._generator  # partial_fit draws on where it stopped
            else:
                generator = seeded_generator(_seed(self.random_state))
            plan = FitPlan(
                architecture=architecture,
                stages=self._stages(continuing, incremental),
                validation_fraction=self.validation_fraction,
                incremental=incremental,
            )
            previous = FittedState(self.network_, getattr(self, "_optimizer", None)) if continuing else None
            result = fit_network(
                X,
                plan,
                options,
                device,
                generator,
                previous=previous,
                listeners=[*make_progress(self.verbose), *attached_listeners()],
            )
            self._store_fit(result, device, generator, continuing=continuing, incremental=incremental)
        if result.interrupted_in is not None:
            warn_at_caller(
                f"Training interrupted by user during {result.interrupted_in}; the estimator keeps the network "
                "as it was then, with the loss curves of the epochs that finished.",
                UserWarning,
            )
        elif options.early_stopping:
            self._warn_if_not_converged(result)
        return self

    def _stages(self, continuing, incremental):
        """The stages of this call: pretraining and the fine-tune, or the fine-tune alone when continuing."""
        finetune = Finetune(
            epochs=1 if incremental else self.finetune_epochs, loss=self.loss, output_activation=self.output_activation
        )
        if continuing or incremental:
            return (finetune,)
        stages = []
        if self.pretrain_epochs > 0:
            stages.append(GreedyPretraining(epochs=self.pretrain_epochs, loss=self.loss))
        if self.finetune_epochs > 0:
            stages.append(finetune)
        return tuple(stages)

    def _store_fit(self, result, device, generator, *, continuing, incremental):
        """Store the fitted attributes from the engine's result: the one place they are set."""
        n_layers = result.network.n_layers
        self.network_ = result.network
        self.device_ = device
        pretraining = result.results_of(GreedyPretraining)
        if not continuing:
            pretraining += [PhaseResult() for _ in range(n_layers - len(pretraining))]
            self.pretrain_loss_curves_ = [phase.loss_curve for phase in pretraining]
            self.pretrain_validation_scores_ = (
                [phase.validation_scores or [] for phase in pretraining] if self._early_stopping(incremental) else None
            )
        finetune = result.results_of(Finetune)
        finetune = finetune[0] if finetune else PhaseResult()
        self.loss_curve_ = (self.loss_curve_ if continuing else []) + finetune.loss_curve
        self.n_iter_ = len(self.loss_curve_)
        if self._early_stopping(incremental):
            self.validation_scores_ = finetune.validation_scores or []
            self.best_validation_score_ = max(self.validation_scores_, default=None)
        else:
            self.validation_scores_ = self.best_validation_score_ = None
        if incremental:
            self._optimizer = result.optimizer
            self._generator = generator
        else:
            # A fit starts the optimiser afresh; only partial_fit carries it on.
            self.__dict__.pop("_optimizer", None)
            self.__dict__.pop("_generator", None)

    def _early_stopping(self, incremental):
        """Whether this call validates: fit with early_stopping, never partial_fit (no held-out set)."""
        return bool(self.early_stopping) and not incremental

    def _validate_training_input(self, X, reset):
        """Check the hyperparameters and the data before any training."""
        hidden_layer_sizes = self._check_hyperparameters()
        X = _as_float_input(validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=reset))
        self._check_value_range(X)
        return X, hidden_layer_sizes

    def _training_options(self, device, incremental):
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
            early_stopping=self._early_stopping(incremental),
            n_iter_no_change=int(self.n_iter_no_change),
            tol=float(self.tol),
            precision=self.precision,
            replicas=replicas_for(self.distributed, device),
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

    def _check_same_architecture(self, wanted):
        fitted = self.network_.config
        changes = [f"{key}: {fitted[key]!r} -> {wanted[key]!r}" for key in wanted if wanted[key] != fitted[key]]
        if changes:
            raise ValueError(
                "warm_start and partial_fit continue the fitted network, but the parameters now ask for "
                f"another architecture ({'; '.join(changes)}). Call fit with warm_start=False to train a new network."
            )

    def _warn_about_wasted_settings(self, n_features, hidden_layer_sizes, device):
        """Warn about settings that train, but not as the user meant."""
        code_size = hidden_layer_sizes[-1]
        regularised = (self.noise is not None and self.noise_level > 0) or self.sparsity > 0
        if code_size >= n_features and not regularised:
            warn_at_caller(
                f"The code ({code_size} units, hidden_layer_sizes[-1]) is as wide as the input or wider "
                f"({n_features} features): without noise or sparsity the autoencoder can learn to copy its "
                "input, and its codes then compress nothing. Use a code narrower than the input, e.g. "
                f"hidden_layer_sizes=({max(1, n_features // 2)},), or set noise or sparsity to learn an "
                "overcomplete code.",
                UserWarning,
            )
        if self.precision == "bfloat16" and device.type == "cpu" and cpu_has_bfloat16_units() is False:
            warn_at_caller(
                "precision='bfloat16' on a CPU without bfloat16 units (AVX512-BF16 or AMX): torch emulates "
                "the bfloat16 products, which makes training several times slower than float32 (2x to 10x "
                "measured) with no gain. Use precision='float32' on this machine.",
                UserWarning,
            )

    def _warn_if_not_converged(self, result):
        """One ConvergenceWarning naming every phase that ran out of epochs while still improving."""
        unfinished = [
            f"{phase.name.split('/')[0]} ({len(phase.loss_curve)} epochs)"
            for _, phase in result.phases
            if phase.loss_curve and not phase.stopped_early
        ]
        if unfinished:
            warn_at_caller(
                "The validation score was still improving when the epoch budget ran out in "
                f"{', '.join(unfinished)}. Increase pretrain_epochs or finetune_epochs, or raise tol.",
                ConvergenceWarning,
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
        network, slower than float32: a sample's code then depends on which
        other samples share its batch by float64 rounding only (float32
        matrix products round differently for different batch sizes).
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
        X = _as_float_input(validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False))
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
        codes = _as_float_input(check_array(X, dtype=FLOAT_DTYPES, input_name="X"))
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
        X = _as_float_input(validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False))
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
        if state.get("_optimizer") is not None:
            state["_optimizer"] = optimizer_to_numpy(state["_optimizer"], list(self.network_.parameters()))
        if "_generator" in state:
            state["_generator"] = state["_generator"].get_state().numpy()
        return state

    def __setstate__(self, state):
        state = dict(state)
        pickle_format = state.pop("_sk_stackae_pickle_format", None)
        version = state.pop("_sk_stackae_version", "an unknown version")
        if pickle_format not in _READABLE_PICKLE_FORMATS:
            readable = " and ".join(str(f) for f in _READABLE_PICKLE_FORMATS)
            raise ValueError(
                f"This {type(self).__name__} was saved by sk-stackae {version} in pickle format {pickle_format}, "
                f"which sk-stackae {__version__} cannot read (it reads formats {readable}). Load it with "
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
            parameters = list(self.network_.parameters())
            if pickle_format == 1:
                saved_optimizer = optimizer_saved_in_format_1(saved_optimizer, parameters)
            # Rebound to the restored parameters, with the class and groups it was saved with.
            self._optimizer = optimizer_from_numpy(saved_optimizer, parameters)


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


def _check_validation_split(validation_fraction, n_samples):
    """Refuse, before any training, a validation split that leaves one side empty."""
    n_validation = math.ceil(validation_fraction * n_samples)
    if n_validation < 1 or n_validation >= n_samples:
        raise ValueError(
            f"early_stopping=True with validation_fraction={validation_fraction} holds out "
            f"{n_validation} of {n_samples} sample(s), which leaves "
            f"{'none to validate on' if n_validation < 1 else 'none to train on'}. "
            "Use more samples, another validation_fraction, or early_stopping=False."
        )


def _as_float_input(X):
    """Validated input in a dtype the network computes in: float16 becomes float32.

    Half precision on the CPU is slow and loses digits that training and
    inference need, so float16 rows are converted once, as integers are
    converted to float64 by validation.
    """
    if X.dtype == np.float16:
        return X.astype(np.float32)
    return X


def _seed(random_state):
    """An integer seed drawn from ``random_state``.

    ``None`` seeds from fresh OS entropy rather than from numpy's global
    generator, which this estimator never reads.
    """
    if random_state is None:
        return np.random.SeedSequence().entropy % 2**63
    if isinstance(random_state, np.random.RandomState):
        return random_state.randint(np.iinfo(np.int32).max)
    return int(random_state)
