"""The ladder network (``ladder="full"`` / ``"gamma"``) on permutation-invariant MNIST, with a time budget.

For each configuration of ``--only`` (from ``CONFIGURATIONS``) and each label
draw, one fit of ``StackedAutoencoderClassifier`` on the 60,000 training
images (``--labels`` of them labeled, as many per class, the draw of
``bench_supervised.few_labels``; the rest marked -1), stopped after
``--minutes`` of fitting (the fit is interrupted and keeps what it has, as
a KeyboardInterrupt leaves it) or at ``--epochs`` supervised epochs. Every
``--every`` epochs it prints the test error on the 10,000 test images, of
the ladder's clean pass on its running statistics, and the seconds into the
fit (evaluations left out): the error-against-time curve. At the end, the
folded network's test error (what ``predict`` gives) and the fit time.

Architecture: the paper's 784-1000-500-250-250-250-10 (Rasmus et al., 2015).
Batches of 200 rows, half of them labeled (the paper: 100 labeled and 100
unlabeled), Adam at 0.002 (the paper's rate; it then decays it over 50 more
epochs, which a time budget leaves out).

Run, e.g., ``python benchmarks/bench_ladder.py --data-dir ../shared/datasets/mnist --labels 100 --minutes 15``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _common import load_mnist_like, machine_description, print_table
from bench_supervised import few_labels

from sk_stackae import StackedAutoencoderClassifier
from sk_stackae._engine import SUPERVISED_NAME
from sk_stackae._listeners import TrainingListener, listening

HIDDEN = (1000, 500, 250, 250, 250)
PLAIN_STAGES = {"pretrain_epochs": 0, "unsupervised_finetune_epochs": 0, "head_warmup_epochs": 0, "noise": None}
CONFIGURATIONS = {
    "ladder full": {"ladder": "full", **PLAIN_STAGES},
    "ladder full, pretrained": {
        "ladder": "full",
        "pretrain_epochs": 3,
        "noise": "masking",
        "unsupervised_finetune_epochs": 0,
        "head_warmup_epochs": 0,
    },
    "ladder gamma": {"ladder": "gamma", **PLAIN_STAGES},
    "supervised only (no ladder)": {**PLAIN_STAGES, "consistency_weight": 0.0, "reconstruction_weight": 0.0},
    # What a user gets who sets ladder="full" and nothing else.
    "ladder full, defaults": {
        "ladder": "full",
        "batch_size": 256,
        "learning_rate_init": 1e-3,
        "finetune_epochs": "auto",
    },
    # The library's defaults without a ladder, beside it.
    "defaults (no ladder)": {"batch_size": 256, "learning_rate_init": 1e-3, "finetune_epochs": "auto"},
}


class BudgetedCurve(TrainingListener):
    """Test errors every ``every`` supervised epochs, and an interruption once ``minutes`` of fitting have passed."""

    def __init__(self, X_test, y_test, every, minutes, quiet=False):
        self.X_test = torch.as_tensor(X_test)
        self.quiet = quiet
        self.y_test = y_test
        self.every = every
        self.budget = 60 * minutes
        self.errors = {}
        self.seconds = {}
        self.started = time.perf_counter()
        self.evaluation_seconds = 0.0

    def elapsed(self):
        return time.perf_counter() - self.started - self.evaluation_seconds

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        if phase.name == SUPERVISED_NAME and epoch % self.every == 0:
            self.seconds[epoch] = self.elapsed()
            evaluation_started = time.perf_counter()
            extra = {"batch": None} if phase.training_pass.reads_batch else {}
            with torch.no_grad():
                device = next(phase.training_pass.network.parameters()).device
                scores = torch.cat(
                    [phase.training_pass.forward(rows.to(device), **extra)[0][0] for rows in self.X_test.split(4096)]
                )
            self.errors[epoch] = 100 * float((scores.argmax(dim=1).cpu().numpy() != self.y_test).mean())
            self.evaluation_seconds += time.perf_counter() - evaluation_started
            if not self.quiet:
                print(f"    epoch {epoch} ({self.seconds[epoch]:.0f} s): {self.errors[epoch]:.2f} %", flush=True)
        if self.elapsed() > self.budget:
            raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=["ladder full"], choices=sorted(CONFIGURATIONS))
    parser.add_argument("--rows", type=int, help="train on the first ROWS training images only (a quick proxy)")
    parser.add_argument("--test-rows", type=int, help="score on the first TEST_ROWS test images only")
    args = parser.parse_args(argv)
    print(machine_description())
    X_train, y_train, X_test, y_test = load_mnist_like(args.data_dir)
    X_train, y_train = X_train[: args.rows], y_train[: args.rows]
    X_test, y_test = X_test[: args.test_rows], y_test[: args.test_rows]
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        y = few_labels(y_train, args.labels, seed)
        for name in args.only:
            print(f"  seed {seed} {name}: at most {args.epochs} epochs, {args.minutes} minutes", flush=True)
            settings = {"batch_size": 200, "learning_rate_init": 0.002, "finetune_epochs": args.epochs}
            settings.update(CONFIGURATIONS[name])
            model = StackedAutoencoderClassifier(
                HIDDEN, unlabeled_label=-1, device="cpu", random_state=seed, **settings
            )
            curve = BudgetedCurve(X_test, y_test, args.every, args.minutes)
            started = time.perf_counter()
            with listening(curve), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Training interrupted by user")
                model.fit(X_train, y)
            fit_seconds = time.perf_counter() - started - curve.evaluation_seconds
            final = 100 * (1 - model.score(X_test, y_test))
            print(f"    folded network: {final:.2f} % after {model.n_iter_} epochs, {fit_seconds:.0f} s", flush=True)
            print(f"    resolved: {model.resolved_params_}", flush=True)
            rows.append([name, seed, model.n_iter_, f"{fit_seconds:.0f}", f"{final:.2f}", curve])
    shown = f"{len(X_train)} training and {len(X_test)} test rows of {args.data_dir}"
    print(f"\n{shown}, {args.labels} labels: test error % of the folded network, and the curve\n")
    print_table(
        ["configuration", "seed", "epochs", "fit s", "test error %", "curve (epoch: s, %)"],
        [
            [*row[:5], "; ".join(f"{e}: {row[5].seconds[e]:.0f} s {row[5].errors[e]:.2f}" for e in row[5].errors)]
            for row in rows
        ],
    )
    print(f"\nthreads: {torch.get_num_threads()}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
