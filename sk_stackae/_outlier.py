"""StackedAutoencoderOutlierDetector: the rows that the autoencoder reconstructs badly are the outliers.

The detector trains the same stack as :class:`~sk_stackae.StackedAutoencoder`
(greedy pretraining on cached codes, then the fine-tune), on columns it
standardises itself, and reads scikit-learn's detector API off the
reconstruction errors: ``score_samples``, a threshold ``offset_`` taken
from the training rows' errors, ``decision_function``, ``predict`` and
``fit_predict``, and the error of every feature of every row.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OutlierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseStackedAutoencoder
from ._device import resolve_device
from ._distributed import replicas_for
from ._estimator import ReconstructionStages
from ._losses import ReconstructionError
from ._scaling import column_scaling, standardised

# Tukey's fence: a value more than 1.5 interquartile ranges above the upper
# quartile is "far out". On normally distributed values it lies 2.70
# standard deviations above the mean, beyond which 0.35 % of them lie.
_TUKEY_FENCE = 1.5


def default_hidden_layer_sizes(n_features):
    """The widths of ``hidden_layer_sizes="auto"``: a layer as wide as the input, then a code of ``sqrt(n_features)``.

    The first layer has room for nonlinear features of the input (as the
    outer layers of replicator networks, Hawkins et al., 2002); the code is
    well below the input width from three features on, so the network
    cannot learn to copy its input. ``sqrt(784) = 28`` is close to the 30
    code units of Hinton & Salakhutdinov (2006) for MNIST.
    """
    return (n_features, max(1, round(n_features**0.5)))


def weighted_percentile(values, weights, percent):
    """The ``percent`` percentile of ``values`` whose rows count as their ``weights`` (all 1 for None).

    The inverted empirical distribution function (numpy's
    ``method="inverted_cdf"``): the smallest value whose share of the total
    weight at or below it reaches ``percent`` %. With integer weights it is
    that percentile of the values repeated as often as their weights say.
    """
    values = np.asarray(values, dtype=np.float64)
    if weights is not None:
        # Rows of weight 0 count for nothing, as if they were not there.
        weights = np.asarray(weights, dtype=np.float64)
        values, weights = values[weights > 0], weights[weights > 0]
    else:
        weights = np.ones_like(values)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    # The relative tolerance absorbs the rounding of the cumulative sums.
    target = percent / 100.0 * cumulative[-1] * (1 - 1e-12)
    index = min(int(np.searchsorted(cumulative, target, side="left")), len(values) - 1)
    return float(values[order][index])


def threshold_below(scores, weights, percent):
    """A threshold with ``percent`` % of the (weighted) ``scores`` at or below it, halfway to the next score.

    :func:`weighted_percentile` gives the score of the last row flagged;
    the threshold lies halfway between it and the next higher score, so
    that no training row sits on it and rounding cannot move a row across.
    """
    scores = np.asarray(scores, dtype=np.float64)
    last_flagged = weighted_percentile(scores, weights, percent)
    if weights is not None:
        scores = scores[np.asarray(weights) > 0]
    above = scores[scores > last_flagged]
    return last_flagged if above.size == 0 else float((last_flagged + above.min()) / 2)


def upper_fence(errors, weights=None):
    """Tukey's upper fence on the square roots of ``errors``, mapped back to errors.

    ``(Q3 + 1.5 * (Q3 - Q1)) ** 2`` where Q1 and Q3 are the quartiles of
    ``sqrt(errors)``: the boxplot rule on the root-mean-square errors. A
    mean squared error is skewed to the right like a chi-square variable;
    its square root is close to normal from a few degrees of freedom on
    (Fisher's approximation), where the fence lies 2.70 standard deviations
    above the mean and 0.35 % of the values beyond it. Quartiles barely
    move while fewer than a quarter of the errors are outliers, so no labels
    and no contamination rate are needed.
    """
    roots = np.sqrt(np.maximum(errors, 0.0))
    lower_quartile, upper_quartile = (weighted_percentile(roots, weights, q) for q in (25, 75))
    return float((upper_quartile + _TUKEY_FENCE * (upper_quartile - lower_quartile)) ** 2)


class StackedAutoencoderOutlierDetector(OutlierMixin, ReconstructionStages, BaseStackedAutoencoder):
    """Outlier detection by the reconstruction error of a deep stacked autoencoder.

    The detector trains a stacked autoencoder on ``X`` as
    :class:`StackedAutoencoder` does (greedy layer-wise pretraining on cached
    codes, then the joint fine-tune) and ranks rows by how badly it
    reconstructs them: an autoencoder with a narrow code learns the
    structure that most rows share, and cannot reproduce what breaks it. It
    follows scikit-learn's detector API, as
    :class:`~sklearn.ensemble.IsolationForest` and
    :class:`~sklearn.neighbors.LocalOutlierFactor` (``novelty=True``) do:
    :meth:`score_samples` is higher for more normal rows, ``offset_`` is the
    threshold, :meth:`decision_function` is ``score_samples - offset_``
    (negative for outliers), :meth:`predict` gives +1 for inliers and -1
    for outliers, and :meth:`feature_errors` tells which columns made a
    row an outlier.

    **Scaling.** A reconstruction error adds up the errors of the columns,
    which compare only in common units. With ``standardize=True`` (the
    default) the detector standardises every column itself, to zero mean
    and unit variance over the training rows (sparse input is scaled
    without centring, to stay sparse), trains on the standardised columns
    and measures every error in standard deviations of its column; the
    centre and scale are kept in ``center_`` and ``scale_`` and applied to
    every row it scores. With ``standardize=False`` the errors are in the
    units of ``X``.

    **The threshold.** With a float ``contamination``, ``offset_`` is that
    quantile of the training rows' scores, so that this share of them is
    flagged. With ``contamination="auto"``, the threshold is the boxplot
    rule on the root-mean-square errors: a row is an outlier when its RMS
    reconstruction error (with ``standardize=True``: the typical error of
    one of its columns, in that column's standard deviations) lies beyond
    Tukey's upper fence of the training rows' RMS errors, ``Q3 + 1.5 * (Q3
    - Q1)`` with Q1 and Q3 their quartiles. It needs no label and no guess
    of the outlier rate, and outliers among the training rows move it
    little while they are fewer than a quarter of them. The square root of
    a mean of squared errors is close to normal, where the fence flags
    0.35 % of the values. Real errors have heavier tails, the more so where
    the network fits the normal rows unevenly: expect from none to several
    percent of the normal training rows flagged (see the User Guide), and
    more among rows the network
    did not train on, whose errors are somewhat larger. Where the share of
    outliers is known, a float ``contamination`` is the better threshold.

    Read more in the :ref:`User Guide <outlier_detection>`.

    Parameters
    ----------
    hidden_layer_sizes : "auto" or array-like of int, default="auto"
        Widths of the encoder layers; the last is the code size and the
        decoder mirrors the encoder. ``"auto"`` derives them from the
        number of features ``d``: ``(d, round(sqrt(d)))``, a first layer as
        wide as the input, room for nonlinear features, then a code of
        ``sqrt(d)`` units (e.g. 30 features: ``(30, 5)``; 784: ``(784,
        28)``), far narrower than the input, so that the network cannot
        learn to copy every row, outliers included.

    contamination : "auto" or float, default="auto"
        The expected share of outliers among the training rows, in (0,
        0.5], which sets ``offset_`` to that quantile of their scores; or
        ``"auto"``: Tukey's fence on the training rows' root-mean-square
        reconstruction errors (see above).

    standardize : bool, default=True
        Whether to standardise every column with its mean and standard
        deviation over the training rows before training and scoring, so
        that the errors of all columns are in the same units. Turn it off
        for columns that already share units (pixels, say) or for
        ``loss="bce"``, which needs values in [0, 1]. The standardised
        copy of dense ``X`` is held in memory: for a memory-mapped ``X``
        larger than memory, standardise it on disk and turn this off.

    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "logistic", \
            "sigmoid", "identity"}, default="elu"
        Activation of the hidden layers, all but the code layer. ELU rather
        than ReLU: in layers as narrow as those of small tables, a ReLU
        unit that stops firing for every row takes a good share of the
        capacity with it, while an ELU unit keeps a gradient.

    code_activation : {"identity", "relu", "leaky_relu", "elu", "gelu", \
            "tanh", "logistic", "sigmoid"}, default="identity"
        Activation of the code layer.

    output_activation : {"identity", "sigmoid", "logistic"}, default="identity"
        Activation of the reconstruction; ``"sigmoid"`` suits data in [0,
        1], with ``standardize=False``.

    loss : {"mse", "bce"}, default="mse"
        Reconstruction error of training and of the scores: the squared
        error, or the relative entropy of binary cross-entropy for data in
        [0, 1] (with ``output_activation="sigmoid"`` and
        ``standardize=False``).

    tied_weights : bool, default=False
        Whether decoder layer ``k`` uses the transpose of encoder layer
        ``k``'s weight.

    pretrain_epochs : int, default=5
        Epochs of each greedy pretraining phase; 0 skips pretraining.

    finetune_epochs : int, default=60
        Epochs of joint fine-tuning; 0 skips it. An autoencoder that has not
        converged ranks outliers worse, and the detector's tables are often
        small (hundreds of rows, one or a few batches an epoch): more
        epochs and a larger step than :class:`StackedAutoencoder`'s
        defaults let these narrow networks converge.

    batch_size : int, default=256
        Rows per minibatch, clipped to the number of training rows.

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
        starts again at ``learning_rate_init``. A float is the initial step size
        under its old name: deprecated (a ``FutureWarning``), use
        ``learning_rate_init``.

    learning_rate_init : float, default=1e-2
        The initial step size of the optimiser: ten times
        :class:`StackedAutoencoder`'s, which suits the small networks that
        ``hidden_layer_sizes="auto"`` builds for tables. Lower it for wide
        inputs (images of hundreds of pixels) if the loss curve jumps.

    power_t : float, default=0.5
        The exponent of ``learning_rate="invscaling"``.

    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The PyTorch optimiser of every phase.

    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (AdamW: the decoupled
        weight decay).

    noise : {"gaussian", "masking"} or None, default=None
        Corruption of each phase's input during training (a denoising
        autoencoder). With standardised columns, ``noise_level`` is in
        standard deviations of each column.

    noise_level : float, default=0.1
        Standard deviation of the Gaussian noise, or fraction of masked
        inputs.

    dropout : float, default=0.0
        Probability of zeroing each hidden unit during training.

    sparsity : float, default=0.0
        Weight of the sparsity penalty on the codes.

    sparsity_target : float, default=0.05
        Mean activation that the KL sparsity penalty aims at.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the rows and stop
        each phase when its validation score (minus the mean reconstruction
        error) has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs.

    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping.

    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before a phase
        stops, with early stopping.

    tol : float, default=1e-4
        The smallest improvement that counts, with early stopping.

    precision : {"float32", "float64", "tf32", "bfloat16"}, default="float32"
        Arithmetic of training: float32 (the fast path), float64 throughout
        (as scikit-learn's MLP trains; slower), bfloat16 products under
        autocast, or TensorFloat-32 products on NVIDIA GPUs (see
        :class:`StackedAutoencoder`).

    device : {"auto", "cpu", "cuda"} or str or torch.device, default="auto"
        Where the network trains and scores.

    distributed : bool, default=False
        Whether to train data-parallel across the processes of a
        ``torch.distributed`` process group; the column scaling and the
        threshold are then taken over the rows of every process.

    random_state : int, RandomState instance or None, default=None
        Seeds every random draw through a ``torch.Generator`` of the
        estimator's own.

    verbose : int, default=0
        ``1`` prints a line per epoch of every phase; ``2`` shows progress
        bars when tqdm is installed.

    warm_start : bool, default=False
        When True, :meth:`fit` continues the fitted network with the
        fine-tune alone, on columns scaled as in the first fit, and takes
        the threshold afresh from the new rows.

    Attributes
    ----------
    offset_ : float
        The threshold on :meth:`score_samples`: rows that score below it are
        outliers, and :meth:`decision_function` is ``score_samples -
        offset_``. With ``contamination="auto"`` it is minus the square of
        Tukey's fence on the training rows' RMS errors.

    center_ : ndarray of shape (`n_features_in_`,) or None
        The mean of every column over the training rows (zeros for sparse
        input, which is not centred); None with ``standardize=False``.

    scale_ : ndarray of shape (`n_features_in_`,) or None
        The standard deviation of every column over the training rows (1
        for constant columns); None with ``standardize=False``.

    network_ : torch.nn.Module
        The trained autoencoder, which reads standardised columns.

    device_ : torch.device
        The device the network lives on.

    pretrain_loss_curves_ : list of list of float
        For each layer, the training loss of every pretraining epoch.

    pretrain_validation_scores_ : list of list of float or None
        For each layer, the validation score of every pretraining epoch,
        with early stopping.

    loss_curve_ : list of float
        The training loss of every fine-tune epoch.

    validation_scores_ : list of float or None
        The validation score of every fine-tune epoch, with early stopping.

    best_validation_score_ : float or None
        The best fine-tune validation score, with early stopping.

    n_iter_ : int
        Number of fine-tune epochs run.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when all are strings.

    See Also
    --------
    StackedAutoencoder : The transformer; its ``score_samples`` is the same
        reconstruction error, without scaling or threshold.
    sklearn.ensemble.IsolationForest : Outliers are the rows that few random
        splits isolate; fast, and needs no scaling.
    sklearn.neighbors.LocalOutlierFactor : Outliers are the rows in sparser
        neighbourhoods than their neighbours'.

    References
    ----------
    Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality
    of data with neural networks. Science, 313(5786), 504-507.

    Hawkins, S., He, H., Williams, G. and Baxter, R. (2002). Outlier detection
    using replicator neural networks. DaWaK 2002, LNCS 2454, 170-180.

    Aggarwal, C. C. (2017). Outlier Analysis, 2nd ed., chapter 3 (linear
    models and replicator neural networks). Springer.

    Tukey, J. W. (1977). Exploratory Data Analysis. Addison-Wesley.

    Fisher, R. A. (1922). On the interpretation of chi-square from
    contingency tables, and the calculation of P. Journal of the Royal
    Statistical Society, 85(1), 87-94.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_stackae import StackedAutoencoderOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 8))  # 8 columns, 3 degrees of freedom
    >>> X += 0.1 * rng.normal(size=X.shape)
    >>> X[:5, 3] += 5 * X[:, 3].std()  # five rows with one broken column
    >>> detector = StackedAutoencoderOutlierDetector(device="cpu", random_state=0).fit(X)
    >>> detector.predict(X[:5])
    array([-1, -1, -1, -1, -1])
    >>> detector.feature_errors(X[:5]).argmax(axis=1)  # the broken column
    array([3, 3, 3, 3, 3])
    """

    _parameter_constraints: dict = {
        **BaseStackedAutoencoder._parameter_constraints,
        "hidden_layer_sizes": [StrOptions({"auto"}), "array-like", Interval(Integral, 1, None, closed="left")],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        hidden_layer_sizes="auto",
        *,
        contamination="auto",
        standardize=True,
        activation="elu",
        code_activation="identity",
        output_activation="identity",
        loss="mse",
        tied_weights=False,
        pretrain_epochs=5,
        finetune_epochs=60,
        batch_size=256,
        learning_rate="constant",
        learning_rate_init=1e-2,
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
        self.contamination = contamination
        self.standardize = standardize
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
        """Train the autoencoder on ``X`` and take the threshold from its errors there.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows, mostly normal ones. Sparse input is densified one
            batch at a time.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. The
            reconstruction losses, the column scaling and the threshold all
            weigh each row by it (see the User Guide).

        Returns
        -------
        self : object
            The fitted detector.
        """
        return self._fit(X, incremental=False, sample_weight=sample_weight)

    def _checked_hidden_layer_sizes(self):
        if isinstance(self.hidden_layer_sizes, str):
            return None  # "auto", the one string the constraints allow: the widths follow from n_features
        return super()._checked_hidden_layer_sizes()

    def _check_hyperparameters(self):
        sizes = super()._check_hyperparameters()
        if self.standardize and (self.loss == "bce" or self.output_activation in {"sigmoid", "logistic"}):
            raise ValueError(
                f"loss={self.loss!r} with output_activation={self.output_activation!r} reconstructs values in "
                "[0, 1], but standardize=True centres every column at 0 with unit variance. Scale X into [0, 1] "
                "and pass standardize=False, or use loss='mse' with output_activation='identity'."
            )
        return sizes

    def _validate_training_input(self, X, reset, fitted, sample_weight=None):
        """Validate ``X``, resolve ``hidden_layer_sizes="auto"``, and standardise the columns for the network."""
        X, hidden_layer_sizes, weights = super()._validate_training_input(X, reset, fitted, sample_weight)
        if hidden_layer_sizes is None:
            hidden_layer_sizes = default_hidden_layer_sizes(X.shape[1])
        if reset:
            if self.standardize:
                device = resolve_device(self.device)
                fitted["center_"], fitted["scale_"] = column_scaling(
                    X, replicas_for(self.distributed, device), device, weights
                )
            else:
                fitted["center_"] = fitted["scale_"] = None
        elif self.standardize != (self.scale_ is not None):
            raise ValueError(
                f"warm_start=True continues a network trained with standardize={not self.standardize}; "
                f"standardize={self.standardize} would feed it columns in other units. Keep standardize as it "
                "was, or fit with warm_start=False."
            )
        if self.standardize:
            scaling = fitted if reset else self.__dict__
            X = standardised(X, scaling["center_"], scaling["scale_"])
        return X, hidden_layer_sizes, weights

    def _calibration(self, X, weights):
        """``offset_``, from the errors of the training rows ``X`` (already standardised) and their weights."""
        errors = self._reconstruction_errors(X, per_feature=False, standardised=True).astype(np.float64)
        replicas = replicas_for(self.distributed, self.device_)
        errors = replicas.gather(errors)
        weights = None if weights is None else replicas.gather(weights)
        if self.contamination == "auto":
            return {"offset_": -upper_fence(errors, weights)}
        return {"offset_": threshold_below(-errors, weights, 100.0 * self.contamination)}

    # ---------------------------------------------------------- inference

    def _reconstruction_errors(self, X, *, per_feature, standardised=False):
        """The error of every feature of validated ``X``, or its mean over each row, in ``X``'s dtype.

        Rows are standardised on the device, a batch at a time, unless they
        already are (``standardised=True``, the training rows).
        """
        loss = ReconstructionError(self.loss, self.output_activation)
        network = self._inference_network(X.dtype)
        scaling = None
        if self.scale_ is not None and not standardised:
            dtype = torch.float64 if X.dtype == np.float64 else torch.float32
            scaling = [torch.as_tensor(v, dtype=dtype, device=self.device_) for v in (self.center_, self.scale_)]

        def errors(batch):
            if scaling is not None:
                center, scale = scaling
                batch = (batch - center) / scale
            pre_activation, _ = network.reconstruct(batch)
            feature_errors = loss.feature_errors(pre_activation, batch)
            return feature_errors if per_feature else feature_errors.mean(dim=1)

        return self._map_rows(errors, X, self.n_features_in_ if per_feature else None)

    def _validate_scoring_input(self, X):
        X = self._validate_inference_input(X)
        self._check_value_range(X)
        return X

    def score_samples(self, X):
        """Minus the reconstruction error of each row: the lower, the more abnormal.

        The error of a row is the mean of its :meth:`feature_errors`: with
        ``standardize=True``, the mean squared error in standard deviations
        of each column.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus each row's reconstruction error, in ``X``'s float dtype.
        """
        return -self._reconstruction_errors(self._validate_scoring_input(X), per_feature=False)

    def feature_errors(self, X):
        """The reconstruction error of every feature of every row: which columns make a row an outlier.

        With ``standardize=True`` (and ``loss="mse"``), the squared
        difference between a column's value and its reconstruction, in
        standard deviations of that column squared: a 9 means the
        reconstruction is three standard deviations off. With ``loss="bce"``
        it is each feature's relative entropy. The mean of a row's feature
        errors is minus its :meth:`score_samples`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to explain.

        Returns
        -------
        errors : ndarray of shape (n_samples, n_features)
            The error of every feature of every row, in ``X``'s float dtype.
        """
        return self._reconstruction_errors(self._validate_scoring_input(X), per_feature=True)

    def decision_function(self, X):
        """How far each row's score is above the threshold: negative for outliers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``: positive for inliers, negative
            for outliers.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Whether each row is an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers (a negative
            :meth:`decision_function`).
        """
        decision = self.decision_function(X)
        is_inlier = np.ones(decision.shape[0], dtype=int)
        is_inlier[decision < 0] = -1
        return is_inlier

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self.loss == "bce"
        return tags
