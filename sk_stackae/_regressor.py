"""StackedAutoencoderRegressor: pretrain a stacked autoencoder on every row, then fine-tune it on the targets."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils import check_array

from ._engine import Targets
from ._supervised import _SUPERVISED_CONSTRAINTS, _labeled_part, _SupervisedStackedAutoencoder
from ._supervised_docs import _SHARED_ATTRIBUTES_DOC, _SHARED_PARAMETERS_DOC
from ._tasks import REGRESSION


class StackedAutoencoderRegressor(RegressorMixin, _SupervisedStackedAutoencoder):
    __doc__ = (
        """Regressor that pretrains a stacked autoencoder on every row, then fine-tunes it on the targets.

    Greedy layer-wise pretraining (on cached codes, as in
    :class:`StackedAutoencoder`) learns the encoder from all the rows given to
    :meth:`fit`; a linear head on the last encoder layer is then trained with
    the encoder, end to end, on the rows that have a target (squared error,
    one or several outputs). With ``unlabeled_label=np.nan``, rows whose
    targets are NaN take part in the unsupervised stages only.

    The targets are standardised for training (each output to zero mean and
    unit variance over the labeled rows) and predictions are mapped back, so
    that targets of any scale train alike; ``loss_curve_`` is in
    standardised units.

    **Defaults.** The settings that take ``"auto"`` resolve at each fresh
    :meth:`fit` to one of two regimes: a plain network of the chosen shape
    (no pretraining, no noise, no unsupervised or semi-supervised term),
    trained as :class:`~sklearn.neural_network.MLPRegressor` trains one, or
    the semi-supervised recipe that each parameter's entry gives. The
    regressor trains the plain network on its labeled rows even when some
    are unlabeled (NaN): on the regression sets its defaults were chosen on,
    the unlabeled rows did not help. Set the semi-supervised settings
    explicitly (``pretrain_epochs``, ``reconstruction_weight``,
    ``consistency_weight``...) to use them. Epochs grow on small data, so
    that every stage takes enough optimiser steps. ``resolved_params_`` says
    what they resolved to; an explicit value always wins.

    Read more in the :ref:`User Guide <supervised>`.

    Parameters
    ----------"""
        + _SHARED_PARAMETERS_DOC.replace("{score}", "R²")
        .replace("{mlp}", "MLPRegressor")
        .replace(
            "{unlabeled_doc}",
            """np.nan or None, default=None
        ``np.nan``: a row whose targets are all NaN is unlabeled. None: every
        row must have finite targets.""",
        )
        + """
    Attributes
    ----------
    n_outputs_ : int
        Number of targets of each row.
"""
        + _SHARED_ATTRIBUTES_DOC.replace("{score}", "R²")
        + """
    See Also
    --------
    StackedAutoencoder : The unsupervised transformer.
    sklearn.neural_network.MLPRegressor : The same network without pretraining.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sk_stackae import StackedAutoencoderRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> regressor = StackedAutoencoderRegressor(
    ...     (32, 8), pretrain_epochs=5, finetune_epochs=50, device="cpu", random_state=0).fit(X, y)
    >>> regressor.predict(X[:3]).shape
    (3,)
    >>> float(regressor.score(X, y)) > 0.4
    True
    """
    )

    # On the regression sets the defaults were chosen on, the unlabeled rows
    # did not help: "auto" trains the plain network on the labeled rows.
    _unlabeled_rows_switch_terms_on = False

    _parameter_constraints: dict = {
        **_SUPERVISED_CONSTRAINTS,
        "unlabeled_label": [None, "nan"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256, 64),
        *,
        pretrained=None,
        activation="relu",
        code_activation=None,
        output_activation="identity",
        loss="mse",
        tied_weights=False,
        pretrain_epochs="auto",
        unsupervised_finetune_epochs="auto",
        head_warmup_epochs="auto",
        finetune_epochs="auto",
        average_from_epoch=None,
        reconstruction_weight="auto",
        consistency_weight="auto",
        adversarial_epsilon="auto",
        ladder=None,
        ladder_noise=0.3,
        ladder_weights="auto",
        batch_size=256,
        learning_rate="constant",
        learning_rate_init=1e-3,
        power_t=0.5,
        optimizer="adam",
        momentum=0.9,
        alpha=0.0,
        noise="auto",
        noise_level=0.25,
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
        unlabeled_label=None,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.pretrained = pretrained
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.tied_weights = tied_weights
        self.pretrain_epochs = pretrain_epochs
        self.unsupervised_finetune_epochs = unsupervised_finetune_epochs
        self.head_warmup_epochs = head_warmup_epochs
        self.finetune_epochs = finetune_epochs
        self.average_from_epoch = average_from_epoch
        self.reconstruction_weight = reconstruction_weight
        self.consistency_weight = consistency_weight
        self.adversarial_epsilon = adversarial_epsilon
        self.ladder = ladder
        self.ladder_noise = ladder_noise
        self.ladder_weights = ladder_weights
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
        self.unlabeled_label = unlabeled_label
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Pretrain on every row of ``X``, then fine-tune on the rows that have targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, labeled and unlabeled rows alike.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; with ``unlabeled_label=np.nan``, all-NaN rows are
            unlabeled.

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. Every
            loss weighs each row by it within its minibatch (see the User
            Guide on how weights meet noise, dropout and minibatches).

        Returns
        -------
        self : object
            The fitted regressor.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the supervised fine-tune on ``X``, as :class:`~sklearn.neural_network.MLPRegressor` does.

        The first call initialises the network without pretraining and takes
        the targets' mean and scale from this batch.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Its targets.

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. Every
            loss weighs each row by it within its minibatch (see the User
            Guide on how weights meet noise, dropout and minibatches).

        Returns
        -------
        self : object
            The updated regressor.
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _n_outputs(self, fitted):
        return fitted.get("n_outputs_", getattr(self, "n_outputs_", None))

    def _validate_targets(self, X, y, *, continuing, incremental, classes=None, fitted, sample_weight=None):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = _check_regression_targets(y, X.shape[0], allow_nan=self.unlabeled_label is not None)
        y2 = y.reshape(len(y), -1)
        missing = np.isnan(y2)
        partly = missing.any(axis=1) & ~missing.all(axis=1)
        if partly.any():
            raise ValueError(
                f"Row {int(np.flatnonzero(partly)[0])} of y has NaN in some outputs only: a row is unlabeled when "
                "all its targets are NaN, and labeled when none is."
            )
        labeled = ~missing.all(axis=1)
        if not labeled.any():
            raise ValueError(
                "Every row of y is NaN (unlabeled): there is nothing to fine-tune on. Give some rows targets, or use "
                "StackedAutoencoder to learn from unlabeled rows alone."
            )
        if not (continuing or (incremental and hasattr(self, "n_outputs_"))):
            weights = None if sample_weight is None else sample_weight[labeled]
            if weights is not None and not weights.any():
                raise ValueError("sample_weight is 0 for every labeled row: there is nothing to fine-tune on.")
            mean = np.average(y2[labeled], axis=0, weights=weights)
            scale = np.sqrt(np.average(np.square(y2[labeled] - mean), axis=0, weights=weights))
            fitted.update(
                n_outputs_=y2.shape[1],
                _y_ndim=y.ndim,
                _target_mean=mean,
                _target_scale=np.where(scale > 0, scale, 1.0),
            )
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, but the fitted regressor predicts {self.n_outputs_}.")
        scaling = fitted if "_target_mean" in fitted else self.__dict__
        values = (y2 - scaling["_target_mean"]) / scaling["_target_scale"]
        return Targets(values=values, task=REGRESSION)

    def predict(self, X):
        """The predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to predict for.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predictions, in the targets' units and ``X``'s float dtype;
            one-dimensional when ``y`` was.
        """
        X = self._validate_inference_input(X)
        predictions = self._scores(X) * self._target_scale.astype(X.dtype) + self._target_mean.astype(X.dtype)
        return predictions.ravel() if self._y_ndim == 1 else predictions

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination R² of :meth:`predict` on the labeled rows of ``X`` against ``y``.

        With ``unlabeled_label=np.nan``, rows whose targets are all NaN are
        left out, so that ``cross_val_score`` and ``GridSearchCV`` measure a
        semi-supervised fit on the rows that have a target.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test rows.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their true targets.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        score : float
            R², averaged uniformly over the outputs: 1 for perfect
            predictions, 0 for always predicting the mean.
        """
        if self.unlabeled_label is not None:
            y = np.asarray(y, dtype=np.float64)
            missing = np.isnan(y)
            labeled = ~(missing.all(axis=1) if y.ndim == 2 else missing)
            X, y, sample_weight = _labeled_part(X, y, sample_weight, labeled)
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _check_regression_targets(y, n_samples, allow_nan):
    """``y`` as a float64 array of one or several outputs, checked as scikit-learn checks targets."""
    if not allow_nan:
        try:
            values = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.zeros(0)  # not numbers: check_array says so below
        if np.isnan(values).any():
            raise ValueError(
                "y contains NaN. The regressor marks unlabeled rows by NaN targets with unlabeled_label=np.nan: "
                "set it to learn from those rows too, or drop them."
            )
    y = check_array(
        y, ensure_2d=False, dtype=np.float64, ensure_all_finite="allow-nan" if allow_nan else True, input_name="y"
    )
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {len(y)}.")
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError("y has no outputs (shape (n_samples, 0)).")
    return y
