"""StackedAutoencoderClassifier and StackedAutoencoderRegressor: stages, labels, predictions, failures."""

import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier, StackedAutoencoderRegressor
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._losses import Batch
from sk_stackae._tasks import CLASSIFICATION, Consistency, PseudoLabels, VirtualAdversarialPerturbation

FAST = {"batch_size": 64, "random_state": 0}
# The stages and terms that "auto" turns on with unlabeled rows, off: the tests
# below switch on the one they are about.
NO_TERMS = {
    "unsupervised_finetune_epochs": 0,
    "head_warmup_epochs": 0,
    "reconstruction_weight": 0.0,
    "consistency_weight": 0.0,
    "adversarial_epsilon": 0.0,
}


class PhaseLog(TrainingListener):
    def __init__(self):
        self.phases = []
        self.results = []

    def phase_started(self, phase):
        self.phases.append(phase)

    def phase_ended(self, phase, result):
        self.results.append(result)

    @property
    def names(self):
        return [phase.name for phase in self.phases]


@pytest.fixture(scope="module")
def few_labels(digits):
    """Digits with one row in ten labeled, the rest marked -1."""
    X, y = digits
    y_few = np.where(np.arange(len(y)) % 10 == 0, y, -1)
    return X, y, y_few


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# ---------------------------------------------------------------- stages


def test_the_stages_run_in_order_pretraining_on_every_row_and_the_head_on_labeled_rows(few_labels):
    X, _, y_few = few_labels
    log = PhaseLog()
    model = StackedAutoencoderClassifier(
        (32, 8),
        pretrain_epochs=2,
        unsupervised_finetune_epochs=2,
        head_warmup_epochs=2,
        finetune_epochs=3,
        reconstruction_weight=0.0,
        consistency_weight=0.0,
        unlabeled_label=-1,
        **FAST,
    )
    with listening(log):
        model.fit(X, y_few)
    assert log.names == [
        "pretrain layer 1/2",
        "pretrain layer 2/2",
        "finetune",
        "head warm-up",
        "supervised finetune",
    ]
    pretrain, _, finetune, warmup, supervised = log.phases
    # The unsupervised stages see every row; the supervised ones the labeled rows only.
    assert pretrain.train_indices is None and finetune.train_indices is None
    labeled = set(np.flatnonzero(y_few >= 0).tolist())
    for phase in (warmup, supervised):
        assert set(phase.train_indices.tolist()) == labeled
    # The warm-up trains the head alone; the fine-tune the encoder and the head.
    network = model.network_
    assert {id(p) for p in warmup.parameters} == {id(p) for p in network.head.parameters()}
    assert {id(p) for p in supervised.parameters} == {
        id(p) for p in (*network.encoder.parameters(), *network.head.parameters())
    }
    assert [len(curve) for curve in model.pretrain_loss_curves_] == [2, 2]
    assert len(model.unsupervised_loss_curve_) == 2
    assert len(model.loss_curve_) == model.n_iter_ == 3


def test_without_pretraining_it_is_a_plain_perceptron(few_labels):
    X, y, _ = few_labels
    log = PhaseLog()
    with listening(log):
        model = StackedAutoencoderClassifier((32,), pretrain_epochs=0, finetune_epochs=2, **FAST).fit(X, y)
    assert log.names == ["supervised finetune"]
    assert model.pretrain_loss_curves_ == [[]]


def test_the_head_starts_at_the_class_prior(few_labels):
    X, _, y_few = few_labels
    log = PhaseLog()

    class FirstScores(TrainingListener):
        def phase_started(self, phase):
            with torch.no_grad():
                (scores,), _ = phase.training_pass.forward(phase.rows.tensor[:5])
            self.probabilities = torch.softmax(scores, dim=1)

    first = FirstScores()
    with listening(log, first):
        StackedAutoencoderClassifier(
            (16,), pretrain_epochs=0, finetune_epochs=1, unlabeled_label=-1, **NO_TERMS, **FAST
        ).fit(X, y_few)
    labels = y_few[y_few >= 0]
    prior = np.bincount(labels, minlength=10) / len(labels)
    np.testing.assert_allclose(first.probabilities.cpu().numpy(), np.tile(prior, (5, 1)), rtol=1e-5)


def test_pseudo_labels_train_unlabeled_rows_toward_their_predicted_class(few_labels):
    X, _, y_few = few_labels
    log = PhaseLog()
    model = StackedAutoencoderClassifier(
        (32,), pretrain_epochs=0, finetune_epochs=2, pseudo_label_weight=0.5, unlabeled_label=-1, **NO_TERMS, **FAST
    )
    with listening(log):
        model.fit(X, y_few)
    supervised = log.phases[-1]
    (pseudo_labels,) = terms_of(supervised, PseudoLabels)
    assert pseudo_labels.weight == 0.5
    # Unlabeled rows are in the epoch now; the decoder is not trained.
    assert set(supervised.train_indices.tolist()) == set(range(len(X)))
    assert not {id(p) for p in model.network_.decoder.parameters()} & {id(p) for p in supervised.parameters}
    # The term is the cross-entropy of each unlabeled row against its argmax.
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    target = torch.tensor([-1, -1, 0])
    expected = torch.nn.functional.cross_entropy(scores[:2], torch.tensor([0, 1]))
    torch.testing.assert_close(pseudo_labels.value(scores, Batch(scores, target)), 0.5 * expected)


def test_reconstruction_weight_keeps_the_decoder_training_on_every_row(few_labels):
    X, _, y_few = few_labels
    log = PhaseLog()
    model = StackedAutoencoderClassifier(
        (32, 8), pretrain_epochs=1, finetune_epochs=2, reconstruction_weight=0.5, unlabeled_label=-1, **FAST
    )
    with listening(log):
        model.fit(X, y_few)
    supervised = log.phases[-1]
    assert {id(p) for p in supervised.parameters} == {id(p) for p in model.network_.parameters()}
    rows = supervised.train_indices.tolist()
    n_labeled, n_unlabeled = int((y_few >= 0).sum()), int((y_few < 0).sum())
    # Every unlabeled row once, the labeled rows repeated to make up about half.
    assert sorted(set(rows)) == list(range(len(X)))
    assert len(rows) == n_unlabeled + n_labeled * round(n_unlabeled / n_labeled)


def semi_supervised_task(task, few_labels, diabetes):
    """``(X, y_few, estimator class, unlabeled_label)``: digits with one label in ten, or diabetes with one in four."""
    if task == "classification":
        X, _, y_few = few_labels
        return X, y_few, StackedAutoencoderClassifier, -1
    X, y = diabetes
    return X, np.where(np.arange(len(y)) % 4 == 0, y, np.nan), StackedAutoencoderRegressor, np.nan


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_consistency_trains_every_row_toward_the_prediction_of_its_clean_input(few_labels, diabetes, task):
    X, y_few, model, unlabeled_label = semi_supervised_task(task, few_labels, diabetes)
    log = PhaseLog()
    model = model(
        (32, 8),
        pretrain_epochs=1,
        finetune_epochs=2,
        dropout=0.2,
        unlabeled_label=unlabeled_label,
        **{**NO_TERMS, "consistency_weight": 0.5},
        **FAST,
    )
    with listening(log):
        model.fit(X, y_few)
    supervised = log.phases[-1]
    (consistency,) = terms_of(supervised, Consistency)
    assert consistency.weight == 0.5
    # Every row joins the epoch; the decoder does not train (no reconstruction).
    assert set(supervised.train_indices.tolist()) == set(range(len(X)))
    assert not {id(p) for p in model.network_.decoder.parameters()} & {id(p) for p in supervised.parameters}
    # The teacher is the fitted network on clean rows: no dropout, no noise.
    rows = torch.as_tensor(X[:20], dtype=torch.float32, device=model.device_)
    teacher = consistency.teacher.scores(Batch(rows))
    np.testing.assert_allclose(teacher.cpu().numpy(), model._scores(X[:20].astype(np.float32)), rtol=1e-5, atol=1e-6)
    assert not teacher.requires_grad
    # Its value: the divergence of the predictions from the teacher's, zero where they agree.
    scores = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, -1.0]])
    teacher_scores = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]])
    if task == "classification":
        p, q = torch.softmax(teacher_scores, 1), torch.softmax(scores, 1)
        expected = (p * (p / q).log()).sum(1).mean()
    else:
        expected = (scores - teacher_scores).square().mean()
    task_object = consistency.task
    torch.testing.assert_close(task_object.divergence(scores, teacher_scores), expected)
    assert float(task_object.divergence(teacher_scores, teacher_scores)) == pytest.approx(0.0, abs=1e-7)
    # By hand, the weighted value and the gradient that autograd finds.
    scores.requires_grad_(True)
    (consistency.weight * task_object.divergence(scores, teacher_scores)).backward()
    value, gradient = task_object.divergence_and_gradient(scores.detach().clone(), teacher_scores, consistency.weight)
    torch.testing.assert_close(value, 0.5 * expected)
    torch.testing.assert_close(gradient, scores.grad)


def test_consistency_without_noise_or_dropout_is_called_out(few_labels):
    X, _, y_few = few_labels
    model = StackedAutoencoderClassifier(
        (16,),
        pretrain_epochs=0,
        finetune_epochs=1,
        consistency_weight=1.0,
        adversarial_epsilon=0.0,
        noise=None,
        unlabeled_label=-1,
        **FAST,
    )
    with pytest.warns(UserWarning, match="consistency_weight=1.0 does nothing without noise, dropout"):
        model.fit(X, y_few)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.set_params(dropout=0.1).fit(X, y_few)


def test_consistency_lifts_accuracy_with_few_labels(digits):
    # Five labels per class of digits; every other row unlabeled. Measured on
    # three label draws: 20.7 % of the held-out rows wrong without the
    # consistency term, 15.2 % with weight 1 (a 2-core Xeon). The bar asks for
    # a clear part of that gain on one draw.
    X, y = digits
    order = np.random.RandomState(0).permutation(len(y))
    test, train = order[:597], order[597:]
    labeled = np.zeros(len(train), dtype=bool)
    for label in range(10):
        labeled[np.flatnonzero(y[train] == label)[:5]] = True
    y_few = np.where(labeled, y[train], -1)

    def error(consistency_weight):
        model = StackedAutoencoderClassifier(
            (64, 32),
            pretrain_epochs=20,
            unsupervised_finetune_epochs=5,
            head_warmup_epochs=20,
            finetune_epochs=50,
            reconstruction_weight=1.0,
            consistency_weight=consistency_weight,
            batch_size=32,
            unlabeled_label=-1,
            device="cpu",
            random_state=0,
        ).fit(X[train], y_few)
        return 1.0 - model.score(X[test], y[test])

    without, with_consistency = error(0.0), error(1.0)
    assert with_consistency < without - 0.02, (without, with_consistency)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_virtual_adversarial_perturbation_moves_each_row_where_the_prediction_changes_most(
    few_labels, diabetes, task
):
    X, y_few, model, unlabeled_label = semi_supervised_task(task, few_labels, diabetes)
    log = PhaseLog()
    model = model(
        (32, 8),
        pretrain_epochs=1,
        finetune_epochs=3,
        consistency_weight=1.0,
        adversarial_epsilon=0.7,
        noise=None,
        unlabeled_label=unlabeled_label,
        **FAST,
    )
    with listening(log), warnings.catch_warnings():
        # The perturbation is the corruption: no warning about a consistency term without one.
        warnings.simplefilter("error", UserWarning)
        model.fit(X, y_few)
    perturbation = log.phases[-1].objective.perturbation
    assert perturbation.epsilon == 0.7
    teacher = perturbation.teacher.forward
    rows = torch.as_tensor(X[:100], dtype=torch.float32, device=model.device_)
    generator = torch.Generator(model.device_).manual_seed(0)
    moved = perturbation(rows, Batch(rows), generator)
    step = moved - rows
    torch.testing.assert_close(torch.linalg.vector_norm(step, dim=1), torch.full((100,), 0.7, device=model.device_))

    def divergences(inputs):
        with torch.no_grad():
            scores, teacher_scores = teacher(inputs), teacher(rows)
        if task == "regression":
            return (scores - teacher_scores).square().mean(dim=1)
        p, log_q = torch.softmax(teacher_scores, dim=1), torch.log_softmax(scores, dim=1)
        return (p * (p.log() - log_q)).sum(dim=1)

    # Against steps of the same length in random directions, the found one
    # changes the prediction more, row by row, nearly everywhere.
    random_step = torch.randn(rows.shape, generator=generator, device=model.device_)
    random_step *= 0.7 / torch.linalg.vector_norm(random_step, dim=1, keepdim=True)
    adversarial, random = divergences(moved), divergences(rows + random_step)
    assert float((adversarial > random).float().mean()) > 0.9
    assert float(adversarial.mean()) > 3 * float(random.mean())


def test_virtual_adversarial_training_makes_the_prediction_steadier(digits):
    # What the term trains down: the divergence of the prediction under the
    # steps that change it most. Five labels per class of digits, pixels in
    # [0, 1]; the same consistency fit with and without the perturbation.
    X, y = digits
    labeled = np.zeros(len(y), dtype=bool)
    for label in range(10):
        labeled[np.flatnonzero(y == label)[:5]] = True
    y_few = np.where(labeled, y, -1)
    rows = torch.as_tensor(X, dtype=torch.float32)

    def sensitivity(adversarial_epsilon):
        log = PhaseLog()
        with listening(log):
            StackedAutoencoderClassifier(
                (32,),
                pretrain_epochs=2,
                finetune_epochs=15,
                consistency_weight=1.0,
                adversarial_epsilon=adversarial_epsilon,
                dropout=0.1,
                noise=None,
                unlabeled_label=-1,
                device="cpu",
                **FAST,
            ).fit(X, y_few)
        (consistency,) = [term for term in log.phases[-1].objective.terms if isinstance(term, Consistency)]
        teacher = consistency.teacher
        probe = VirtualAdversarialPerturbation(0.5, teacher, CLASSIFICATION.divergence)
        moved = probe(rows, Batch(rows), torch.Generator().manual_seed(0))
        with torch.no_grad():
            return float(CLASSIFICATION.divergence(teacher.forward(moved), teacher.forward(rows)))

    # Measured on three seeds (a 2-core Xeon): 0.24 with the perturbation
    # against 0.46-0.48 without, both with the consistency term under dropout.
    assert sensitivity(0.5) < 0.7 * sensitivity(0.0)


class SupervisedWeights(TrainingListener):
    """The trained parameters at the end of every supervised epoch, as the optimiser left them."""

    def __init__(self):
        self.weights = []

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        if phase.name == "supervised finetune":
            self.weights.append([p.detach().clone() for p in phase.parameters])
            self.parameters = phase.parameters


def mean_of(snapshots):
    return [torch.stack(tensors).mean(dim=0) for tensors in zip(*snapshots, strict=True)]


def test_weight_averaging_ends_with_the_mean_of_the_epochs_weights(few_labels):
    X, _, y_few = few_labels
    params = dict(pretrain_epochs=1, head_warmup_epochs=1, finetune_epochs=6, unlabeled_label=-1, **FAST)
    record = SupervisedWeights()
    with listening(record):
        averaged = StackedAutoencoderClassifier((32, 8), average_from_epoch=4, **params).fit(X, y_few)
    assert len(record.weights) == 6
    for parameter, mean in zip(record.parameters, mean_of(record.weights[3:]), strict=True):
        torch.testing.assert_close(parameter.detach(), mean)
    # Averaging changes nothing about training: the same run without it ends
    # with the last of the same weights.
    last = StackedAutoencoderClassifier((32, 8), **params).fit(X, y_few)
    np.testing.assert_allclose(last.loss_curve_, averaged.loss_curve_, rtol=1e-6)
    last_weights = dict(zip(map(id, record.parameters), record.weights[-1], strict=True))
    for name, parameter in last.network_.named_parameters():
        fitted = dict(averaged.network_.named_parameters())[name]
        if id(fitted) in last_weights:
            torch.testing.assert_close(parameter.detach(), last_weights[id(fitted)])


def test_weight_averaging_with_early_stopping_validates_and_keeps_the_mean(diabetes):
    X, y = diabetes
    record = SupervisedWeights()
    with listening(record):
        model = StackedAutoencoderRegressor(
            (16,),
            pretrain_epochs=0,
            finetune_epochs=40,
            average_from_epoch=1,
            learning_rate_init=1e-2,
            early_stopping=True,
            n_iter_no_change=3,
            tol=1e-2,
            **FAST,
        ).fit(X, y)
    assert len(record.weights) == len(model.validation_scores_) < 40  # it stopped early
    # Every validated weight set was a mean; the best one is what the fit kept,
    # not the weights the optimiser had at that epoch.
    best = int(np.argmax(model.validation_scores_))
    kept = [parameter.detach() for parameter in record.parameters]
    for parameter, mean in zip(kept, mean_of(record.weights[: best + 1]), strict=True):
        torch.testing.assert_close(parameter, mean)
    assert not all(torch.equal(p, raw) for p, raw in zip(kept, record.weights[best], strict=True))
    assert model.best_validation_score_ == max(model.validation_scores_)


def test_weight_averaging_leaves_partial_fit_alone_and_refuses_a_start_after_the_last_epoch(few_labels):
    X, y, _ = few_labels
    params = dict(hidden_layer_sizes=(16,), pretrain_epochs=0, **FAST)
    plain = StackedAutoencoderClassifier(**params)
    averaged = StackedAutoencoderClassifier(average_from_epoch=1, **params)
    for model in (plain, averaged):
        for _ in range(2):
            model.partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_array_equal(plain.predict_proba(X), averaged.predict_proba(X))
    with pytest.raises(ValueError, match="average_from_epoch=60 is after the last supervised epoch"):
        StackedAutoencoderClassifier(finetune_epochs=50, average_from_epoch=60, **params).fit(X, y)


# ---------------------------------------------------------- semi-supervised


def test_unlabeled_rows_join_pretraining_and_classes_never_hold_the_marker(few_labels):
    X, _, y_few = few_labels
    model = StackedAutoencoderClassifier((16,), pretrain_epochs=1, finetune_epochs=2, unlabeled_label=-1, **FAST)
    model.fit(X, y_few)
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    assert set(model.predict(X)) <= set(range(10))


def test_without_unlabeled_label_minus_one_is_an_ordinary_class():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = np.where(X[:, 0] > 0, 1, -1)
    model = StackedAutoencoderClassifier((8,), pretrain_epochs=1, finetune_epochs=30, batch_size=16, random_state=0)
    model.fit(X, y)
    np.testing.assert_array_equal(model.classes_, [-1, 1])
    assert model.score(X, y) > 0.8


def test_string_labels_with_an_unlabeled_marker(few_labels):
    X, y, _ = few_labels
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"], dtype=object)
    labels = names[y].astype(object)
    labels[np.arange(len(y)) % 10 != 0] = "?"
    model = StackedAutoencoderClassifier((16,), pretrain_epochs=1, finetune_epochs=2, unlabeled_label="?", **FAST)
    model.fit(X, labels)
    assert "?" not in model.classes_ and len(model.classes_) == 10
    assert set(model.predict(X[:20])) <= set(names)


def test_pretraining_on_unlabeled_rows_beats_no_pretraining_with_few_labels(digits):
    # One label in 20 on digits: a denoising pretraining on all rows and the
    # reconstruction kept during the fine-tune beat the same network trained
    # from its random start on the 90 labeled rows alone.
    X, y = digits
    order = np.random.RandomState(0).permutation(len(X))
    train, test = order[:1400], order[1400:]
    y_few = np.full(len(train), -1)
    y_few[::20] = y[train][::20]
    common = {"hidden_layer_sizes": (64, 32), "batch_size": 32, "finetune_epochs": 60, "unlabeled_label": -1}
    common.update({**NO_TERMS, "noise": "masking", "noise_level": 0.2})
    pretrained = StackedAutoencoderClassifier(
        pretrain_epochs=15, random_state=0, **{**common, "reconstruction_weight": 1.0}
    ).fit(X[train], y_few)
    scratch = StackedAutoencoderClassifier(pretrain_epochs=0, random_state=0, **common).fit(X[train], y_few)
    assert pretrained.score(X[test], y[test]) > scratch.score(X[test], y[test]) + 0.03


# ------------------------------------------------------------ predictions


def test_predict_proba_sums_to_one_and_predict_is_its_argmax(few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier((32,), pretrain_epochs=1, finetune_epochs=20, **FAST).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, rtol=1e-5, atol=1e-8)
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_follow_the_input_dtype(dtype, few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier((16,), pretrain_epochs=1, finetune_epochs=2, **FAST).fit(X, y)
    assert model.predict_proba(X.astype(dtype)).dtype == dtype
    assert model.transform(X.astype(dtype)).dtype == dtype


def test_transform_gives_the_codes_of_the_fine_tuned_encoder(few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier((32, 8), pretrain_epochs=1, finetune_epochs=3, **FAST).fit(X, y)
    codes = model.transform(X.astype(np.float32))
    assert codes.shape == (len(X), 8)
    with torch.no_grad():
        expected = model.network_.encode(torch.as_tensor(X, dtype=torch.float32, device=model.device_)).cpu().numpy()
    np.testing.assert_allclose(codes, expected, rtol=1e-6, atol=1e-7)


def test_the_code_layer_takes_the_hidden_activation_unless_told(few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier((8, 4), activation="tanh", pretrain_epochs=0, finetune_epochs=1, **FAST)
    assert model.fit(X, y).network_.encoder_activation_names == ["tanh", "tanh"]
    model.set_params(code_activation="identity")
    assert model.fit(X, y).network_.encoder_activation_names == ["tanh", "identity"]


def test_regressor_predicts_in_the_targets_units_single_and_multi_output(diabetes):
    X, y = diabetes
    model = StackedAutoencoderRegressor((32, 8), pretrain_epochs=2, finetune_epochs=60, **FAST).fit(X, y)
    predictions = model.predict(X)
    assert predictions.shape == (len(X),) and model.n_outputs_ == 1
    assert model.score(X, y) > 0.4
    assert abs(predictions.mean() - y.mean()) < 0.1 * y.std()
    Y = np.column_stack([y, -3 * y + 1000])
    multi = StackedAutoencoderRegressor((32, 8), pretrain_epochs=2, finetune_epochs=60, **FAST).fit(X, Y)
    assert multi.predict(X).shape == (len(X), 2) and multi.n_outputs_ == 2
    assert multi.score(X, Y) > 0.4


def test_regressor_nan_targets_mark_unlabeled_rows_when_asked(diabetes):
    X, y = diabetes
    y_few = y.copy()
    y_few[np.arange(len(y)) % 4 != 0] = np.nan
    log = PhaseLog()
    model = StackedAutoencoderRegressor((16,), pretrain_epochs=1, finetune_epochs=3, unlabeled_label=np.nan, **FAST)
    with listening(log):
        model.fit(X, y_few)
    assert set(log.phases[-1].train_indices.tolist()) == set(np.flatnonzero(~np.isnan(y_few)).tolist())
    assert np.isfinite(model.predict(X)).all()
    with pytest.raises(ValueError, match=r"y contains NaN\. .* unlabeled_label=np\.nan"):
        StackedAutoencoderRegressor((16,), **FAST).fit(X, y_few)


def test_regressor_early_stopping_scores_r2_on_held_out_rows(diabetes):
    X, y = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = StackedAutoencoderRegressor(
            (32,), pretrain_epochs=0, finetune_epochs=40, early_stopping=True, n_iter_no_change=40, **FAST
        ).fit(X, y)
    assert len(model.validation_scores_) == 40
    assert 0.2 < model.best_validation_score_ <= 1.0
    assert model.best_validation_score_ == max(model.validation_scores_)


def test_classifier_early_stopping_scores_accuracy_and_keeps_the_best_epoch(few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier(
        (32,), pretrain_epochs=0, finetune_epochs=300, early_stopping=True, n_iter_no_change=5, **FAST
    ).fit(X, y)
    scores = model.validation_scores_
    assert len(scores) < 300 and all(0 <= s <= 1 for s in scores)
    assert model.best_validation_score_ == max(scores) > 0.9


# ----------------------------------------------------- incremental and state


def test_partial_fit_needs_classes_first_and_then_trains_an_epoch_a_call(few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier((32,), **FAST)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        model.partial_fit(X[:100], y[:100])
    model.partial_fit(X[:500], y[:500], classes=np.arange(10))
    for _ in range(20):
        model.partial_fit(X[:500], y[:500])
    assert model.n_iter_ == len(model.loss_curve_) == 21
    # Twenty epochs under the default masking noise take the loss to about half
    # (0.48 - 0.51 over seeds, and on a GPU's generator): a clear fall, not a coin flip.
    assert model.loss_curve_[-1] < 0.7 * model.loss_curve_[0]
    with pytest.raises(ValueError, match=r"classes \[11\] that the fitted classifier does not know"):
        model.partial_fit(X[:2], [0, 11])


def test_warm_start_continues_the_supervised_fine_tune(few_labels):
    X, y, _ = few_labels
    model = StackedAutoencoderClassifier((32,), pretrain_epochs=2, finetune_epochs=3, warm_start=True, **FAST)
    model.fit(X, y)
    curves = model.pretrain_loss_curves_
    log = PhaseLog()
    with listening(log):
        model.fit(X, y)
    assert log.names == ["supervised finetune"]
    assert len(model.loss_curve_) == 6 and model.pretrain_loss_curves_ is curves


def test_pickles_keep_classes_predictions_and_target_scale(few_labels, diabetes):
    X, y, _ = few_labels
    classifier = StackedAutoencoderClassifier((16,), pretrain_epochs=1, finetune_epochs=3, **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(restored.predict_proba(X), classifier.predict_proba(X))
    Xd, yd = diabetes
    regressor = StackedAutoencoderRegressor((16,), pretrain_epochs=1, finetune_epochs=3, **FAST).fit(Xd, yd)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(regressor)).predict(Xd), regressor.predict(Xd))


# -------------------------------------------------------------- in sklearn


def test_pipeline_and_grid_search(few_labels):
    X, y, _ = few_labels
    pipeline = make_pipeline(MinMaxScaler(), StackedAutoencoderClassifier(pretrain_epochs=1, **FAST))
    search = GridSearchCV(pipeline, {"stackedautoencoderclassifier__hidden_layer_sizes": [(16,), (32,)]}, cv=2)
    search.set_params(estimator__stackedautoencoderclassifier__finetune_epochs=20)
    search.fit(X * 16, y)
    # Ten classes: chance is 0.1. Twenty epochs on half of digits reach about 0.85; the bar leaves
    # room for another CPU's rounding without letting a broken pipeline (unscaled X, lost y) pass.
    assert search.best_score_ > 0.7
    assert clone(search.best_estimator_).get_params()["stackedautoencoderclassifier__finetune_epochs"] == 20


def test_an_autoencoder_and_a_classifier_share_their_parameter_names():
    autoencoder = set(StackedAutoencoder().get_params())
    stages = {
        "unsupervised_finetune_epochs",
        "head_warmup_epochs",
        "reconstruction_weight",
        "consistency_weight",
        "adversarial_epsilon",
        "average_from_epoch",
        "unlabeled_label",
        "pretrained",
        "ladder",
        "ladder_noise",
        "ladder_weights",
    }
    for estimator, own in (
        (StackedAutoencoderClassifier(), {"pseudo_label_weight", "class_weight"}),
        (StackedAutoencoderRegressor(), set()),
    ):
        assert set(estimator.get_params()) - autoencoder == stages | own
        assert autoencoder <= set(estimator.get_params())


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("y", "params", "message"),
    [
        (np.full(40, -1), {"unlabeled_label": -1}, "Every row of y is unlabeled"),
        (np.array(["a", "b", "-1", "a"] * 10), {"unlabeled_label": -1}, "holds the string '-1' while unlabeled_label"),
        (np.arange(80).reshape(40, 2), {}, "A 2-D y must be a multilabel indicator"),
        (np.arange(30), {}, "X has 40 rows but y has 30"),
        (None, {}, "requires y to be passed"),
        (np.linspace(0, 1, 40), {}, "Unknown label type"),
        (np.array([0, 1] * 20), {"finetune_epochs": 0}, "the prediction head would never be trained"),
        (np.array([0] + [-1] * 39), {"unlabeled_label": -1, "early_stopping": True}, "only 1 labeled row"),
        (np.array([0, 1] * 20), {"adversarial_epsilon": 0.5}, "and consistency_weight=0 leaves none"),
    ],
)
def test_bad_targets_are_refused_before_training(y, params, message):
    X = np.random.RandomState(0).normal(size=(40, 3))
    log = PhaseLog()
    model = StackedAutoencoderClassifier((4,), **{**FAST, **params})
    with listening(log), pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X, y)
    assert log.names == []
    assert not hasattr(model, "classes_")


@pytest.mark.parametrize(
    ("y", "params", "message"),
    [
        (np.full(40, np.nan), {"unlabeled_label": np.nan}, "Every row of y is NaN"),
        (
            np.column_stack([np.ones(40), np.r_[np.nan, np.ones(39)]]),
            {"unlabeled_label": np.nan},
            "NaN in some outputs",
        ),
        (np.r_[np.inf, np.ones(39)], {}, "Input y contains infinity"),
        (np.ones((40, 2, 2)), {}, "Found array with dim 3, while dim <= 2 is required"),
    ],
)
def test_bad_regression_targets_are_refused_before_training(y, params, message):
    X = np.random.RandomState(0).normal(size=(40, 3))
    log = PhaseLog()
    model = StackedAutoencoderRegressor((4,), **{**FAST, **params})
    with listening(log), pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X, y)
    assert log.names == []


def test_nan_in_x_is_refused_with_scikit_learns_message(few_labels):
    X, y, _ = few_labels
    X = X.copy()
    X[3, 3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        StackedAutoencoderClassifier((4,), **FAST).fit(X, y)


def terms_of(phase, term_type):
    """The terms of ``phase``'s objective of type ``term_type``."""
    return [term for term in phase.objective.terms if isinstance(term, term_type)]
