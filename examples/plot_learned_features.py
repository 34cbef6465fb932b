"""
================
Learned features
================

What does a unit of an autoencoder respond to?
:class:`~sk_stackae.plotting.FeatureDisplay` draws one input-space pattern
per unit, as an image: for the first hidden layer, the unit's weights (its
linear filter); for deeper layers, either the product of the weights below
it or the input that maximises its activation through every nonlinearity.

The first part looks at handwritten digits, the second at small patches of
two photographs, where the first layer learns localised edge and blob
detectors.
"""

# %%
# Digits: the first layer
# -----------------------
#
# A two-layer autoencoder, 64 units then a 16-dimensional code, learns the
# 8x8 digits. The pixels at the border of the digits are blank in almost
# every image, so the weights that read them get almost no gradient and
# would keep their random initial values. A small L2 penalty, ``alpha``,
# pulls those weights to zero, so that the pictures show what the units
# learned rather than how they started.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.decomposition import PCA
from sklearn.feature_extraction.image import extract_patches_2d

from sk_stackae import StackedAutoencoder
from sk_stackae.plotting import FeatureDisplay

X, _ = load_digits(return_X_y=True)
X = X / 16
autoencoder = StackedAutoencoder(
    (64, 16),
    output_activation="sigmoid",
    loss="bce",
    alpha=0.1,
    pretrain_epochs=30,
    finetune_epochs=60,
    batch_size=64,
    random_state=0,
).fit(X)

# %%
# Each tile is a unit's weight vector, red where a dark pixel raises the
# unit's activation and blue where it lowers it, each on a scale of its
# own. The units respond to pieces of strokes: arcs, bars and the gaps
# between them. PCA's components, on the right for comparison, are global
# patterns ordered by variance, each orthogonal to the others.

pca = PCA(n_components=16, random_state=0).fit(X)
figure, (left, right) = plt.subplots(1, 2, figsize=(10, 5.2), layout="constrained")
FeatureDisplay.from_estimator(autoencoder, image_shape=(8, 8), ax=left)
FeatureDisplay(features=pca.components_, image_shape=(8, 8), title="PCA: first 16 components").plot(ax=right)
plt.show()

# %%
# Digits: the code layer
# ----------------------
#
# A code unit sees the image through the first layer. Multiplying the
# weights, ``W2 @ W1``, gives its response with the nonlinearity in between
# left out: a quick, linear summary. ``method="maximize"`` instead searches,
# by gradient ascent, for the image of the data's typical norm that
# activates the unit most, through the ReLU units of the first layer
# (Erhan et al., 2009); it starts from the digit that activates the unit
# most.
#
# Here the two pictures nearly coincide. That is a finding, not a
# coincidence: around its best inputs, most first-layer units of this
# network are active, so the network is close to linear there, and the
# product of the weights is a faithful summary. In networks with saturating
# or sparser units the two can differ, and the maximising inputs are the
# ones to trust.

figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4.4), layout="constrained")
FeatureDisplay.from_estimator(autoencoder, image_shape=(8, 8), layer=2, method="weights", ax=left)
FeatureDisplay.from_estimator(autoencoder, X, image_shape=(8, 8), layer=2, method="maximize", ax=right)
plt.show()

# %%
# Natural image patches
# ---------------------
#
# scikit-learn ships two photographs. Ten thousand 10x10 grey-level patches
# from each, every patch centred and scaled to unit variance, make a data
# set in which the first layer of a denoising autoencoder (``noise``, here
# masking half the pixels, with tied weights) learns oriented filters: edges
# and bars at several positions and angles, much like the receptive fields
# of simple cells in the visual cortex.

rng = np.random.RandomState(0)
patches = np.concatenate(
    [
        extract_patches_2d(image.mean(axis=2) / 255, (10, 10), max_patches=10_000, random_state=rng)
        for image in load_sample_images().images
    ]
).reshape(-1, 100)
patches -= patches.mean(axis=1, keepdims=True)
patches /= patches.std(axis=1, keepdims=True) + 0.1  # + 0.1: flat patches stay flat

patch_autoencoder = StackedAutoencoder(
    (49, 16),
    tied_weights=True,
    noise="masking",
    noise_level=0.5,
    alpha=0.1,
    pretrain_epochs=10,
    finetune_epochs=10,
    batch_size=128,
    random_state=0,
).fit(patches)
display = FeatureDisplay.from_estimator(patch_autoencoder, image_shape=(10, 10))
display.ax_.set_title("Layer 1 of a denoising autoencoder on photo patches")
plt.show()

# %%
# References
# ----------
#
# Erhan, D., Bengio, Y., Courville, A. and Vincent, P. (2009). Visualizing
# higher-layer features of a deep network. Technical report 1341,
# University of Montreal.
#
# Vincent, P., Larochelle, H., Lajoie, I., Bengio, Y. and Manzagol, P.-A.
# (2010). Stacked denoising autoencoders. JMLR 11, 3371-3408.
