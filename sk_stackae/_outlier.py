"""StackedAutoencoderOutlierDetector: the rows the autoencoder reconstructs badly, or codes apart, are the outliers.

The detector trains the same stack as :class:`~sk_stackae.StackedAutoencoder`,
on columns it standardises itself, with a trimmed loss that stops fitting the
rows it reconstructs worst, and reads scikit-learn's detector API off two
views of every row (:mod:`sk_stackae._outlier_views`): ``score_samples``, a
threshold ``offset_``, ``decision_function``, ``predict`` and
``fit_predict``, and the error of every feature of every row.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import OutlierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseStackedAutoencoder
from ._device import resolve_device
from ._distributed import replicas_for
from ._estimator import ReconstructionStages
from ._outlier_scoring import OutlierScoring
from ._scaling import column_scaling, standardised


def default_hidden_layer_sizes(n_features):
    """The widths of ``hidden_layer_sizes="auto"``: ``(d, k)`` from the number of features ``d``.

    A first layer as wide as the input, room for nonlinear features, then a
    code of ``k = round(sqrt(d))`` units, well below the input from three
    features on, so that the network cannot learn to copy every row. E.g.
    9 features: ``(9, 3)``; 21: ``(21, 5)``; 274: ``(274, 17)``.
    """
    return (n_features, max(1, round(n_features**0.5)))


class StackedAutoencoderOutlierDetector(OutlierMixin, OutlierScoring, ReconstructionStages, BaseStackedAutoencoder):
    """Outlier detection by a deep stacked autoencoder: its reconstruction error and its code.

    The detector trains a stacked autoencoder on ``X`` (the joint
    fine-tune; greedy pretraining optional) and ranks rows by two views:
    how badly the network reconstructs them, and how far their codes lie
    from the typical rows' codes. An autoencoder with a narrow code learns
    the structure that most rows share, and cannot reproduce what breaks
    it; outliers that form a group of their own among the training rows may
    get learnt, but their codes still sit apart. It follows scikit-learn's
    detector API, as :class:`~sklearn.ensemble.IsolationForest` and
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

    **Training.** After the first quarter of the fine-tune's epochs, each
    batch leaves out the share ``trim_fraction`` of its rows that the
    network reconstructs worst: the likeliest outliers stop shaping it.

    **The score.** Two views of each row, each a sum of squares: its
    reconstruction error (each column's squared error divided by that
    column's mean error over the typical training rows, those whose error
    is at most its 80 % quantile), and the Mahalanobis distance of its code
    from the typical training rows' codes (``code_distance``). Each view's
    cube root, close to normal for such sums (Wilson and Hilferty, 1931),
    is turned into a robust z-score: minus the training rows' median,
    over their interquartile range / 1.349. :meth:`score_samples` is minus
    the larger of the two z-scores.

    **The threshold.** With ``contamination="auto"``, ``offset_ = -2.0``: a
    row is an outlier when, in either view, it lies more than two robust
    standard deviations above the typical training row. It needs no label
    and no guess of the outlier rate, but it is a screening threshold:
    rows the network did not train on score higher than those it did, and
    some of the normal rows among them are flagged (the User Guide gives
    the shares measured).
    With a float ``contamination``, ``offset_`` is set so that this share
    of the (weighted) training rows is flagged; where the share of
    outliers is known, it is the better threshold.

    Read more in the :ref:`User Guide <outlier_detection>`.

    Parameters
    ----------
    hidden_layer_sizes : "auto" or array-like of int, default="auto"
        Widths of the encoder layers; the last is the code size and the
        decoder mirrors the encoder. ``"auto"`` derives them from the
        number of features ``d``: ``(d, k)``, a first layer as wide as the
        input and a code of ``k = round(sqrt(d))`` units, far narrower than
        the input, so that the network cannot learn to copy every row: e.g.
        9 features give ``(9, 3)``, 274 give ``(274, 17)``. The widths used
        are ``hidden_layer_sizes_``.

    contamination : "auto" or float, default="auto"
        The expected share of outliers among the training rows, in (0,
        0.5], which sets ``offset_`` so that this share of them is flagged;
        or ``"auto"``: ``offset_ = -2.0`` (see above).

    trim_fraction : float, default=0.2
        The share of each batch's rows, those it reconstructs worst, that
        the fine-tune leaves out after its first quarter of epochs (a
        trimmed loss); 0 trains on every row, as :class:`StackedAutoencoder`
        does. Must be below 1.

    code_distance : bool, default=True
        Whether the score takes the larger of the reconstruction view and
        the code view (the Mahalanobis distance of the code); False scores
        by the reconstruction error alone.

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

    pretrain_epochs : int, default=0
        Epochs of each greedy pretraining phase; 0 (the default) skips
        pretraining and trains the whole stack from its initialisation, as
        the detector's defaults were chosen.

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
        offset_``. With ``contamination="auto"`` it is -2.0.

    hidden_layer_sizes_ : tuple of int
        The widths of the encoder layers, ``"auto"`` resolved.

    error_scale_ : ndarray of shape (`n_features_in_`,)
        Each column's mean squared error over the typical training rows,
        which the reconstruction view divides it by.

    code_mean_ : ndarray of shape (code_size,) or None
        The typical training rows' mean code; None without ``code_distance``.

    code_precision_ : ndarray of shape (code_size, code_size) or None
        The inverse of their codes' covariance (with a small ridge); None
        without ``code_distance``.

    score_center_, score_scale_ : ndarray of shape (n_views,)
        The median and the robust standard deviation of each view's cube
        root over the training rows: the reconstruction view, then the code
        view.

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
    StackedAutoencoder : The transformer; its ``score_samples`` is minus the
        plain reconstruction error, without scaling, views or threshold.
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

    Wilson, E. B. and Hilferty, M. M. (1931). The distribution of
    chi-square. Proceedings of the National Academy of Sciences, 17(12),
    684-688.

    Xu, H., Caramanis, C. and Sanghavi, S. (2010). Robust PCA via outlier
    pursuit. Advances in Neural Information Processing Systems 23 (trimming
    the rows that fit worst).

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
        "trim_fraction": [Interval(Real, 0, 1, closed="left")],
        "code_distance": ["boolean"],
    }

    def __init__(
        self,
        hidden_layer_sizes="auto",
        *,
        contamination="auto",
        standardize=True,
        trim_fraction=0.2,
        code_distance=True,
        activation="elu",
        code_activation="identity",
        output_activation="identity",
        loss="mse",
        tied_weights=False,
        pretrain_epochs=0,
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
        self.trim_fraction = trim_fraction
        self.code_distance = code_distance
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

    def _trim_fraction(self):
        return float(self.trim_fraction)

    def score_samples(self, X):
        """Minus each row's outlier score: the lower, the more abnormal.

        The outlier score is the larger of the row's two robust z-scores
        (its reconstruction error, its code's Mahalanobis distance; see the
        class description): about 0 for a typical training row, 2 or more
        for a row as far out as the ``"auto"`` threshold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus each row's outlier score, in ``X``'s float dtype.
        """
        X = self._validate_scoring_input(X)
        feature_errors, codes = self._errors_and_codes(X)
        return (-self._views.outlier_scores(feature_errors, codes)).astype(X.dtype)

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
