"""What each training option does, measured on digits the way the tests check it.

The tests in ``tests/test_options.py`` assert that every option has its
effect; this script runs the same experiments and prints the figures, so
the size of each effect can be read (and compared across versions).

Run ``python benchmarks/option_effects.py`` (about a minute).
"""

import warnings

import numpy as np
from _common import machine_description, print_table
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sk_stackae import StackedAutoencoder


def n_parameters(model):
    return sum(p.numel() for p in model.network_.parameters())


def encoder_weight_norm(model):
    return sum(float(layer.weight.detach().norm()) ** 2 for layer in model.network_.encoder)


def fitted(X, hidden_layer_sizes, **params):
    """A StackedAutoencoder fitted on ``X`` as the tests fit theirs: seed 0, batches of 64 unless given."""
    return StackedAutoencoder(hidden_layer_sizes, **{"batch_size": 64, "random_state": 0, **params}).fit(X)


def main():
    X, _ = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
    rows = []

    small = X[:120, :12]
    untied, tied = (
        fitted(small, (8, 4), tied_weights=tied, pretrain_epochs=1, finetune_epochs=1, batch_size=256)
        for tied in (False, True)
    )
    rows.append(
        ["tied_weights=True", "trainable parameters, 12-8-4 stack", f"{n_parameters(untied)} -> {n_parameters(tied)}"]
    )

    rng = np.random.RandomState(1)
    for noise, level in (("masking", 0.4), ("gaussian", 0.3)):
        if noise == "masking":
            corrupted = X_test * (rng.uniform(size=X_test.shape) >= level)
        else:
            corrupted = X_test + level * rng.normal(size=X_test.shape)
        errors = []
        for params in ({}, {"noise": noise, "noise_level": level}):
            model = fitted(
                X_train, (64, 16), output_activation="sigmoid", pretrain_epochs=10, finetune_epochs=40, **params
            )
            errors.append(np.mean((model.inverse_transform(model.transform(corrupted)) - X_test) ** 2))
        rows.append(
            [
                f'noise="{noise}", noise_level={level}',
                "MSE to clean test digits from corrupted ones",
                f"{errors[0]:.4f} -> {errors[1]:.4f} ({errors[1] / errors[0]:.2f}x)",
            ]
        )

    blobs_rng = np.random.RandomState(0)
    blobs = blobs_rng.normal(size=(4, 12))[blobs_rng.randint(4, size=120)] + 0.1 * blobs_rng.normal(size=(120, 12))
    gaps = []
    for dropout in (0.0, 0.5):
        model = fitted(blobs, (32, 4), dropout=dropout, pretrain_epochs=5, finetune_epochs=30, batch_size=32)
        gaps.append(model.loss_curve_[-1] / -model.score(blobs))
    rows.append(["dropout=0.5", "training loss / loss with all units on", f"{gaps[0]:.2f} -> {gaps[1]:.2f}"])

    means = [
        fitted(X, (32,), code_activation="sigmoid", sparsity=sparsity, pretrain_epochs=30, finetune_epochs=0)
        .transform(X)
        .mean()
        for sparsity in (0.0, 1.0)
    ]
    rows.append(["sparsity=1.0 (KL, target 0.05)", "mean sigmoid code", f"{means[0]:.3f} -> {means[1]:.3f}"])

    activity = [
        np.abs(
            fitted(
                X, (32, 8), code_activation="relu", sparsity=sparsity, pretrain_epochs=10, finetune_epochs=10
            ).transform(X)
        ).mean()
        for sparsity in (0.0, 0.05)
    ]
    rows.append(["sparsity=0.05 (L1, relu codes)", "mean |code|", f"{activity[0]:.3f} -> {activity[1]:.3f}"])

    for optimizer in ("adam", "adamw", "sgd"):
        learning_rate = 0.05 if optimizer == "sgd" else 1e-3
        curve = fitted(
            X, (32, 8), optimizer=optimizer, learning_rate_init=learning_rate, pretrain_epochs=0, finetune_epochs=10
        ).loss_curve_
        rows.append([f'optimizer="{optimizer}"', "fine-tune loss, epoch 1 -> 10", f"{curve[0]:.4f} -> {curve[-1]:.4f}"])

    final = [
        fitted(
            X,
            (32, 8),
            optimizer="sgd",
            momentum=momentum,
            learning_rate_init=0.01,
            pretrain_epochs=0,
            finetune_epochs=10,
        ).loss_curve_[-1]
        for momentum in (0.0, 0.9)
    ]
    rows.append(["momentum 0 -> 0.9 (sgd)", "loss after 10 epochs", f"{final[0]:.4f} -> {final[1]:.4f}"])

    for optimizer in ("adam", "adamw", "sgd"):
        learning_rate = 0.05 if optimizer == "sgd" else 1e-2
        norms = [
            encoder_weight_norm(
                fitted(
                    X,
                    (32, 8),
                    optimizer=optimizer,
                    alpha=alpha,
                    learning_rate_init=learning_rate,
                    pretrain_epochs=0,
                    finetune_epochs=10,
                )
            )
            for alpha in (0.0, 5.0)
        ]
        rows.append(
            [f"alpha 0 -> 5 ({optimizer})", "squared norm of the encoder weights", f"{norms[0]:.1f} -> {norms[1]:.1f}"]
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fitted(
            X, (16, 4), early_stopping=True, pretrain_epochs=200, finetune_epochs=200, n_iter_no_change=2, tol=1e-3
        )
    epochs = [len(curve) for curve in model.pretrain_loss_curves_] + [model.n_iter_]
    rows.append(["early_stopping=True", "epochs run of a 200-epoch budget (phases, fine-tune)", str(epochs)])

    model = fitted(X, (32, 8), pretrain_epochs=3, finetune_epochs=5, warm_start=True, batch_size=256)
    first = list(model.loss_curve_)
    model.fit(X)
    rows.append(
        [
            "warm_start=True",
            "fine-tune loss: 1st fit's last epoch, 2nd fit's first",
            f"{first[-1]:.4f}, {model.loss_curve_[5]:.4f} (curve continues: {len(model.loss_curve_)} epochs)",
        ]
    )

    model = StackedAutoencoder((32, 8), random_state=0)
    for _ in range(10):
        model.partial_fit(X)
    steps = {int(state["step"]) for state in model._optimizer.state.values()}
    rows.append(
        [
            "partial_fit x 10",
            "loss of call 1 -> call 10; Adam steps kept",
            f"{model.loss_curve_[0]:.4f} -> {model.loss_curve_[-1]:.4f}; {steps.pop()}",
        ]
    )

    X32 = X.astype(np.float32)
    float32, bfloat16 = (
        fitted(X32, (32, 8), precision=precision, pretrain_epochs=2, finetune_epochs=5, batch_size=256)
        for precision in ("float32", "bfloat16")
    )
    rows.append(
        [
            'precision="bfloat16"',
            "score, float32 vs bfloat16 training",
            f"{float32.score(X32):.4f} vs {bfloat16.score(X32):.4f}",
        ]
    )

    print(f"machine: {machine_description()}\n")
    print_table(["option", "measure", "off -> on"], rows)


if __name__ == "__main__":
    main()
