"""Running scikit-learn's estimator checks on this package's configurations."""

from functools import partial

from sklearn.base import clone

# Fitting with integer sample weights must give what fitting on the rows
# repeated as often gives, to float64 rounding (rtol 1e-7, atol 1e-9).
SAMPLE_WEIGHT_EQUIVALENCE = {
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
}


# Checks that fit on fixed rows of values from 1 to 4, which loss="bce" refuses
# (it needs [0, 1]): they check how sample_weight is taken, whatever the loss.
SAMPLE_WEIGHT_HANDLING_ON_FIXED_ROWS = {"check_sample_weights_shape", "check_sample_weights_not_overwritten"}


def check_name(check):
    return check.func.__name__ if isinstance(check, partial) else check.__name__


def deterministic_twin(estimator):
    """The same configuration, trained so that weights and repeated rows can agree to float64 rounding.

    As scikit-learn's own suite runs these checks on MLPClassifier with
    another solver: float64 training (float32 rounds each sum of a batch
    differently for 15 weighted rows and for their 30 repetitions, and Adam
    turns the rounding of gradients that should be 0 into steps of the full
    learning rate), full batches, and no per-row random draws (noise,
    dropout, a virtual adversarial direction, the ladder's corrupted pass,
    an early-stopping split),
    which draw differently for different rows.
    """
    params = estimator.get_params()
    change = {"precision": "float64", "noise": None, "dropout": 0.0, "batch_size": 256, "early_stopping": False}
    if params.get("adversarial_epsilon"):
        change["adversarial_epsilon"] = 0.0
    if params.get("ladder") is not None:
        # The corrupted pass draws noise per row. And with every row labeled, the head's shift has a
        # gradient of 0 (its batch-normalised input has mean 0), whose rounding Adam turns into steps.
        change.update(ladder_noise=0.0, optimizer="sgd")
    return clone(estimator).set_params(**change)


def run_check(estimator, check):
    """Run ``check`` on ``estimator``; the sample-weight equivalence checks on its deterministic twin."""
    name = check_name(check)
    if name in SAMPLE_WEIGHT_EQUIVALENCE:
        estimator = deterministic_twin(estimator)
    elif name in SAMPLE_WEIGHT_HANDLING_ON_FIXED_ROWS and estimator.get_params().get("loss") == "bce":
        estimator = clone(estimator).set_params(loss="mse", output_activation="identity")
    check(estimator)
