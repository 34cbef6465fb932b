"""
==========================================================
Novel digits, and the pixels that give them away
==========================================================

:class:`~sk_stackae.StackedAutoencoderOutlierDetector` follows
scikit-learn's outlier-detector API: ``predict`` says +1 (inlier) or -1
(outlier), ``decision_function`` is negative for outliers, and
``score_samples`` is minus the outlier score (the larger of two robust
z-scores: the reconstruction error, and the distance of the row's code from
the typical codes). Its
:meth:`~sk_stackae.StackedAutoencoderOutlierDetector.feature_errors` goes
one step further and says *where* a row is abnormal: the reconstruction
error of each of its features.

Here the detector learns the digits 0 to 4 only (novelty detection), then
meets a test set of all ten digits. It has to flag the fives to nines, and
its feature errors show which pixels it could not explain.
"""

# %%
# Train on 0-4, test on everything
# --------------------------------
#
# The pixels of the digits all share one unit (ink, from 0 to 16, here
# scaled to [0, 1]), so the detector's own column standardisation is
# turned off: standardising would divide the border pixels, which are
# almost always blank, by their tiny standard deviations and make a stray
# dot there count as much as a missing stroke. Every other setting is the
# default: ``hidden_layer_sizes="auto"`` gives a 64-64-8 encoder (a code
# of sqrt(64) = 8 units), and ``contamination="auto"`` flags the rows more
# than two robust standard deviations above the typical training row.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoderOutlierDetector

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
known = y_train < 5

detector = StackedAutoencoderOutlierDetector(standardize=False, random_state=0).fit(X_train[known])
is_novel = y_test >= 5
flagged = detector.predict(X_test) == -1

print(f"encoder widths: {detector.network_.widths}")
print(f"ROC AUC of the novel digits: {roc_auc_score(is_novel, -detector.score_samples(X_test)):.3f}")
print(f"flagged: {flagged[is_novel].mean():.0%} of the novel test digits, {flagged[~is_novel].mean():.0%} of the known")

# %%
# The decision function splits the test images at 0: below it, outliers.
# The known digits sit mostly above the threshold, as they did in training
# (about one in seven falls below: ``contamination="auto"`` is a screening
# threshold, and these images were not trained on); the novel ones spread
# far below it, though not all of them: a novel digit drawn much like a
# known one reconstructs well.

decision = detector.decision_function(X_test)
figure, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
bins = np.histogram_bin_edges(decision, bins=50)
ax.hist(decision[~is_novel], bins=bins, alpha=0.6, label="digits 0-4 (known)")
ax.hist(decision[is_novel], bins=bins, alpha=0.6, label="digits 5-9 (novel)")
ax.axvline(0, color="black", linestyle="--", label="threshold (offset_)")
ax.set(xlabel="decision_function (negative: outlier)", ylabel="test images")
ax.legend()
plt.show()

# %%
# Which digits are flagged
# ------------------------
#
# The share of each digit's test images that ``predict`` flags. Eights,
# whose strokes threes and zeros share, escape most often.

shares = [flagged[y_test == digit].mean() for digit in range(10)]
figure, ax = plt.subplots(figsize=(7, 3), layout="constrained")
ax.bar(range(10), shares, color=["tab:blue"] * 5 + ["tab:orange"] * 5)
ax.set(xticks=range(10), xlabel="digit (0-4 known, 5-9 novel)", ylabel="flagged as outliers", ylim=(0, 1))
plt.show()

# %%
# Which pixels
# ------------
#
# For the most abnormal test image of each novel digit, its pixels (top)
# and the reconstruction error of each pixel, from ``feature_errors``
# (bottom, darker is worse). The errors sit on the strokes that no digit
# from 0 to 4 has in that place: the top bar of a five, a seven or a nine,
# the closed lower loop of a six.

errors = detector.feature_errors(X_test)
scores = detector.score_samples(X_test)
figure, axes = plt.subplots(2, 5, figsize=(8, 3.6), layout="constrained")
for column, digit in enumerate(range(5, 10)):
    candidates = np.flatnonzero(y_test == digit)
    worst = candidates[np.argmin(scores[candidates])]
    axes[0, column].imshow(X_test[worst].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[0, column].set_title(f"a {digit}")
    axes[1, column].imshow(errors[worst].reshape(8, 8), cmap="Reds", vmin=0)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
axes[0, 0].set_ylabel("image")
axes[1, 0].set_ylabel("feature_errors")
plt.show()

# %%
# Averaged over every test image of a digit, the feature errors draw what
# is new about that digit to a model that knows 0-4: the top bar of the
# fives, the lower loop of the sixes, the corner and stem of the sevens.
# The known digits (top row) leave little error anywhere.

figure, axes = plt.subplots(2, 5, figsize=(8, 3.6), layout="constrained")
mean_errors = np.array([errors[y_test == digit].mean(axis=0) for digit in range(10)])
for digit, ax in enumerate(axes.flat):
    ax.imshow(mean_errors[digit].reshape(8, 8), cmap="Reds", vmin=0, vmax=mean_errors.max())
    ax.set(xticks=[], yticks=[], title=f"{digit}")
figure.suptitle("Mean feature error of each digit's test images")
plt.show()
