"""Shared pieces of the benchmark scripts: datasets, FLOP counts, the GEMM peak, tables."""

import gzip
import itertools
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def load_idx_images(path):
    """Images of an IDX gzip file (MNIST layout) as float32 rows in [0, 1]."""
    raw = gzip.open(path, "rb").read()
    if int.from_bytes(raw[0:4], "big") != 2051:
        raise ValueError(f"{path} is not an IDX image file")
    n_images = int.from_bytes(raw[4:8], "big")
    pixels = np.frombuffer(raw, np.uint8, offset=16).reshape(n_images, 28 * 28)
    return pixels.astype(np.float32) / 255.0


def load_idx_labels(path):
    raw = gzip.open(path, "rb").read()
    if int.from_bytes(raw[0:4], "big") != 2049:
        raise ValueError(f"{path} is not an IDX label file")
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def load_mnist_like(data_dir):
    """``(X_train, y_train, X_test, y_test)`` from the four IDX gzip files in ``data_dir``."""
    data_dir = Path(data_dir)
    return (
        load_idx_images(data_dir / "train-images-idx3-ubyte.gz"),
        load_idx_labels(data_dir / "train-labels-idx1-ubyte.gz"),
        load_idx_images(data_dir / "t10k-images-idx3-ubyte.gz"),
        load_idx_labels(data_dir / "t10k-labels-idx1-ubyte.gz"),
    )


def synthetic_manifold(n_samples, n_features=784, n_latent=32, seed=0):
    """Rows in [0, 1] on a smooth nonlinear manifold: sigmoid of a random map of a few latents."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_samples, n_latent), dtype=np.float32)
    mixing = rng.standard_normal((n_latent, n_features), dtype=np.float32) / np.sqrt(n_latent)
    return (1.0 / (1.0 + np.exp(-2.0 * latent @ mixing))).astype(np.float32)


def training_flops(widths, n_samples, epochs):
    """Floating-point operations of training a dense network on ``n_samples`` rows for ``epochs``.

    Per layer: forward ``2 * in * out`` per row, the weight gradient as much
    again, and the input gradient as much again for every layer but the
    first (the data needs no gradient). Activations and the optimiser are
    not counted.
    """
    products = [a * b for a, b in itertools.pairwise(widths)]
    per_row = 2 * sum(products) + 2 * sum(products) + 2 * sum(products[1:])
    return per_row * n_samples * epochs


def fused_adam(parameters, gradients, exp_avgs, exp_avg_sqs, step_views, lr):
    """Adam's fused update of ``parameters`` (default betas and eps), as ``torch.optim.Adam(fused=True)`` runs it.

    The hand-written loops of the benchmarks (the floor, the step variants)
    call the kernel directly, as the package's step does, without
    ``torch.optim``'s per-step Python.
    """
    torch._fused_adam_(
        parameters,
        gradients,
        exp_avgs,
        exp_avg_sqs,
        [],
        step_views,
        amsgrad=False,
        lr=lr,
        beta1=0.9,
        beta2=0.999,
        weight_decay=0.0,
        eps=1e-8,
        maximize=False,
    )


def gemm_peak_gflops(size=4096, repeats=5):
    """Median fp32 ``torch.mm`` rate on this machine, now, in GFLOP/s."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, Python {platform.python_version()}"
    )


def print_table(headers, rows):
    """A GitHub-flavoured markdown table (``docs/benchmarks.rst`` gives the current figures as reST tables)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
