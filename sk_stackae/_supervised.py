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
from ._auto import AUTO_PARAMETERS, REPLACED_BY_LADDER, corrupts_inputs, resolve_auto
from ._base import BaseStackedAutoencoder
from ._engine import Finetune, GreedyPretraining, SupervisedFinetune
from ._estimator import StackedAutoencoder
from ._ladder import LadderFinetune, default_level_weights
from ._losses import NOISES
from ._scaling import mean_column_variance
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
    "ladder": [StrOptions({"full", "gamma"}), None],
    "ladder_noise": [Interval(Real, 0, None, closed="left")],
    "ladder_weights": ["array-like", _AUTO],
}


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

    def _check_hyperparameters(self):
        sizes = super()._check_hyperparameters()
        if self.ladder is None:
            return sizes
        explicit = [
            f"{name}={getattr(self, name)!r}"
            for name in REPLACED_BY_LADDER
            if getattr(self, name) != "auto" and getattr(self, name) > 0
        ]
        if explicit:
            raise ValueError(
                f"ladder={self.ladder!r} trains the ladder's denoising costs in the supervised fine-tune, which "
                f"replace {', '.join(explicit)}: leave them at 'auto' (or 0), or set ladder=None."
            )
        if self.distributed:
            raise ValueError(
                "ladder does not train data-parallel (distributed=True): its batch normalisation would need "
                "statistics across the processes. Train it in one process, or set ladder=None."
            )
        return sizes

    def _ladder_weights(self, n_layers, X, weights):
        """The denoising weights of the ladder from the input to the head, checked; None without a ladder."""
        if self.ladder is None:
            return None
        n_levels = n_layers + 2
        if isinstance(self.ladder_weights, str):
            return default_level_weights(self.ladder, n_levels, mean_column_variance(X, weights))
        weights = np.asarray(self.ladder_weights, dtype=np.float64)
        if weights.shape != (n_levels,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"ladder_weights must hold {n_levels} non-negative numbers, one per level from the input to the "
                f"head's output ({n_layers} hidden layers); got {self.ladder_weights!r}."
            )
        return tuple(weights.tolist())

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
        supervised = dict(
            epochs=1 if incremental else settings["finetune_epochs"],
            pseudo_label_weight=self._pseudo_label_weight(),
            average_from_epoch=None if incremental else self.average_from_epoch,
        )
        if self.ladder is None:
            supervised = SupervisedFinetune(
                **supervised,
                reconstruction_weight=float(settings["reconstruction_weight"]),
                consistency_weight=float(settings["consistency_weight"]),
                adversarial_epsilon=float(settings["adversarial_epsilon"]),
                loss=loss,
                output_activation=output_activation,
            )
        else:
            supervised = LadderFinetune(
                **supervised, noise=float(self.ladder_noise), level_weights=self._param("ladder_weights")
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
            resolved = dict(self.resolved_params_)  # the network goes on as it was trained
        else:
            n_unlabeled = int((~targets.labeled).sum())
            resolved = resolve_auto(
                self.get_params(deep=False), X, n_unlabeled, self._unlabeled_rows_switch_terms_on, weights
            )
            if self.pretrained is not None and self.unsupervised_finetune_epochs == "auto":
                resolved["unsupervised_finetune_epochs"] = 0  # the pretrained autoencoder had its own fine-tune
        if continuing:
            n_layers = self.network_.n_layers
        elif self.pretrained is not None:
            n_layers = self.pretrained.network_.n_layers
        else:
            n_layers = len(np.atleast_1d(self.hidden_layer_sizes))
        resolved["ladder_weights"] = self._ladder_weights(n_layers, X, weights)
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
