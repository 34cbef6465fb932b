"""StackedAutoencoder: the scikit-learn surface, input validation and orchestration."""

from contextlib import contextmanager
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import FLOAT_DTYPES, check_is_fitted, validate_data

from ._data import cache_codes, inference_batch_size, map_row_batches, training_rows
from ._device import device_for_loading, resolve_device, state_to_cpu
from ._network import ACTIVATIONS, StackedAutoencoderNetwork, build_network
from ._training import Phase, ReconstructionLoss, TrainingOptions, train_phase


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
        squared error.

    pretrain_epochs : int, default=10
        Epochs of each greedy pretraining phase; 0 skips pretraining (the
        fine-tune then starts from the random initialisation).

    finetune_epochs : int, default=10
        Epochs of joint fine-tuning; 0 skips it.

    batch_size : int, default=256
        Rows per minibatch, clipped to the number of samples.

    learning_rate : float, default=1e-3
        Step size of the Adam optimiser.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (not the biases), scaled
        as in :class:`~sklearn.neural_network.MLPRegressor`.

    device : {"auto", "cpu", "cuda"} or str or torch.device, default="auto"
        Where the network trains and runs: ``"auto"`` picks CUDA when it is
        available, else the CPU; ``"cuda:N"`` picks a GPU by index.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the shuffling, through a
        ``torch.Generator`` of this estimator's own; the global torch and
        numpy generators are neither read nor changed. An int gives
        bit-identical results on the CPU.

    verbose : int, default=0
        ``1`` prints one line per epoch of every phase.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained network (``encode``, ``decode``, ``reconstruct``).

    device_ : torch.device
        The device the network lives on.

    pretrain_loss_curves_ : list of list of float
        For each layer, the mean training loss of every pretraining epoch
        (empty lists when ``pretrain_epochs=0``).

    loss_curve_ : list of float
        The mean training loss of every fine-tune epoch.

    n_iter_ : int
        Number of fine-tune epochs run.

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
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "finetune_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256, 64),
        *,
        activation="relu",
        code_activation="identity",
        output_activation="identity",
        loss="mse",
        pretrain_epochs=10,
        finetune_epochs=10,
        batch_size=256,
        learning_rate=1e-3,
        alpha=0.0,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Pretrain the stack layer by layer, then fine-tune it end to end.

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

    def _fit(self, X):
        hidden_layer_sizes = self._check_hyperparameters()
        X = validate_data(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES)
        self._check_value_range(X)
        device = resolve_device(self.device)
        generator = _seeded_generator(self.random_state)

        network = StackedAutoencoderNetwork(
            X.shape[1],
            hidden_layer_sizes,
            activation=self.activation,
            code_activation=self.code_activation,
            output_activation=self.output_activation,
        )
        # Initialised on the CPU from our own generator, then moved: the same
        # seed gives the same starting weights on every device.
        network.reset_parameters(generator)
        network.to(device)

        rows = training_rows(X, device)
        options = TrainingOptions(
            optimizer="adam",
            learning_rate=float(self.learning_rate),
            alpha=float(self.alpha),
            batch_size=int(self.batch_size),
        )
        pretrain_curves = self._pretrain(network, rows, options, generator)
        loss_curve = self._finetune(network, rows, options, generator)

        self.network_ = network
        self.device_ = device
        self.pretrain_loss_curves_ = pretrain_curves
        self.loss_curve_ = loss_curve
        self.n_iter_ = len(loss_curve)

    def _pretrain(self, network, rows, options, generator):
        """Greedy layer-wise pretraining, each phase on the cached codes below it."""
        n_layers = network.n_layers
        if self.pretrain_epochs == 0:
            return [[] for _ in range(n_layers)]
        curves = []
        layer_rows = rows
        for k in range(n_layers):
            if k > 0:
                # Layer k-1 is frozen from here on: run it once over its input
                # and let phase k train on the result.
                layer_rows = cache_codes(
                    partial(network.encode_layer, k - 1),
                    layer_rows,
                    network.widths[k],
                    inference_batch_size(network.widths[k - 1 : k + 1], options.batch_size),
                )
            phase = Phase(
                name=f"pretrain layer {k + 1}/{n_layers}",
                parameters=network.layer_parameters(k),
                forward=partial(network.reconstruct_layer, k),
                loss=ReconstructionLoss(
                    self.loss if k == 0 else "mse",
                    network.decoder_activation_names[k],
                ),
                rows=layer_rows,
                epochs=self.pretrain_epochs,
            )
            curves.append(train_phase(phase, options, generator, self._report_epoch))
        return curves

    def _finetune(self, network, rows, options, generator):
        """Train the whole stack end to end on the reconstruction loss."""
        if self.finetune_epochs == 0:
            return []
        phase = Phase(
            name="finetune",
            parameters=list(network.parameters()),
            forward=network.reconstruct,
            loss=ReconstructionLoss(self.loss, self.output_activation),
            rows=rows,
            epochs=self.finetune_epochs,
        )
        return train_phase(phase, options, generator, self._report_epoch)

    def _report_epoch(self, phase, epoch, loss, seconds):
        if self.verbose:
            print(f"{phase.name} epoch {epoch}/{phase.epochs} loss {loss:.5g} {seconds:.2f}s")

    # ------------------------------------------------------------ checks

    def _check_hyperparameters(self):
        """Checks that ``_parameter_constraints`` cannot express.

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
        if self.pretrain_epochs == 0 and self.finetune_epochs == 0:
            raise ValueError(
                "pretrain_epochs and finetune_epochs are both 0: there would be nothing to train. "
                "Set at least one of them to a positive number of epochs."
            )
        return tuple(int(size) for size in sizes)

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
        network: a sample's code then does not depend on which other samples
        share its batch (float32 matrix products round differently for
        different batch sizes), and the extra precision is free to keep.
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
        X_reconstructed : ndarray of shape (n_samples, n_features_in_)
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

        The error of a sample is the mean over its features of the ``loss``
        (squared error or binary cross-entropy); low scores flag samples the
        autoencoder reconstructs badly, such as outliers.

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
        if "network_" in state:
            # Saved as plain CPU tensors plus the architecture, so a model
            # fitted on a GPU loads on a machine without one.
            network = state["network_"]
            state["network_"] = {"config": network.config, "state_dict": state_to_cpu(network)}
        return state

    def __setstate__(self, state):
        saved = state.get("network_")
        if isinstance(saved, dict):
            device = device_for_loading(state["device_"])
            network = build_network(saved["config"])
            network.load_state_dict(saved["state_dict"])
            state = {**state, "network_": network.to(device), "device_": device}
        super().__setstate__(state)


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
