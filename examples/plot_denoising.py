"""
======================================
Denoising with a denoising autoencoder
======================================

A denoising autoencoder (Vincent et al., 2010) is trained to reconstruct
each clean input from a corrupted copy of it. With ``noise="gaussian"``,
:class:`~sk_stackae.StackedAutoencoder` adds Gaussian noise of standard
deviation ``noise_level`` to the input of every phase while it trains, and
never at inference: ``transform`` then ``inverse_transform`` of a noisy
image gives the model's estimate of the clean one.

This example corrupts held-out digits with the same kind of noise and
compares three ways of cleaning them: PCA (projecting onto the main
components drops much of the noise), an autoencoder trained on clean
images, and a denoising autoencoder.
"""

# %%
# Clean and noisy digits
# ----------------------

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoder
from sk_stackae.plotting import ReconstructionDisplay

X, _ = load_digits(return_X_y=True)
X = X / 16
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

noise_level = 0.3
rng = np.random.default_rng(0)
X_test_noisy = X_test + noise_level * rng.standard_normal(X_test.shape)

# %%
# Three models with 16-dimensional codes
# --------------------------------------
#
# The two autoencoders differ only in ``noise``: the denoising one sees a
# freshly corrupted copy of every batch in every epoch, so it cannot learn
# the noise and has to learn what digits look like.

settings = {
    "output_activation": "sigmoid",
    "pretrain_epochs": 20,
    "finetune_epochs": 100,
    "batch_size": 64,
    "random_state": 0,
}
models = {
    "PCA": PCA(n_components=16, random_state=0),
    "autoencoder": StackedAutoencoder((128, 16), **settings),
    "denoising autoencoder": StackedAutoencoder((128, 16), noise="gaussian", noise_level=noise_level, **settings),
}
for model in models.values():
    model.fit(X_train)

# %%
# How far each output is from the clean digit
# -------------------------------------------
#
# The mean squared error between each model's output for the noisy images
# and the clean images, next to that of the noisy images themselves.


def denoise(model, X):
    return model.inverse_transform(model.transform(X))


errors = {"noisy input": np.mean((X_test_noisy - X_test) ** 2)}
for name, model in models.items():
    errors[name] = np.mean((denoise(model, X_test_noisy) - X_test) ** 2)

figure, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.barh(list(errors), list(errors.values()), color=["grey", "C0", "C1", "C2"])
ax.invert_yaxis()
ax.set(xlabel="mean squared error to the clean digits", title="Cleaning digits with Gaussian noise (sd 0.3)")
for position, value in enumerate(errors.values()):
    ax.text(value, position, f" {value:.4f}", va="center")
ax.set_xlim(0, max(errors.values()) * 1.2)
plt.show()

# %%
# All three remove much of the noise by squeezing the image through 16
# numbers. The autoencoder trained on clean digits does worse than PCA:
# noisy images lie outside everything it saw, and its nonlinear decoder
# turns some of them into the wrong strokes. The denoising autoencoder,
# trained for exactly this corruption, comes closest to the clean digits.
#
# What they give back
# -------------------
#
# Each panel shows the clean test digits above the model's output for
# their *noisy* versions: the upper row is what the model should give. The
# first panel shows the noisy inputs themselves, on the same grey scale as
# the clean digits.

figure, axes = plt.subplots(4, 1, figsize=(8, 8.5), layout="constrained")
noisy_display = ReconstructionDisplay(
    originals=X_test[:10], reconstructions=X_test_noisy[:10], image_shape=(8, 8)
).plot(ax=axes[0], name="The noisy inputs")
noisy_display.ax_.set_yticks(noisy_display.ax_.get_yticks(), labels=["clean", "noisy"])
for ax, (name, model) in zip(axes[1:], models.items(), strict=True):
    ReconstructionDisplay(
        originals=X_test[:10], reconstructions=denoise(model, X_test_noisy[:10]), image_shape=(8, 8)
    ).plot(ax=ax, name=name)
    ax.set_yticks(ax.get_yticks(), labels=["clean", "denoised"])
plt.show()

# %%
# References
# ----------
#
# Vincent, P., Larochelle, H., Lajoie, I., Bengio, Y. and Manzagol, P.-A.
# (2010). Stacked denoising autoencoders: learning useful representations
# in a deep network with a local denoising criterion. JMLR 11, 3371-3408.
