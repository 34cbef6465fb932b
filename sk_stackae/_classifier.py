"""StackedAutoencoderClassifier: pretrain a stacked autoencoder on every row, then fine-tune it on the labels."""

from numbers import Integral, Real

import numpy as np
import scipy.special
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._engine import Targets
from ._supervised import (
    _SHARED_ATTRIBUTES_DOC,
    _SHARED_PARAMETERS_DOC,
    _SUPERVISED_CONSTRAINTS,
    _SupervisedStackedAutoencoder,
)
from ._tasks import CLASSIFICATION


class StackedAutoencoderClassifier(ClassifierMixin, _SupervisedStackedAutoencoder):
    __doc__ = (
        """Classifier that pretrains a stacked autoencoder on every row, then fine-tunes it on the labels.

    Greedy layer-wise pretraining (on cached codes, as in
    :class:`StackedAutoencoder`) learns the encoder from all the rows given to
    :meth:`fit`, labeled or not; a softmax head on the last encoder layer is
    then trained with the encoder, end to end, on the labeled rows
    (cross-entropy). With ``unlabeled_label=-1``, rows labeled ``-1`` take
    part in the unsupervised stages only: the estimator learns from
    unlabeled data and predicts from few labels, which is what greedy
    pretraining was invented for (Bengio et al., 2007).

    ``pretrain_epochs=0`` gives a plain multilayer perceptron of the same
    shape, trained like :class:`~sklearn.neural_network.MLPClassifier`
    (with ``noise=None``; the default masks inputs during training).

    Read more in the :ref:`User Guide <supervised>`.

    Parameters
    ----------"""
        + _SHARED_PARAMETERS_DOC.replace("{score}", "accuracy")
        .replace("{mlp}", "MLPClassifier")
        .replace(
            "{unlabeled_doc}",
            """int, str or None, default=None
        The label that marks an unlabeled row, as in scikit-learn's
        semi-supervised estimators (``-1``). None: every row is labeled,
        and ``-1`` is a class like any other.""",
        )
        .replace(
            "    consistency_weight : float, default=0.0",
            """    pseudo_label_weight : float, default=0.0
        With a positive weight, the supervised fine-tune also trains every
        unlabeled row toward the class it predicts now (its pseudo-label,
        Lee 2013), with this weight; like ``reconstruction_weight``, it
        makes each epoch see every unlabeled row once and the labeled rows
        repeated to make up half of it.

    consistency_weight : float, default=0.0""",
        )
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, never the unlabeled marker.
"""
        + _SHARED_ATTRIBUTES_DOC.replace("{score}", "accuracy")
        + """
    See Also
    --------
    StackedAutoencoder : The unsupervised transformer.
    sklearn.neural_network.MLPClassifier : The same network without pretraining.
    sklearn.semi_supervised.SelfTrainingClassifier : Semi-supervised learning
        by pseudo-labels, with any classifier.

    References
    ----------
    Bengio, Y., Lamblin, P., Popovici, D. and Larochelle, H. (2007). Greedy
    layer-wise training of deep networks. NeurIPS 19.

    Vincent, P., Larochelle, H., Lajoie, I., Bengio, Y. and Manzagol, P.-A.
    (2010). Stacked denoising autoencoders. JMLR 11, 3371-3408.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sk_stackae import StackedAutoencoderClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> y_few = np.where(np.arange(len(y)) % 10 == 0, y, -1)  # one label in ten
    >>> classifier = StackedAutoencoderClassifier(
    ...     (64, 32), pretrain_epochs=5, finetune_epochs=10, reconstruction_weight=1.0,
    ...     batch_size=32, unlabeled_label=-1, device="cpu", random_state=0).fit(X, y_few)
    >>> classifier.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> classifier.predict_proba(X[:2]).shape
    (2, 10)
    >>> float(classifier.score(X, y)) > 0.8
    True
    """
    )

    _parameter_constraints: dict = {
        **_SUPERVISED_CONSTRAINTS,
        "pseudo_label_weight": [Interval(Real, 0, None, closed="left")],
        "unlabeled_label": [None, Integral, str],
    }
    _task = CLASSIFICATION

    def _pseudo_label_weight(self):
        return float(self.pseudo_label_weight)

    def __init__(
        self,
        hidden_layer_sizes=(256, 64),
        *,
        activation="relu",
        code_activation=None,
        output_activation="identity",
        loss="mse",
        tied_weights=False,
        pretrain_epochs=10,
        unsupervised_finetune_epochs=0,
        head_warmup_epochs=0,
        finetune_epochs=50,
        average_from_epoch=None,
        reconstruction_weight=0.0,
        pseudo_label_weight=0.0,
        consistency_weight=0.0,
        adversarial_epsilon=0.0,
        batch_size=256,
        learning_rate="constant",
        learning_rate_init=1e-3,
        power_t=0.5,
        optimizer="adam",
        momentum=0.9,
        alpha=0.0,
        noise="masking",
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
        self.pseudo_label_weight = pseudo_label_weight
        self.consistency_weight = consistency_weight
        self.adversarial_epsilon = adversarial_epsilon
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
    def fit(self, X, y):
        """Pretrain on every row of ``X``, then fine-tune on the labeled ones.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, labeled and unlabeled rows alike.

        y : array-like of shape (n_samples,)
            Class labels; with ``unlabeled_label`` set, that label marks the
            rows that have none.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One epoch of the supervised fine-tune on ``X``, as :class:`~sklearn.neural_network.MLPClassifier` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data.

        y : array-like of shape (n_samples,)
            Its labels.

        classes : array-like of shape (n_classes,), default=None
            Every class the estimator will see; needed on the first call,
            which initialises the network without pretraining, and ignored
            later.

        Returns
        -------
        self : object
            The updated classifier.
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def _n_outputs(self, fitted):
        return len(fitted.get("classes_", getattr(self, "classes_", ())))

    def _validate_targets(self, X, y, *, continuing, incremental, classes=None, fitted):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(
                f"y must be one label per row (shape (n_samples,)); got shape {y.shape}. "
                "Multilabel and multi-output targets are not supported."
            )
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} labels.")
        labeled = self._labeled_rows(y)
        if not labeled.any():
            raise ValueError(
                f"Every row of y is unlabeled (unlabeled_label={self.unlabeled_label!r}): there is nothing to "
                "fine-tune on. Label some rows, or use StackedAutoencoder to learn from unlabeled rows alone."
            )
        check_classification_targets(y[labeled])
        if incremental and not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            fitted["classes_"] = np.unique(classes)
        elif not (incremental or continuing):
            fitted["classes_"] = np.unique(y[labeled])
        known = fitted["classes_"] if "classes_" in fitted else self.classes_
        unseen = np.setdiff1d(y[labeled], known)
        if unseen.size:
            raise ValueError(
                f"y holds classes {unseen.tolist()} that the fitted classifier does not know "
                f"(classes_={known.tolist()}). "
                + ("Pass every class in `classes` on the first call to partial_fit." if incremental else "")
                + ("warm_start continues the fitted classes only; fit with warm_start=False." if continuing else "")
            )
        values = np.full(len(y), -1, dtype=np.int64)
        values[labeled] = np.searchsorted(known, y[labeled])
        return Targets(values=values, task=CLASSIFICATION)

    def _labeled_rows(self, y):
        if self.unlabeled_label is None:
            return np.ones(len(y), dtype=bool)
        marker = self.unlabeled_label
        if y.dtype.kind in "US" and not isinstance(marker, str) and np.any(y == str(marker)):
            raise ValueError(
                f"y holds the string {str(marker)!r} while unlabeled_label={marker!r} is not a string: numpy turned "
                f"a mix of string labels and {marker!r} into strings. Pass unlabeled_label={str(marker)!r}, or y as "
                "an object array that keeps the unlabeled marker a number."
            )
        return ~np.array([label == marker for label in y.tolist()], dtype=bool)

    def predict_proba(self, X):
        """Class probabilities: the softmax of the head's scores.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in ``classes_``, in ``X``'s float
            dtype.
        """
        X = self._validate_inference_input(X)
        return scipy.special.softmax(self._scores(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithms of the class probabilities, computed stably from the scores.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to classify.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            The log-probabilities of the classes in ``classes_``.
        """
        X = self._validate_inference_input(X)
        return scipy.special.log_softmax(self._scores(X), axis=1)

    def score(self, X, y, sample_weight=None):
        """The accuracy of :meth:`predict` on ``X`` against ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test rows.

        y : array-like of shape (n_samples,)
            Their true labels.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        score : float
            The share of rows classified right (weighted).
        """
        return super().score(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        X = self._validate_inference_input(X)
        return self.classes_[np.argmax(self._scores(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags
