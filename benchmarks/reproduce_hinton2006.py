"""Reproduce Hinton & Salakhutdinov (2006): a 784-1000-500-250-30 autoencoder on MNIST.

The paper (Science 313, "Reducing the dimensionality of data with neural
networks") reports the average squared reconstruction error per test image,
summed over the 784 pixels and averaged over the 10000 test images: deep
autoencoder 3.00, logistic PCA 8.01, PCA 13.87. It pretrained with RBMs;
``StackedAutoencoder`` pretrains with greedy autoencoders, then fine-tunes.

The script reads the original IDX gzip files (no download), fits
``StackedAutoencoder`` with the paper's architecture and 30 linear code
units, fits PCA-30 in the same run, and prints the paper's measure for
both, the wall time, and the test accuracy of a ``LogisticRegression``
trained on the 30-d codes against one trained on PCA-30.

The fine-tune runs in stages of falling learning rate (``--stages``), each
continuing the last with ``warm_start=True``; ``--no-pretraining`` gives the
same budget to the fine-tune alone, from the random initialisation: one
pretraining epoch trains every layer and its mirror once, the FLOPs of one
fine-tune epoch, so the first stage gets ``--pretrain-epochs`` more epochs.

Run::

    python benchmarks/reproduce_hinton2006.py --data-dir ../shared/datasets/mnist
    python benchmarks/reproduce_hinton2006.py --data-dir ../shared/datasets/fashion-mnist
"""

import argparse
import time

import numpy as np
from _common import load_mnist_like, machine_description, print_table
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sk_stackae import StackedAutoencoder

PAPER = {"deep autoencoder": 3.00, "logistic PCA": 8.01, "PCA": 13.87}


def squared_error_per_image(reconstruction, X):
    """The paper's measure: squared error summed over pixels, averaged over images."""
    return float(np.mean(np.sum((reconstruction.astype(np.float64) - X) ** 2, axis=1)))


def parse_stages(text):
    """``"60:1e-3,30:3e-4"`` -> ``[(60, 1e-3), (30, 3e-4)]``: epochs at each learning rate."""
    stages = []
    for part in text.split(","):
        epochs, learning_rate = part.split(":")
        stages.append((int(epochs), float(learning_rate)))
    return stages


def fit_autoencoder(X_train, args):
    stages = parse_stages(args.stages)
    if args.no_pretraining:
        stages[0] = (stages[0][0] + args.pretrain_epochs, stages[0][1])
    model = StackedAutoencoder(
        (1000, 500, 250, 30),
        activation=args.activation,
        code_activation="identity",
        output_activation="sigmoid",
        loss=args.loss,
        pretrain_epochs=0 if args.no_pretraining else args.pretrain_epochs,
        finetune_epochs=stages[0][0],
        batch_size=args.batch_size,
        learning_rate_init=stages[0][1],
        precision=args.precision,
        optimizer=args.optimizer,
        alpha=args.alpha,
        random_state=args.random_state,
        verbose=1,
    )
    model.fit(X_train)
    for epochs, learning_rate in stages[1:]:
        model.set_params(warm_start=True, pretrain_epochs=0, finetune_epochs=epochs, learning_rate_init=learning_rate)
        model.fit(X_train)
    return model


def draw_reconstructions(X_test, model, pca, path, ours, pca_error, n_images=12):
    """Test images (top), our reconstructions (middle) and PCA-30's (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = X_test[:n_images]
    rows = {
        "test images": images,
        f"StackedAutoencoder, 30-d codes ({ours:.2f})": model.inverse_transform(model.transform(images)),
        f"PCA, 30 components ({pca_error:.2f})": pca.inverse_transform(pca.transform(images)),
    }
    fig, axes = plt.subplots(3, n_images, figsize=(n_images * 0.8, 3.6), gridspec_kw={"hspace": 0.45, "wspace": 0.05})
    for row, (label, pictures) in enumerate(rows.items()):
        for column in range(n_images):
            ax = axes[row, column]
            ax.imshow(pictures[column].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        # A row label above the row's first image, free to run across the row.
        axes[row, 0].text(0, -4, label, fontsize=9, ha="left", va="bottom")
    fig.text(0.5, 0.01, "squared error per test image, summed over pixels, in brackets", ha="center", fontsize=8)
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the four IDX gzip files")
    parser.add_argument("--activation", default="elu", help="hidden units (default: elu)")
    parser.add_argument("--loss", default="bce", choices=["bce", "mse"])
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--no-pretraining", action="store_true", help="give the fine-tune the whole budget")
    parser.add_argument("--stages", default="100:1e-3,20:3e-4", help="fine-tune epochs:learning rate, comma-separated")
    parser.add_argument("--optimizer", default="adamw", choices=["adam", "adamw", "sgd"])
    parser.add_argument("--alpha", type=float, default=0.1, help="weight decay (default: 0.1 with adamw)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--train-samples", type=int, help="train on the first N images only (quick trials)")
    parser.add_argument("--skip-logistic", action="store_true", help="skip the classifiers on the codes")
    parser.add_argument("--figure", help="draw test images above their reconstructions (ours, PCA) to this file")
    args = parser.parse_args(argv)

    X_train, y_train, X_test, y_test = load_mnist_like(args.data_dir)
    if args.train_samples:
        X_train, y_train = X_train[: args.train_samples], y_train[: args.train_samples]
    print(f"machine: {machine_description()}")
    print(f"data: {args.data_dir}, {len(X_train)} training and {len(X_test)} test images")
    print(f"recipe: {vars(args)}\n")

    started = time.perf_counter()
    model = fit_autoencoder(X_train, args)
    seconds = time.perf_counter() - started
    codes_train, codes_test = model.transform(X_train), model.transform(X_test)
    ours = squared_error_per_image(model.inverse_transform(codes_test), X_test)
    ours_train = squared_error_per_image(model.inverse_transform(codes_train), X_train)

    pca_started = time.perf_counter()
    pca = PCA(n_components=30, random_state=0).fit(X_train)
    pca_seconds = time.perf_counter() - pca_started
    pca_test = pca.transform(X_test)
    pca_error = squared_error_per_image(pca.inverse_transform(pca_test), X_test)

    rows = [
        [
            "StackedAutoencoder 784-1000-500-250-30",
            f"{ours:.2f}",
            f"{ours_train:.2f}",
            f"{PAPER['deep autoencoder']:.2f} (deep autoencoder)",
            f"{seconds:.0f}",
        ],
        ["PCA, 30 components", f"{pca_error:.2f}", "", f"{PAPER['PCA']:.2f}", f"{pca_seconds:.1f}"],
        ["logistic PCA (not run)", "", "", f"{PAPER['logistic PCA']:.2f}", ""],
    ]
    print()
    print_table(
        ["model", "test squared error per image", "train", "paper (MNIST)", "fit seconds"],
        rows,
    )

    if args.figure:
        draw_reconstructions(X_test, model, pca, args.figure, ours, pca_error)

    if not args.skip_logistic:
        accuracies = []
        for name, train, test in (
            ("30-d autoencoder codes", codes_train, codes_test),
            ("PCA-30", pca.transform(X_train), pca_test),
        ):
            scaler = StandardScaler().fit(train)
            classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(train), y_train)
            accuracies.append([name, f"{classifier.score(scaler.transform(test), y_test):.4f}"])
        print()
        print_table(["LogisticRegression on", "test accuracy"], accuracies)


if __name__ == "__main__":
    main()
