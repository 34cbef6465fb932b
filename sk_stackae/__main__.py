"""Demo: StackedAutoencoder against PCA of the same code size, on scikit-learn's digits.

Run with ``python -m sk_stackae``. Both reducers sit in the same pipeline,
``MinMaxScaler -> reducer -> LogisticRegression``; the table gives the test
accuracy of the classifier on the codes, the reconstruction error of the
held-out images (mean squared error in the scaled [0, 1] pixel space) and the
time to fit the pipeline.
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_stackae import StackedAutoencoder


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-size", type=int, default=16, help="width of the codes (default: 16)")
    parser.add_argument("--random-state", type=int, default=0, help="seed of the split and the models")
    args = parser.parse_args(argv)

    print(f"digits: 1797 images of 8x8 pixels; codes of {args.code_size} dimensions; 25% held out")
    rows = compare(args.code_size, args.random_state)
    header = f"{'reducer':<20}{'accuracy':>10}{'recon. MSE':>12}{'fit time':>10}"
    print(header)
    print("-" * len(header))
    for name, accuracy, mse, seconds in rows:
        print(f"{name:<20}{accuracy:>10.3f}{mse:>12.4f}{seconds:>9.2f}s")


if __name__ == "__main__":
    main()
