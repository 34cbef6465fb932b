"""StackedAutoencoderClassifier: pretrain a stacked autoencoder on every row, then fine-tune it on the labels."""

from numbers import Integral, Real

import numpy as np
import scipy.special
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._engine import Targets
from ._supervised import _SUPERVISED_CONSTRAINTS, _labeled_part, _SupervisedStackedAutoencoder
from ._supervised_docs import _SHARED_ATTRIBUTES_DOC, _SHARED_PARAMETERS_DOC
from ._tasks import CLASSIFICATION, MULTILABEL
from ._warnings import warn_at_caller


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

    **Defaults.** The settings that take ``"auto"`` resolve at each fresh
    :meth:`fit` to one of two regimes: a plain network of the chosen shape
    (no pretraining, no noise, no unsupervised or semi-supervised term),
    trained as :class:`~sklearn.neural_network.MLPClassifier` trains one, or
    the semi-supervised recipe that each parameter's entry gives. The
    semi-supervised recipe is on when some training rows are unlabeled.
    Epochs grow on small data, so that every stage takes enough optimiser
    steps. ``resolved_params_`` says what they resolved to; an explicit
    value always wins.

    Read more in the :ref:`User Guide <supervised>`.

    Parameters
    ----------"""
        + _SHARED_PARAMETERS_DOC.replace("{score}", "accuracy")
        .replace("{mlp}", "MLPClassifier")
        .replace(
            "{unlabeled_doc}",
            """int, str or None, default=None
        The label that marks an unlabeled row, as in scikit-learn's
        semi-supervised estimators (``-1``); for multilabel targets, a row
        that holds it in every column. None: every row is labeled, and
        ``-1`` is a class like any other (``fit`` warns when it is the most
        frequent value of ``y``).

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the head's error, multiplying the rows'
        ``sample_weight``: a dict ``{class: weight}`` (classes left out
        weigh 1), or ``"balanced"``, ``n_labeled / (n_classes *
        count(class))`` over the labeled rows, as scikit-learn computes it.
        Only the head's error is weighted; the unsupervised terms weigh each
        row by its ``sample_weight`` alone. Not for multilabel targets, and
        ``"balanced"`` not with :meth:`partial_fit`.""",
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

    Rasmus, A., Valpola, H., Honkala, M., Berglund, M. and Raiko, T. (2015).
    Semi-supervised learning with ladder networks. NeurIPS 28.

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
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def _pseudo_label_weight(self):
        return float(self.pseudo_label_weight)

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
        pseudo_label_weight=0.0,
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
        class_weight=None,
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
        self.pseudo_label_weight = pseudo_label_weight
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
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Pretrain on every row of ``X``, then fine-tune on the labeled ones.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, labeled and unlabeled rows alike.

        y : array-like of shape (n_samples,)
            Class labels; with ``unlabeled_label`` set, that label marks the
            rows that have none.

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. Every
            loss weighs each row by it within its minibatch (see the User
            Guide on how weights meet noise, dropout and minibatches).

        Returns
        -------
        self : object
            The fitted classifier.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
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

        sample_weight : array-like of shape (n_samples,), default=None
            A non-negative weight per row; None weighs the rows alike. Every
            loss weighs each row by it within its minibatch (see the User
            Guide on how weights meet noise, dropout and minibatches).

        Returns
        -------
        self : object
            The updated classifier.
        """
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def _n_outputs(self, fitted):
        return len(fitted.get("classes_", getattr(self, "classes_", ())))

    def _validate_targets(self, X, y, *, continuing, incremental, classes=None, fitted, sample_weight=None):
        y = self._checked_label_array(y, X)
        multilabel = y.ndim == 2
        if continuing or (incremental and hasattr(self, "classes_")):
            if multilabel != self._multilabel:
                raise ValueError(
                    f"y is {'a multilabel indicator' if multilabel else 'one label per row'}, but the fitted "
                    f"classifier predicts {'multilabel targets' if self._multilabel else 'one class per row'}."
                )
        else:
            fitted["_multilabel"] = multilabel
        labeled = self._labeled_rows(y)
        if not labeled.any():
            raise ValueError(
                f"Every row of y is unlabeled (unlabeled_label={self.unlabeled_label!r}): there is nothing to "
                "fine-tune on. Label some rows, or use StackedAutoencoder to learn from unlabeled rows alone."
            )
        if multilabel:
            return self._multilabel_targets(y, labeled, fitted, continuing or incremental)
        self._warn_if_unlabeled_rows_look_labeled(y)
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
        return Targets(
            values=values,
            task=CLASSIFICATION,
            class_weights=self._class_weights(
                known, y[labeled], incremental, None if sample_weight is None else sample_weight[labeled]
            ),
        )

    def _checked_label_array(self, y, X):
        """``y`` as an array of one label per row, or a 2-D 0/1 multilabel indicator; clear errors otherwise."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim > 2 or y.ndim == 0:
            raise ValueError(
                f"y must be one label per row (shape (n_samples,)) or a multilabel indicator (n_samples, "
                f"n_labels); got shape {y.shape}."
            )
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} labels.")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(
                "y contains NaN. The classifier marks an unlabeled row with unlabeled_label, not NaN: give "
                "those rows a label that no class uses (e.g. -1) and pass unlabeled_label=-1."
            )
        if y.dtype == object and any(label is None for label in y.ravel().tolist()):
            raise ValueError(
                "y contains None. The classifier marks an unlabeled row with unlabeled_label: give those rows "
                "a label that no class uses (e.g. -1) and pass unlabeled_label=-1."
            )
        return y

    def _warn_if_unlabeled_rows_look_labeled(self, y):
        """A warning when ``y``'s most frequent value is -1 while ``unlabeled_label`` is None."""
        if self.unlabeled_label is not None or y.dtype.kind not in "iuf":
            return
        values, counts = np.unique(y, return_counts=True)
        if values[np.argmax(counts)] == -1:
            warn_at_caller(
                "The most frequent value of y is -1, and unlabeled_label is None, so -1 is trained as a class "
                "like any other. If -1 marks rows without a label, as in scikit-learn's semi-supervised "
                "estimators, pass unlabeled_label=-1.",
                UserWarning,
            )

    def _class_weights(self, classes, labels, incremental, sample_weight=None):
        """The weight of each class of ``classes`` that ``class_weight`` asks for, or None."""
        if self.class_weight is None:
            return None
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' weighs the classes by their share of all the labeled rows, which "
                "partial_fit sees one batch at a time. Pass class_weight as a dict of weights, or use fit."
            )
        weights = np.ones(len(classes))
        if self.class_weight == "balanced":
            # scikit-learn's n / (n_classes * count), with each row counting as its sample weight; over the
            # classes present, as an absent class has no rows to weigh.
            row_weights = np.ones(len(labels)) if sample_weight is None else sample_weight
            totals = np.array([row_weights[labels == label].sum() for label in classes])
            present = totals > 0
            weights[present] = totals.sum() / (present.sum() * totals[present])
            return weights
        unknown = [label for label in self.class_weight if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"class_weight names {unknown}, which are not classes of y (classes_={classes.tolist()}).")
        return compute_class_weight(self.class_weight, classes=classes, y=classes)

    def _multilabel_targets(self, y, labeled, fitted, continuing):
        """The targets of a multilabel indicator: 0/1 per label, a row of NaN for an unlabeled row."""
        if self.class_weight is not None:
            raise ValueError("class_weight is for one class per row; multilabel targets have none.")
        try:
            indicator = y[labeled].astype(np.float64)
        except (TypeError, ValueError):
            indicator = None
        if indicator is None or not np.isin(indicator, (0.0, 1.0)).all():
            raise ValueError(
                "A 2-D y must be a multilabel indicator: 0 or 1 for each label of a labeled row (and, with "
                "unlabeled_label, that value in every column of an unlabeled row)."
            )
        if continuing:
            if y.shape[1] != len(self.classes_):
                raise ValueError(f"y has {y.shape[1]} labels, but the fitted classifier predicts {len(self.classes_)}.")
        else:
            fitted["classes_"] = np.arange(y.shape[1])
        values = np.full(y.shape, np.nan, dtype=np.float32)
        values[labeled] = indicator
        return Targets(values=values, task=MULTILABEL)

    def _labeled_rows(self, y):
        """Which rows of ``y`` (one label per row, or an indicator row) carry a label."""
        if self.unlabeled_label is None:
            return np.ones(len(y), dtype=bool)
        marker = self.unlabeled_label
        if y.dtype.kind in "US" and not isinstance(marker, str) and np.any(y == str(marker)):
            raise ValueError(
                f"y holds the string {str(marker)!r} while unlabeled_label={marker!r} is not a string: numpy turned "
                f"a mix of string labels and {marker!r} into strings. Pass unlabeled_label={str(marker)!r}, or y as "
                "an object array that keeps the unlabeled marker a number."
            )
        if y.ndim == 2:
            # An unlabeled row of an indicator holds the marker in every column.
            return ~np.array([all(value == marker for value in row) for row in y.tolist()], dtype=bool)
        return ~np.array([label == marker for label in y.tolist()], dtype=bool)

    def predict_proba(self, X):
        """Class probabilities: the softmax of the head's scores (a sigmoid per label for multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in ``classes_``, in ``X``'s float
            dtype; for multilabel targets, each label's probability.
        """
        X = self._validate_inference_input(X)
        if self._multilabel:
            return scipy.special.expit(self._scores(X))
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
            The log-probabilities of the classes in ``classes_`` (of each
            label, for multilabel targets).
        """
        X = self._validate_inference_input(X)
        if self._multilabel:
            return scipy.special.log_expit(self._scores(X))
        return scipy.special.log_softmax(self._scores(X), axis=1)

    def score(self, X, y, sample_weight=None):
        """The accuracy of :meth:`predict` on the labeled rows of ``X`` against ``y``.

        Rows that ``y`` marks as unlabeled (``unlabeled_label``) are left
        out, so that ``cross_val_score`` and ``GridSearchCV`` measure a
        semi-supervised fit on the rows that have a label. For multilabel
        targets, the share of rows whose every label is right (subset
        accuracy, as :func:`~sklearn.metrics.accuracy_score` gives).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test rows.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Their true labels.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        score : float
            The (weighted) share of labeled rows classified right.
        """
        y = np.asarray(y)
        if self.unlabeled_label is not None:
            X, y, sample_weight = _labeled_part(X, y, sample_weight, self._labeled_rows(y))
            if y.dtype == object:
                y = y.astype(self.classes_.dtype)
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

    def predict(self, X):
        """The most probable class of each row (for multilabel targets, every label above one half).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_``; for multilabel targets, a 0/1
            indicator per label.
        """
        X = self._validate_inference_input(X)
        scores = self._scores(X)
        if self._multilabel:
            return (scores > 0).astype(np.int64)
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
