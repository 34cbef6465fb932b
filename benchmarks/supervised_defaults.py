"""How the classifier's and the regressor's "auto" defaults are chosen: candidates, data sets left out.

Two regimes, as ``sk_stackae._auto`` resolves them:

- **unlabeled rows present**: each data set is split into a training part
  (a few labels per class, every other row marked -1, or NaN for a
  regressor) and a test part. The candidates are the ``"auto"`` defaults and
  variations of them; the peers (``LabelSpreading``,
  ``SelfTrainingClassifier``, ``MLPClassifier`` and
  ``HistGradientBoostingClassifier`` on the labeled rows) run in the same
  process on the same splits. Test accuracy (R² for regressors).
- **every row labeled**: 5-fold cross-validation in a scaling pipeline,
  the ``"auto"`` defaults (a plain network) against variations and against
  ``MLPClassifier``/``MLPRegressor`` of the same shape and epochs.

For each data set in turn, the candidate with the best mean on the other
data sets of its regime is measured on the one left out: those left-out
figures are what defaults chosen this way give on data they were not chosen
on. None of the data sets is a test set of a headline figure: the MNIST and
Fashion-MNIST subsets are drawn from their training images and tested on
their training images' remainder.

Run ``python benchmarks/supervised_defaults.py --data-dir ../shared/datasets``
(``--quick`` runs the small sets alone).
"""

import argparse
import statistics
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
from _common import load_mnist_like, machine_description, print_table
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

from sk_stackae import StackedAutoencoderClassifier, StackedAutoencoderRegressor, _auto

# The plain network's settings, plus 10 epochs of masking-noise pretraining.
PLAIN_PRETRAINING = {**_auto.EVERY_ROW_LABELED, "pretrain_epochs": 10, "noise": "masking"}
# Candidates for the regime with unlabeled rows: (changes to the "auto"
# settings, whether "auto" epochs follow the step budget of sk_stackae._auto).
SEMI_SUPERVISED = {
    "auto: epochs by steps, adversarial step": ({}, True),
    "epochs by steps, no adversarial step": ({"adversarial_epsilon": 0.0}, True),
    "fixed epochs (5, 5, 20, 20), adversarial step": ({}, False),
    "fixed epochs, no adversarial step": ({"adversarial_epsilon": 0.0}, False),
    "pretraining (10 epochs, masking), 50 supervised epochs, no terms": (PLAIN_PRETRAINING, False),
}
# Candidates for the regime where every row is labeled.
EVERY_LABEL = {
    "auto: plain network, epochs by steps": ({}, True),
    "plain network, 50 epochs": ({}, False),
    "masking noise 0.25, epochs by steps": ({"noise": "masking"}, True),
    "pretraining (10 epochs, masking), 50 epochs": ({"pretrain_epochs": 10, "noise": "masking"}, False),
}


@contextmanager
def step_budget(on):
    """The "auto" epochs as the package chooses them (on), or the fixed floors alone (off)."""
    saved = dict(_auto.MIN_STEPS), dict(_auto.MIN_STEPS_EVERY_ROW_LABELED)
    if not on:
        _auto.MIN_STEPS.update(dict.fromkeys(_auto.MIN_STEPS, 0))
        _auto.MIN_STEPS_EVERY_ROW_LABELED.update(dict.fromkeys(_auto.MIN_STEPS_EVERY_ROW_LABELED, 0))
    try:
        yield
    finally:
        _auto.MIN_STEPS.update(saved[0])
        _auto.MIN_STEPS_EVERY_ROW_LABELED.update(saved[1])


def ours(estimator_class, change, budget, **params):
    """A factory of a fit function of ``estimator_class(**params, **change)`` under ``step_budget(budget)``."""

    def fit(X, y):
        with step_budget(budget):
            return estimator_class(**COMMON, **params, **change).fit(X, y)

    return fit


COMMON = {"device": "cpu", "random_state": 0}


# ------------------------------------------------------------------ data


def few_labels(y, per_class, seed):
    """``y`` with all but ``per_class`` rows of each class set to -1."""
    rng = np.random.RandomState(seed)
    y_few = np.full(len(y), -1)
    for label in np.unique(y):
        rows = rng.choice(np.flatnonzero(y == label), per_class, replace=False)
        y_few[rows] = label
    return y_few


def standardised_split(X, y, test_size, per_class):
    """A stratified split, standardised on its training part, with ``per_class`` labels a class kept."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), few_labels(y_train, per_class, 0), scaler.transform(X_test), y_test


def semi_supervised_sets(data_dir, quick):
    """name -> (X_train, y_few, X_test, y_test), every row scaled as a user's pipeline would."""
    sets = {}
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.5, stratify=y, random_state=0)
    sets["digits, 50 labels"] = (X_train, few_labels(y_train, 5, 0), X_test, y_test)
    sets["digits, 200 labels"] = (X_train, few_labels(y_train, 20, 0), X_test, y_test)
    sets["breast_cancer, 20 labels"] = standardised_split(*load_breast_cancer(return_X_y=True), 0.3, 10)
    X, y = make_classification(
        n_samples=20000, n_features=50, n_informative=10, n_redundant=10, n_classes=4, random_state=0
    )
    sets["synthetic 20k x 50, 200 labels"] = standardised_split(X, y, 0.25, 50)
    if not quick and data_dir:
        for name, folder in (("MNIST", "mnist"), ("Fashion-MNIST", "fashion-mnist")):
            X, y, _, _ = load_mnist_like(Path(data_dir) / folder)
            rows = np.random.RandomState(0).permutation(len(y))
            train, test = rows[:10000], rows[10000:15000]
            sets[f"{name} 10k, 500 labels"] = (X[train], few_labels(y[train], 50, 0), X[test], y[test])
    return sets


def every_label_sets():
    """name -> (X, y, scaler) for 5-fold cross-validation."""
    sets = {}
    X, y = load_digits(return_X_y=True)
    sets["digits"] = (X, y, MinMaxScaler)
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine), ("iris", load_iris)):
        X, y = loader(return_X_y=True)
        sets[name] = (X, y, StandardScaler)
    return sets


# ------------------------------------------------------------- contenders


def semi_supervised_peers():
    def labeled_only(model):
        def fit(X, y):
            return model.fit(X[y >= 0], y[y >= 0])

        return fit

    return {
        "LabelSpreading(kNN)": lambda: LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100).fit,
        "SelfTraining(LogisticRegression)": lambda: (
            SelfTrainingClassifier(LogisticRegression(max_iter=1000), max_iter=5).fit
        ),
        "MLPClassifier (256, 64), labeled rows": lambda: labeled_only(
            MLPClassifier(hidden_layer_sizes=(256, 64), max_iter=200, random_state=0)
        ),
        "HistGradientBoosting, labeled rows": lambda: labeled_only(HistGradientBoostingClassifier(random_state=0)),
    }


def run_semi_supervised(sets):
    scores, seconds = {}, {}
    contenders = {
        **{
            name: (
                lambda change=change, budget=budget: ours(
                    StackedAutoencoderClassifier, change, budget, unlabeled_label=-1
                )
            )
            for name, (change, budget) in SEMI_SUPERVISED.items()
        },
        **semi_supervised_peers(),
    }
    for data, (X_train, y_few, X_test, y_test) in sets.items():
        for name, make in contenders.items():
            started = time.perf_counter()
            model = make()(X_train, y_few)
            seconds[data, name] = time.perf_counter() - started
            scores[data, name] = float(np.mean(model.predict(X_test) == y_test))
        print(f"{data} done", flush=True)
    return list(contenders), scores, seconds


def run_every_label(sets):
    scores = {}
    contenders = {
        **{
            name: (lambda change=change: StackedAutoencoderClassifier(**COMMON, **change), budget)
            for name, (change, budget) in EVERY_LABEL.items()
        },
        "MLPClassifier (256, 64), 50 epochs": (
            lambda: MLPClassifier(hidden_layer_sizes=(256, 64), max_iter=50, random_state=0),
            None,
        ),
        "MLPClassifier defaults": (lambda: MLPClassifier(random_state=0), None),
        "HistGradientBoosting": (lambda: HistGradientBoostingClassifier(random_state=0), None),
    }
    for data, (X, y, scaler) in sets.items():
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        for name, (make, budget) in contenders.items():
            with step_budget(budget) if budget is not None else nullcontext():
                scores[data, name] = float(cross_val_score(make_pipeline(scaler(), make()), X, y, cv=folds).mean())
        print(f"{data} done", flush=True)
    return list(contenders), scores


# Candidates for the regressor with unlabeled (NaN) rows: (changes to the
# "auto" settings, whether "auto" resolves to the semi-supervised recipe).
REGRESSION_WITH_UNLABELED_ROWS = {
    "auto: plain network on the labeled rows": ({}, False),
    "semi-supervised recipe, as the classifier's": ({}, True),
    "recipe, no adversarial step": ({"adversarial_epsilon": 0.0}, True),
    "denoising pretraining alone (no semi-supervised terms)": (
        {"consistency_weight": 0.0, "reconstruction_weight": 0.0, "adversarial_epsilon": 0.0},
        True,
    ),
}


@contextmanager
def regressor_recipe(on):
    """The regressor's "auto" as the package has it (off), or resolving as the classifier's (on)."""
    saved = StackedAutoencoderRegressor._unlabeled_rows_switch_terms_on
    StackedAutoencoderRegressor._unlabeled_rows_switch_terms_on = on
    try:
        yield
    finally:
        StackedAutoencoderRegressor._unlabeled_rows_switch_terms_on = saved


def regression_sets():
    """name -> (X, y), standardised by the pipelines and splits below."""
    from sklearn.datasets import make_friedman1, make_friedman2, make_friedman3

    return {
        "diabetes": load_diabetes(return_X_y=True),
        "friedman1 5000 x 10": make_friedman1(n_samples=5000, noise=1.0, random_state=0),
        "friedman2 5000 x 4": make_friedman2(n_samples=5000, noise=10.0, random_state=0),
        "friedman3 5000 x 4": make_friedman3(n_samples=5000, noise=0.1, random_state=0),
    }


def run_regression():
    """Every label (5-fold R²), and a fifth of the rows labeled, the rest NaN (R² on a test part)."""
    every, semi = {}, {}
    for name, (X, y) in regression_sets().items():
        folds = KFold(5, shuffle=True, random_state=0)
        for contender, model in {
            "auto": StackedAutoencoderRegressor(**COMMON),
            "MLPRegressor (256, 64), 50 epochs": MLPRegressor(
                hidden_layer_sizes=(256, 64), max_iter=50, random_state=0
            ),
            "MLPRegressor defaults": MLPRegressor(random_state=0),
        }.items():
            every[name, contender] = float(
                cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=folds).mean()
            )
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        labeled = np.random.RandomState(0).rand(len(y_train)) < 0.2
        y_few = np.where(labeled, y_train, np.nan)
        for contender, (change, recipe) in REGRESSION_WITH_UNLABELED_ROWS.items():
            with regressor_recipe(recipe):
                model = StackedAutoencoderRegressor(unlabeled_label=np.nan, **COMMON, **change).fit(X_train, y_few)
            semi[name, contender] = model.score(X_test, y_test)
        mlp = MLPRegressor(hidden_layer_sizes=(256, 64), max_iter=200, random_state=0)
        semi[name, "MLPRegressor (256, 64), labeled rows"] = mlp.fit(X_train[labeled], y_train[labeled]).score(
            X_test, y_test
        )
        print(f"{name} done", flush=True)
    names = list(regression_sets())
    print_scores(
        "Regressor, every row labeled: 5-fold R²",
        ["auto", "MLPRegressor (256, 64), 50 epochs", "MLPRegressor defaults"],
        every,
        names,
    )
    semi_names = [*REGRESSION_WITH_UNLABELED_ROWS, "MLPRegressor (256, 64), labeled rows"]
    print_scores("Regressor, a fifth of the rows labeled (the rest NaN): test R²", semi_names, semi, names)
    print_left_out(
        "the regressor with unlabeled rows",
        list(REGRESSION_WITH_UNLABELED_ROWS),
        semi,
        names,
        "MLPRegressor (256, 64), labeled rows",
    )


# ---------------------------------------------------------------- tables


def print_scores(title, names, scores, datasets, seconds=None):
    print(f"\n### {title}\n")
    rows = []
    for name in names:
        values = [scores[data, name] for data in datasets]
        row = [name, *(f"{v:.3f}" for v in values), f"**{statistics.mean(values):.3f}**"]
        if seconds is not None:
            row.append(f"{sum(seconds[data, name] for data in datasets):.0f}")
        rows.append(row)
    print_table(["contender", *datasets, "mean", *(["fit s, total"] if seconds else [])], rows)


def print_left_out(title, candidates, scores, datasets, reference):
    print(f"\n### Left out: {title}\n")
    rows, left_out = [], []
    for data in datasets:
        others = [other for other in datasets if other != data]
        best = max(candidates, key=lambda name: statistics.mean(scores[other, name] for other in others))
        left_out.append(scores[data, best])
        rows.append([data, best, f"{scores[data, best]:.3f}", f"{scores[data, reference]:.3f}"])
    rows.append(["**mean**", "", f"**{statistics.mean(left_out):.3f}**", ""])
    print_table(["left-out set", "candidate chosen on the others", "its score", reference], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the datasets folder: mnist/, fashion-mnist/")
    parser.add_argument("--quick", action="store_true", help="the small sets only")
    parser.add_argument("--only", choices=["classifier", "regressor"], help="one estimator's tables alone")
    args = parser.parse_args()
    print(f"Machine: {machine_description()}")
    warnings.simplefilter("ignore", ConvergenceWarning)

    if args.only == "regressor":
        run_regression()
        return
    sets = semi_supervised_sets(args.data_dir, args.quick)
    names, scores, seconds = run_semi_supervised(sets)
    print_scores("Unlabeled rows present: test accuracy", names, scores, list(sets), seconds)
    print_left_out("unlabeled rows present", list(SEMI_SUPERVISED), scores, list(sets), "LabelSpreading(kNN)")

    every = every_label_sets()
    names, scores = run_every_label(every)
    print_scores("Every row labeled: 5-fold accuracy", names, scores, list(every))
    print_left_out("every row labeled", list(EVERY_LABEL), scores, list(every), "MLPClassifier (256, 64), 50 epochs")
    if args.only != "classifier":
        run_regression()


if __name__ == "__main__":
    main()
