"""StackedAutoencoderClassifier and StackedAutoencoderRegressor: pretrain on every row, fine-tune on the labels.

Both train the same stages on the shared stack of :mod:`sk_stackae._base`:
greedy layer-wise pretraining on all rows, labeled or not; an optional
unsupervised fine-tune of the whole autoencoder; an optional warm-up of the
prediction head alone; then the supervised fine-tune of the encoder and the
head on the labeled rows.
"""

from numbers import Integral, Real

import numpy as np
import scipy.special
from sklearn.base import (
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._base import BaseStackedAutoencoder
from ._engine import Finetune, GreedyPretraining, SupervisedFinetune, Targets
from ._network import ACTIVATIONS
from ._warnings import warn_at_caller

_SUPERVISED_CONSTRAINTS = {
    **BaseStackedAutoencoder._parameter_constraints,
    "code_activation": [StrOptions(set(ACTIVATIONS)), None],
    "unsupervised_finetune_epochs": [Interval(Integral, 0, None, closed="left")],
    "head_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
    "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
    "consistency_weight": [Interval(Real, 0, None, closed="left")],
    "adversarial_epsilon": [Interval(Real, 0, None, closed="left")],
    "average_from_epoch": [Interval(Integral, 1, None, closed="left"), None],
}

_SHARED_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of int or int, default=(256, 64)
        Widths of the encoder layers; the prediction head sits on the last.

    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "logistic", \
            "sigmoid", "identity"}, default="relu"
        Activation of the hidden layers, in the encoder and the decoder.

    code_activation : str or None, default=None
        Activation of the last encoder layer, the one the head reads. None
        uses ``activation``, as in a multilayer perceptron.

    output_activation : {"identity", "sigmoid", "logistic"}, default="identity"
        Activation of the reconstruction, for the unsupervised stages.

    loss : {"mse", "bce"}, default="mse"
        Reconstruction error of the first pretraining phase, of the
        unsupervised fine-tune and of ``reconstruction_weight`` (``"bce"``
        needs data in [0, 1] and a sigmoid output).

    tied_weights : bool, default=False
        Whether decoder layer ``k`` uses the transpose of encoder layer
        ``k``'s weight.

    pretrain_epochs : int, default=10
        Epochs of each greedy pretraining phase, on every row (labeled or
        not); 0 skips pretraining, which makes the estimator a plain
        multilayer perceptron of the same shape.

    unsupervised_finetune_epochs : int, default=0
        Epochs of an end-to-end fine-tune of the whole autoencoder on the
        reconstruction loss, on every row, after pretraining; 0 skips it.

    head_warmup_epochs : int, default=0
        Epochs that train the prediction head alone on the labeled rows, the
        encoder frozen, before the supervised fine-tune: the head first fits
        the pretrained codes, so that its early, large errors do not reshape
        the encoder.

    finetune_epochs : int, default=50
        Epochs of the supervised fine-tune: the encoder and the head trained
        end to end on the labeled rows (the most, with early stopping).

    average_from_epoch : int or None, default=None
        When set, the supervised fine-tune ends with the mean of the
        weights it had at the ends of its epochs, from this one (counted
        from 1) to the last, instead of its last weights: stochastic weight
        averaging (Izmailov et al., 2018). With a constant step size the
        weights scatter from epoch to epoch around a good region, and their
        mean sits nearer its centre. With ``early_stopping``, the mean is
        what is validated once averaging has begun, and the best validated
        weights are kept. :meth:`partial_fit` trains one epoch per call and
        does not average. Must not exceed ``finetune_epochs``.

    reconstruction_weight : float, default=0.0
        With a positive weight, the supervised fine-tune also minimises this
        weight times the reconstruction error of every row, labeled or not,
        so that the encoder keeps what pretraining taught it; each epoch
        then sees every unlabeled row once and the labeled rows repeated to
        make up half of it.

    consistency_weight : float, default=0.0
        With a positive weight, the supervised fine-tune also trains the
        prediction of every row, labeled or not, from its corrupted input
        (``noise``, ``dropout``) toward the prediction of its clean input,
        with this weight: the divergence of the predicted class
        probabilities (classifier) or the squared difference of the
        predictions (regressor). The network learns to answer the same
        under the noise, which carries the labels to the unlabeled rows
        around them (random-perturbation consistency). It needs ``noise`` or
        ``dropout`` or ``adversarial_epsilon``, without which both
        predictions are the same; each epoch sees the rows as with
        ``reconstruction_weight``.

    adversarial_epsilon : float, default=0.0
        With a positive value, the corrupted input that ``consistency_weight``
        trains on also moves, row by row, by a step of this length (L2 norm,
        in the units of ``X`` as the estimator receives it) in the direction
        that changes the row's prediction most, found by one extra gradient
        pass per batch: virtual adversarial training (Miyato et al., 2018).
        The network then learns to answer the same where it is most
        sensitive, not only under random noise. Every term of the supervised
        fine-tune trains on the moved rows. Each batch adds one pass through
        the encoder and the head, forward and back to the input. Needs
        ``consistency_weight > 0``. Scale it to your rows: on MNIST pixels
        in [0, 1] (rows of norm 9.2 on average), 1.0 did better than 0.5
        and than 2 (``benchmarks/RESULTS.md``), about a tenth of a row's
        norm; the digits example uses 0.5 (rows of norm 3.9).

    batch_size : int, default=256
        Rows per minibatch, clipped to the number of training rows.

    learning_rate : float, default=1e-3
        Step size of the optimiser, in every stage.

    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The PyTorch optimiser of every phase.

    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (AdamW: the decoupled
        weight decay).

    noise : {"gaussian", "masking"} or None, default="masking"
        Corruption of each phase's input during training: denoising
        pretraining (Vincent et al., 2010), and in the supervised fine-tune
        a random masking of the inputs. On MNIST with 1000 labels, masking
        pretraining took the test error from 10.8 % (plain greedy
        pretraining, worse than none at 9.5 %) to 7.6 %
        (``benchmarks/RESULTS.md``); None turns it off.

    noise_level : float, default=0.25
        Standard deviation of the Gaussian noise, or fraction of masked
        inputs.

    dropout : float, default=0.0
        Probability of zeroing each hidden unit during training, in every
        phase; prediction never drops units.

    sparsity : float, default=0.0
        Weight of the sparsity penalty on the codes.

    sparsity_target : float, default=0.05
        Mean activation that the KL sparsity penalty aims at.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the rows (of every
        class, and of the unlabeled rows, alike) and stop each phase when
        its validation score has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs. Unsupervised phases score minus the
        reconstruction error; the supervised ones the held-out labeled rows'
        {score}, as :class:`~sklearn.neural_network.{mlp}` does.

    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping.

    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before a phase
        stops, with early stopping.

    tol : float, default=1e-4
        The smallest improvement that counts, with early stopping.

    precision : {"float32", "tf32", "bfloat16"}, default="float32"
        Arithmetic of the matrix products during training.

    device : {"auto", "cpu", "cuda"} or str or torch.device, default="auto"
        Where the network trains and predicts.

    distributed : bool, default=False
        Whether to train data-parallel across the processes of a
        ``torch.distributed`` process group.

    unlabeled_label : {unlabeled_doc}

    random_state : int, RandomState instance or None, default=None
        Seeds every random draw through a ``torch.Generator`` of the
        estimator's own.

    verbose : int, default=0
        ``1`` prints a line per epoch of every phase; ``2`` shows progress
        bars when tqdm is installed.

    warm_start : bool, default=False
        When True, :meth:`fit` continues the fitted network with the
        supervised fine-tune alone, and ``loss_curve_`` goes on.
"""

_SHARED_ATTRIBUTES_DOC = """
    network_ : torch.nn.Module
        The trained network: encoder, decoder and prediction head
        (``predict_scores``).

    device_ : torch.device
        The device the network lives on.

    pretrain_loss_curves_ : list of list of float
        For each layer, the training loss of every pretraining epoch.

    pretrain_validation_scores_ : list of list of float or None
        For each layer, the validation score of every pretraining epoch,
        with early stopping.

    unsupervised_loss_curve_ : list of float
        The reconstruction loss of every epoch of the unsupervised
        fine-tune (empty when it did not run).

    loss_curve_ : list of float
        The training loss of every epoch of the supervised fine-tune (and of
        every :meth:`partial_fit` call).

    validation_scores_ : list of float or None
        The {score} on the held-out labeled rows after every supervised
        epoch, with early stopping.

    best_validation_score_ : float or None
        The best of ``validation_scores_``, whose weights were kept.

    n_iter_ : int
        Epochs of the supervised fine-tune run so far.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when all are strings.
"""


class _SupervisedStackedAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseStackedAutoencoder):
    """What the classifier and the regressor share: the stages, the head, and the codes."""

    _parameter_constraints: dict = _SUPERVISED_CONSTRAINTS
    _main_stage = SupervisedFinetune
    _task = None

    def _code_activation(self):
        return self.activation if self.code_activation is None else self.code_activation

    def _pseudo_label_weight(self):
        return 0.0

    def _warn_about_wasted_settings(self, n_features, hidden_layer_sizes, device):
        super()._warn_about_wasted_settings(n_features, hidden_layer_sizes, device)
        noisy = self.noise is not None and self.noise_level > 0
        corrupted = noisy or self.dropout > 0 or self.adversarial_epsilon > 0
        if self.consistency_weight > 0 and not corrupted:
            warn_at_caller(
                f"consistency_weight={self.consistency_weight} does nothing without noise, dropout or "
                "adversarial_epsilon: the prediction it trains is then the clean prediction it aims at. Set "
                "noise (e.g. noise='masking'), dropout or adversarial_epsilon, or leave consistency_weight at 0.",
                UserWarning,
            )

    def _check_epochs(self, continuing):
        if self.adversarial_epsilon > 0 and self.consistency_weight == 0:
            raise ValueError(
                f"adversarial_epsilon={self.adversarial_epsilon} perturbs the inputs of the consistency term, "
                "and consistency_weight=0 leaves none. Set consistency_weight > 0 (e.g. 1.0), or leave "
                "adversarial_epsilon at 0."
            )
        if continuing and self.finetune_epochs == 0:
            raise ValueError(
                "warm_start=True continues the fitted network with the supervised fine-tune alone, "
                "and finetune_epochs=0 leaves nothing to train."
            )
        if self.average_from_epoch is not None and self.average_from_epoch > self.finetune_epochs:
            raise ValueError(
                f"average_from_epoch={self.average_from_epoch} is after the last supervised epoch "
                f"(finetune_epochs={self.finetune_epochs}): nothing would be averaged. Set it to at most "
                "finetune_epochs, or to None to keep the last weights."
            )
        if self.finetune_epochs == 0 and self.head_warmup_epochs == 0:
            raise ValueError(
                "finetune_epochs and head_warmup_epochs are both 0: the prediction head would never be trained. "
                "Set finetune_epochs (or head_warmup_epochs) to a positive number of epochs."
            )

    def _stages(self, continuing, incremental):
        supervised = SupervisedFinetune(
            epochs=1 if incremental else self.finetune_epochs,
            task=self._task,
            reconstruction_weight=float(self.reconstruction_weight),
            pseudo_label_weight=self._pseudo_label_weight(),
            consistency_weight=float(self.consistency_weight),
            adversarial_epsilon=float(self.adversarial_epsilon),
            average_from_epoch=None if incremental else self.average_from_epoch,
            loss=self.loss,
            output_activation=self.output_activation,
        )
        if continuing or incremental:
            return (supervised,)
        stages = []
        if self.pretrain_epochs > 0:
            stages.append(GreedyPretraining(epochs=self.pretrain_epochs, loss=self.loss))
        if self.unsupervised_finetune_epochs > 0:
            stages.append(
                Finetune(
                    epochs=self.unsupervised_finetune_epochs, loss=self.loss, output_activation=self.output_activation
                )
            )
        if self.head_warmup_epochs > 0:
            stages.append(SupervisedFinetune(epochs=self.head_warmup_epochs, task=self._task, head_only=True))
        if self.finetune_epochs > 0:
            stages.append(supervised)
        return tuple(stages)

    def _store_stage_results(self, result, *, continuing, incremental):
        if not continuing:
            unsupervised = result.results_of(Finetune)
            self.unsupervised_loss_curve_ = unsupervised[0].loss_curve if unsupervised else []

    def _check_validation_split(self, n_samples, targets):
        super()._check_validation_split(n_samples, targets)
        n_labeled = int(targets.labeled.sum())
        if n_labeled < 2:
            raise ValueError(
                f"early_stopping=True validates the supervised fine-tune on held-out labeled rows, but there "
                f"{'is' if n_labeled == 1 else 'are'} only {n_labeled} labeled row(s). Label more rows, or use "
                "early_stopping=False."
            )

    def _scores(self, X):
        """The head's output for validated ``X``, in ``X``'s dtype."""
        network = self._inference_network(X.dtype)
        return self._map_rows(lambda batch: network.predict_scores(batch)[0], X, network.config["n_outputs"])

    def transform(self, X):
        """The codes of ``X``: the output of the fine-tuned encoder, which the head reads.

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self.loss == "bce"
        # transform gives the codes: a supervised feature extractor too.
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.network_.code_size


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
    _task = "classification"

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
        learning_rate=1e-3,
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

    def _n_outputs(self):
        return len(self.classes_)

    def _validate_targets(self, X, y, *, continuing, incremental, classes=None):
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
            self.classes_ = np.unique(classes)
        elif not (incremental or continuing):
            self.classes_ = np.unique(y[labeled])
        unseen = np.setdiff1d(y[labeled], self.classes_)
        if unseen.size:
            raise ValueError(
                f"y holds classes {unseen.tolist()} that the fitted classifier does not know "
                f"(classes_={self.classes_.tolist()}). "
                + ("Pass every class in `classes` on the first call to partial_fit." if incremental else "")
                + ("warm_start continues the fitted classes only; fit with warm_start=False." if continuing else "")
            )
        values = np.full(len(y), -1, dtype=np.int64)
        values[labeled] = np.searchsorted(self.classes_, y[labeled])
        return Targets(values=values, task="classification")

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
    standardised units. ``pretrain_epochs=0`` gives a plain multilayer
    perceptron of the same shape.

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

    _parameter_constraints: dict = {
        **_SUPERVISED_CONSTRAINTS,
        "unlabeled_label": [None, "nan"],
    }
    _task = "regression"

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
        consistency_weight=0.0,
        adversarial_epsilon=0.0,
        batch_size=256,
        learning_rate=1e-3,
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
        self.consistency_weight = consistency_weight
        self.adversarial_epsilon = adversarial_epsilon
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
        self.unlabeled_label = unlabeled_label
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Pretrain on every row of ``X``, then fine-tune on the rows that have targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, labeled and unlabeled rows alike.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; with ``unlabeled_label=np.nan``, all-NaN rows are
            unlabeled.

        Returns
        -------
        self : object
            The fitted regressor.
        """
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One epoch of the supervised fine-tune on ``X``, as :class:`~sklearn.neural_network.MLPRegressor` does.

        The first call initialises the network without pretraining and takes
        the targets' mean and scale from this batch.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Its targets.

        Returns
        -------
        self : object
            The updated regressor.
        """
        return self._fit(X, y, incremental=True)

    def _n_outputs(self):
        return self.n_outputs_

    def _validate_targets(self, X, y, *, continuing, incremental, classes=None):
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
            self.n_outputs_ = y2.shape[1]
            self._y_ndim = y.ndim
            self._target_mean = y2[labeled].mean(axis=0)
            scale = y2[labeled].std(axis=0)
            self._target_scale = np.where(scale > 0, scale, 1.0)
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, but the fitted regressor predicts {self.n_outputs_}.")
        values = ((y2 - self._target_mean) / self._target_scale).astype(np.float32)
        return Targets(values=values, task="regression")

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
        """The coefficient of determination R² of :meth:`predict` on ``X`` against ``y``.

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
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _check_regression_targets(y, n_samples, allow_nan):
    """``y`` as a float64 array of one or several outputs, checked as scikit-learn checks targets."""
    y = check_array(
        y, ensure_2d=False, dtype=np.float64, ensure_all_finite="allow-nan" if allow_nan else True, input_name="y"
    )
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {len(y)}.")
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError("y has no outputs (shape (n_samples, 0)).")
    return y
