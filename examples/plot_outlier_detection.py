"""
=========================================
Novelty detection with ``score_samples``
=========================================

An autoencoder reconstructs well what resembles its training data, and
badly what does not. :meth:`~sk_stackae.StackedAutoencoder.score_samples`
returns minus each sample's reconstruction error, so low scores flag
unusual samples, as ``score_samples`` does for scikit-learn's outlier
detectors.

Here the autoencoder learns nine of the ten digits, and has to tell the
tenth apart in a test set where it is mixed with unseen examples of the
other nine. PCA with the same code size, scored by its reconstruction error
too, is the baseline.
"""

# %%
# One experiment per digit
# ------------------------
#
# For each digit in turn, both models are fitted on the training images of
# the nine other digits and score the test images. The area under the ROC
# curve measures how well low scores pick out the held-out digit: 1 is a
# perfect ranking, 0.5 a random one.
#
# The autoencoder is trained with the squared error (``loss="mse"``, the
# default), so that its scores are squared reconstruction errors, in the
# same units as PCA's. (With ``loss="bce"``, scores are relative entropies,
# which are zero for a perfect reconstruction too.)

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoder
from sk_stackae.plotting import ReconstructionDisplay

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def reconstruction_scores(model, X):
    """Minus the mean squared reconstruction error of each row, like score_samples."""
    return -np.mean((model.inverse_transform(model.transform(X)) - X) ** 2, axis=1)


code_size = 8
auc = {"PCA": [], "StackedAutoencoder": []}
for novel_digit in range(10):
    known = X_train[y_train != novel_digit]
    is_novel = y_test == novel_digit
    autoencoder = StackedAutoencoder(
        (64, code_size),
        output_activation="sigmoid",
        pretrain_epochs=20,
        finetune_epochs=60,
        batch_size=32,
        random_state=0,
    ).fit(known)
    pca = PCA(n_components=code_size, random_state=0).fit(known)
    # A low score means novel, so the novel digit is ranked by minus the score.
    auc["StackedAutoencoder"].append(roc_auc_score(is_novel, -autoencoder.score_samples(X_test)))
    auc["PCA"].append(roc_auc_score(is_novel, -reconstruction_scores(pca, X_test)))

figure, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
width = 0.4
for offset, (name, values) in zip((-width / 2, width / 2), auc.items(), strict=True):
    ax.bar(np.arange(10) + offset, values, width, label=f"{name} (mean {np.mean(values):.3f})")
ax.set(
    xticks=range(10),
    xlabel="held-out digit",
    ylabel="ROC AUC",
    ylim=(0.5, 1.08),
    title=f"Detecting an unseen digit by its reconstruction error, {code_size}-dimensional codes",
)
ax.legend(loc="upper center", ncols=2)
plt.show()

# %%
# Both models find most held-out digits well, and neither finds them all:
# a 1 is little more than a stroke, which the other digits contain too, so
# both models reconstruct it well. In this run the autoencoder ranks the
# novel digit higher than PCA with the same code size for most digits and
# on average (the means are in the legend).
#
# Looking at the least normal images
# ----------------------------------
#
# The last model above has never seen a 9. Sorting the test images by
# score, the lowest-scoring ones are the candidates for a closer look:
# here they are above their reconstructions, with their labels. Most are
# nines, reconstructed as digits the model knows (threes, fives, eights);
# the others are unusual drawings of known digits.

scores = autoencoder.score_samples(X_test)
least_normal = np.argsort(scores)[:12]
display = ReconstructionDisplay.from_estimator(
    autoencoder,
    X_test[least_normal],
    image_shape=(8, 8),
    n_images=12,
    name="The 12 lowest scores of a model trained without nines",
)
display.ax_.set_xticks(
    [image.get_extent()[0] + 4 for image in display.images_[0]],
    labels=[f"{label}" for label in y_test[least_normal]],
)
display.ax_.set_xlabel("true label")
plt.show()

# %%
# The scores themselves: the nines (novel) against the other digits
# (known), in the test set.

figure, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
bins = np.histogram_bin_edges(scores, bins=40)
ax.hist(scores[y_test != 9], bins=bins, alpha=0.6, label="known digits")
ax.hist(scores[y_test == 9], bins=bins, alpha=0.6, label="nines (never seen)")
ax.set(xlabel="score_samples (minus the reconstruction error)", ylabel="test images")
ax.legend()
plt.show()
