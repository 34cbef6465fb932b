"""What the code cache buys greedy layer-wise pretraining, phase by phase.

Three ways to run the greedy stage of the same stack, on the same data, in
one run, alternated round by round:

- **cached** (what ``StackedAutoencoder.fit`` does): after phase k-1 the
  codes of the whole training set are computed once, without autograd, and
  phase k trains on them. The time of phase k counts its cache pass.
- **naive**: phase k trains on the input rows and runs the frozen layers
  1..k-1 (without autograd) on every batch of every epoch, which is what a
  hand-written greedy loop over ``X`` does. It uses the same training loop,
  optimiser and batches as the cached way; only the input of the phase
  differs.
- **isolated**: a fresh shallow autoencoder of phase k's shape, activations
  and loss, trained alone by the same training loop on the cached codes of
  phase k: the least phase k can cost.

Run ``python benchmarks/bench_pretraining.py --data-dir ../shared/datasets/mnist``
(784-1000-500-250-30 on MNIST's 60000 training images); without
``--data-dir`` a synthetic 20000 x 784 set is used. ``--plot FILE`` draws
the per-phase times as a bar chart (needs matplotlib).
"""

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from _common import load_mnist_like, machine_description, print_table, synthetic_manifold

from sk_stackae import StackedAutoencoder
from sk_stackae._data import Rows, TensorRows, as_tensor
from sk_stackae._engine import objective_for
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._loop import Phase, TrainingOptions, seeded_generator, train_phase
from sk_stackae._losses import ReconstructionError
from sk_stackae._network import StackedAutoencoderNetwork
from sk_stackae._tasks import ReconstructionScore


def estimator(hidden, epochs, seed, device="cpu"):
    return StackedAutoencoder(
        hidden,
        activation="relu",
        pretrain_epochs=epochs,
        finetune_epochs=0,
        batch_size=256,
        device=device,
        random_state=seed,
    )


class _Stopwatch(TrainingListener):
    """Times every phase and every cache pass of a fit, and keeps a copy of each cache."""

    def __init__(self, X):
        self.phase_seconds = []
        self.cache_seconds = [0.0]
        self.caches = [X]
        self._started = None

    def phase_started(self, phase):
        self._started = time.perf_counter()

    def phase_ended(self, phase, result):
        self.phase_seconds.append(time.perf_counter() - self._started)

    def cache_started(self, layer, rows, width):
        self._started = time.perf_counter()

    def cache_ended(self, layer, cache):
        self.cache_seconds.append(time.perf_counter() - self._started)
        self.caches.append(cache.tensor.numpy().copy())


def cached_greedy(X, hidden, epochs, seed):
    """Seconds of each phase's training and of the cache pass before it, and the caches."""
    stopwatch = _Stopwatch(X)
    with listening(stopwatch):
        model = estimator(hidden, epochs, seed).fit(X)
    return stopwatch.phase_seconds, stopwatch.cache_seconds, stopwatch.caches, model


class FrozenCodeRows(Rows):
    """The codes of frozen layers, computed on every batch from the input rows: the naive way's input.

    Phase k sees ordinary rows (its phase is the cached way's phase, with the
    same training step), but each batch first runs layers 1..k-1 without
    autograd, as a hand-written greedy loop over ``X`` does.
    """

    def __init__(self, rows, network, k):
        self.rows = rows
        self.network = network
        self.k = k
        self.n_rows = rows.n_rows
        self.n_columns = network.widths[k]
        self.device, self.index_device = rows.device, rows.index_device

    @torch.no_grad()
    def take(self, indices):
        return self.network.encode(self.rows.take(indices), n_layers=self.k)


def naive_greedy(X, hidden, epochs, seed, device="cpu"):
    """Seconds of each phase when the frozen layers run on every batch instead of once."""
    network = StackedAutoencoderNetwork(
        X.shape[1], tuple(hidden), activation="relu", code_activation="identity", output_activation="identity"
    )
    network.reset_parameters(seeded_generator(seed))
    network.to(device)
    generator = seeded_generator(seed)
    rows = TensorRows(as_tensor(X).to(device))
    options = TrainingOptions(batch_size=256)
    seconds = []
    for k in range(network.n_layers):
        started = time.perf_counter()
        with torch.no_grad():
            network.start_reconstruction_at(k, network.encode(rows.tensor, n_layers=k).mean(dim=0))
        error = ReconstructionError("mse", network.decoder_activation_names[k])
        phase = Phase(
            name=f"naive layer {k + 1}",
            parameters=network.layer_parameters(k),
            training_pass=network.layer_pass(k),
            objective=objective_for(options, [error], [network.encoder_activation_names[k]]),
            metric=ReconstructionScore(error),
            rows=FrozenCodeRows(rows, network, k),
            epochs=epochs,
        )
        train_phase(phase, options, generator)
        seconds.append(time.perf_counter() - started)
    return seconds


def isolated_shallow(caches, hidden, epochs, seed):
    """Seconds to train, alone, a shallow autoencoder of each phase's shape and loss on its input.

    Built and trained by the same code as a phase (a fresh one-layer network,
    the same activations, loss, optimiser and batches), so that the ratio
    shows what being inside the stack costs a phase: nothing, if the cache
    does its job.
    """
    stack = StackedAutoencoderNetwork(
        caches[0].shape[1], hidden, activation="relu", code_activation="identity", output_activation="identity"
    )
    seconds = []
    for k, codes in enumerate(caches):
        network = StackedAutoencoderNetwork(
            codes.shape[1],
            (hidden[k],),
            activation="relu",
            code_activation=stack.encoder_activation_names[k],
            output_activation=stack.decoder_activation_names[k],
        )
        network.reset_parameters(seeded_generator(seed))
        rows = TensorRows(as_tensor(codes))
        network.start_reconstruction_at(0, rows.tensor.mean(dim=0))
        error = ReconstructionError("mse", network.decoder_activation_names[0])
        phase = Phase(
            name=f"isolated layer {k + 1}",
            parameters=list(network.parameters()),
            training_pass=network.layer_pass(0),
            objective=objective_for(TrainingOptions(), [error], [network.encoder_activation_names[0]]),
            metric=ReconstructionScore(error),
            rows=rows,
            epochs=epochs,
        )
        started = time.perf_counter()
        train_phase(phase, TrainingOptions(batch_size=256), seeded_generator(seed))
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST IDX gzip files (else synthetic data)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every phase (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated repetitions (default 3)")
    parser.add_argument("--plot", help="write a bar chart of the per-phase times to this file")
    args = parser.parse_args(argv)

    if args.data_dir:
        X = load_mnist_like(args.data_dir)[0]
        name = "MNIST train"
    else:
        X = synthetic_manifold(20000)
        name = "synthetic"
    hidden = (1000, 500, 250, 30)
    print(f"machine: {machine_description()}")
    print(
        f"{name}: {X.shape[0]} x {X.shape[1]} float32, stack {X.shape[1]}-{'-'.join(map(str, hidden))}, "
        f"{args.epochs} epochs per phase, batch 256, Adam(1e-3), {args.rounds} rounds\n"
    )

    estimator(hidden, 1, 0).fit(X[:512])  # warm-up: imports and thread pools stay out of the timings
    times = defaultdict(list)
    for round_ in range(args.rounds):
        training, cache_passes, caches, _ = cached_greedy(X, hidden, args.epochs, round_)
        naive = naive_greedy(X, hidden, args.epochs, round_)
        isolated = isolated_shallow(caches[: len(hidden)], hidden, args.epochs, round_)
        for k in range(len(hidden)):
            times["training", k].append(training[k])
            times["cache pass", k].append(cache_passes[k])
            times["cached", k].append(training[k] + cache_passes[k])
            times["naive", k].append(naive[k])
            times["isolated", k].append(isolated[k])
        times["cache pass", "all"].append(sum(cache_passes))
        times["training", "all"].append(sum(training))
        times["cached", "all"].append(sum(training) + sum(cache_passes))
        times["naive", "all"].append(sum(naive))

    def median(way, k):
        return statistics.median(times[way, k])

    def ratio(top, bottom, k):
        return statistics.median(a / b for a, b in zip(times[top, k], times[bottom, k], strict=True))

    rows = []
    for k in range(len(hidden)):
        rows.append(
            [
                f"phase {k + 1} ({[X.shape[1], *hidden][k]}-{hidden[k]})",
                f"{median('cache pass', k):.2f}",
                f"{median('training', k):.2f}",
                f"{median('naive', k):.2f}",
                f"{ratio('naive', 'cached', k):.2f}x",
                f"{median('isolated', k):.2f}",
                f"{ratio('training', 'isolated', k):.2f}x",
                f"{ratio('cached', 'isolated', k):.2f}x",
            ]
        )
    rows.append(
        [
            "whole greedy stage",
            f"{median('cache pass', 'all'):.2f}",
            f"{median('training', 'all'):.2f}",
            f"{median('naive', 'all'):.2f}",
            f"{ratio('naive', 'cached', 'all'):.2f}x",
            "",
            "",
            "",
        ]
    )
    print_table(
        [
            "phase",
            "cache pass s",
            "training s",
            "naive s",
            "naive / cached (pass incl.)",
            "isolated shallow AE s",
            "training / isolated",
            "cached (pass incl.) / isolated",
        ],
        rows,
    )
    print(
        "\n(medians over rounds; ratios are medians of the per-round ratios. The cache pass of phase k runs"
        "\nlayer k-1 once over the training set; 'training' is phase k's epochs, from train_phase's start to end)"
    )
    if args.plot:
        plot(times, hidden, X.shape[1], args.plot, name, args.epochs)


def plot(times, hidden, n_features, path, name, epochs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"phase {k + 1}\n{[n_features, *hidden][k]}-{hidden[k]}" for k in range(len(hidden))]
    positions = np.arange(len(hidden))
    width = 0.27
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for offset, way, colour in (
        (-width, "naive", "tab:red"),
        (0, "cached", "tab:blue"),
        (width, "isolated", "tab:gray"),
    ):
        medians = [statistics.median(times[way, k]) for k in range(len(hidden))]
        ax.bar(positions + offset, medians, width, label=way, color=colour)
    ax.set_xticks(positions, labels)
    ax.set_ylabel("seconds")
    total_cached = statistics.median(times["cached", "all"])
    total_naive = statistics.median(times["naive", "all"])
    ax.set_title(
        f"Greedy pretraining, {name}, {epochs} epochs per phase: cached {total_cached:.1f} s, naive {total_naive:.1f} s"
    )
    ax.legend(
        title="phase k trains on",
        labels=["X, re-running layers 1..k-1 per batch", "cached codes", "a shallow autoencoder alone"],
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


if __name__ == "__main__":
    main()
