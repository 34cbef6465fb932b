"""Inference throughput (transform, score_samples) against training throughput, same model.

Training throughput is the rows per second of a fine-tune epoch; inference
runs without autograd, in large batches. The FLOP column says how much work
a row costs each way, so the ratios can be read against what the arithmetic
allows: a forward pass through the encoder is about a fifth of a training
step's work, through the whole network about a third.

Run ``python benchmarks/bench_inference.py``.
"""

import argparse
import itertools
import statistics
import time

import numpy as np
from _common import gemm_peak_gflops, machine_description, print_table, synthetic_manifold, training_flops

from sk_stackae import StackedAutoencoder


def forward_flops(widths):
    return 2 * sum(a * b for a, b in itertools.pairwise(widths))


def timed(function, repeats):
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=16000)
    parser.add_argument("--inference-rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    hidden = (512, 256, 32)
    X = synthetic_manifold(args.train_rows + args.inference_rows)
    X_train, X_infer = X[: args.train_rows], X[args.train_rows :]
    n_features = X.shape[1]
    encoder = [n_features, *hidden]
    network = [*encoder, *reversed(encoder[:-1])]
    peak = gemm_peak_gflops()
    print(f"machine: {machine_description()}")
    print(f"fp32 GEMM peak (torch.mm 4096^3): {peak:.1f} GFLOP/s")
    print(f"network {'-'.join(map(str, network))}, trained on {args.train_rows} rows for {args.epochs} epochs\n")

    def make():
        return StackedAutoencoder(hidden, pretrain_epochs=0, finetune_epochs=args.epochs, device="cpu", random_state=0)

    make().fit(X_train[:512])  # warm-up
    fit_seconds = timed(lambda: make().fit(X_train), args.repeats)
    model = make().fit(X_train)
    train_rate = args.train_rows * args.epochs / fit_seconds
    step_flops = training_flops(network, 1, 1)

    rows = [
        [
            "fit (fine-tune epochs)",
            f"{train_rate:,.0f}",
            "1.0x",
            f"{step_flops / 1e6:.2f}",
            f"{train_rate * step_flops / 1e9 / peak:.0%}",
        ]
    ]
    for name, method, flops in (
        ("transform", model.transform, forward_flops(encoder)),
        ("score_samples", model.score_samples, forward_flops(network)),
    ):
        for dtype in (np.float32, np.float64):
            data = X_infer.astype(dtype)
            method(data[:1000])
            seconds = timed(lambda method=method, data=data: method(data), args.repeats)
            rate = len(data) / seconds
            rows.append(
                [
                    f"{name} ({np.dtype(dtype).name} input)",
                    f"{rate:,.0f}",
                    f"{rate / train_rate:.1f}x",
                    f"{flops / 1e6:.2f}",
                    f"{rate * flops / 1e9 / peak:.0%}",
                ]
            )
    print_table(["operation", "rows/s", "vs training", "MFLOP per row", "of fp32 GEMM peak"], rows)
    print(
        "\n(float64 input is computed in float64, so that a row's result depends on its batch by float64 rounding only)"
    )
    narrow_table(args.repeats)


def narrow_table(repeats, n_rows=200_000, n_features=64, hidden=(256, 16)):
    """float32 against float64 transform on a narrow table, the common scikit-learn case."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_rows, n_features))
    model = StackedAutoencoder(hidden, pretrain_epochs=0, finetune_epochs=1, device="cpu", random_state=0)
    model.fit(X[:20000])
    seconds = {}
    for dtype in (np.float32, np.float64):
        data = X.astype(dtype)
        model.transform(data[:1000])
        seconds[dtype] = timed(lambda data=data: model.transform(data), repeats)
    print(f"\ntransform of {n_rows} x {n_features} into {'-'.join(map(str, hidden))} codes (median of {repeats}):\n")
    print_table(
        ["input", "seconds", "rows/s", "vs float32"],
        [
            [
                np.dtype(dtype).name,
                f"{seconds[dtype]:.2f}",
                f"{n_rows / seconds[dtype]:,.0f}",
                f"{seconds[dtype] / seconds[np.float32]:.1f}x",
            ]
            for dtype in (np.float32, np.float64)
        ],
    )


if __name__ == "__main__":
    main()
