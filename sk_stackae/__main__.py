"""Demo: what sk-stackae is for, on scikit-learn's digits.

Run with ``python -m sk_stackae``. Two tables:

1. StackedAutoencoder against PCA of the same code size, both in the same
   pipeline, ``MinMaxScaler -> reducer -> LogisticRegression``: the test
   accuracy of the classifier on the codes, the reconstruction error of the
   held-out images (mean squared error in the scaled [0, 1] pixel space) and
   the time to fit the pipeline.
2. Few labels: StackedAutoencoderClassifier at its defaults (with
   ``unlabeled_label=-1``) on every training image, of which only a few keep
   their label (the others are -1), against what a scikit-learn user would
   reach for: LabelSpreading on every image, and MLPClassifier and PCA +
   LogisticRegression on the labeled images alone.
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.semi_supervised import LabelSpreading

from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier


def reconstruction_mse(pipeline, X):
    """Mean squared error of the reducer's reconstruction, in scaled units."""
    scaled = pipeline[0].transform(X)
    reducer = pipeline[1]
    reconstruction = reducer.inverse_transform(reducer.transform(scaled))
    return float(np.mean((reconstruction - scaled) ** 2))


def compare(code_size, random_state):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)
    reducers = {
        "StackedAutoencoder": StackedAutoencoder(
            hidden_layer_sizes=(128, code_size),
            output_activation="sigmoid",
            pretrain_epochs=30,
            finetune_epochs=150,
            batch_size=64,
            random_state=random_state,
        ),
        "PCA": PCA(n_components=code_size, random_state=random_state),
    }
    rows = []
    for name, reducer in reducers.items():
        pipeline = make_pipeline(MinMaxScaler(), reducer, LogisticRegression(max_iter=2000))
        started = time.perf_counter()
        pipeline.fit(X_train, y_train)
        seconds = time.perf_counter() - started
        rows.append((name, pipeline.score(X_test, y_test), reconstruction_mse(pipeline, X_test), seconds))
    return rows


def few_labels(n_labels_list, random_state):
    """Test accuracy with ``n`` labeled training images, for each ``n``: ``(n, {method: (accuracy, seconds)})``."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)
    order = np.random.RandomState(random_state).permutation(len(y_train))
    methods = {
        # The defaults: with unlabeled rows, "auto" turns on pretraining and the semi-supervised terms.
        "StackedAutoencoderClassifier": lambda: StackedAutoencoderClassifier(
            unlabeled_label=-1, random_state=random_state
        ),
        "LabelSpreading(kNN)": lambda: LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100),
        "MLPClassifier": lambda: MLPClassifier(max_iter=500, random_state=random_state),
        "PCA-16 + LogisticRegression": lambda: make_pipeline(
            PCA(16, random_state=random_state), LogisticRegression(max_iter=2000)
        ),
    }
    semi_supervised = ("StackedAutoencoderClassifier", "LabelSpreading(kNN)")
    results = []
    for n_labels in n_labels_list:
        y_few = np.full(len(y_train), -1)
        y_few[order[:n_labels]] = y_train[order[:n_labels]]
        labeled = y_few >= 0
        scores = {}
        for name, make in methods.items():
            started = time.perf_counter()
            if name in semi_supervised:
                model = make().fit(X_train, y_few)
            else:
                model = make().fit(X_train[labeled], y_few[labeled])
            scores[name] = (model.score(X_test, y_test), time.perf_counter() - started)
        results.append((n_labels, scores))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-size", type=int, default=16, help="width of the codes (default: 16)")
    parser.add_argument("--random-state", type=int, default=0, help="seed of the split and the models")
    parser.add_argument(
        "--labels", type=int, nargs="+", default=[30, 300], help="labeled training images (default: 30 300)"
    )
    args = parser.parse_args(argv)

    print(f"digits: 1797 images of 8x8 pixels; codes of {args.code_size} dimensions; 25% held out")
    rows = compare(args.code_size, args.random_state)
    header = f"{'reducer':<20}{'accuracy':>10}{'recon. MSE':>12}{'fit time':>10}"
    print(header)
    print("-" * len(header))
    for name, accuracy, mse, seconds in rows:
        print(f"{name:<20}{accuracy:>10.3f}{mse:>12.4f}{seconds:>9.2f}s")

    print("\nfew labels: every training image is given, but only n keep their label (the rest are -1)")
    header = f"{'labels':<8}{'method':<30}{'accuracy':>10}{'fit time':>10}"
    print(header)
    print("-" * len(header))
    for n_labels, scores in few_labels(args.labels, args.random_state):
        for name, (accuracy, seconds) in scores.items():
            print(f"{n_labels:<8}{name:<30}{accuracy:>10.3f}{seconds:>9.2f}s")


if __name__ == "__main__":
    main()
