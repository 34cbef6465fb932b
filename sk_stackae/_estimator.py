"""StackedAutoencoder: the transformer, on the shared stack of :mod:`sk_stackae._base`."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_array
from sklearn.utils.validation import FLOAT_DTYPES, _check_sample_weight, check_is_fitted

from ._base import BaseStackedAutoencoder
from ._engine import Finetune, GreedyPretraining
from ._inputs import _as_float_input
from ._losses import ReconstructionError


class ReconstructionStages:
    """The stages of an autoencoder trained on its reconstruction alone: greedy pretraining, then the fine-tune.

    Shared by :class:`StackedAutoencoder` and the outlier detector, which
    train the same network and differ in what they read off it.
    """

    _main_stage = Finetune

    def _stages(self, continuing, incremental):
        """The stages of this call: pretraining and the fine-tune, or the fine-tune alone when continuing."""
        finetune = Finetune(
            epochs=1 if incremental else self.finetune_epochs,
            loss=self.loss,
            output_activation=self.output_activation,
            trim_fraction=self._trim_fraction(),
        )
        if continuing or incremental:
            return (finetune,)
        stages = []
        if self.pretrain_epochs > 0:
            stages.append(GreedyPretraining(epochs=self.pretrain_epochs, loss=self.loss))
        if self.finetune_epochs > 0:
            stages.append(finetune)
        return tuple(stages)

    def _trim_fraction(self):
        """The share of each batch's rows that the fine-tune leaves out (the detector's trimmed loss); 0 here."""
        return 0.0

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

    def _warn_about_wasted_settings(self, n_features, hidden_layer_sizes, device):
        super()._warn_about_wasted_settings(n_features, hidden_layer_sizes, device)
        self._warn_if_overcomplete(n_features, hidden_layer_sizes)


class StackedAutoencoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ReconstructionStages, BaseStackedAutoencoder
):
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
    slower than float32 (see :ref:`User Guide <input_data>`): pass float32
    when its precision is enough.

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

    learning_rate : {"constant", "invscaling", "adaptive", "cosine"}, default="constant"
        The schedule of the step size within each phase, as in
        :class:`~sklearn.neural_network.MLPClassifier` (for every
        optimiser): ``"constant"`` keeps ``learning_rate_init``;
        ``"invscaling"`` sets it after each epoch to ``learning_rate_init /
        (t + 1) ** power_t``, with ``t`` the rows the phase has trained on;
        ``"adaptive"`` divides it by 5 each time the validation score (with
        ``early_stopping``) or else the training loss has not improved by
        ``tol`` for more than ``n_iter_no_change`` epochs, down to 1e-6, and
        with early stopping a phase stops only once it is that low;
        ``"cosine"`` lowers it along half a cosine from
        ``learning_rate_init`` toward 0 over the phase's epochs. Every phase
        starts again at ``learning_rate_init``, and :meth:`partial_fit`
        trains at ``learning_rate_init``. A float is the initial step size
        under its old name: deprecated (a ``FutureWarning``), use
        ``learning_rate_init``.

    learning_rate_init : float, default=1e-3
        The initial step size of the optimiser, in every phase.

    power_t : float, default=0.5
        The exponent of ``learning_rate="invscaling"``.

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

    precision : {"float32", "float64", "tf32", "bfloat16"}, default="float32"
        Arithmetic of training. ``"float32"``: the network, its gradients,
        the optimiser and the losses in float32, the fast path.
        ``"float64"``: all of them in float64, as
        :class:`~sklearn.neural_network.MLPRegressor` trains; several times
        slower (and without the hand-derived step), for fits that must agree
        to float64 rounding, such as equal sample weights and repeated rows.
        ``"bfloat16"`` runs forward and backward passes under
        ``torch.autocast`` in bfloat16 (the weights, optimiser and losses
        stay float32), which pays on GPUs and on CPUs with bfloat16 units
        (AMX, AVX512-BF16), and rounds the products to about three
        significant digits; on a CPU without them torch emulates bfloat16,
        which is slower than float32, so :meth:`fit` warns there. ``"tf32"``
        lets NVIDIA GPUs use TensorFloat-32 products (the flag is set during
        training only and put back); on the CPU it is ``"float32"``.
        Inference computes in the input's float dtype whatever the
        precision of training.

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
        bit-identical networks (the rows in memory or memory-mapped, float32
        or float64); the codes follow the input's dtype.

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
        learning_rate="constant",
        learning_rate_init=1e-3,
        power_t=0.5,
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
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
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
    def fit(self, X, y=None, sample_weight=None):
        """Pretrain the stack layer by layer, then fine-tune it end to end.

        With ``warm_start=True`` and a fitted network, pretraining is
        skipped and the fine-tune continues from the fitted weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse input is densified one batch at a time.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. Every
            loss weighs each row by it within its minibatch (see the User
            Guide on how weights meet noise, dropout and minibatches).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, incremental=False, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
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

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. Every
            loss weighs each row by it within its minibatch (see the User
            Guide on how weights meet noise, dropout and minibatches).

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, incremental=True, sample_weight=sample_weight)

    # ---------------------------------------------------------- inference

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
        return self._codes(self._validate_inference_input(X))

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
        X = self._validate_inference_input(X)
        self._check_value_range(X)
        loss = ReconstructionError(self.loss, self.output_activation)
        network = self._inference_network(X.dtype)

        def negative_errors(batch):
            pre_activation, _ = network.reconstruct(batch)
            return -loss.per_sample(pre_activation, batch)

        return self._map_rows(negative_errors, X, None)

    def score(self, X, y=None, sample_weight=None):
        """Minus the mean reconstruction error, so that higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the mean.

        Returns
        -------
        score : float
            The (weighted) mean of :meth:`score_samples`.
        """
        scores = self.score_samples(X)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, scores, dtype=np.float64)
        return float(np.average(scores.astype(np.float64), weights=weights))

    @property
    def _n_features_out(self):
        return self.network_.code_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self.loss == "bce"
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
