"""The hand-derived training step against the autograd step it replaces.

The gradient tests run where the suite trains (``SK_STACKAE_TEST_DEVICE``:
``benchmarks/gpu_check.py`` runs them on a GPU); the tests of fits, threads
and the direct Adam update are about the CPU and name it.
"""

import warnings

import numpy as np
import pytest
import torch
from conftest import DEVICE
from sklearn.datasets import load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler

from sk_stackae import (
    StackedAutoencoder,
    StackedAutoencoderClassifier,
    StackedAutoencoderOutlierDetector,
    StackedAutoencoderRegressor,
)
from sk_stackae._accel.direct_update import DirectAdamUpdate
from sk_stackae._accel.fast_step import FastStep, fast_step_for
from sk_stackae._activations import ACTIVATIONS
from sk_stackae._data import TensorRows
from sk_stackae._engine import objective_for
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._loop import ObjectiveRunner, Phase, PhaseTrainer, TrainingOptions
from sk_stackae._losses import Batch, ReconstructionError
from sk_stackae._network import StackedAutoencoderNetwork
from sk_stackae._tasks import CLASSIFICATION, REGRESSION, ReconstructionScore, Teacher, VirtualAdversarialPerturbation

N_ROWS, N_FEATURES = 24, 7


def network_for(activation, tied, n_outputs=None, dtype=torch.float32):
    network = StackedAutoencoderNetwork(
        N_FEATURES,
        (5, 3),
        activation=activation,
        code_activation="sigmoid" if activation == "relu" else activation,
        output_activation="sigmoid",
        tied_weights=tied,
        n_outputs=n_outputs,
    )
    network.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        # Away from the mean-starting zeros, so that every gradient is informative.
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
    return network.to(DEVICE, dtype)


def batch(dtype=torch.float32):
    generator = torch.Generator().manual_seed(2)
    return torch.rand(N_ROWS, N_FEATURES, generator=generator, dtype=dtype).to(DEVICE)


def reconstruction_phase(network, clean, training_pass=None, parameters=None, loss="mse", options=None):
    """A phase reconstructing ``clean`` through ``training_pass`` (the whole network by default)."""
    error = ReconstructionError(loss, "sigmoid")
    training_pass = network.training_pass(("reconstruction",)) if training_pass is None else training_pass
    return Phase(
        name="finetune",
        parameters=list(network.parameters()) if parameters is None else parameters,
        training_pass=training_pass,
        objective=objective_for(options or TrainingOptions(), [error], network.encoder_activation_names),
        metric=ReconstructionScore(error),
        rows=TensorRows(clean),
        epochs=1,
    )


def takes_the_fast_step(phase):
    options = TrainingOptions()
    step, _ = fast_step_for(phase, ObjectiveRunner(phase, options, torch.Generator()), options)
    return step is not None


def both_gradients(phase, options, clean, target, fuse_relu=None):
    """The loss and gradients of the autograd step and of the fast step, from the same random draws.

    ``fuse_relu`` forces the product with the ReLU in its epilogue (the GPU's
    choice) on or off.
    """
    reference = ObjectiveRunner(phase, options, torch.Generator(DEVICE).manual_seed(3))
    for parameter in phase.parameters:
        parameter.grad = None
    total, loss = reference.autograd_loss(Batch(clean, target))
    total.backward()
    expected = loss.detach(), [None if p.grad is None else p.grad.clone() for p in phase.parameters]

    fast, reason = fast_step_for(
        phase, ObjectiveRunner(phase, options, torch.Generator(DEVICE).manual_seed(3)), options
    )
    assert isinstance(fast, FastStep), reason
    if fuse_relu is not None:
        fast.fuse_relu = fuse_relu
    # The fast step writes into the .grad buffers it made: poison them, so
    # that a gradient it failed to write shows.
    for parameter in phase.parameters:
        parameter.grad.fill_(float("nan"))
    loss = fast(Batch(clean, target))
    got = loss, [p.grad.clone() for p in phase.parameters]
    return expected, got


def assert_same(expected, got, dtype=torch.float32):
    (expected_loss, expected_grads), (loss, grads) = expected, got
    tolerance = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(loss, expected_loss, **tolerance)
    assert len(grads) == len(expected_grads)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert expected_grad is not None and grad is not None
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad, expected_grad, **tolerance)


OPTION_SETS = {
    "plain": {},
    "masking noise": {"noise": "masking", "noise_level": 0.3},
    "gaussian noise": {"noise": "gaussian", "noise_level": 0.2},
    "dropout": {"dropout": 0.3},
    "sparsity": {"sparsity": 0.5, "sparsity_target": 0.1},
    "everything": {"noise": "masking", "noise_level": 0.2, "dropout": 0.2, "sparsity": 0.3},
}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_an_activations_gradient_is_autograds_written_over_the_incoming_one(activation):
    # The step owns the incoming gradient and needs it no more: each
    # activation's gradient overwrites it rather than allocating a tensor
    # per layer and step, and must still be exactly autograd's.
    generator = torch.Generator().manual_seed(0)
    pre_activation = torch.randn(64, 33, generator=generator, device="cpu").to(DEVICE).requires_grad_()
    output = ACTIVATIONS[activation].function(pre_activation)
    incoming = torch.randn(64, 33, generator=generator, device="cpu").to(DEVICE)
    (expected,) = torch.autograd.grad(output, pre_activation, incoming)
    storage = incoming.data_ptr()
    gradient = ACTIVATIONS[activation].gradient(incoming, pre_activation.detach(), output.detach())
    assert gradient.data_ptr() == storage
    assert torch.equal(gradient, expected)
    assert torch.equal(incoming, expected)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("options", OPTION_SETS, ids=str)
def test_the_whole_stack_gets_the_gradients_of_autograd(activation, tied, loss, options):
    network = network_for(activation, tied)
    clean = batch()
    training_options = TrainingOptions(**OPTION_SETS[options])
    phase = reconstruction_phase(network, clean, loss=loss, options=training_options)
    assert_same(*both_gradients(phase, training_options, clean, None))


@pytest.mark.parametrize("fuse_relu", [False, True])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("options", OPTION_SETS, ids=str)
def test_relu_layers_get_the_gradients_of_autograd_with_and_without_the_fused_product(fuse_relu, tied, options):
    # On a GPU the step fuses bias and ReLU into the product; on the CPU it
    # applies relu_ after addmm. Both must give autograd's gradients wherever
    # they run.
    network = network_for("relu", tied)
    clean = batch()
    training_options = TrainingOptions(**OPTION_SETS[options])
    phase = reconstruction_phase(network, clean, options=training_options)
    assert_same(*both_gradients(phase, training_options, clean, None, fuse_relu))


def test_the_product_is_fused_with_relu_on_a_gpu_only():
    network = network_for("relu", tied=False)
    clean = batch()
    phase = reconstruction_phase(network, clean)
    options = TrainingOptions()
    fast, _ = fast_step_for(phase, ObjectiveRunner(phase, options, torch.Generator(DEVICE)), options)
    assert fast.fuse_relu is (DEVICE.type == "cuda")


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("options", ["plain", "everything"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu"])
def test_a_pretraining_phase_gets_the_gradients_of_autograd(k, tied, options, activation):
    network = network_for(activation, tied)
    inputs = batch() if k == 0 else network.encode(batch(), n_layers=1).detach()
    training_options = TrainingOptions(**OPTION_SETS[options])
    error = ReconstructionError("bce" if k == 0 else "mse", network.decoder_activation_names[k])
    phase = Phase(
        name=f"pretrain layer {k + 1}/2",
        parameters=network.layer_parameters(k),
        training_pass=network.layer_pass(k),
        objective=objective_for(training_options, [error], [network.encoder_activation_names[k]]),
        metric=ReconstructionScore(error),
        rows=TensorRows(inputs),
        epochs=1,
    )
    assert_same(*both_gradients(phase, training_options, inputs, None))


def supervised_target(task, n_outputs):
    generator = torch.Generator().manual_seed(4)
    if task == "classification":
        target = torch.randint(n_outputs, (N_ROWS,), generator=generator)
        target[::3] = -1  # unlabeled rows
        return target.to(DEVICE)
    target = torch.randn(N_ROWS, n_outputs, generator=generator)
    target[::3] = float("nan")
    return target.to(DEVICE)


@pytest.mark.parametrize(
    ("task", "n_outputs", "reconstruction_weight", "pseudo_label_weight", "consistency_weight", "head_only"),
    [
        ("classification", 4, 0.0, 0.0, 0.0, False),
        ("classification", 2, 0.0, 0.0, 0.0, False),
        ("classification", 4, 0.7, 0.0, 0.0, False),
        ("classification", 4, 0.0, 0.4, 0.0, False),
        ("classification", 4, 0.0, 0.0, 1.5, False),
        ("classification", 4, 0.7, 0.4, 0.6, False),
        ("classification", 4, 0.0, 0.0, 0.0, True),
        ("regression", 1, 0.0, 0.0, 0.0, False),
        ("regression", 3, 0.5, 0.0, 0.0, False),
        ("regression", 2, 0.0, 0.0, 0.8, False),
        ("regression", 3, 0.5, 0.0, 0.8, False),
        ("regression", 2, 0.0, 0.0, 0.0, True),
    ],
)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("options", ["plain", "everything"])
def test_a_supervised_phase_gets_the_gradients_of_autograd(
    task, n_outputs, reconstruction_weight, pseudo_label_weight, consistency_weight, head_only, tied, options
):
    training_options = TrainingOptions(**OPTION_SETS[options])
    phase, clean, target = supervised_phase(
        task,
        n_outputs,
        reconstruction_weight,
        pseudo_label_weight,
        consistency_weight,
        head_only,
        tied,
        training_options,
    )
    assert_same(*both_gradients(phase, training_options, clean, target))


@pytest.mark.parametrize(
    ("task", "n_outputs", "reconstruction_weight"),
    [("classification", 4, 0.0), ("classification", 3, 0.7), ("regression", 2, 0.0), ("regression", 2, 0.5)],
)
@pytest.mark.parametrize("options", ["plain", "everything"])
def test_the_virtual_adversarial_perturbation_gets_the_gradients_of_autograd(
    task, n_outputs, reconstruction_weight, options
):
    # The perturbation draws its random start after the noise and before
    # the dropout masks, in both steps: the same rows, the same gradients.
    training_options = TrainingOptions(**OPTION_SETS[options])
    phase, clean, target = supervised_phase(
        task, n_outputs, reconstruction_weight, 0.0, 0.8, False, False, training_options, adversarial_epsilon=0.5
    )
    assert_same(*both_gradients(phase, training_options, clean, target))


def supervised_phase(
    task,
    n_outputs,
    reconstruction_weight,
    pseudo_label_weight,
    consistency_weight,
    head_only,
    tied,
    options,
    adversarial_epsilon=0.0,
):
    """A supervised fine-tune phase on a random network, its batch of clean rows, and their targets."""
    network = network_for("relu", tied, n_outputs=n_outputs)
    clean = batch()
    task_object = {"classification": CLASSIFICATION, "regression": REGRESSION}[task]
    reconstruction = reconstruction_weight > 0
    if head_only:
        parameters = list(network.head.parameters())
    elif reconstruction:
        parameters = list(network.parameters())
    else:
        parameters = [*network.encoder.parameters(), *network.head.parameters()]
    terms = [task_object.head_error()]
    if pseudo_label_weight:
        terms.append(task_object.pseudo_labels(pseudo_label_weight))
    perturbation = None
    if consistency_weight:
        teacher = Teacher(lambda clean: network.predict_scores(clean)[0])
        terms.append(task_object.consistency(consistency_weight, teacher))
        if adversarial_epsilon:
            perturbation = VirtualAdversarialPerturbation(adversarial_epsilon, teacher, task_object.divergence)
    if reconstruction:
        terms.append(ReconstructionError("bce", "sigmoid", reconstruction_weight))
    phase = Phase(
        name="supervised fine-tune",
        parameters=parameters,
        training_pass=network.training_pass(("scores", "reconstruction") if reconstruction else ("scores",)),
        objective=objective_for(options, terms, network.encoder_activation_names, perturbation),
        metric=task_object.metric(),
        rows=TensorRows(clean),
        epochs=1,
    )
    return phase, clean, supervised_target(task, n_outputs)


@pytest.mark.parametrize(("dtype", "fast"), [(torch.float32, True), (torch.float64, False)])
def test_only_float32_networks_take_the_fast_step(dtype, fast):
    # Training runs in float32, and the reference computes its losses in
    # float32 whatever the network: a float64 network keeps the reference.
    network = network_for("tanh", tied=True, dtype=dtype)
    assert takes_the_fast_step(reconstruction_phase(network, batch(dtype))) is fast


# ------------------------------------------------- where it runs, and fits


@pytest.fixture
def spy_on_trainers(monkeypatch):
    """The fast step each phase trainer made (None for the autograd step), by phase name."""
    made = {}
    original = PhaseTrainer.__init__

    def recording_init(self, phase, options, generator, listener, optimizer):
        original(self, phase, options, generator, listener, optimizer)
        made[phase.name] = self.fast_step

    monkeypatch.setattr(PhaseTrainer, "__init__", recording_init)
    return made


def test_every_phase_of_every_estimator_takes_the_fast_step_on_the_cpu(spy_on_trainers):
    X, y = load_digits(return_X_y=True)
    X = X[:200] / 16.0
    y_few = np.where(np.arange(200) % 4 == 0, y[:200], -1)
    StackedAutoencoder((16, 8), pretrain_epochs=1, finetune_epochs=1, random_state=0).fit(X)
    StackedAutoencoderClassifier(
        (16, 8),
        pretrain_epochs=1,
        unsupervised_finetune_epochs=1,
        head_warmup_epochs=1,
        finetune_epochs=1,
        reconstruction_weight=0.5,
        unlabeled_label=-1,
        random_state=0,
    ).fit(X, y_few)
    StackedAutoencoderOutlierDetector((16, 8), pretrain_epochs=1, finetune_epochs=1, random_state=0).fit(X)
    assert len(spy_on_trainers) >= 5
    assert all(step is not None for step in spy_on_trainers.values()), spy_on_trainers


def test_the_switch_and_bfloat16_keep_the_autograd_step(spy_on_trainers, monkeypatch):
    X = load_digits().data[:100] / 16.0
    with warnings.catch_warnings():
        # A processor without bfloat16 units warns that it will be slow; one with them does not.
        warnings.simplefilter("ignore", UserWarning)
        StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=0, precision="bfloat16", device="cpu").fit(X)
    assert list(spy_on_trainers.values()) == [None]
    spy_on_trainers.clear()
    monkeypatch.setenv("SK_STACKAE_FAST_STEP", "0")
    StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=0, device="cpu").fit(X)
    assert list(spy_on_trainers.values()) == [None]


def fit_both_ways(monkeypatch, make, X, y=None):
    monkeypatch.setenv("SK_STACKAE_FAST_STEP", "0")
    reference = make().fit(X, y)
    monkeypatch.setenv("SK_STACKAE_FAST_STEP", "1")
    fast = make().fit(X, y)
    return reference, fast


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"tied_weights": True, "loss": "bce", "activation": "logistic", "output_activation": "logistic"},
        {"noise": "masking", "noise_level": 0.3, "dropout": 0.1, "sparsity": 0.1, "alpha": 1e-3},
        {"optimizer": "sgd", "learning_rate_init": 0.05, "activation": "tanh"},
    ],
    ids=["default", "tied-bce-logistic", "noise-dropout-sparsity-alpha", "sgd-tanh"],
)
def test_an_autoencoder_fit_follows_the_same_loss_curve(monkeypatch, params):
    X = load_digits().data[:300] / 16.0

    def make():
        return StackedAutoencoder(
            (16, 8), pretrain_epochs=3, finetune_epochs=5, batch_size=32, random_state=0, **params
        )

    reference, fast = fit_both_ways(monkeypatch, make, X)
    for curve, expected in zip(fast.pretrain_loss_curves_, reference.pretrain_loss_curves_, strict=True):
        np.testing.assert_allclose(curve, expected, rtol=1e-4)
    np.testing.assert_allclose(fast.loss_curve_, reference.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(fast.transform(X), reference.transform(X), rtol=1e-3, atol=1e-5)


def test_supervised_fits_follow_the_same_loss_curve(monkeypatch):
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    y_few = np.where(np.arange(300) % 3 == 0, y, -1)

    def classifier():
        return StackedAutoencoderClassifier(
            (16, 8),
            pretrain_epochs=2,
            head_warmup_epochs=2,
            finetune_epochs=4,
            reconstruction_weight=0.5,
            pseudo_label_weight=0.2,
            consistency_weight=0.3,
            adversarial_epsilon=0.4,
            unlabeled_label=-1,
            batch_size=32,
            random_state=0,
        )

    reference, fast = fit_both_ways(monkeypatch, classifier, X, y_few)
    np.testing.assert_allclose(fast.pretrain_loss_curves_[0], reference.pretrain_loss_curves_[0], rtol=1e-4)
    np.testing.assert_allclose(fast.loss_curve_, reference.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(fast.predict_proba(X), reference.predict_proba(X), rtol=1e-3, atol=1e-5)

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)

    def regressor():
        return StackedAutoencoderRegressor(
            (8, 4), pretrain_epochs=2, finetune_epochs=5, consistency_weight=0.5, batch_size=32, random_state=0
        )

    reference, fast = fit_both_ways(monkeypatch, regressor, X, y)
    np.testing.assert_allclose(fast.loss_curve_, reference.loss_curve_, rtol=1e-4)


def test_a_phase_takes_the_fast_step_only_where_every_term_derives_its_gradient():
    class OwnTerm(ReconstructionError):
        hand_derived = False

    network = network_for("relu", tied=False)
    phase = reconstruction_phase(network, batch())
    assert takes_the_fast_step(phase)
    phase.objective.terms = (*phase.objective.terms, OwnTerm("mse", "sigmoid", 0.5))
    options = TrainingOptions()
    step, reason = fast_step_for(phase, ObjectiveRunner(phase, options, torch.Generator()), options)
    assert step is None and "OwnTerm" in reason


# ------------------------------------------------------- the direct update


@pytest.mark.parametrize("optimizer_class", [torch.optim.Adam, torch.optim.AdamW])
def test_the_direct_update_is_the_optimizers_own_step(optimizer_class):
    def run(direct):
        torch.manual_seed(0)
        parameters = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(5))]
        groups = [{"params": parameters[:1], "weight_decay": 0.1}, {"params": parameters[1:], "weight_decay": 0.0}]
        optimizer = optimizer_class(groups, lr=0.01, fused=True)
        update = None
        for step in range(6):
            for parameter in parameters:
                parameter.grad = torch.sin(parameter.detach() * (step + 1))
            if update is None:
                optimizer.step()
                update = DirectAdamUpdate.for_optimizer(optimizer) if direct else None
                assert (update is not None) is direct
            else:
                update()
        return parameters, optimizer

    expected, reference = run(direct=False)
    got, optimizer = run(direct=True)
    for parameter, expected_parameter in zip(got, expected, strict=True):
        torch.testing.assert_close(parameter, expected_parameter, rtol=0, atol=0)
    # The optimiser's own state moved with it: its state_dict is the reference's.
    state, reference_state = optimizer.state_dict()["state"], reference.state_dict()["state"]
    for key in state:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state[key][name], reference_state[key][name], rtol=0, atol=0)


def test_the_direct_update_falls_back_to_the_optimizer_without_a_gradient():
    parameters = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    optimizer = torch.optim.Adam(parameters, lr=0.1, fused=True)
    for parameter in parameters:
        parameter.grad = torch.ones_like(parameter)
    optimizer.step()
    update = DirectAdamUpdate.for_optimizer(optimizer)
    parameters[1].grad = None
    before = parameters[1].detach().clone()
    update()
    assert torch.equal(parameters[1].detach(), before)
    assert [float(optimizer.state[p]["step"]) for p in parameters] == [2.0, 1.0]


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, fused=True),
        lambda p: torch.optim.Adam(p, lr=0.1),
        lambda p: torch.optim.Adam(p, lr=0.1, fused=True, amsgrad=True),
        lambda p: torch.optim.Adam(p, lr=torch.tensor(0.1), fused=True),
    ],
    ids=["sgd", "adam-not-fused", "amsgrad", "tensor-lr"],
)
def test_the_direct_update_leaves_other_optimizers_to_themselves(optimizer):
    parameters = [torch.nn.Parameter(torch.ones(3))]
    made = optimizer(parameters)
    parameters[0].grad = torch.ones(3)
    made.step()
    assert DirectAdamUpdate.for_optimizer(made) is None


# ---------------------------------------------------------------- threads


class ThreadsSeen(TrainingListener):
    def __init__(self):
        self.threads = set()

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.threads.add(torch.get_num_threads())


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_a_small_network_trains_on_one_thread_and_gives_the_threads_back(two_threads):
    X = load_digits().data[:300] / 16.0
    seen = ThreadsSeen()
    with listening(seen):
        StackedAutoencoder((16, 8), pretrain_epochs=1, finetune_epochs=1, random_state=0, device="cpu").fit(X)
    assert seen.threads == {1}
    assert torch.get_num_threads() == 2


def test_a_larger_network_keeps_the_callers_threads(two_threads):
    X = np.random.default_rng(0).random((300, 256), dtype=np.float32)
    seen = ThreadsSeen()
    with listening(seen):
        StackedAutoencoder((256, 64), pretrain_epochs=0, finetune_epochs=1, random_state=0, device="cpu").fit(X)
    assert seen.threads == {2}
    assert torch.get_num_threads() == 2


def test_the_callers_limit_of_one_thread_holds():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X = np.random.default_rng(0).random((300, 256), dtype=np.float32)
        seen = ThreadsSeen()
        with listening(seen):
            StackedAutoencoder((256, 64), pretrain_epochs=0, finetune_epochs=1, random_state=0, device="cpu").fit(X)
        assert seen.threads == {1}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_a_phase_training_a_parameter_off_its_path_keeps_the_autograd_step():
    # The head is trained but a reconstruction pass never reaches it: the
    # autograd step leaves its gradient empty, which the fast step cannot mimic.
    network = network_for("relu", tied=False, n_outputs=2)
    assert not takes_the_fast_step(reconstruction_phase(network, batch()))
    assert takes_the_fast_step(reconstruction_phase(network, batch(), parameters=network.autoencoder_parameters()))


def test_a_pass_output_that_no_term_reads_keeps_the_autograd_step():
    network = network_for("relu", tied=False, n_outputs=2)
    phase = reconstruction_phase(network, batch(), training_pass=network.training_pass(("scores", "reconstruction")))
    assert not takes_the_fast_step(phase)
