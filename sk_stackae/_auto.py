"""What the classifier's and the regressor's ``"auto"`` settings resolve to, from the rows they are fitted on.

Two regimes, told apart by whether any training row is unlabeled (for the
classifier; the regressor trains the first whatever its rows, as the
unlabeled rows did not help it on the data its defaults were chosen on):

- **every row labeled**: a plain network of the chosen shape, as
  :class:`~sklearn.neural_network.MLPClassifier` would train it: no greedy
  pretraining, no input noise, no unsupervised or semi-supervised term;
- **unlabeled rows present**: the semi-supervised recipe. Denoising
  pretraining (masking noise) of every layer, a short unsupervised
  fine-tune, a head warm-up on the frozen codes, then the supervised
  fine-tune that keeps the reconstruction of every row in its loss and
  trains every row's prediction to stay the same under the noise and under
  a virtual adversarial step, whose length is a tenth of the median L2 norm
  of the training rows (in the units the estimator receives).

With a ladder (``ladder="full"`` or ``"gamma"``), the ladder's denoising
costs take the place of the reconstruction, consistency and adversarial
terms, whose ``"auto"`` is then 0; the other settings resolve as above.

How these were chosen, by data set left out, is ``benchmarks/supervised_defaults.py``.
"""

import math

import numpy as np
import scipy.sparse as sp

from ._outlier_views import weighted_percentile

# The settings that take "auto", in the order they are reported.
AUTO_PARAMETERS = (
    "noise",
    "pretrain_epochs",
    "unsupervised_finetune_epochs",
    "head_warmup_epochs",
    "finetune_epochs",
    "reconstruction_weight",
    "consistency_weight",
    "adversarial_epsilon",
)

EVERY_ROW_LABELED = {
    "noise": None,
    "pretrain_epochs": 0,
    "unsupervised_finetune_epochs": 0,
    "head_warmup_epochs": 0,
    "finetune_epochs": 50,
    "reconstruction_weight": 0.0,
    "consistency_weight": 0.0,
    "adversarial_epsilon": 0.0,
}

UNLABELED_ROWS = {
    "noise": "masking",
    "pretrain_epochs": 5,
    "unsupervised_finetune_epochs": 5,
    "head_warmup_epochs": 20,
    "finetune_epochs": 20,
    "reconstruction_weight": 1.0,
    "consistency_weight": 1.0,
}

# The fewest optimiser steps a stage whose epochs are "auto" takes: a small
# data set gives few batches an epoch, and gets more epochs (at most
# MAX_AUTO_EPOCHS); a large one keeps the epochs above, unless MAX_STEPS
# caps them.
MIN_STEPS = {
    "pretrain_epochs": 500,
    "unsupervised_finetune_epochs": 500,
    "head_warmup_epochs": 200,
    "finetune_epochs": 2000,
}
MIN_STEPS_EVERY_ROW_LABELED = {"finetune_epochs": 1000}
MAX_AUTO_EPOCHS = 500
# The most steps of the semi-supervised fine-tune, whose steps cost several
# passes each: on 60,000 rows its 20 epochs would be most of the fit's time
# for little gain (bench_supervised.py's error-against-time curve).
MAX_STEPS = {"finetune_epochs": 3500}

# The terms that a ladder's denoising costs replace.
REPLACED_BY_LADDER = ("reconstruction_weight", "consistency_weight", "adversarial_epsilon")

# The virtual adversarial step, as a share of the rows' median L2 norm.
ADVERSARIAL_SHARE_OF_NORM = 0.1
# Rows whose norms the median is taken over, at most: evenly spaced through X.
_NORM_SAMPLE = 10_000


def median_row_norm(X, weights=None):
    """The median L2 norm of the rows of ``X`` (dense, memory-mapped or CSR), over at most 10,000 of them.

    Rows count as their ``weights`` (a weighted inverted-CDF median, which
    integer weights make the median of the rows repeated).
    """
    step = max(1, X.shape[0] // _NORM_SAMPLE)
    rows = X[::step]
    if sp.issparse(rows):
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64).ravel())
    else:
        norms = np.linalg.norm(np.asarray(rows, dtype=np.float64), axis=1)
    return weighted_percentile(norms, None if weights is None else np.asarray(weights)[::step], 50.0)


def corrupts_inputs(noise, noise_level, dropout, adversarial_epsilon):
    """Whether the training pass sees corrupted inputs: what the consistency term needs to do anything."""
    return (noise is not None and noise_level > 0) or dropout > 0 or adversarial_epsilon > 0


def _epochs(floor, min_steps, rows_per_epoch, batch_size, max_steps=None):
    """At least ``floor`` epochs and ``min_steps`` steps of ``batch_size`` rows; at most ``max_steps`` steps' epochs.

    ``max_steps`` wins over ``floor``: a large data set gets the fewest
    whole epochs that reach it, and never fewer than one.
    """
    if floor == 0:
        return 0
    steps_per_epoch = max(1, math.ceil(rows_per_epoch / batch_size))
    epochs = min(MAX_AUTO_EPOCHS, max(floor, math.ceil(min_steps / steps_per_epoch)))
    if max_steps is not None:
        epochs = min(epochs, max(1, math.ceil(max_steps / steps_per_epoch)))
    return int(epochs)


def resolve_auto(params, X, n_unlabeled, semi_supervised=True, weights=None):
    """The value of every setting of :data:`AUTO_PARAMETERS`: ``params``'s own, or what ``"auto"`` picks.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params(deep=False)``).
    X : array-like or CSR matrix of shape (n_samples, n_features)
        The validated training rows.
    n_unlabeled : int
        How many of them are unlabeled.
    semi_supervised : bool, default=True
        Whether unlabeled rows switch the semi-supervised recipe on; False
        trains the plain network on the labeled rows whatever the rest.
    weights : ndarray of shape (n_samples,), optional
        The rows' ``sample_weight``, which the median row norm weighs by.

    Returns
    -------
    dict
        One entry per name of :data:`AUTO_PARAMETERS`.
    """
    n_rows, batch_size = X.shape[0], params["batch_size"]
    n_labeled = n_rows - n_unlabeled
    if n_unlabeled == 0 or not semi_supervised:
        choices = dict(EVERY_ROW_LABELED)
        choices["finetune_epochs"] = _epochs(
            choices["finetune_epochs"], MIN_STEPS_EVERY_ROW_LABELED["finetune_epochs"], n_labeled, batch_size
        )
    else:
        choices = dict(UNLABELED_ROWS)
        # An epoch of the semi-supervised fine-tune: every unlabeled row, and the labeled ones as often again.
        rows_per_epoch = {
            "pretrain_epochs": n_rows,
            "unsupervised_finetune_epochs": n_rows,
            "head_warmup_epochs": n_labeled,
            "finetune_epochs": n_unlabeled + n_labeled * max(1, round(n_unlabeled / max(1, n_labeled))),
        }
        for name, rows in rows_per_epoch.items():
            choices[name] = _epochs(choices[name], MIN_STEPS[name], rows, batch_size, MAX_STEPS.get(name))
        if params["adversarial_epsilon"] == "auto":
            choices["adversarial_epsilon"] = ADVERSARIAL_SHARE_OF_NORM * median_row_norm(X, weights)
    if params.get("ladder") is not None:
        choices.update(dict.fromkeys(REPLACED_BY_LADDER, 0.0))
    resolved = {name: choices[name] if params[name] == "auto" else params[name] for name in AUTO_PARAMETERS}
    # An "auto" term that the explicit settings leave without effect is off, not an error.
    if params["adversarial_epsilon"] == "auto" and resolved["consistency_weight"] == 0:
        resolved["adversarial_epsilon"] = 0.0
    corrupted = corrupts_inputs(
        resolved["noise"], params["noise_level"], params["dropout"], resolved["adversarial_epsilon"]
    )
    if params["consistency_weight"] == "auto" and not corrupted:
        resolved["consistency_weight"] = 0.0
    return resolved
