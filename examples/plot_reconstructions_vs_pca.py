"""
==============================================
Reconstructions against PCA at equal code size
==============================================

PCA is the best *linear* code of a given size: no projection onto ``k``
dimensions and back reconstructs the data with a smaller mean squared
error. A :class:`~sk_stackae.StackedAutoencoder` is not limited to linear
maps. This example compares the two on held-out digits, at the same code
sizes, with :class:`~sk_stackae.plotting.ReconstructionDisplay` to look at
the reconstructions.
"""

# %%
# Fitting both at several code sizes
# ----------------------------------
#
# The pixels are scaled to [0, 1] and the autoencoder ends in a sigmoid, so
# that its reconstructions stay in the pixels' range. Both models are
# trained on three quarters of the digits and measured on the rest, by the
# mean squared error over pixels, the quantity PCA minimises.

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


def test_error(model):
    """Mean squared error of the test images' reconstructions."""
    reconstructions = model.inverse_transform(model.transform(X_test))
    return np.mean((reconstructions - X_test) ** 2)


code_sizes = [2, 4, 8, 16, 32]
errors = {"PCA": [], "StackedAutoencoder": []}
models = {}
for size in code_sizes:
    pca = PCA(n_components=size, random_state=0).fit(X_train)
    autoencoder = StackedAutoencoder(
        (128, size),
        output_activation="sigmoid",
        pretrain_epochs=20,
        finetune_epochs=100,
        batch_size=64,
        random_state=0,
    ).fit(X_train)
    errors["PCA"].append(test_error(pca))
    errors["StackedAutoencoder"].append(test_error(autoencoder))
    models[size] = {"PCA": pca, "StackedAutoencoder": autoencoder}

# %%
# The error against the code size
# -------------------------------
#
# With few numbers per image, where a linear projection has to throw most
# of the image away, the autoencoder's nonlinear code reconstructs the
# held-out digits markedly better. As the code grows PCA keeps more and more
# of the variance, and by 32 dimensions, half the number of pixels, the two
# meet.

figure, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for name, values in errors.items():
    ax.plot(code_sizes, values, marker="o", label=name)
ax.set_xscale("log", base=2)
ax.set(
    yscale="log",
    xlabel="code size",
    ylabel="test mean squared error",
    title="Reconstruction error of held-out digits",
)
ax.set_xticks(code_sizes, labels=code_sizes)
ax.xaxis.set_minor_locator(plt.NullLocator())
ax.legend()
plt.show()

for size, pca_error, autoencoder_error in zip(code_sizes, errors["PCA"], errors["StackedAutoencoder"], strict=True):
    print(f"code size {size:>2}: PCA {pca_error:.4f}, StackedAutoencoder {autoencoder_error:.4f}")

# %%
# What the reconstructions look like
# ----------------------------------
#
# At eight numbers per image, the same ten test digits above their
# reconstructions by each model. ``ReconstructionDisplay.from_estimator``
# takes any fitted transformer with an ``inverse_transform``, PCA included,
# and draws on the axes it is given.

figure, axes = plt.subplots(2, 1, figsize=(8, 4.5), layout="constrained")
for ax, (name, model) in zip(axes, models[8].items(), strict=True):
    ReconstructionDisplay.from_estimator(model, X_test, image_shape=(8, 8), ax=ax, name=f"{name}, 8-dimensional code")
plt.show()
