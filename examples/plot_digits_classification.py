"""
==============================================
Digits in a pipeline: grid search against PCA
==============================================

A :class:`~sk_stackae.StackedAutoencoder` is a scikit-learn transformer, so it
goes wherever :class:`~sklearn.decomposition.PCA` goes: here, between a
scaler and a classifier in a :class:`~sklearn.pipeline.Pipeline`. One
:class:`~sklearn.model_selection.GridSearchCV` chooses the reducer and its
code size for scikit-learn's 8x8 handwritten digits, by the cross-validated
accuracy of a logistic regression trained on the codes.
"""

# %%
# The pipeline and the grid
# -------------------------
#
# The pixels are scaled to [0, 1], which suits the autoencoder's sigmoid
# output. The ``"reduce"`` step is a placeholder that the grid fills with
# either reducer, as in scikit-learn's own example of comparing reducers;
# each gets the same code sizes. The autoencoder has a hidden layer of 128
# units before its code layer, and a small budget of epochs so that the
# whole search runs in seconds on a CPU.

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_stackae import StackedAutoencoder

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)

pipeline = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("reduce", "passthrough"),
        ("classify", LogisticRegression(max_iter=2000)),
    ]
)
autoencoder = StackedAutoencoder(
    output_activation="sigmoid",
    pretrain_epochs=20,
    finetune_epochs=50,
    batch_size=64,
    random_state=0,
)
code_sizes = [2, 4, 8, 16]
param_grid = [
    {"reduce": [PCA(random_state=0)], "reduce__n_components": code_sizes},
    {"reduce": [autoencoder], "reduce__hidden_layer_sizes": [(128, size) for size in code_sizes]},
]
search = GridSearchCV(pipeline, param_grid, cv=3)
search.fit(X_train, y_train)

# %%
# Accuracy against code size
# --------------------------
#
# ``cv_results_`` holds a row per candidate. The nonlinear codes of the
# autoencoder help most when the code is small, where a linear projection
# has to drop much of what tells the digits apart; at 16 dimensions PCA
# keeps enough, and is far cheaper to fit. The error bars are the standard
# deviation over the three folds.

results = pd.DataFrame(search.cv_results_)
results["reducer"] = results["param_reduce"].map(lambda reducer: type(reducer).__name__)
results["code size"] = code_sizes * 2

figure, (accuracy_ax, time_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for reducer, rows in results.groupby("reducer"):
    accuracy_ax.errorbar(
        rows["code size"], rows["mean_test_score"], yerr=rows["std_test_score"], marker="o", capsize=3, label=reducer
    )
    time_ax.plot(rows["code size"], rows["mean_fit_time"], marker="o", label=reducer)
accuracy_ax.set(xlabel="code size", ylabel="cross-validated accuracy", title="Logistic regression on the codes")
time_ax.set(yscale="log", xlabel="code size", ylabel="seconds", title="Time to fit the pipeline")
for ax in (accuracy_ax, time_ax):
    ax.set_xscale("log", base=2)
    ax.set_xticks(code_sizes, labels=code_sizes)
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.legend()
plt.show()

# %%
# The table behind the figure:

print(
    results.pivot(index="code size", columns="reducer", values="mean_test_score").round(3).to_string(),
)

# %%
# The chosen pipeline
# -------------------
#
# The search refits the best candidate on the whole training set; its
# accuracy on the held-out quarter of the digits:

print(search.best_params_["reduce"])
print(f"test accuracy: {search.score(X_test, y_test):.3f}")

# %%
# Every step before the classifier is a transformer. With
# ``set_output(transform="pandas")`` the reducer gives its codes as a
# DataFrame with a named column per code unit (``pca0``, ... or
# ``stackedautoencoder0``, ..., whichever reducer won).

search.best_estimator_.named_steps["reduce"].set_output(transform="pandas")
search.best_estimator_[:-1].transform(X_test[:5]).round(2)
