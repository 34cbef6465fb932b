"""Where a training step's time goes: the ops of one step and their share.

Trains the digits autoencoder of ``bench_peers.py`` (64-32-16-32-64, ReLU,
linear output, MSE, Adam(1e-3), batch 256), once as the joint fine-tune
(``pretrain_epochs=0``) and once as the first greedy pretraining phase
(64-32-64), and with ``--data-dir`` one fine-tune epoch of the MNIST network
(784-1000-500-250-30-..., 10,000 rows). For each it prints:

- the time per step of the training phase alone (not the fit's validation
  and set-up), profiler off, on exactly 1 and exactly 2 torch threads (the
  fit's own thread choice set aside; the caller's setting put back);
- the ops ``torch.profiler`` saw during the phase, grouped by name, with
  their calls per step and their share of the phase's wall time, with the
  fit's own thread choice.

Self CPU time counts each op once (not the ops it calls); what no op
accounts for ("Python and the rest") is the phase's wall time minus the
sum of the ops' self times: the interpreter, the training loop, the
optimiser's Python, and the profiler's own cost per op, which inflates
every row a little.

Run ``python benchmarks/profile_step.py --data-dir ../shared/datasets/mnist``;
``--epochs`` sets the digits epochs (default 50). ``SK_STACKAE_FAST_STEP=0``
in the environment profiles the autograd step instead.
"""

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from _common import load_mnist_like, machine_description, print_table
from sklearn.datasets import load_digits
from torch.profiler import ProfilerActivity, profile

from sk_stackae import StackedAutoencoder
from sk_stackae._accel import threads as thread_policy
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


def model(stage, epochs, hidden):
    if stage == "fine-tune":
        return StackedAutoencoder(hidden, pretrain_epochs=0, finetune_epochs=epochs, batch_size=BATCH_SIZE)
    return StackedAutoencoder(hidden[:1], pretrain_epochs=epochs, finetune_epochs=0, batch_size=BATCH_SIZE)


def seconds_per_step(stage, X, hidden, epochs, threads, rounds=5):
    """Median over ``rounds`` fits of the phase's time per step, on exactly ``threads`` torch threads.

    The fit's own choice (one thread below ``_ONE_THREAD_BELOW_FLOPS``) is
    set aside for the measurement, which is what it is chosen from.
    """
    previous = torch.get_num_threads(), thread_policy._ONE_THREAD_BELOW_FLOPS
    torch.set_num_threads(threads)
    thread_policy._ONE_THREAD_BELOW_FLOPS = 0
    try:
        model(stage, 1, hidden).set_params(random_state=0).fit(X[:BATCH_SIZE])  # warm-up
        times = []
        for seed in range(rounds):
            timer = PhaseTimer(len(X))
            with listening(timer):
                model(stage, epochs, hidden).set_params(random_state=seed).fit(X)
            times.append(timer.seconds / timer.steps)
        return float(np.median(times))
    finally:
        torch.set_num_threads(previous[0])
        thread_policy._ONE_THREAD_BELOW_FLOPS = previous[1]


def op_table(stage, X, hidden, epochs):
    model(stage, 1, hidden).set_params(random_state=0).fit(X[:BATCH_SIZE])  # warm-up
    profiler = profile(activities=[ProfilerActivity.CPU])
    timer = PhaseTimer(len(X), profiler)
    with listening(timer):
        model(stage, epochs, hidden).set_params(random_state=0).fit(X)
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
    parser.add_argument("--epochs", type=int, default=50, help="epochs of the digits runs (default 50)")
    parser.add_argument("--data-dir", help="MNIST IDX folder: also profile one fine-tune epoch of its network")
    args = parser.parse_args(argv)
    print(machine_description())
    X, _ = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    cases = [
        ("fine-tune", "digits", X, (32, 16), args.epochs),
        ("pretraining phase 1", "digits", X, (32, 16), args.epochs),
    ]
    if args.data_dir:
        X_mnist = load_mnist_like(args.data_dir)[0][:10000]
        cases.append(("fine-tune", "MNIST (10000 rows)", X_mnist, (1000, 500, 250, 30), 1))
    for stage, name, data, hidden, epochs in cases:
        one = seconds_per_step(stage, data, hidden, epochs, 1)
        two = seconds_per_step(stage, data, hidden, epochs, 2)
        rows, steps, step_us = op_table(stage, data, hidden, epochs)
        widths = [data.shape[1], *(hidden if stage == "fine-tune" else hidden[:1])]
        network = "-".join(map(str, widths + widths[-2::-1]))
        print(f"\n### {stage}: {name} {data.shape[0]} x {data.shape[1]}, network {network}, batch {BATCH_SIZE}, Adam\n")
        print(f"time per step, profiler off: {one * 1e6:.0f} us on 1 thread, {two * 1e6:.0f} us on 2\n")
        print(f"profiled (the fit's own thread choice): {steps} steps, {step_us:.0f} us per step\n")
        print_table(["op", "calls per step", "self us per step", "share of the step"], rows)


if __name__ == "__main__":
    main()
