"""What the classifier and the regressor share: pretrain on every row, fine-tune on the labels.

Both train the same stages on the shared stack of :mod:`sk_stackae._base`:
greedy layer-wise pretraining on all rows, labeled or not; an optional
unsupervised fine-tune of the whole autoencoder; an optional warm-up of the
prediction head alone; then the supervised fine-tune of the encoder and the
head on the labeled rows.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions

from ._activations import ACTIVATIONS
from ._auto import AUTO_PARAMETERS, corrupts_inputs, resolve_auto
from ._base import BaseStackedAutoencoder
from ._engine import Finetune, GreedyPretraining, SupervisedFinetune
from ._estimator import StackedAutoencoder
from ._losses import NOISES
from ._warnings import warn_at_caller

_AUTO = StrOptions({"auto"})
_SUPERVISED_CONSTRAINTS = {
    **BaseStackedAutoencoder._parameter_constraints,
    "code_activation": [StrOptions(set(ACTIVATIONS)), None],
    "noise": [StrOptions({*NOISES, "auto"}), None],
    "pretrain_epochs": [Interval(Integral, 0, None, closed="left"), _AUTO],
    "finetune_epochs": [Interval(Integral, 0, None, closed="left"), _AUTO],
    "unsupervised_finetune_epochs": [Interval(Integral, 0, None, closed="left"), _AUTO],
    "head_warmup_epochs": [Interval(Integral, 0, None, closed="left"), _AUTO],
    "reconstruction_weight": [Interval(Real, 0, None, closed="left"), _AUTO],
    "consistency_weight": [Interval(Real, 0, None, closed="left"), _AUTO],
    "adversarial_epsilon": [Interval(Real, 0, None, closed="left"), _AUTO],
    "average_from_epoch": [Interval(Integral, 1, None, closed="left"), None],
    "pretrained": [None, StackedAutoencoder],
}

_SHARED_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of int or int, default=(256, 64)
        Widths of the encoder layers; the prediction head sits on the last.

    pretrained : StackedAutoencoder or None, default=None
        A fitted :class:`StackedAutoencoder` to start from: its encoder and
        decoder are copied into the network (never changed), greedy
        pretraining is skipped, and the architecture and the reconstruction
        loss are the autoencoder's (``hidden_layer_sizes``, ``activation``,
        ``code_activation``, ``output_activation``, ``tied_weights`` and
        ``loss`` left at their defaults, or set as the autoencoder has
        them). Pretrain once on the unlabeled rows, then fine-tune many
        heads, in a search over the head's parameters say: clones share the
        fitted autoencoder. None pretrains as ``pretrain_epochs`` says.

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

    pretrain_epochs : int or "auto", default="auto"
        Epochs of each greedy pretraining phase, on every row (labeled or
        not); 0 skips pretraining, which makes the estimator a plain
        multilayer perceptron of the same shape. ``"auto"``: in the
        semi-supervised recipe (see **Defaults** above), at least 5 and
        enough for 500 steps a layer; else 0.

    unsupervised_finetune_epochs : int or "auto", default="auto"
        Epochs of an end-to-end fine-tune of the whole autoencoder on the
        reconstruction loss, on every row, after pretraining; 0 skips it.
        ``"auto"``: in the semi-supervised recipe, at least 5 and enough
        for 500 steps, else 0; and 0 with ``pretrained``
        (the autoencoder's own fine-tune is its end-to-end training).

    head_warmup_epochs : int or "auto", default="auto"
        Epochs that train the prediction head alone on the labeled rows, the
        encoder frozen, before the supervised fine-tune: the head first fits
        the pretrained codes, so that its early, large errors do not reshape
        the encoder. ``"auto"``: in the semi-supervised recipe, at least 20
        and enough for 200 steps, else 0.

    finetune_epochs : int or "auto", default="auto"
        Epochs of the supervised fine-tune: the encoder and the head trained
        end to end on the labeled rows (the most, with early stopping).
        ``"auto"``: in the semi-supervised recipe at least 20 and enough for
        2000 steps (each epoch then sees every unlabeled row, see
        ``reconstruction_weight``), but no more epochs than 3500 steps take,
        so that a large data set's fit stays short; for a plain network at
        least 50 and enough for 1000 steps. At most 500 either way.

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

    reconstruction_weight : float or "auto", default="auto"
        With a positive weight, the supervised fine-tune also minimises this
        weight times the reconstruction error of every row, labeled or not,
        so that the encoder keeps what pretraining taught it; each epoch
        then sees every unlabeled row once and the labeled rows repeated to
        make up half of it. ``"auto"``: 1.0 in the semi-supervised recipe,
        else 0.

    consistency_weight : float or "auto", default="auto"
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
        ``reconstruction_weight``. ``"auto"``: 1.0 in the semi-supervised recipe (0
        if nothing corrupts the inputs), else 0.

    adversarial_epsilon : float or "auto", default="auto"
        With a positive value, the corrupted input that ``consistency_weight``
        trains on also moves, row by row, by a step of this length (L2 norm,
        in the units of ``X`` as the estimator receives it) in the direction
        that changes the row's prediction most, found by one extra gradient
        pass per batch: virtual adversarial training (Miyato et al., 2018).
        The network then learns to answer the same where it is most
        sensitive, not only under random noise. Every term of the supervised
        fine-tune trains on the moved rows. Each batch adds one pass through
        the encoder and the head, forward and back to the input. Needs
        ``consistency_weight > 0``. It is in the units of the rows the
        estimator receives, after a pipeline's scaling. ``"auto"``: in the
        semi-supervised recipe (with a consistency term), a tenth of the
        median L2 norm of the training rows; else 0.

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
        starts again at ``learning_rate_init``, and :meth:`partial_fit`
        trains at ``learning_rate_init``. A float is the initial step size
        under its old name: deprecated (a ``FutureWarning``), use
        ``learning_rate_init``.

    learning_rate_init : float, default=1e-3
        The initial step size of the optimiser, in every stage.

    power_t : float, default=0.5
        The exponent of ``learning_rate="invscaling"``.

    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The PyTorch optimiser of every phase.

    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (AdamW: the decoupled
        weight decay).

    noise : {"gaussian", "masking", "auto"} or None, default="auto"
        Corruption of each phase's input during training: denoising
        pretraining (Vincent et al., 2010), and in the supervised fine-tune
        a random masking of the inputs. Denoising is what makes pretraining
        help the prediction from few labels (see the :ref:`User Guide
        <supervised>`); None turns it off. ``"auto"``: ``"masking"`` in the
        semi-supervised recipe, else None (for a plain network, the noise
        cost accuracy).

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

    precision : {"float32", "float64", "tf32", "bfloat16"}, default="float32"
        Arithmetic of training: float32 (the fast path), float64 throughout
        (as scikit-learn's MLP trains; slower), bfloat16 products under
        autocast, or TensorFloat-32 products on NVIDIA GPUs (see
        :class:`StackedAutoencoder`).

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
    resolved_params_ : dict
        The value each setting that takes ``"auto"`` had in the fit: the
        resolved value for ``"auto"``, the given one otherwise.

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
    # Whether "auto" turns the semi-supervised recipe on when some rows are unlabeled.
    _unlabeled_rows_switch_terms_on = True

    def _code_activation(self):
        return self.activation if self.code_activation is None else self.code_activation

    # ------------------------------------------------ a pretrained start

    def _start_from(self):
        return None if self.pretrained is None else self.pretrained.network_

    def _reconstruction(self):
        if self.pretrained is None:
            return super()._reconstruction()
        return self.pretrained.loss, self.pretrained.output_activation

    def _architecture(self, n_features, hidden_layer_sizes, fitted):
        if self.pretrained is None:
            return super()._architecture(n_features, hidden_layer_sizes, fitted)
        return {**self.pretrained.network_.config, "n_outputs": self._n_outputs(fitted)}

    def _validate_training_input(self, X, reset, fitted, sample_weight=None):
        validated = super()._validate_training_input(X, reset, fitted, sample_weight)
        if self.pretrained is not None and reset:
            self._check_pretrained(validated[0].shape[1])
        return validated

    def _check_pretrained(self, n_features):
        """Refuse, before any training, a pretrained start that is unfitted, of other width, or contradicted."""
        pretrained = self.pretrained
        if not hasattr(pretrained, "network_"):
            raise ValueError(
                "pretrained must be a fitted StackedAutoencoder: fit it first (on the unlabeled rows, say), "
                "then pass it."
            )
        if pretrained.n_features_in_ != n_features:
            raise ValueError(
                f"X has {n_features} features, but the pretrained StackedAutoencoder was fitted on "
                f"{pretrained.n_features_in_}."
            )
        config = pretrained.network_.config
        taken = {
            "hidden_layer_sizes": config["hidden_layer_sizes"],
            "activation": config["activation"],
            "code_activation": config["code_activation"],
            "output_activation": config["output_activation"],
            "tied_weights": config["tied_weights"],
            "loss": pretrained.loss,
        }
        defaults = type(self)().get_params()
        contradicted = [
            f"{name}={getattr(self, name)!r} (pretrained: {value!r})"
            for name, value in taken.items()
            if not _same(getattr(self, name), defaults[name]) and not _same(getattr(self, name), value)
        ]
        if contradicted:
            raise ValueError(
                "With a pretrained autoencoder, the architecture and the reconstruction loss are the "
                f"autoencoder's; these settings contradict it: {', '.join(contradicted)}. Leave them at their "
                "defaults, or set them as the autoencoder has them."
            )

    def __sklearn_clone__(self):
        cloned = super().__sklearn_clone__()
        # The fitted start is shared, never trained: a clone (in a search, say) starts from it too.
        cloned.pretrained = self.pretrained
        return cloned

    def _pseudo_label_weight(self):
        return 0.0

    def _warn_about_wasted_settings(self, n_features, hidden_layer_sizes, device):
        super()._warn_about_wasted_settings(n_features, hidden_layer_sizes, device)
        consistency_weight = self._param("consistency_weight")
        corrupted = corrupts_inputs(
            self._param("noise"), self.noise_level, self.dropout, self._param("adversarial_epsilon")
        )
        if consistency_weight > 0 and not corrupted:
            warn_at_caller(
                f"consistency_weight={consistency_weight} does nothing without noise, dropout or "
                "adversarial_epsilon: the prediction it trains is then the clean prediction it aims at. Set "
                "noise (e.g. noise='masking'), dropout or adversarial_epsilon, or leave consistency_weight at 0.",
                UserWarning,
            )

    def _check_epochs(self, continuing):
        epsilon, finetune_epochs = self._param("adversarial_epsilon"), self._param("finetune_epochs")
        if epsilon > 0 and self._param("consistency_weight") == 0:
            raise ValueError(
                f"adversarial_epsilon={epsilon} perturbs the inputs of the consistency term, "
                "and consistency_weight=0 leaves none. Set consistency_weight > 0 (e.g. 1.0), or leave "
                "adversarial_epsilon at 0."
            )
        if continuing and finetune_epochs == 0:
            raise ValueError(
                "warm_start=True continues the fitted network with the supervised fine-tune alone, "
                "and finetune_epochs=0 leaves nothing to train."
            )
        if self.average_from_epoch is not None and self.average_from_epoch > finetune_epochs:
            raise ValueError(
                f"average_from_epoch={self.average_from_epoch} is after the last supervised epoch "
                f"(finetune_epochs={finetune_epochs}): nothing would be averaged. Set it to at most "
                "finetune_epochs, or to None to keep the last weights."
            )
        if finetune_epochs == 0 and self._param("head_warmup_epochs") == 0:
            raise ValueError(
                "finetune_epochs and head_warmup_epochs are both 0: the prediction head would never be trained. "
                "Set finetune_epochs (or head_warmup_epochs) to a positive number of epochs."
            )

    def _stages(self, continuing, incremental):
        loss, output_activation = self._reconstruction()
        settings = {name: self._param(name) for name in AUTO_PARAMETERS}
        supervised = SupervisedFinetune(
            epochs=1 if incremental else settings["finetune_epochs"],
            reconstruction_weight=float(settings["reconstruction_weight"]),
            pseudo_label_weight=self._pseudo_label_weight(),
            consistency_weight=float(settings["consistency_weight"]),
            adversarial_epsilon=float(settings["adversarial_epsilon"]),
            average_from_epoch=None if incremental else self.average_from_epoch,
            loss=loss,
            output_activation=output_activation,
        )
        if continuing or incremental:
            return (supervised,)
        stages = []
        # A pretrained autoencoder is the start: its greedy pretraining is not repeated.
        if settings["pretrain_epochs"] > 0 and self.pretrained is None:
            stages.append(GreedyPretraining(epochs=settings["pretrain_epochs"], loss=loss))
        unsupervised_epochs = settings["unsupervised_finetune_epochs"]
        if unsupervised_epochs > 0:
            stages.append(Finetune(epochs=unsupervised_epochs, loss=loss, output_activation=output_activation))
        if settings["head_warmup_epochs"] > 0:
            stages.append(SupervisedFinetune(epochs=settings["head_warmup_epochs"], head_only=True))
        if settings["finetune_epochs"] > 0:
            stages.append(supervised)
        return tuple(stages)

    def _resolve_auto(self, X, targets, weights, continuing):
        if continuing and hasattr(self, "resolved_params_"):
            return dict(self.resolved_params_)  # the network goes on as it was trained
        n_unlabeled = int((~targets.labeled).sum())
        resolved = resolve_auto(
            self.get_params(deep=False), X, n_unlabeled, self._unlabeled_rows_switch_terms_on, weights
        )
        if self.pretrained is not None and self.unsupervised_finetune_epochs == "auto":
            resolved["unsupervised_finetune_epochs"] = 0  # the pretrained autoencoder had its own fine-tune
        return resolved

    def _store_stage_results(self, result, *, continuing, incremental):
        self.resolved_params_ = dict(self._resolved)
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
        held_out = min(n_labeled - 1, max(1, math.ceil(self.validation_fraction * n_labeled)))
        if held_out / n_labeled > 1.5 * self.validation_fraction:
            warn_at_caller(
                f"early_stopping=True holds out {held_out} of the {n_labeled} labeled rows "
                f"({100 * held_out / n_labeled:.0f} %, more than validation_fraction={self.validation_fraction} "
                f"asks for), and the supervised fine-tune's validation score moves in steps of "
                f"{100 / held_out:.0f} %: too few labels to validate on. Label more rows, or use early_stopping=False.",
                UserWarning,
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


def _labeled_part(X, y, sample_weight, labeled):
    """The rows of ``X``, ``y`` and ``sample_weight`` that ``labeled`` marks, for scoring; none is a ValueError."""
    if not labeled.any():
        raise ValueError("Every row of y is unlabeled: there is no target to score against.")
    rows = np.flatnonzero(labeled)
    weights = None if sample_weight is None else np.asarray(sample_weight)[labeled]
    return _safe_indexing(X, rows), y[labeled], weights


def __getattr__(name):
    # Pickles made before the two estimators moved to modules of their own name them here.
    if name == "StackedAutoencoderClassifier":
        from ._classifier import StackedAutoencoderClassifier

        return StackedAutoencoderClassifier
    if name == "StackedAutoencoderRegressor":
        from ._regressor import StackedAutoencoderRegressor

        return StackedAutoencoderRegressor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _same(value, other):
    """Whether two parameter values are the same (a tuple of widths and an int included)."""
    return (
        np.atleast_1d(np.asarray(value, dtype=object)).tolist()
        == np.atleast_1d(np.asarray(other, dtype=object)).tolist()
    )
