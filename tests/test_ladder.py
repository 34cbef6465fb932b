"""The ladder network: its pass, its start and fold, and the estimators' ``ladder`` settings."""

import pickle
import warnings

import numpy as np
import onnxruntime
import pytest
import skl2onnx
import torch

import sk_stackae.onnx  # noqa: F401  (registers the converters)
from sk_stackae import StackedAutoencoderClassifier, StackedAutoencoderRegressor
from sk_stackae._data import TensorRows
from sk_stackae._ladder import PAPER_INPUT_VARIANCE, LadderDenoisingCosts, default_level_weights
from sk_stackae._ladder_network import LadderNetwork
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._losses import Batch
from sk_stackae._network import StackedAutoencoderNetwork
from sk_stackae._scaling import mean_column_variance
from sk_stackae._tasks import CLASSIFICATION

FAST = {"batch_size": 64, "random_state": 0, "device": "cpu"}
# A ladder from scratch, as the paper trains it.
SCRATCH = {"pretrain_epochs": 0, "unsupervised_finetune_epochs": 0, "head_warmup_epochs": 0, "noise": None}


class PhaseResults(TrainingListener):
    def __init__(self):
        self.ended = []

    def phase_ended(self, phase, result):
        self.ended.append((phase, result))


@pytest.fixture(scope="module")
def few_labels(digits):
    X, y = digits
    return X, y, np.where(np.arange(len(y)) % 10 == 0, y, -1)


def small_network(generator, n_outputs=3):
    network = StackedAutoencoderNetwork(
        6, (5, 4), activation="relu", code_activation="tanh", output_activation="identity", n_outputs=n_outputs
    )
    network.reset_parameters(generator)
    with torch.no_grad():
        network.head.weight.normal_(generator=generator)
        for layer in (*network.encoder, network.head):
            layer.bias.normal_(generator=generator)
    return network


def population_scores(ladder, X, weights=None):
    """The ladder's clean pass, each layer standardised by the (weighted) statistics of all of ``X``."""
    shares = torch.ones(len(X)) if weights is None else torch.as_tensor(weights, dtype=X.dtype)
    shares = shares / shares.sum()
    hidden = X
    for index in range(ladder.n_levels - 1):
        pre = hidden @ ladder.layer_weight(index + 1).t()
        mean = shares @ pre
        std = (shares @ (pre - mean).square() + 1e-5).sqrt()
        hidden = ladder._activate(index, (pre - mean) / std)
    return hidden


# ------------------------------------------------------------ the network


def test_start_from_trained_layers_gives_the_network_back():
    generator = torch.Generator().manual_seed(0)
    network = small_network(generator)
    X = torch.randn(200, 6, generator=generator) * 2 + 1
    before = network.predict_scores(X)[0]
    ladder = LadderNetwork(network, noise=0.3)
    ladder.start_from(TensorRows(X), torch.arange(200), None, 50, trained_layers={0, 1, 2})
    torch.testing.assert_close(population_scores(ladder, X), before, rtol=1e-4, atol=1e-4)
    # The running statistics start at the rows' own: the validation pass is the network too.
    torch.testing.assert_close(ladder._inference_scores(X), before, rtol=1e-4, atol=1e-4)


def test_start_from_leaves_fresh_layers_at_unit_scale_and_their_bias():
    generator = torch.Generator().manual_seed(1)
    network = small_network(generator)
    ladder = LadderNetwork(network, noise=0.3)
    ladder.start_from(TensorRows(torch.randn(50, 6, generator=generator)), torch.arange(50), None, 50, {0})
    assert not torch.allclose(ladder.scales[0], torch.ones(5))
    for index, layer in ((1, network.encoder[1]), (2, network.head)):
        torch.testing.assert_close(ladder.scales[index], torch.ones_like(ladder.scales[index]))
        torch.testing.assert_close(ladder.shifts[index], layer.bias)


@pytest.mark.parametrize("weighted", [False, True])
def test_fold_into_makes_the_network_the_clean_pass_on_the_rows_statistics(weighted):
    generator = torch.Generator().manual_seed(2)
    network = small_network(generator)
    X = torch.randn(120, 6, generator=generator)
    weights = torch.randint(0, 4, (120,), generator=generator).double() if weighted else None
    ladder = LadderNetwork(network, noise=0.3)
    ladder.start_from(TensorRows(X), torch.arange(120), None, 32, {0, 1, 2})
    with torch.no_grad():
        for parameter in [*ladder.scales, *ladder.shifts, *(layer.weight for layer in network.encoder)]:
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    expected = population_scores(ladder, X, weights)
    ladder.fold_into(TensorRows(X), torch.arange(120), None if weights is None else TensorRows(weights), 32)
    torch.testing.assert_close(network.predict_scores(X)[0], expected, rtol=1e-4, atol=1e-4)


def test_statistics_weigh_labeled_rows_by_their_repeats():
    network = small_network(torch.Generator().manual_seed(3))
    ladder = LadderNetwork(network, 0.3, CLASSIFICATION.labeled_rows, labeled_repeats=4.0)
    batch = Batch(torch.zeros(3, 6), torch.tensor([2, -1, 0]), torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(ladder._statistics_weights(batch), torch.tensor([0.25, 2.0, 0.75]))


def test_pass_gives_a_cost_per_row_and_level_and_only_autograd_trains_it():
    generator = torch.Generator().manual_seed(4)
    network = small_network(generator)
    ladder = LadderNetwork(network, noise=0.3)
    ladder.reset_parameters(generator)
    X = torch.randn(20, 6, generator=generator)
    (scores, costs), codes = ladder.forward(X, generator=generator, batch=Batch(X))
    assert scores.shape == (20, 3) and costs.shape == (20, 4) and len(codes) == 2
    assert torch.all(costs.sum(dim=0) > 0)  # every level has something to denoise
    term = LadderDenoisingCosts((1.0, 0.0, 0.0, 2.0))
    assert not term.hand_derived
    torch.testing.assert_close(term.value(costs, Batch(X)), (costs[:, 0] + 2 * costs[:, 3]).mean())
    term.value(costs, Batch(X)).backward()
    # The combinators start at 0 whatever their inputs: only they learn at first.
    assert ladder.combinators[0].coefficients.grad.abs().sum() > 0
    assert network.encoder[0].weight.grad is None or not network.encoder[0].weight.grad.any()
    with torch.no_grad():
        for combinator in ladder.combinators:
            combinator.coefficients.normal_(generator=generator)
    (scores, costs), _ = ladder.forward(X, generator=generator, batch=Batch(X))
    term.value(costs, Batch(X)).backward()
    # Then the corrupted pass carries the gradient to the encoder, and the decoder's projections learn.
    assert network.encoder[0].weight.grad.abs().sum() > 0
    assert ladder.projections[0].grad.abs().sum() > 0


def test_without_a_generator_the_pass_is_the_clean_one_and_costs_nothing():
    generator = torch.Generator().manual_seed(5)
    ladder = LadderNetwork(small_network(generator), noise=0.3)
    X = torch.randn(10, 6, generator=generator)
    (scores, costs), _ = ladder.forward(X)
    torch.testing.assert_close(scores, ladder._inference_scores(X))
    assert torch.all(costs == 0)


def test_default_level_weights_are_the_papers_with_the_input_weighed_by_its_variance():
    assert default_level_weights("full", 7) == (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1)
    assert default_level_weights("full", 4, PAPER_INPUT_VARIANCE / 4) == pytest.approx((4000.0, 10.0, 0.1, 0.1))
    assert default_level_weights("full", 4, 0.0) == (1000.0, 10.0, 0.1, 0.1)
    assert default_level_weights("gamma", 4, 3.0) == (0.0, 0.0, 0.0, 1.0)


def test_auto_ladder_weights_follow_the_units_of_the_input(few_labels):
    X, _, y_few = few_labels
    params = {"ladder": "full", "finetune_epochs": 1, "unlabeled_label": -1, **SCRATCH, **FAST}
    weights = StackedAutoencoderClassifier((8,), **params).fit(X, y_few).resolved_params_["ladder_weights"]
    assert weights[0] == pytest.approx(1000.0 * PAPER_INPUT_VARIANCE / X.var(axis=0).mean())
    tenfold = StackedAutoencoderClassifier((8,), **params).fit(10 * X, y_few).resolved_params_["ladder_weights"]
    assert tenfold[0] == pytest.approx(weights[0] / 100) and tenfold[1:] == weights[1:]


# ------------------------------------------------------------ the estimators


@pytest.mark.parametrize("kind", ["full", "gamma"])
def test_ladder_classifier_fits_a_plain_network_that_predicts(few_labels, kind):
    X, y, y_few = few_labels
    log = PhaseResults()
    model = StackedAutoencoderClassifier((32, 16), ladder=kind, finetune_epochs=15, unlabeled_label=-1, **FAST)
    with listening(log):
        model.fit(X, y_few)
    assert model.score(X, y) > 0.6
    assert model.resolved_params_["ladder_weights"] == default_level_weights(kind, 4, mean_column_variance(X))
    for name in ("reconstruction_weight", "consistency_weight", "adversarial_epsilon"):
        assert model.resolved_params_[name] == 0.0
    (_phase, result), *_ = [(p, r) for p, r in log.ended if p.name == "supervised finetune"]
    assert result.step == "autograd" and "LadderDenoisingCosts" in result.autograd_because
    # What is left is the plain network: transform is its encoder, ONNX exports it.
    codes = model.network_.encode(torch.as_tensor(X[:5], dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(model.transform(X[:5].astype(np.float32)), codes, rtol=1e-5, atol=1e-6)
    rows = X[:50].astype(np.float32)
    onx = skl2onnx.to_onnx(model, rows[:1], options={id(model): {"zipmap": False}})
    session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"X": rows}), strict=True))
    np.testing.assert_array_equal(outputs["label"], model.predict(rows))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), rtol=1e-4, atol=1e-5)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_ladder_trains_its_denoising_costs(few_labels):
    X, _, y_few = few_labels
    params = {"ladder": "full", "finetune_epochs": 4, "unlabeled_label": -1, **SCRATCH, **FAST}
    with_costs = StackedAutoencoderClassifier((32, 16), **params).fit(X, y_few)
    without = StackedAutoencoderClassifier((32, 16), ladder_weights=[0, 0, 0, 0], **params).fit(X, y_few)
    # The costs are most of the loss, and they fall as the decoder learns.
    assert with_costs.loss_curve_[0] > 10 * without.loss_curve_[0]
    assert with_costs.loss_curve_[-1] < with_costs.loss_curve_[0]


def test_ladder_with_pretraining_continues_and_partial_fits(few_labels):
    X, y, y_few = few_labels
    model = StackedAutoencoderClassifier(
        (32, 16), ladder="full", pretrain_epochs=2, finetune_epochs=3, unlabeled_label=-1, warm_start=True, **FAST
    ).fit(X, y_few)
    assert len(model.pretrain_loss_curves_[0]) == 2
    model.fit(X, y_few)
    assert model.n_iter_ == 6
    model.partial_fit(X, y_few)
    assert model.n_iter_ == 7
    assert model.score(X, y) > 0.5


def test_ladder_regressor_with_unlabeled_rows(diabetes_scaled):
    X, y = diabetes_scaled
    y_few = np.where(np.arange(len(y)) % 3 == 0, y, np.nan)
    model = StackedAutoencoderRegressor((16, 8), ladder="full", finetune_epochs=20, unlabeled_label=np.nan, **FAST)
    model.fit(X, y_few)
    assert model.resolved_params_["ladder_weights"] == default_level_weights("full", 4, mean_column_variance(X))
    # Twenty short epochs: a fit that has learnt something, not a good one.
    assert model.score(X[::3], y[::3]) > 0.0


@pytest.fixture(scope="module")
def diabetes_scaled():
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ladder_weights": [1.0, 2.0]}, "ladder_weights must hold 4 non-negative numbers"),
        ({"ladder_weights": [1.0, -2.0, 0.0, 1.0]}, "ladder_weights must hold 4 non-negative numbers"),
        ({"consistency_weight": 1.0}, "replace consistency_weight=1.0"),
        ({"reconstruction_weight": 0.5}, "replace reconstruction_weight=0.5"),
        ({"distributed": True}, "does not train data-parallel"),
    ],
)
def test_ladder_settings_that_cannot_work_are_refused_before_training(few_labels, params, message):
    X, _, y_few = few_labels
    model = StackedAutoencoderClassifier((32, 16), ladder="full", unlabeled_label=-1, **FAST, **params)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y_few)
    assert not hasattr(model, "network_")


def test_ladder_weights_are_ignored_without_a_ladder(few_labels):
    X, y, _ = few_labels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = StackedAutoencoderClassifier(
            (16,), ladder_weights=[1.0], finetune_epochs=2, pretrain_epochs=0, noise=None, **FAST
        ).fit(X[:200], y[:200])
    assert model.resolved_params_["ladder_weights"] is None
