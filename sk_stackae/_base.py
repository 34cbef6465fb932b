"""What every sk-stackae estimator shares: the stack's parameters, one fit path, inference and pickling.

An estimator validates its input, plans the stages of a fit and stores what
the engine (:mod:`sk_stackae._engine`) hands back; this module does all of
that once. Each estimator adds the stages it trains, the targets it
predicts and the methods of its scikit-learn role.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import __version__
from ._accel.switches import acceleration_from_environment
from ._activations import ACTIVATIONS
from ._callbacks import SCHEDULES
from ._data import inference_batch_size, map_row_batches
from ._device import cpu_has_bfloat16_units, device_for_loading, resolve_device, tree_to_numpy, tree_to_torch
from ._distributed import replicas_for
from ._engine import FitPlan, FittedState, GreedyPretraining, fit_network
from ._inputs import (
    _as_float_input,
    _check_validation_split,
    _checked_sample_weight,
    _float_dtypes,
    _seed,
    _unchanged_on_failure,
)
from ._listeners import attached_listeners
from ._loop import PhaseResult, TrainingOptions, seeded_generator
from ._losses import NOISES
from ._network import build_network
from ._optim import OPTIMIZERS, optimizer_from_numpy, optimizer_saved_in_format_1, optimizer_to_numpy
from ._progress import make_progress
from ._warnings import warn_at_caller

# Where the documentation is published: the HTML repr of every estimator
# links to its API page there, as scikit-learn's estimators link to theirs.
DOCUMENTATION_URL = "https://sk-stackae.github.io/sk-stackae/"


def _api_page(estimator):
    """The parameters of ``_doc_link_template``: the public name of the estimator's class."""
    return {"estimator_name": type(estimator).__name__}


# Version of what __getstate__ writes; raise it when an older reader could
# not make sense of the new layout.
_PICKLE_FORMAT = 2
# Formats this version reads: 1 saved partial_fit's optimiser without its class.
_READABLE_PICKLE_FORMATS = (1, 2)


class BaseStackedAutoencoder(BaseEstimator):
    """The stack, its training and its inference, for every estimator of this package.

    Subclasses define ``__init__`` with their parameters, and:

    - ``_stages(continuing, incremental)``: the stages a call of fit or
      partial_fit trains;
    - ``_main_stage``: the stage type whose loss curve is ``loss_curve_``;
    - ``_validate_targets(X, y, incremental)`` and ``_n_outputs()``, for
      estimators that predict (the defaults ignore ``y``);
    - ``_check_epochs(continuing)``: that a fit has something to train.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "code_activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({"identity", "sigmoid", "logistic"})],
        "loss": [StrOptions({"mse", "bce"})],
        "tied_weights": ["boolean"],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "finetune_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        # A float is the initial rate under its old name (deprecated).
        "learning_rate": [StrOptions(set(SCHEDULES)), Interval(Real, 0, None, closed="neither")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "noise": [StrOptions(set(NOISES)), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "sparsity": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "precision": [StrOptions({"float32", "float64", "tf32", "bfloat16"})],
        "device": [str, torch.device],
        "distributed": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    _main_stage = None

    _doc_link_module = "sk_stackae"
    _doc_link_template = DOCUMENTATION_URL + "generated/sk_stackae.{estimator_name}.html"
    _doc_link_url_param_generator = _api_page

    # ------------------------------------------------------------------ fit

    def _fit(self, X, y=None, *, incremental, classes=None, sample_weight=None):
        """The one fit path: ``fit`` (fresh or warm-started) and ``partial_fit``.

        It validates everything, plans the stages, calls the engine once and
        stores what comes back; a fit that raises leaves the estimator as
        it was.
        """
        continuing = hasattr(self, "network_") and (incremental or self.warm_start)
        with _unchanged_on_failure(self):
            self._resolved = {}  # nothing of an earlier fit's resolution is read before this one's
            # What validation learns of the data (a scaling, the classes) is
            # stored with the rest of the fit, once it has succeeded.
            fitted = {}
            X, hidden_layer_sizes, weights = self._validate_training_input(
                X, reset=not continuing, fitted=fitted, sample_weight=sample_weight
            )
            targets = self._validate_targets(
                X,
                y,
                continuing=continuing,
                incremental=incremental,
                classes=classes,
                fitted=fitted,
                sample_weight=weights,
            )
            # The "auto" settings, resolved from the data; the checks and the plan read them.
            self._resolved = self._resolve_auto(X, targets, weights, continuing)
            if not incremental:
                self._check_epochs(continuing)
            architecture = self._architecture(X.shape[1], hidden_layer_sizes, fitted)
            if continuing:
                self._check_same_architecture(architecture)
            device = resolve_device(self.device)
            options = self._training_options(device, incremental)
            if options.early_stopping:
                self._check_validation_split(X.shape[0], targets)
            self._warn_about_wasted_settings(X.shape[1], hidden_layer_sizes, device)
            if incremental and continuing and getattr(self, "_generator", None) is not None:
                generator = self._generator  # partial_fit draws on where it stopped
            else:
                generator = seeded_generator(_seed(self.random_state))
            plan = FitPlan(
                architecture=architecture,
                stages=self._stages(continuing, incremental),
                validation_fraction=self.validation_fraction,
                incremental=incremental,
                start_from=None if continuing else self._start_from(),
            )
            previous = FittedState(self.network_, getattr(self, "_optimizer", None)) if continuing else None
            result = fit_network(
                X,
                plan,
                options,
                device,
                generator,
                previous=previous,
                listeners=[*make_progress(self.verbose), *attached_listeners()],
                targets=targets,
                weights=weights,
            )
            self._store_fit(
                result, device, generator, fitted, X, weights, continuing=continuing, incremental=incremental
            )
        if result.interrupted_in is not None:
            warn_at_caller(
                f"Training interrupted by user during {result.interrupted_in}; the estimator keeps the network "
                "as it was then, with the loss curves of the epochs that finished.",
                UserWarning,
            )
        elif options.early_stopping:
            self._warn_if_not_converged(result)
        return self

    def _validate_targets(self, X, y, *, continuing, incremental, classes=None, fitted, sample_weight=None):
        """The engine's :class:`~sk_stackae._engine.Targets` for ``y``; None for an estimator that ignores it.

        What a fresh fit learns of ``y`` (``classes_``...) goes into
        ``fitted``, to be stored with the rest of the fit.
        """
        return None

    def _start_from(self):
        """A trained network whose autoencoder a fresh fit starts from; None by default."""
        return None

    # Settings resolved for the fit under way (see _resolve_auto); none by default.
    _resolved: dict = {}

    def _resolve_auto(self, X, targets, weights, continuing):
        """The values that ``"auto"`` settings take on validated ``X``, ``targets`` and ``weights``; none by default."""
        return {}

    def _param(self, name):
        """The setting ``name`` as the fit uses it: its resolved value when it was ``"auto"``."""
        return self._resolved.get(name, getattr(self, name))

    def _n_outputs(self, fitted):
        """Width of the prediction head (from ``fitted``, else the fitted estimator); None without one."""
        return None

    def _store_fit(self, result, device, generator, fitted, X, weights, *, continuing, incremental):
        """Store the fitted attributes: the one place they are set, once the fit has succeeded.

        ``fitted`` holds what validation learnt of the data; ``X`` (the
        validated training rows) and their ``weights`` are what
        :meth:`_calibration` reads.
        """
        self.__dict__.update(fitted)
        n_layers = result.network.n_layers
        self.network_ = result.network
        self.hidden_layer_sizes_ = result.network.config["hidden_layer_sizes"]
        self.device_ = device
        early_stopping = self._early_stopping(incremental)
        pretraining = result.results_of(GreedyPretraining)
        if not continuing:
            pretraining += [PhaseResult() for _ in range(n_layers - len(pretraining))]
            self.pretrain_loss_curves_ = [phase.loss_curve for phase in pretraining]
            self.pretrain_validation_scores_ = (
                [phase.validation_scores or [] for phase in pretraining] if early_stopping else None
            )
        main = result.results_of(self._main_stage)
        main = main[-1] if main else PhaseResult()
        self.loss_curve_ = (self.loss_curve_ if continuing else []) + main.loss_curve
        self.n_iter_ = len(self.loss_curve_)
        if early_stopping:
            self.validation_scores_ = main.validation_scores or []
            self.best_validation_score_ = max(self.validation_scores_, default=None)
        else:
            self.validation_scores_ = self.best_validation_score_ = None
        self._store_stage_results(result, continuing=continuing, incremental=incremental)
        if incremental:
            self._optimizer = result.optimizer
            self._generator = generator
        else:
            # A fit starts the optimiser afresh; only partial_fit carries it on.
            self.__dict__.pop("_optimizer", None)
            self.__dict__.pop("_generator", None)
        self.__dict__.update(self._calibration(X, weights))

    def _store_stage_results(self, result, *, continuing, incremental):
        """Attributes of an estimator's own stages, beyond those every estimator has."""

    def _calibration(self, X, weights):
        """What the trained network's outputs mean on the validated training rows (a threshold, say).

        Returns a dict of fitted attributes; called once the network is
        stored, inside the fit, so that a failure here leaves the estimator
        as it was. Nothing by default.
        """
        return {}

    def _early_stopping(self, incremental):
        """Whether this call validates: fit with early_stopping, never partial_fit (no held-out set)."""
        return bool(self.early_stopping) and not incremental

    def _validate_training_input(self, X, reset, fitted, sample_weight=None):
        """Check the hyperparameters, the data and the sample weights before any training.

        Returns the validated rows, the hidden layer sizes (None where they
        follow from the data) and the weights (float64, or None for rows
        weighed alike).
        """
        hidden_layer_sizes = self._check_hyperparameters()
        X = _as_float_input(validate_data(self, X, accept_sparse="csr", dtype=_float_dtypes(X), reset=reset))
        self._check_value_range(X)
        return X, hidden_layer_sizes, _checked_sample_weight(sample_weight, X)

    def _learning_rate(self):
        """The initial learning rate and the schedule: ``learning_rate_init`` and ``learning_rate``.

        A float ``learning_rate`` is the initial rate under its old name: it
        still works, with a FutureWarning, and a constant schedule.
        """
        if isinstance(self.learning_rate, str):
            return float(self.learning_rate_init), self.learning_rate
        warn_at_caller(
            f"learning_rate={self.learning_rate!r} as a float is deprecated: learning_rate is now the schedule "
            "('constant', 'invscaling', 'adaptive' or 'cosine'), as in MLPClassifier, and the initial rate is "
            f"learning_rate_init. Pass learning_rate_init={self.learning_rate!r} instead; a float learning_rate "
            "will be refused in a future version.",
            FutureWarning,
        )
        return float(self.learning_rate), "constant"

    def _training_options(self, device, incremental):
        learning_rate_init, schedule = self._learning_rate()
        return TrainingOptions(
            optimizer=self.optimizer,
            learning_rate_init=learning_rate_init,
            learning_rate=schedule,
            power_t=float(self.power_t),
            momentum=float(self.momentum),
            alpha=float(self.alpha),
            batch_size=int(self.batch_size),
            noise=self._param("noise"),
            noise_level=float(self.noise_level),
            dropout=float(self.dropout),
            sparsity=float(self.sparsity),
            sparsity_target=float(self.sparsity_target),
            early_stopping=self._early_stopping(incremental),
            n_iter_no_change=int(self.n_iter_no_change),
            tol=float(self.tol),
            precision=self.precision,
            replicas=replicas_for(self.distributed, device),
            acceleration=acceleration_from_environment(),
        )

    def _architecture(self, n_features, hidden_layer_sizes, fitted):
        architecture = {
            "n_features": n_features,
            "hidden_layer_sizes": hidden_layer_sizes,
            "activation": self.activation,
            "code_activation": self._code_activation(),
            "output_activation": self.output_activation,
            "tied_weights": bool(self.tied_weights),
        }
        n_outputs = self._n_outputs(fitted)
        if n_outputs is not None:
            architecture["n_outputs"] = n_outputs
        return architecture

    def _code_activation(self):
        return self.code_activation

    def _check_same_architecture(self, wanted):
        fitted = self.network_.config
        changes = [f"{key}: {fitted.get(key)!r} -> {wanted[key]!r}" for key in wanted if wanted[key] != fitted.get(key)]
        if changes:
            raise ValueError(
                "warm_start and partial_fit continue the fitted network, but the parameters now ask for "
                f"another architecture ({'; '.join(changes)}). Call fit with warm_start=False to train a new network."
            )

    def _check_validation_split(self, n_samples, targets):
        """Refuse, before any training, a validation split that leaves one side empty."""
        _check_validation_split(self.validation_fraction, n_samples)

    def _warn_about_wasted_settings(self, n_features, hidden_layer_sizes, device):
        """Warn about settings that train, but not as the user meant."""
        if self.precision == "bfloat16" and device.type == "cpu" and cpu_has_bfloat16_units() is False:
            warn_at_caller(
                "precision='bfloat16' on a CPU without bfloat16 units (AVX512-BF16 or AMX): torch emulates "
                "the bfloat16 products, which makes training slower than float32 with no gain. "
                "Use precision='float32' on this machine.",
                UserWarning,
            )

    def _warn_if_overcomplete(self, n_features, hidden_layer_sizes):
        """Warn when the code can learn the identity: as wide as the input, without noise or sparsity."""
        code_size = hidden_layer_sizes[-1]
        regularised = (self._param("noise") is not None and self.noise_level > 0) or self.sparsity > 0
        if code_size >= n_features and not regularised:
            warn_at_caller(
                f"The code ({code_size} units, hidden_layer_sizes[-1]) is as wide as the input or wider "
                f"({n_features} features): without noise or sparsity the autoencoder can learn to copy its "
                "input, and its codes then compress nothing. Use a code narrower than the input, e.g. "
                f"hidden_layer_sizes=({max(1, n_features // 2)},), or set noise or sparsity to learn an "
                "overcomplete code.",
                UserWarning,
            )

    def _warn_if_not_converged(self, result):
        """One ConvergenceWarning naming every phase that ran out of epochs while still improving."""
        unfinished = [
            f"{phase.name.split('/')[0]} ({len(phase.loss_curve)} epochs)"
            for _, phase in result.phases
            if phase.loss_curve and not phase.stopped_early
        ]
        if unfinished:
            warn_at_caller(
                "The validation score was still improving when the epoch budget ran out in "
                f"{', '.join(unfinished)}. Give those phases more epochs, or raise tol.",
                ConvergenceWarning,
            )

    def _check_hyperparameters(self):
        """Checks that ``_parameter_constraints`` cannot express, for fit and partial_fit.

        Returns the hidden layer sizes as a tuple of ints, or None when they
        follow from the number of features (see :meth:`_checked_hidden_layer_sizes`).
        """
        sizes = self._checked_hidden_layer_sizes()
        if self.loss == "bce" and not ACTIVATIONS[self.output_activation].unit_interval:
            raise ValueError(
                "loss='bce' needs output_activation='sigmoid' (binary cross-entropy compares "
                f"probabilities); got output_activation={self.output_activation!r}."
            )
        if self.noise in ("masking", "auto") and self.noise_level >= 1:
            raise ValueError(
                f"noise='masking' with noise_level={self.noise_level} would mask every input; "
                "noise_level is the fraction of inputs set to zero and must be below 1."
            )
        return sizes

    def _checked_hidden_layer_sizes(self):
        """``hidden_layer_sizes`` as a tuple of positive ints, or a ValueError that says what is wrong."""
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
        return tuple(int(size) for size in sizes)

    def _reconstruction(self):
        """``(loss, output_activation)`` of the reconstruction that the network is trained on."""
        return self.loss, self.output_activation

    def _check_value_range(self, X):
        """Binary cross-entropy is defined for targets in [0, 1] only."""
        if self._reconstruction()[0] != "bce":
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

    def _validate_inference_input(self, X):
        """``X`` checked against the fit, in the float dtype that inference computes in."""
        check_is_fitted(self)
        return _as_float_input(validate_data(self, X, accept_sparse="csr", dtype=_float_dtypes(X), reset=False))

    def _inference_network(self, dtype):
        """The fitted network, computing in ``dtype``.

        float64 input is encoded in float64 by an upcast twin of the float32
        network, slower than float32: a sample's code then depends on which
        other samples share its batch by float64 rounding only (float32
        matrix products round differently for different batch sizes).
        """
        wanted = torch.float64 if dtype == np.float64 else torch.float32
        if next(self.network_.parameters()).dtype == wanted:
            return self.network_
        twin = build_network(self.network_.config).to(self.device_, wanted)
        twin.load_state_dict(self.network_.state_dict())
        return twin

    def _map_rows(self, function, X, width):
        batch_size = inference_batch_size(self.network_.widths, int(self.batch_size))
        return map_row_batches(function, X, batch_size=batch_size, device=self.device_, width=width, dtype=X.dtype)

    def _reconstructions(self, X):
        """The network's reconstruction of every row of ``X``, in ``X``'s units (for the Displays)."""
        X = self._validate_inference_input(X)
        network = self._inference_network(X.dtype)
        return self._map_rows(network, X, self.n_features_in_)

    def _codes(self, X):
        """The codes of validated ``X``: the output of the last encoder layer, in ``X``'s dtype."""
        network = self._inference_network(X.dtype)
        return self._map_rows(network.encode, X, network.code_size)

    # ----------------------------------------------------------- pickling

    def __getstate__(self):
        # BaseEstimator may hand back __dict__ itself: never edit it in place.
        state = dict(super().__getstate__())
        state["_sk_stackae_pickle_format"] = _PICKLE_FORMAT
        state["_sk_stackae_version"] = __version__
        # Tensors are saved as numpy arrays and devices as strings: the
        # pickle holds no torch object, so a model fitted on a GPU loads on a
        # machine without one, and skops can read it.
        if "network_" in state:
            network = state["network_"]
            state["network_"] = {"config": dict(network.config), "state_dict": tree_to_numpy(network.state_dict())}
            state["device_"] = str(state["device_"])
        if state.get("_optimizer") is not None:
            state["_optimizer"] = optimizer_to_numpy(state["_optimizer"], list(self.network_.parameters()))
        if "_generator" in state:
            state["_generator"] = state["_generator"].get_state().numpy()
        return state

    def __setstate__(self, state):
        state = dict(state)
        pickle_format = state.pop("_sk_stackae_pickle_format", None)
        version = state.pop("_sk_stackae_version", "an unknown version")
        if pickle_format not in _READABLE_PICKLE_FORMATS:
            readable = " and ".join(str(f) for f in _READABLE_PICKLE_FORMATS)
            raise ValueError(
                f"This {type(self).__name__} was saved by sk-stackae {version} in pickle format {pickle_format}, "
                f"which sk-stackae {__version__} cannot read (it reads formats {readable}). Load it with "
                f"sk-stackae {version} and refit, or refit it with this version."
            )
        if "learning_rate_init" not in state and "learning_rate" in state:
            # Saved before the step size's schedule: learning_rate was the initial rate.
            state["learning_rate_init"] = state["learning_rate"]
            state.update(learning_rate="constant", power_t=0.5)
        saved_network = state.get("network_")
        saved_optimizer = state.get("_optimizer")
        if saved_network is not None:
            device = device_for_loading(state["device_"])
            state_dict = tree_to_torch(saved_network["state_dict"])
            # A network trained with precision="float64" comes back in float64.
            network = build_network(saved_network["config"]).to(next(iter(state_dict.values())).dtype)
            network.load_state_dict(state_dict)
            state["network_"] = network.to(device)
            state["device_"] = device
        if "_generator" in state:
            state["_generator"] = torch.Generator().set_state(torch.from_numpy(state["_generator"]))
        super().__setstate__(state)
        if saved_optimizer is not None:
            parameters = list(self.network_.parameters())
            if pickle_format == 1:
                saved_optimizer = optimizer_saved_in_format_1(saved_optimizer, parameters)
            # Rebound to the restored parameters, with the class and groups it was saved with.
            self._optimizer = optimizer_from_numpy(saved_optimizer, parameters)
