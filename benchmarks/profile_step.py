"""Where a training step's time goes on a small network: the ops of one step and their share.

Trains the digits autoencoder of ``bench_peers.py`` (64-32-16-32-64, ReLU,
linear output, MSE, Adam(1e-3), batch 256) under ``torch.profiler`` for a
few epochs, once as the joint fine-tune (``pretrain_epochs=0``) and once as
the first greedy pretraining phase (64-32-64), and prints, per stage:

- the wall time per step with the profiler off, with 1 and with 2 torch
  threads (the caller's setting is put back afterwards);
- the ops the profiler saw per step, grouped by name, with their count per
  step and their share of the step's self CPU time.

Self CPU time counts each op once (not the ops it calls); what no op
accounts for ("Python and the rest") is the step's wall time minus the sum
of the ops' self times: the interpreter, the estimator's loop, the
optimiser's Python.

Run ``python benchmarks/profile_step.py``; ``--epochs`` sets the profiled
epochs (default 20).
"""

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from _common import machine_description, print_table
from sklearn.datasets import load_digits
from torch.profiler import ProfilerActivity, profile

from sk_stackae import StackedAutoencoder
from sk_stackae._listeners import TrainingListener, listening

BATCH_SIZE = 256


class StepCounter(TrainingListener):
    """Counts the optimiser steps of the phases it hears about."""

    def __init__(self, n_rows):
        self.n_rows = n_rows
        self.steps = 0

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.steps += -(-self.n_rows // BATCH_SIZE)


def model(stage, epochs):
    if stage == "fine-tune":
        return StackedAutoencoder((32, 16), pretrain_epochs=0, finetune_epochs=epochs, batch_size=BATCH_SIZE)
    return StackedAutoencoder((32,), pretrain_epochs=epochs, finetune_epochs=0, batch_size=BATCH_SIZE)


def seconds_per_step(stage, X, epochs, threads, rounds=5):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model(stage, 1).set_params(random_state=0).fit(X)  # warm-up
        times = []
        for seed in range(rounds):
            estimator = model(stage, epochs).set_params(random_state=seed)
            counter = StepCounter(len(X))
            with listening(counter):
                started = time.perf_counter()
                estimator.fit(X)
                times.append((time.perf_counter() - started) / counter.steps)
        return float(np.median(times))
    finally:
        torch.set_num_threads(previous)


def op_table(stage, X, epochs):
    counter = StepCounter(len(X))
    estimator = model(stage, epochs).set_params(random_state=0)
    estimator.fit(X[:BATCH_SIZE])  # warm-up outside the profile
    with listening(counter), profile(activities=[ProfilerActivity.CPU]) as profiler:
        started = time.perf_counter()
        estimator.fit(X)
        wall = time.perf_counter() - started
    steps = counter.steps
    counts = defaultdict(int)
    self_us = defaultdict(float)
    for event in profiler.key_averages():
        if event.key.startswith("aten::") or event.key.startswith("Optimizer."):
            counts[event.key] += event.count
            self_us[event.key] += event.self_cpu_time_total
    total_ops_us = sum(self_us.values())
    step_us = wall * 1e6 / steps
    rows = []
    for name in sorted(self_us, key=self_us.get, reverse=True)[:15]:
        rows.append(
            [
                name,
                f"{counts[name] / steps:.1f}",
                f"{self_us[name] / steps:.1f}",
                f"{100 * self_us[name] / (wall * 1e6):.0f}%",
            ]
        )
    rows.append(
        [
            "all ops",
            f"{sum(counts.values()) / steps:.0f}",
            f"{total_ops_us / steps:.1f}",
            f"{100 * total_ops_us / (wall * 1e6):.0f}%",
        ]
    )
    rows.append(
        [
            "Python and the rest",
            "",
            f"{step_us - total_ops_us / steps:.1f}",
            f"{100 - 100 * total_ops_us / (wall * 1e6):.0f}%",
        ]
    )
    return rows, steps, step_us


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    print(machine_description())
    X, _ = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    for stage in ("fine-tune", "pretraining phase 1"):
        one = seconds_per_step(stage, X, args.epochs, 1)
        two = seconds_per_step(stage, X, args.epochs, 2)
        rows, steps, step_us = op_table(stage, X, args.epochs)
        network = "64-32-16-32-64" if stage == "fine-tune" else "64-32-64"
        print(f"\n### {stage}: digits {X.shape[0]} x 64, network {network}, batch {BATCH_SIZE}, Adam\n")
        print(f"wall time per step, profiler off: {one * 1e6:.0f} us with 1 thread, {two * 1e6:.0f} us with 2\n")
        print(f"profiled: {steps} steps, {step_us:.0f} us per step with the profiler on\n")
        print_table(["op", "calls per step", "self us per step", "share of the step"], rows)


if __name__ == "__main__":
    main()
