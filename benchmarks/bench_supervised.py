"""StackedAutoencoderClassifier and Regressor: few labels, all labels, the levers, and speed.

Subcommands (each prints a markdown table; the machine is printed first):

- ``few``: MNIST (or Fashion-MNIST) with ``--labels`` labeled training rows
  (the rest given as ``-1`` with ``unlabeled_label=-1``), several seeds:
  the pretrained classifier (the recipe of ``RECIPE``), the same network
  without pretraining, PCA-50 + LogisticRegression on the labeled rows, and
  ``SelfTrainingClassifier(LogisticRegression())`` on all rows. Test error
  on the 10,000 test images.
- ``ablation``: one lever at a time on MNIST with ``--labels`` labels.
- ``search``: variations of the recipe (``SEARCH``; ``--labels 0`` for the
  all-labels ones, ``FULL_SEARCH``), seed by seed, each configuration's
  mean and range over ``--seeds`` label draws; ``--only`` picks some, and
  ``--unlabeled`` keeps only that many unlabeled rows (quick searches).
- ``curve``: the test error every ``--every`` epochs of one long supervised
  stage (``--curve-epochs``) for each configuration of ``--only`` (from
  ``SEARCH``), per seed: how many supervised epochs a recipe wants.
- ``full``: every training label: pretrained against no pretraining against
  ``MLPClassifier`` of the same shape and epochs; test error and time.
- ``speed``: the supervised stage against ``MLPClassifier`` at equal epochs
  (no pretraining), alternated rounds, median times.
- ``regression``: a data set that ships with scikit-learn (diabetes),
  against ``MLPRegressor``, cross-validated R².

Run, e.g., ``python benchmarks/bench_supervised.py few --data-dir ../shared/datasets/mnist --labels 1000``.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from _common import load_mnist_like, machine_description, print_table
from sklearn.datasets import load_diabetes
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

from sk_stackae import StackedAutoencoderClassifier, StackedAutoencoderRegressor
from sk_stackae._auto import EVERY_ROW_LABELED
from sk_stackae._callbacks import EpochRecord, WeightAverage, swapped_in
from sk_stackae._engine import SUPERVISED_NAME
from sk_stackae._listeners import TrainingListener, listening

HIDDEN = (1000, 500, 250)

# Every configuration below starts from these explicit settings, so that
# it names what "auto" would otherwise choose: greedy pretraining with
# masking noise, no semi-supervised term. The "defaults" recipe starts from
# the "auto" defaults instead.
# The plain network's settings, plus 10 epochs of masking-noise pretraining.
EXPLICIT_SETTINGS = {**EVERY_ROW_LABELED, "pretrain_epochs": 10, "noise": "masking"}
DEFAULTS = {name: "auto" for name in EXPLICIT_SETTINGS}

# The few-label recipe: masking-noise pretraining on every row, a short
# unsupervised fine-tune, a warm-up of the head alone, then the supervised
# fine-tune that keeps the reconstruction of every row in its loss.
RECIPE = {
    "pretrain_epochs": 5,
    "noise": "masking",
    "noise_level": 0.25,
    "unsupervised_finetune_epochs": 5,
    "head_warmup_epochs": 20,
    "reconstruction_weight": 1.0,
    "finetune_epochs": 20,
}
# Noise is named in every configuration: the plain network's rows train
# without it.
NO_PRETRAINING = {"pretrain_epochs": 0, "finetune_epochs": 100, "noise": None}

LEVERS = {
    "no pretraining (100 epochs)": NO_PRETRAINING,
    "greedy pretraining, 5 epochs/layer": {"pretrain_epochs": 5, "finetune_epochs": 100, "noise": None},
    "+ masking noise 0.25": {"pretrain_epochs": 5, "noise": "masking", "noise_level": 0.25, "finetune_epochs": 100},
    "+ 5 unsupervised fine-tune epochs": {
        "pretrain_epochs": 5,
        "noise": "masking",
        "noise_level": 0.25,
        "unsupervised_finetune_epochs": 5,
        "finetune_epochs": 100,
    },
    "+ head warm-up 20 epochs": {
        "pretrain_epochs": 5,
        "noise": "masking",
        "noise_level": 0.25,
        "unsupervised_finetune_epochs": 5,
        "head_warmup_epochs": 20,
        "finetune_epochs": 100,
    },
    "+ reconstruction kept (weight 1), 20 epochs": RECIPE,
    "+ dropout 0.2": {**RECIPE, "dropout": 0.2},
    "head warm-up + pseudo-labels 0.3, 20 epochs": {**RECIPE, "reconstruction_weight": 0.0, "pseudo_label_weight": 0.3},
    "reconstruction kept + pseudo-labels 0.3": {**RECIPE, "pseudo_label_weight": 0.3},
    "no pretraining + pseudo-labels 0.3, 20 epochs": {
        **NO_PRETRAINING,
        "finetune_epochs": 20,
        "pseudo_label_weight": 0.3,
    },
    "recipe, 20 pretraining epochs/layer, masking 0.5": {**RECIPE, "pretrain_epochs": 20, "noise_level": 0.5},
}
# Virtual adversarial training (the consistency term, its corruption moved
# by a step of L2 norm 1 toward the largest change of the prediction).
VIRTUAL_ADVERSARIAL = {"consistency_weight": 1.0, "adversarial_epsilon": 1.0}
# Variations of the recipe, one change each unless named otherwise: the
# search for what closes the gap to the targets.
SEARCH = {
    "recipe": RECIPE,
    "50 supervised epochs": {**RECIPE, "finetune_epochs": 50},
    "reconstruction weight 0.3": {**RECIPE, "reconstruction_weight": 0.3},
    "reconstruction weight 3": {**RECIPE, "reconstruction_weight": 3.0},
    "dropout 0.5": {**RECIPE, "dropout": 0.5},
    "masking 0.5 in every stage": {**RECIPE, "noise_level": 0.5},
    "wider: 2000-1000-500": {**RECIPE, "hidden_layer_sizes": (2000, 1000, 500)},
    "pseudo-labels 1.0": {**RECIPE, "pseudo_label_weight": 1.0},
    "20 epochs per layer, 20 unsupervised": {**RECIPE, "pretrain_epochs": 20, "unsupervised_finetune_epochs": 20},
    "learning rate 3e-4, 50 supervised epochs": {**RECIPE, "learning_rate_init": 3e-4, "finetune_epochs": 50},
    "logistic units": {**RECIPE, "activation": "logistic"},
    "dropout 0.5, 50 supervised epochs": {**RECIPE, "dropout": 0.5, "finetune_epochs": 50},
    "dropout 0.3, 50 supervised epochs": {**RECIPE, "dropout": 0.3, "finetune_epochs": 50},
    "50 supervised epochs, averaged from 20": {**RECIPE, "finetune_epochs": 50, "average_from_epoch": 20},
    "dropout 0.5, 50 supervised epochs, averaged from 20": {
        **RECIPE,
        "dropout": 0.5,
        "finetune_epochs": 50,
        "average_from_epoch": 20,
    },
    "alpha 0.1, 50 supervised epochs": {**RECIPE, "alpha": 0.1, "finetune_epochs": 50},
    "consistency 1": {**RECIPE, "consistency_weight": 1.0},
    "consistency 3": {**RECIPE, "consistency_weight": 3.0},
    "consistency 1, 50 supervised epochs": {**RECIPE, "consistency_weight": 1.0, "finetune_epochs": 50},
    "consistency 3, 50 supervised epochs": {**RECIPE, "consistency_weight": 3.0, "finetune_epochs": 50},
    "consistency 3, dropout 0.5, 50 supervised epochs": {
        **RECIPE,
        "consistency_weight": 3.0,
        "dropout": 0.5,
        "finetune_epochs": 50,
    },
    # Virtual adversarial training: the consistency term against the
    # perturbation of each row that changes its prediction most.
    "virtual adversarial 0.5": {**RECIPE, **VIRTUAL_ADVERSARIAL, "adversarial_epsilon": 0.5},
    "virtual adversarial 1": {**RECIPE, **VIRTUAL_ADVERSARIAL},
    "virtual adversarial 2": {**RECIPE, **VIRTUAL_ADVERSARIAL, "adversarial_epsilon": 2.0},
    "virtual adversarial 1, dropout 0.5": {**RECIPE, **VIRTUAL_ADVERSARIAL, "dropout": 0.5},
    "virtual adversarial 1, no pretraining": {**NO_PRETRAINING, **VIRTUAL_ADVERSARIAL, "finetune_epochs": 20},
    "virtual adversarial 1, dropout 0.5, no pretraining": {
        **NO_PRETRAINING,
        **VIRTUAL_ADVERSARIAL,
        "finetune_epochs": 20,
        "dropout": 0.5,
    },
    # The baselines with the same regularisation: no pretraining, dropout 0.5,
    # as many supervised epochs as the few-label table's or five times that.
    "no pretraining": NO_PRETRAINING,
    "no pretraining, dropout 0.5": {**NO_PRETRAINING, "dropout": 0.5},
    "no pretraining, dropout 0.5, 500 epochs": {**NO_PRETRAINING, "dropout": 0.5, "finetune_epochs": 500},
    # What a user gets: every setting "auto" (curve: the supervised epochs set by --curve-epochs).
    "defaults": DEFAULTS,
}
FULL_SEARCH = {
    "pretrained, dropout 0.2, 60 epochs": {
        "pretrain_epochs": 5,
        "noise": "masking",
        "noise_level": 0.25,
        "finetune_epochs": 60,
        "dropout": 0.2,
    },
    "pretrained, dropout 0.5, 60 epochs": {
        "pretrain_epochs": 5,
        "noise": "masking",
        "noise_level": 0.25,
        "finetune_epochs": 60,
        "dropout": 0.5,
    },
    "pretrained, masking 0.5, dropout 0.2, 60 epochs": {
        "pretrain_epochs": 5,
        "noise": "masking",
        "noise_level": 0.5,
        "finetune_epochs": 60,
        "dropout": 0.2,
    },
    "no pretraining, dropout 0.5, 60 epochs": {
        "pretrain_epochs": 0,
        "noise": "masking",
        "noise_level": 0.25,
        "finetune_epochs": 60,
        "dropout": 0.5,
    },
}
RECIPES = {
    "defaults": DEFAULTS,
    "defaults, dropout 0.5": {**DEFAULTS, "dropout": 0.5},
    "reconstruction": RECIPE,
    "reconstruction+pseudo": {**RECIPE, "pseudo_label_weight": 0.3},
}


def classifier(seed, device="cpu", **params):
    params = {**EXPLICIT_SETTINGS, "hidden_layer_sizes": HIDDEN, **params}
    return StackedAutoencoderClassifier(batch_size=256, unlabeled_label=-1, device=device, random_state=seed, **params)


def few_labels(y, n_labels, seed):
    """``y`` with all but ``n_labels`` rows (as many of each class as can be) set to -1."""
    rng = np.random.RandomState(seed)
    y_few = np.full(len(y), -1)
    per_class = n_labels // 10
    for label in range(10):
        rows = rng.choice(np.flatnonzero(y == label), per_class, replace=False)
        y_few[rows] = label
    return y_few


def fewer_unlabeled_rows(X, y_few, n_unlabeled, seed):
    """The labeled rows of ``(X, y_few)`` and ``n_unlabeled`` of the others, drawn at random: quick searches."""
    labeled = np.flatnonzero(y_few >= 0)
    unlabeled = np.random.RandomState(seed).choice(np.flatnonzero(y_few < 0), n_unlabeled, replace=False)
    rows = np.concatenate([labeled, unlabeled])
    return X[rows], y_few[rows]


def timed(fit):
    started = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - started


def error(model, X, y):
    return 100 * (1 - model.score(X, y))


def few_label_contenders(seed, device, recipe):
    """``name -> fit(X, y_few)`` for every method of the few-label table."""

    def labeled_only(model):
        def fit(X, y):
            labeled = y >= 0
            return model.fit(X[labeled], y[labeled])

        return fit

    return {
        "recipe": (f"pretrained ({recipe})", classifier(seed, device, **RECIPES[recipe]).fit),
        "none": ("no pretraining", classifier(seed, device, **NO_PRETRAINING).fit),
        "pca": (
            "PCA-50 + LogisticRegression",
            labeled_only(make_pipeline(PCA(50, random_state=seed), LogisticRegression(max_iter=2000))),
        ),
        "selftraining": (
            "SelfTraining(LogisticRegression)",
            SelfTrainingClassifier(LogisticRegression(max_iter=500), max_iter=5).fit,
        ),
        "labelspreading": (
            "PCA-50 + LabelSpreading(kNN)",
            make_pipeline(PCA(50, random_state=seed), LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100)).fit,
        ),
    }


def run_few(args, X_train, y_train, X_test, y_test):
    rows = []
    results = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        y_few = few_labels(y_train, args.labels, seed)
        contenders = few_label_contenders(seed, args.device, args.recipe)
        for method in args.methods:
            name, fit = contenders[method]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model, seconds = timed(lambda fit=fit, y_few=y_few: fit(X_train, y_few))
            results.setdefault(name, []).append((error(model, X_test, y_test), seconds))
            print(f"  seed {seed} {name}: {results[name][-1][0]:.2f} % in {seconds:.0f} s", flush=True)
    for name, runs in results.items():
        errors = [e for e, _ in runs]
        rows.append(
            [
                name,
                f"{statistics.mean(errors):.2f}",
                f"{min(errors):.2f} - {max(errors):.2f}",
                f"{statistics.mean(s for _, s in runs):.0f}",
            ]
        )
    print(f"\n{args.labels} labels, {args.seeds} seeds (label draws and model seeds), test error on 10,000 images\n")
    print_table(["method", "test error % (mean)", "range", "fit s (mean)"], rows)


def run_ablation(args, X_train, y_train, X_test, y_test):
    y_few = few_labels(y_train, args.labels, 0)
    rows = []
    for name, params in list(LEVERS.items())[args.skip :]:
        model, seconds = timed(lambda params=params: classifier(0, args.device, **params).fit(X_train, y_few))
        rows.append([name, f"{error(model, X_test, y_test):.2f}", f"{seconds:.0f}"])
        print(f"  {name}: {rows[-1][1]} % in {seconds:.0f} s", flush=True)
    print(f"\n{args.labels} labels, seed 0, each lever added to the row above it\n")
    print_table(["configuration", "test error %", "fit s"], rows)


def run_search(args, X_train, y_train, X_test, y_test):
    configurations = FULL_SEARCH if args.labels == 0 else SEARCH
    names = [name for name in configurations if not args.only or name in args.only]
    errors = {name: [] for name in names}
    seconds = {name: [] for name in names}
    # Seed by seed: a run cut short still has whole rows for the first seeds.
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        X, y = X_train, y_train if args.labels == 0 else few_labels(y_train, args.labels, seed)
        if args.unlabeled is not None and args.labels:
            X, y = fewer_unlabeled_rows(X, y, args.unlabeled, seed)
        for name in names:
            model = classifier(seed, args.device, **configurations[name])
            model, took = timed(lambda model=model, X=X, y=y: model.fit(X, y))
            errors[name].append(error(model, X_test, y_test))
            seconds[name].append(took)
            print(f"  seed {seed} {name}: {errors[name][-1]:.2f} % in {took:.0f} s", flush=True)
    labels = "every label" if args.labels == 0 else f"{args.labels} labels"
    print(f"\n{labels}, {args.seeds} seeds (label draws and model seeds), test error on 10,000 images\n")
    print_table(
        ["configuration", "test error % (mean)", "range", "fit s (mean)"],
        [
            [
                name,
                f"{statistics.mean(errors[name]):.2f}",
                f"{min(errors[name]):.2f} - {max(errors[name]):.2f}",
                f"{statistics.mean(seconds[name]):.0f}",
            ]
            for name in names
        ],
    )


class TestErrorCurve(TrainingListener):
    """The test error after every ``every`` epochs of the supervised fine-tune.

    Also the test error of the weights averaged over the epochs from
    ``average_from`` on, by the running mean that ``average_from_epoch``
    keeps: what a fit with ``finetune_epochs`` at that epoch would end with.
    """

    def __init__(self, X_test, y_test, every, average_from):
        self.X_test = X_test
        self.y_test = y_test
        self.every = every
        self.average_from = average_from
        self.errors = {}
        self.averaged_errors = {}
        self.fit_seconds = {}
        self.phase_seconds = {}
        self.average = None
        # The fit's clock, less the time spent measuring test errors.
        self.started = time.perf_counter()
        self.evaluation_seconds = 0.0

    def elapsed(self):
        return time.perf_counter() - self.started - self.evaluation_seconds

    def phase_ended(self, phase, result):
        self.phase_seconds[phase.name] = self.elapsed()

    def test_error(self, network, device):
        rows = torch.as_tensor(self.X_test, dtype=torch.float32, device=device)
        with torch.no_grad():
            scores = torch.cat([network.predict_scores(batch)[0] for batch in rows.split(4096)])
        return 100 * float((scores.argmax(dim=1).cpu().numpy() != self.y_test).mean())

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        if phase.name != SUPERVISED_NAME:
            return
        network = phase.training_pass.network
        device = phase.rows.tensor.device
        if self.average is None:
            self.average = WeightAverage(phase.parameters, self.average_from)
        self.average.epoch_ended(None, EpochRecord(epoch, loss))
        if epoch % self.every:
            return
        self.fit_seconds[epoch] = self.elapsed()
        evaluation_started = time.perf_counter()
        self.errors[epoch] = self.test_error(network, device)
        line = f"    epoch {epoch} ({self.fit_seconds[epoch]:.0f} s into the fit): {self.errors[epoch]:.2f} %"
        if epoch >= self.average_from:
            with swapped_in(self.average.parameters, self.average.evaluation_weights()):
                self.averaged_errors[epoch] = self.test_error(network, device)
            line += f", averaged from epoch {self.average_from}: {self.averaged_errors[epoch]:.2f} %"
        self.evaluation_seconds += time.perf_counter() - evaluation_started
        print(line, flush=True)


def run_curve(args, X_train, y_train, X_test, y_test):
    names = args.only or ["50 supervised epochs"]
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        y = few_labels(y_train, args.labels, seed)
        for name in names:
            print(f"  seed {seed} {name}, {args.curve_epochs} supervised epochs", flush=True)
            params = {**SEARCH[name], "finetune_epochs": args.curve_epochs}
            model = classifier(seed, args.device, **params)
            curve = TestErrorCurve(X_test, y_test, args.every, args.average_from)
            with listening(curve):
                model.fit(X_train, y)
            print(f"    seconds into the fit at the end of each stage: {curve.phase_seconds}", flush=True)
            print(f"    resolved: {getattr(model, 'resolved_params_', {})}", flush=True)
            rows.append((name, seed, "last", curve.errors))
            if curve.averaged_errors:
                rows.append((name, seed, f"averaged from {args.average_from}", curve.averaged_errors))
            rows.append((name, seed, "fit s (evaluations left out)", curve.fit_seconds))
    epochs = sorted({epoch for *_, errors in rows for epoch in errors})
    print(f"\n{args.labels} labels, test error % after each number of supervised epochs\n")
    print_table(
        ["configuration", "seed", "weights", *map(str, epochs)],
        [
            [name, seed, weights, *(f"{errors[e]:.2f}" if e in errors else "" for e in epochs)]
            for name, seed, weights, errors in rows
        ],
    )


def run_full(args, X_train, y_train, X_test, y_test):
    epochs = args.epochs
    contenders = {
        "pretrained": lambda: classifier(
            0,
            pretrain_epochs=5,
            noise="masking",
            noise_level=0.25,
            finetune_epochs=epochs,
            dropout=args.dropout,
            early_stopping=False,
        ).fit(X_train, y_train),
        # The same network, noise and epochs: pretraining is the one difference.
        "no pretraining": lambda: classifier(
            0, pretrain_epochs=0, noise="masking", noise_level=0.25, finetune_epochs=epochs, dropout=args.dropout
        ).fit(X_train, y_train),
        "MLPClassifier": lambda: MLPClassifier(
            HIDDEN, batch_size=256, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=0
        ).fit(X_train, y_train),
    }
    rows = []
    for name, fit in contenders.items():
        if name not in args.full_methods:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model, seconds = timed(fit)
        rows.append([name, f"{error(model, X_test, y_test):.2f}", f"{seconds:.0f}"])
        print(f"  {name}: {rows[-1][1]} % in {seconds:.0f} s", flush=True)
    print(f"\nall {len(y_train)} labels, {epochs} supervised epochs, dropout {args.dropout}\n")
    print_table(["method", "test error %", "fit s"], rows)


def run_speed(args, X_train, y_train, X_test, y_test):
    epochs = args.epochs
    times = {"ours": [], "MLPClassifier": []}
    for contender in times:
        if contender == "ours":
            classifier(0, pretrain_epochs=0, finetune_epochs=1).fit(X_train[:512], y_train[:512])
    for round_ in range(args.rounds):
        for contender in times:
            if contender == "ours":
                fit = classifier(round_, pretrain_epochs=0, finetune_epochs=epochs).fit
            else:
                fit = MLPClassifier(
                    HIDDEN, batch_size=256, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=round_
                ).fit
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                _, seconds = timed(lambda fit=fit: fit(X_train, y_train))
            times[contender].append(seconds)
    ratios = [m / o for m, o in zip(times["MLPClassifier"], times["ours"], strict=True)]
    print(f"\nsupervised stage alone, {epochs} epochs of {len(X_train)} rows, batch 256, {args.rounds} rounds\n")
    print_table(
        ["contender", "fit s (median)", "s per epoch"],
        [[name, f"{statistics.median(t):.1f}", f"{statistics.median(t) / epochs:.2f}"] for name, t in times.items()],
    )
    print(f"\nMLPClassifier / ours: {statistics.median(ratios):.2f}x (range {min(ratios):.2f}x - {max(ratios):.2f}x)")


def run_regression(args):
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    ours = {"finetune_epochs": 200, "batch_size": 32, "noise": "masking", "device": "cpu", "random_state": 0}
    contenders = {
        "StackedAutoencoderRegressor (pretrained)": StackedAutoencoderRegressor((32, 16), pretrain_epochs=20, **ours),
        "StackedAutoencoderRegressor (no pretraining)": StackedAutoencoderRegressor(
            (32, 16), pretrain_epochs=0, **ours
        ),
        "MLPRegressor": MLPRegressor(hidden_layer_sizes=(32, 16), batch_size=32, max_iter=200, random_state=0),
    }
    rows = []
    for name, model in contenders.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            scores = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=cv, scoring="r2")
            seconds = time.perf_counter() - started
        rows.append([name, f"{scores.mean():.3f}", f"{scores.std():.3f}", f"{seconds:.1f}"])
    print("\ndiabetes (442 x 10), StandardScaler in the pipeline, 5-fold cross-validated R², 200 epochs\n")
    print_table(["model", "R² (mean)", "std", "s for 5 folds"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["few", "ablation", "search", "curve", "full", "speed", "regression"])
    parser.add_argument("--data-dir", help="folder with the MNIST (or Fashion-MNIST) IDX gzip files")
    parser.add_argument(
        "--labels", type=int, default=1000, help="labeled training rows (few, ablation, search; 0: all, search)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds (few, search, curve)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (few, search, curve)")
    parser.add_argument("--curve-epochs", type=int, default=100, help="supervised epochs (curve)")
    parser.add_argument("--every", type=int, default=10, help="epochs between test errors (curve)")
    parser.add_argument("--average-from", type=int, default=20, help="the first epoch of the averaged weights (curve)")
    parser.add_argument("--epochs", type=int, default=2, help="supervised epochs (full, speed)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout (full)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (speed)")
    parser.add_argument("--skip", type=int, default=0, help="levers to skip, from the first (ablation)")
    parser.add_argument("--device", default="cpu", help="where our classifiers train (default cpu)")
    parser.add_argument("--recipe", default="reconstruction", choices=list(RECIPES), help="the recipe (few)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["recipe", "none", "pca", "selftraining"],
        choices=["recipe", "none", "pca", "selftraining", "labelspreading"],
        help="which methods the few-label table runs",
    )
    parser.add_argument(
        "--full-methods",
        nargs="+",
        default=["pretrained", "no pretraining", "MLPClassifier"],
        choices=["pretrained", "no pretraining", "MLPClassifier"],
        help="which methods the all-labels table runs",
    )
    parser.add_argument("--only", nargs="+", help="the configurations that search runs (default: all)")
    parser.add_argument(
        "--unlabeled", type=int, help="keep only this many unlabeled training rows, drawn per seed (search)"
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}")
    if args.command == "regression":
        run_regression(args)
        return
    X_train, y_train, X_test, y_test = load_mnist_like(args.data_dir)
    commands = {
        "few": run_few,
        "ablation": run_ablation,
        "search": run_search,
        "curve": run_curve,
        "full": run_full,
        "speed": run_speed,
    }
    commands[args.command](args, X_train, y_train, X_test, y_test)


if __name__ == "__main__":
    main()
