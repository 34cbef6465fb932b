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

from sk_stackae import StackedAutoencoder, _training
from sk_stackae._listeners import TrainingListener, listening

BATCH_SIZE = 256


class PhaseTimer(TrainingListener):
    """Times the training phase alone (not the fit's validation and set-up) and counts its steps.

    With a profiler, it profiles the phase alone too: the profiler starts
    when the phase starts and stops when it ends.
    """

    def __init__(self, n_rows, profiler=None):
        self.n_rows = n_rows
        self.profiler = profiler
        self.steps = 0
        self.seconds = 0.0

    def phase_started(self, phase):
        if self.profiler is not None:
            self.profiler.start()
        self.started = time.perf_counter()

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.steps += -(-self.n_rows // BATCH_SIZE)

    def phase_ended(self, phase, result):
        self.seconds += time.perf_counter() - self.started
        if self.profiler is not None:
            self.profiler.stop()


def model(stage, epochs):
    if stage == "fine-tune":
        return StackedAutoencoder((32, 16), pretrain_epochs=0, finetune_epochs=epochs, batch_size=BATCH_SIZE)
    return StackedAutoencoder((32,), pretrain_epochs=epochs, finetune_epochs=0, batch_size=BATCH_SIZE)


def seconds_per_step(stage, X, epochs, threads, rounds=5):
    """Median over ``rounds`` fits of the phase's time per step, on exactly ``threads`` torch threads.

    The fit's own choice (one thread below ``_ONE_THREAD_BELOW_FLOPS``) is
    set aside for the measurement, which is what it is chosen from.
    """
    previous = torch.get_num_threads(), _training._ONE_THREAD_BELOW_FLOPS
    torch.set_num_threads(threads)
    _training._ONE_THREAD_BELOW_FLOPS = 0
    try:
        model(stage, 1).set_params(random_state=0).fit(X)  # warm-up
        times = []
        for seed in range(rounds):
            timer = PhaseTimer(len(X))
            with listening(timer):
                model(stage, epochs).set_params(random_state=seed).fit(X)
            times.append(timer.seconds / timer.steps)
        return float(np.median(times))
    finally:
        torch.set_num_threads(previous[0])
        _training._ONE_THREAD_BELOW_FLOPS = previous[1]


def op_table(stage, X, epochs):
    model(stage, 1).set_params(random_state=0).fit(X)  # warm-up
    profiler = profile(activities=[ProfilerActivity.CPU])
    timer = PhaseTimer(len(X), profiler)
    with listening(timer):
        model(stage, epochs).set_params(random_state=0).fit(X)
    steps = timer.steps
    phase_us = timer.seconds * 1e6
    counts = defaultdict(int)
    self_us = defaultdict(float)
    for event in profiler.key_averages():
        if event.key.startswith("aten::"):
            counts[event.key] += event.count
            self_us[event.key] += event.self_cpu_time_total
    total_ops_us = sum(self_us.values())
    rows = [
        [name, f"{counts[name] / steps:.1f}", f"{self_us[name] / steps:.1f}", f"{100 * self_us[name] / phase_us:.0f}%"]
        for name in sorted(self_us, key=self_us.get, reverse=True)[:12]
    ]
    rows.append(
        [
            "all ops",
            f"{sum(counts.values()) / steps:.0f}",
            f"{total_ops_us / steps:.1f}",
            f"{100 * total_ops_us / phase_us:.0f}%",
        ]
    )
    rows.append(
        [
            "Python and the rest",
            "",
            f"{(phase_us - total_ops_us) / steps:.1f}",
            f"{100 - 100 * total_ops_us / phase_us:.0f}%",
        ]
    )
    return rows, steps, phase_us / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
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
        print(f"time per step, profiler off: {one * 1e6:.0f} us on 1 thread, {two * 1e6:.0f} us on 2\n")
        print(f"profiled (the fit's own thread choice): {steps} steps, {step_us:.0f} us per step\n")
        print_table(["op", "calls per step", "self us per step", "share of the step"], rows)


if __name__ == "__main__":
    main()
