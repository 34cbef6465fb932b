"""
=================================================
Pretraining a deep sigmoid network, or not
=================================================

Deep autoencoders with saturating units are hard to train from a random
start: the gradient that reaches the lower layers through many sigmoids is
small, and the network first learns the easy answer, the average image,
for every input. Hinton & Salakhutdinov (2006) showed that greedy
layer-wise pretraining gives the joint training a starting point from which
it goes much further.

This example trains the same four-layer sigmoid autoencoder on the digits
twice: with 20 epochs of pretraining per layer before a fine-tune of 100
epochs, and without pretraining but with a fine-tune twice as long.
"""

# %%
# The two fits
# ------------
#
# Everything but the schedule is the same: layers of 128, 64, 32 and 8
# units, logistic activations, a sigmoid output with the cross-entropy
# loss, Adam, and the same seed. Pretraining is cheap here because each
# phase trains one layer on the cached codes of the layer below, so the
# pretrained model is also the faster of the two.

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoder
from sk_stackae.plotting import ReconstructionDisplay

X, _ = load_digits(return_X_y=True)
X = X / 16
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

architecture = {
    "hidden_layer_sizes": (128, 64, 32, 8),
    "activation": "logistic",
    "output_activation": "sigmoid",
    "loss": "bce",
    "batch_size": 32,
    "random_state": 0,
}
schedules = {
    "pretrained": {"pretrain_epochs": 20, "finetune_epochs": 100},
    "not pretrained": {"pretrain_epochs": 0, "finetune_epochs": 200},
}
models, seconds = {}, {}
for name, schedule in schedules.items():
    started = time.perf_counter()
    models[name] = StackedAutoencoder(**architecture, **schedule).fit(X_train)
    seconds[name] = time.perf_counter() - started

for name, model in models.items():
    reconstructions = model.inverse_transform(model.transform(X_test))
    test_error = np.mean((reconstructions - X_test) ** 2)
    print(f"{name:>15}: test mean squared error {test_error:.4f}, fit in {seconds[name]:.1f} s")

# %%
# The fine-tune losses
# --------------------
#
# The training loss of every fine-tune epoch, ``loss_curve_``. Without
# pretraining, the loss first drops to a plateau, the cross-entropy of
# predicting the average digit for every input, and leaves it only slowly.
# With pretraining the fine-tune starts well below that plateau, and stays
# below the other curve for its whole length, even though it has half the
# epochs.

mean_image = X_train.mean(axis=0).clip(1e-7, 1 - 1e-7)
average_digit_loss = -np.mean(X_train * np.log(mean_image) + (1 - X_train) * np.log(1 - mean_image))

figure, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
for name, model in models.items():
    ax.plot(np.arange(1, model.n_iter_ + 1), model.loss_curve_, label=name)
ax.axhline(average_digit_loss, color="grey", linestyle=":", label="predicting the average digit")
ax.set(
    xlabel="fine-tune epoch", ylabel="training loss (binary cross-entropy)", title="Fine-tuning a deep sigmoid network"
)
ax.legend()
plt.show()

# %%
# The reconstructions
# -------------------
#
# Held-out digits above their reconstructions through the 8-dimensional
# code. The network that was not pretrained has learned coarse shapes,
# and confuses digits that share them; the pretrained one keeps the
# strokes that tell them apart.

figure, axes = plt.subplots(2, 1, figsize=(8, 4.5), layout="constrained")
for ax, (name, model) in zip(axes, models.items(), strict=True):
    ReconstructionDisplay.from_estimator(model, X_test, image_shape=(8, 8), ax=ax, name=name)
plt.show()

# %%
# References
# ----------
#
# Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality
# of data with neural networks. Science, 313(5786), 504-507.
#
# Bengio, Y., Lamblin, P., Popovici, D. and Larochelle, H. (2007). Greedy
# layer-wise training of deep networks. NeurIPS 19.
