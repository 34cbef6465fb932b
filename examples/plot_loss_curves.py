"""
==========================
Loss curves of every phase
==========================

:meth:`~sk_stackae.StackedAutoencoder.fit` trains in phases: one greedy
pretraining phase per layer, then the joint fine-tune. Each records its
loss per epoch, in ``pretrain_loss_curves_`` and ``loss_curve_``, and, with
early stopping, its validation score per epoch.
:class:`~sk_stackae.plotting.LossCurveDisplay` draws them all on one axes, in
the order they ran.
"""

# %%
# A three-layer stack with early stopping
# ---------------------------------------
#
# With ``early_stopping=True`` every phase holds out the same
# ``validation_fraction`` of the rows, stops once its validation score has
# not improved by ``tol`` for ``n_iter_no_change`` epochs, and keeps the
# weights of its best epoch. The epoch budgets are upper bounds here.

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from sk_stackae import StackedAutoencoder
from sk_stackae.plotting import LossCurveDisplay

X, _ = load_digits(return_X_y=True)
X = X / 16
autoencoder = StackedAutoencoder(
    (128, 32, 8),
    output_activation="sigmoid",
    loss="bce",
    pretrain_epochs=100,
    finetune_epochs=200,
    batch_size=64,
    early_stopping=True,
    n_iter_no_change=5,
    tol=1e-3,
    random_state=0,
).fit(X)

display = LossCurveDisplay.from_estimator(autoencoder)
display.ax_.set_title("Three greedy phases, then the fine-tune")
plt.show()

# %%
# Reading the figure:
#
# - The phases do not measure the same thing. Phase 1 and the fine-tune
#   reconstruct the pixels, with the binary cross-entropy (``loss="bce"``);
#   phases 2 and 3 reconstruct the codes of the layer below with the squared
#   error, on the scale of those codes. Hence the jumps between phases, and
#   the logarithmic axis.
# - Phase 1 reconstructs the pixels through 128 units; the fine-tune
#   reconstructs them through the whole stack, down to the 8-dimensional
#   code and back, a harder task. So the fine-tune starts above where
#   phase 1 ended, and falls as all the layers adapt to each other.
# - The dashed lines are the validation losses (minus the validation
#   scores). Each phase stopped once its validation score had not improved
#   by ``tol`` for ``n_iter_no_change`` epochs, and kept the weights of its
#   best epoch.

for layer, curve in enumerate(autoencoder.pretrain_loss_curves_, start=1):
    print(f"pretraining phase {layer}: {len(curve)} epochs")
print(f"fine-tune: {autoencoder.n_iter_} epochs, best validation score {autoencoder.best_validation_score_:.4f}")

# %%
# Comparing settings side by side
# -------------------------------
#
# Like scikit-learn's Displays, ``from_estimator`` draws on the axes it is
# given, so curves of several fits can share a figure. Here, the same stack
# trained with three learning rates, for a fixed budget of epochs. With the
# smallest step every phase is still descending when its epochs run out;
# the default, ``1e-3``, and ``1e-2`` both settle within the budget.
#
# Compare the fine-tune curves between fits: they all measure the error on
# the pixels. A deeper pretraining phase measures its error on the scale of
# the codes below it, which differs from fit to fit, so a lower curve there
# is not a better model.

learning_rates = [1e-4, 1e-3, 1e-2]
figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True, layout="constrained")
for ax, learning_rate in zip(axes, learning_rates, strict=True):
    model = StackedAutoencoder(
        (128, 32, 8),
        output_activation="sigmoid",
        loss="bce",
        pretrain_epochs=15,
        finetune_epochs=30,
        batch_size=64,
        learning_rate_init=learning_rate,
        random_state=0,
    ).fit(X)
    LossCurveDisplay.from_estimator(model, ax=ax)
    ax.set_title(f"learning_rate_init={learning_rate:g}")
for ax in axes[1:]:
    ax.set_ylabel("")
    ax.get_legend().remove()
plt.show()
