"""The training loop shared by every phase."""

from contextlib import nullcontext

import pytest
import torch
from conftest import DEVICE
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from sk_stackae import _denormals, _training
from sk_stackae._data import TensorRows
from sk_stackae._denormals import flushing_denormals
from sk_stackae._listeners import TrainingListener
from sk_stackae._network import StackedAutoencoderNetwork
from sk_stackae._training import (
    DivergenceError,
    Phase,
    ReconstructionLoss,
    TrainingOptions,
    _EarlyStopping,
    _PhaseTrainer,
    make_optimizer,
    matmul_precision,
    optimizer_from_numpy,
    optimizer_saved_in_format_1,
    optimizer_to_numpy,
    sparsity_penalty_for,
    train_phase,
    validation_score,
)

OPTIONS = TrainingOptions(optimizer="adam", learning_rate=1e-2, batch_size=16)


def make_network():
    network = StackedAutoencoderNetwork(
        10, (6, 3), activation="relu", code_activation="identity", output_activation="identity"
    )
    network.reset_parameters(torch.Generator().manual_seed(0))
    return network.to(DEVICE)


def finetune_phase(network, data, epochs=5):
    return Phase(
        name="finetune",
        parameters=list(network.parameters()),
        forward=network.reconstruct,
        loss=ReconstructionLoss("mse", "identity"),
        code_activations=["relu", "identity"],
        rows=TensorRows(data),
        epochs=epochs,
    )


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 10, generator=generator)
    return (torch.randn(100, 3, generator=generator) @ basis).to(DEVICE)


def test_loss_curve_has_one_falling_entry_per_epoch(data):
    result = train_phase(finetune_phase(make_network(), data, epochs=30), OPTIONS, torch.Generator().manual_seed(0))
    curve = result.loss_curve
    assert len(curve) == 30
    assert result.validation_scores is None and not result.stopped_early
    assert curve[-1] < 0.3 * curve[0]


def test_epoch_loss_is_the_mean_over_rows_of_the_batch_losses(data):
    # learning rate ~0: the weights stay put, so the epoch loss must equal the
    # loss of the whole set, last (smaller) batch weighted by its size.
    network = make_network()
    options = TrainingOptions(optimizer="adam", learning_rate=1e-30, batch_size=32)
    result = train_phase(finetune_phase(network, data, epochs=1), options, torch.Generator().manual_seed(0))
    (epoch_loss,) = result.loss_curve
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(network.decode(network.encode(data)), data).item()
    assert epoch_loss == pytest.approx(expected, rel=1e-5)


def test_only_the_phase_parameters_change(data):
    network = make_network()
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    phase = Phase(
        name="pretrain layer 1/2",
        parameters=network.layer_parameters(0),
        forward=lambda x, **kwargs: network.reconstruct_layer(0, x, **kwargs),
        loss=ReconstructionLoss("mse", "identity"),
        code_activations=["relu"],
        rows=TensorRows(data),
        epochs=2,
    )
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0))
    changed = {name for name, p in network.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"encoder.0.weight", "encoder.0.bias", "decoder.0.weight", "decoder.0.bias"}


class _CountItemCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu):
            self.calls += 1
        return func(*args, **(kwargs or {}))


def test_the_loss_is_read_back_once_per_epoch_not_per_batch(data):
    # Reading a tensor's value is what forces a host-device sync on a GPU.
    counter = _CountItemCalls()
    with counter:
        train_phase(finetune_phase(make_network(), data, epochs=4), OPTIONS, torch.Generator().manual_seed(0))
    assert counter.calls == 4  # 7 batches per epoch


class _RecordingListener(TrainingListener):
    def __init__(self):
        self.events = []

    def phase_started(self, phase):
        self.events.append(("start", phase.name))

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        assert seconds >= 0
        self.events.append(("epoch", epoch))

    def phase_ended(self, phase, result):
        self.events.append(("end", phase.name, len(result.loss_curve)))


def test_a_listener_hears_the_start_every_epoch_and_the_end(data):
    listener = _RecordingListener()
    train_phase(finetune_phase(make_network(), data, epochs=3), OPTIONS, torch.Generator().manual_seed(0), listener)
    assert listener.events == [
        ("start", "finetune"),
        ("epoch", 1),
        ("epoch", 2),
        ("epoch", 3),
        ("end", "finetune", 3),
    ]


def _interrupt_at_step(monkeypatch, step):
    # Every step through train_step, none as a CUDA graph replay.
    monkeypatch.setenv("SK_STACKAE_CUDA_GRAPHS", "0")
    original = _PhaseTrainer.train_step
    calls = []

    def interrupting_step(trainer, clean, target):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return original(trainer, clean, target)

    monkeypatch.setattr(_PhaseTrainer, "train_step", interrupting_step)


def test_an_interrupt_ends_the_phase_with_the_finished_epochs_and_marks_the_result(monkeypatch, data):
    # 7 batches per epoch: step 17 is in the third epoch.
    _interrupt_at_step(monkeypatch, 17)
    listener = _RecordingListener()
    phase = finetune_phase(make_network(), data, epochs=5)
    result = train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), listener)
    assert result.interrupted and not result.stopped_early
    assert len(result.loss_curve) == 2
    assert listener.events[-1] == ("end", "finetune", 2)


def test_an_interrupt_with_early_stopping_keeps_the_best_weights_so_far(monkeypatch, data):
    network = make_network()
    phase = finetune_phase(network, data, epochs=50)
    phase.train_indices, phase.validation_indices = _split(len(data), 20)
    # 5 batches per epoch over the 80 training rows: step 23 is in epoch 5.
    _interrupt_at_step(monkeypatch, 23)
    options = TrainingOptions(early_stopping=True, n_iter_no_change=50, learning_rate=1e-2, batch_size=16)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert result.interrupted
    assert len(result.loss_curve) == len(result.validation_scores) == 4
    restored = validation_score(phase, phase.validation_indices, 1000)
    assert restored == pytest.approx(max(result.validation_scores), rel=1e-5)


class _TargetLoss:
    """A supervised loss: squared error of the output against the phase's targets."""

    def __call__(self, output, clean, target):
        return (output - target).square().mean()

    def per_sample(self, output, clean, target):
        return (output - target).square().mean(dim=1)


def test_a_phase_with_targets_trains_its_forward_toward_them(data):
    # The loop is not tied to reconstruction: a phase whose loss compares
    # the output with target rows learns the map from rows to targets.
    generator = torch.Generator().manual_seed(3)
    mapping = torch.randn(10, 2, generator=generator).to(DEVICE)
    targets = data @ mapping
    head = torch.nn.Linear(10, 2).to(DEVICE)
    phase = Phase(
        name="supervised",
        parameters=list(head.parameters()),
        forward=lambda inputs, **kwargs: (head(inputs), []),
        loss=_TargetLoss(),
        code_activations=[],
        rows=TensorRows(data),
        targets=TensorRows(targets),
        epochs=60,
    )
    phase.train_indices, phase.validation_indices = _split(len(data), 20)
    options = TrainingOptions(learning_rate=5e-2, batch_size=16, early_stopping=True, n_iter_no_change=100)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert result.loss_curve[-1] < 0.01 * result.loss_curve[0]
    with torch.no_grad():
        torch.testing.assert_close(head(data), targets, atol=0.1, rtol=0.05)
    assert result.validation_scores[-1] > result.validation_scores[0]


def test_non_finite_loss_raises_naming_phase_and_epoch(data):
    options = TrainingOptions(optimizer="adam", learning_rate=1e30, batch_size=16)
    phase = finetune_phase(make_network(), data * 1e10, epochs=5)
    phase.name = "pretrain layer 2/3"
    with pytest.raises(DivergenceError, match=r"became (nan|inf) in pretrain layer 2/3 at epoch \d/5"):
        train_phase(phase, options, torch.Generator().manual_seed(0))


def test_cuda_graphs_train_the_full_batches_on_a_gpu_and_learn_what_eager_steps_learn(monkeypatch, data):
    # 100 rows in batches of 6: sixteen full batches and a tail of four per
    # epoch, ten epochs. On a GPU every step after the three of the warm-up
    # replays a graph (a chunk of sixteen, single full batches, the tail);
    # on the CPU none does.
    results = {}
    for graphs in ("1", "0"):
        monkeypatch.setenv("SK_STACKAE_CUDA_GRAPHS", graphs)
        # The environment is read when the options are made, at each fit.
        options = TrainingOptions(optimizer="adam", learning_rate=1e-2, batch_size=6)
        phase = finetune_phase(make_network(), data, epochs=10)
        results[graphs] = train_phase(phase, options, torch.Generator().manual_seed(0))
    graphed, eager = results["1"], results["0"]
    expected = 10 * 17 - 3 if DEVICE.type == "cuda" else 0
    assert graphed.graphed_steps == expected and eager.graphed_steps == 0
    # The same steps in the same order: the same losses, to float32 rounding.
    assert graphed.loss_curve == pytest.approx(eager.loss_curve, rel=1e-4)


def test_same_generator_seed_gives_identical_training(data):
    curves = []
    for _ in range(2):
        network = make_network()
        result = train_phase(finetune_phase(network, data), OPTIONS, torch.Generator().manual_seed(5))
        curves.append(result.loss_curve)
    assert curves[0] == curves[1]


def test_alpha_penalises_weights_not_biases():
    network = make_network()
    options = TrainingOptions(optimizer="adam", learning_rate=1e-3, alpha=0.5, batch_size=16)
    optimizer = make_optimizer(options, list(network.parameters()), 16)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay[id(network.encoder[0].weight)] == pytest.approx(2 * 0.5 / 16)
    assert decay[id(network.encoder[0].bias)] == 0.0


def test_alpha_shrinks_the_weights(data):
    norms = []
    for alpha in (0.0, 50.0):
        network = make_network()
        options = TrainingOptions(optimizer="adam", learning_rate=1e-2, alpha=alpha, batch_size=16)
        train_phase(finetune_phase(network, data, epochs=20), options, torch.Generator().manual_seed(0))
        norms.append(sum(layer.weight.norm() ** 2 for layer in network.encoder).item())
    assert norms[1] < 0.5 * norms[0]


def test_bce_loss_works_on_logits_and_matches_the_probability_form():
    loss = ReconstructionLoss("bce", "sigmoid")
    logits = torch.tensor([[-50.0, 0.0, 3.0]])
    target = torch.tensor([[0.0, 0.5, 1.0]])
    p = torch.sigmoid(logits).clamp(1e-12, 1 - 1e-12)
    cross_entropy = -(target * p.log() + (1 - target) * (1 - p).log())
    torch.testing.assert_close(loss(logits, target), cross_entropy.mean())
    # Per sample: the relative entropy; the target 0.5 has entropy log 2.
    own_entropy = torch.tensor([[0.0, torch.log(torch.tensor(2.0)).item(), 0.0]])
    torch.testing.assert_close(loss.per_sample(logits, target), (cross_entropy - own_entropy).mean(dim=1))
    assert loss.per_sample(torch.zeros(1, 3), torch.full((1, 3), 0.5)).item() == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(loss(torch.tensor([[-1e4, 1e4]]), torch.tensor([[1.0, 0.0]])))


# ------------------------------------------------------------- options


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_every_optimizer_trains(name, data):
    options = TrainingOptions(optimizer=name, learning_rate=1e-2, batch_size=16)
    curve = train_phase(finetune_phase(make_network(), data, epochs=20), options, torch.Generator().manual_seed(0))
    assert curve.loss_curve[-1] < 0.5 * curve.loss_curve[0]


def test_optimizers_are_the_torch_ones_with_their_settings():
    network = make_network()
    parameters = list(network.parameters())
    sgd = make_optimizer(TrainingOptions(optimizer="sgd", momentum=0.5, learning_rate=0.1), parameters, 16)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.5 and sgd.param_groups[0]["lr"] == 0.1
    adamw = make_optimizer(TrainingOptions(optimizer="adamw", alpha=0.01), parameters, 16)
    assert isinstance(adamw, torch.optim.AdamW)
    # AdamW's decay is decoupled: alpha is its rate as is, not rescaled.
    assert adamw.param_groups[0]["weight_decay"] == 0.01
    assert adamw.param_groups[1]["weight_decay"] == 0.0


def test_noise_corrupts_the_inputs_but_the_loss_targets_the_clean_rows(data):
    seen = {}
    network = make_network()

    def forward(inputs, **kwargs):
        seen["inputs"] = inputs
        return network.reconstruct(inputs, **kwargs)

    phase = finetune_phase(network, data, epochs=1)
    phase.forward = forward
    phase.loss = _RecordingLoss()
    options = TrainingOptions(noise="masking", noise_level=0.5, batch_size=100, learning_rate=1e-3)
    train_phase(phase, options, torch.Generator().manual_seed(0))
    inputs, target = seen["inputs"], phase.loss.targets[0]
    masked = inputs == 0
    assert 0.4 < masked.float().mean() < 0.6
    torch.testing.assert_close(inputs[~masked], target[~masked])
    assert (target[masked] != 0).all()


class _RecordingLoss(ReconstructionLoss):
    def __init__(self):
        super().__init__("mse", "identity")
        self.targets = []

    def __call__(self, pre_activation, clean, target=None):
        self.targets.append(clean)
        return super().__call__(pre_activation, clean, target)


def test_gaussian_noise_has_the_requested_standard_deviation(data):
    seen = {}
    network = make_network()

    def forward(inputs, **kwargs):
        seen["inputs"] = inputs
        return network.reconstruct(inputs, **kwargs)

    phase = finetune_phase(network, data, epochs=1)
    phase.forward = forward
    phase.loss = _RecordingLoss()
    options = TrainingOptions(noise="gaussian", noise_level=0.3, batch_size=100)
    train_phase(phase, options, torch.Generator().manual_seed(0))
    difference = seen["inputs"] - phase.loss.targets[0]
    assert difference.std().item() == pytest.approx(0.3, rel=0.1)


def test_dropout_is_drawn_during_training_only(data):
    network = make_network()
    x = data[:20]
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    a, _ = network.reconstruct(x, dropout=0.5, generator=generator)
    b, _ = network.reconstruct(x, dropout=0.5, generator=generator)
    assert not torch.equal(a, b)
    c, _ = network.reconstruct(x)
    d, _ = network.reconstruct(x)
    assert torch.equal(c, d)


def test_dropout_keeps_the_mean_activation():
    hidden = torch.ones(2000, 50)
    dropped = StackedAutoencoderNetwork._drop(hidden, 0.3, torch.Generator().manual_seed(0))
    assert (dropped == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.02)


def test_kl_penalty_is_zero_at_the_target_and_grows_away_from_it():
    kl = sparsity_penalty_for("sigmoid")
    at_target = torch.full((10, 4), 0.05)
    assert kl(at_target, 0.05).item() == pytest.approx(0.0, abs=1e-7)
    assert kl(torch.full((10, 4), 0.5), 0.05) > kl(torch.full((10, 4), 0.1), 0.05) > 0


def test_l1_penalty_for_units_outside_the_unit_interval():
    l1 = sparsity_penalty_for("relu")
    assert sparsity_penalty_for("tanh") is l1 and sparsity_penalty_for("identity") is l1
    assert l1(torch.tensor([[-2.0, 0.0], [1.0, 1.0]]), 0.05).item() == pytest.approx(1.0)


def test_sparsity_moves_the_mean_code_toward_the_target(data):
    means = []
    for sparsity in (0.0, 3.0):
        network = StackedAutoencoderNetwork(
            10, (8,), activation="relu", code_activation="sigmoid", output_activation="identity"
        )
        network.reset_parameters(torch.Generator().manual_seed(0))
        network.to(DEVICE)
        phase = finetune_phase(network, data, epochs=100)
        phase.code_activations = ["sigmoid"]
        options = TrainingOptions(sparsity=sparsity, sparsity_target=0.05, learning_rate=1e-2, batch_size=16)
        train_phase(phase, options, torch.Generator().manual_seed(0))
        with torch.no_grad():
            means.append(network.encode(data).mean().item())
    assert abs(means[1] - 0.05) < 0.5 * abs(means[0] - 0.05)


def _split(n, n_validation):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    return order[n_validation:], order[:n_validation]


def test_early_stopping_stops_after_more_than_n_iter_no_change_epochs_without_improvement(data):
    network = make_network()
    phase = finetune_phase(network, data, epochs=200)
    phase.train_indices, phase.validation_indices = _split(len(data), 20)
    # A huge tol: no epoch counts as an improvement after the first, so the
    # phase stops once the count exceeds n_iter_no_change, as in MLPRegressor.
    options = TrainingOptions(early_stopping=True, n_iter_no_change=3, tol=1e9, learning_rate=1e-2, batch_size=16)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert result.stopped_early
    assert len(result.loss_curve) == len(result.validation_scores) == 1 + 3 + 1
    # The weights left behind are those of the best epoch.
    restored = validation_score(phase, phase.validation_indices, 1000)
    assert restored == pytest.approx(max(result.validation_scores), rel=1e-5)


def test_early_stopping_restores_the_weights_of_the_best_score_not_the_last():
    weight = torch.nn.Parameter(torch.zeros(3))
    stopping = _EarlyStopping([weight], n_iter_no_change=2, tol=0.0)
    for step, score in enumerate([1.0, 3.0, 2.0, 2.5, 1.0]):
        with torch.no_grad():
            weight.fill_(step)
        stopped = stopping.should_stop(score)
    assert stopped
    stopping.restore_best_weights()
    assert torch.equal(weight, torch.full((3,), 1.0))


def test_early_stopping_keeps_going_while_the_validation_score_improves(data):
    phase = finetune_phase(make_network(), data, epochs=15)
    phase.train_indices, phase.validation_indices = _split(len(data), 20)
    options = TrainingOptions(early_stopping=True, n_iter_no_change=10, tol=0.0, learning_rate=1e-2, batch_size=16)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert not result.stopped_early
    assert len(result.validation_scores) == 15
    assert result.validation_scores[-1] > result.validation_scores[0]


def test_training_never_sees_the_validation_rows(data):
    taken = []
    phase = finetune_phase(make_network(), data, epochs=2)
    phase.train_indices, phase.validation_indices = _split(len(data), 20)
    original_take = phase.rows.take
    phase.rows.take = lambda indices: (taken.append(indices), original_take(indices))[1]
    phase.forward = _no_grad_marker(phase.forward)
    options = TrainingOptions(early_stopping=True, learning_rate=1e-2, batch_size=16)
    train_phase(phase, options, torch.Generator().manual_seed(0))
    trained = torch.cat([t for t, grad in zip(taken, _no_grad_marker.log, strict=True) if grad])
    assert set(trained.tolist()) == set(phase.train_indices.tolist())


def _no_grad_marker(forward):
    _no_grad_marker.log = []

    def marked(inputs, **kwargs):
        _no_grad_marker.log.append(torch.is_grad_enabled())
        return forward(inputs, **kwargs)

    return marked


# ------------------------------------------------------------- precision


class _RecordMatmulDtypes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.dtypes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm):
            self.dtypes.add(args[-1].dtype)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("precision", "expected"), [("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_precision_sets_the_dtype_of_the_matrix_products(precision, expected, data):
    options = TrainingOptions(precision=precision, learning_rate=1e-2, batch_size=16)
    recorder = _RecordMatmulDtypes()
    network = make_network()
    with recorder:
        result = train_phase(finetune_phase(network, data, epochs=3), options, torch.Generator().manual_seed(0))
    assert recorder.dtypes == {expected}
    assert all(p.dtype == torch.float32 for p in network.parameters())
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert not torch.is_autocast_enabled("cpu")


def test_bfloat16_training_lands_close_to_float32(data):
    curves = {}
    for precision in ("float32", "bfloat16"):
        options = TrainingOptions(precision=precision, learning_rate=1e-2, batch_size=16)
        phase = finetune_phase(make_network(), data, epochs=20)
        curves[precision] = train_phase(phase, options, torch.Generator().manual_seed(0)).loss_curve
    assert curves["bfloat16"][-1] == pytest.approx(curves["float32"][-1], rel=0.2)


@pytest.mark.parametrize("caller_setting", [False, True])
def test_tf32_flag_is_set_for_cuda_training_only_and_put_back(caller_setting):
    original = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = caller_setting
    try:
        with matmul_precision("tf32", torch.device("cuda", 0)):
            assert torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 is caller_setting
        with matmul_precision("float32", torch.device("cuda", 0)):
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 is caller_setting
        with matmul_precision("tf32", torch.device("cpu")):
            assert torch.backends.cuda.matmul.allow_tf32 is caller_setting
    finally:
        torch.backends.cuda.matmul.allow_tf32 = original


# ------------------------------------------------------------- denormals


def denormal_share_on_two_threads():
    """The share of a product's elements that come out denormal, computed by two torch threads.

    Each thread computes half of them: 0.5 where only the calling thread
    flushes denormals, 0 where both do, 1 where neither does.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        products = torch.full((1 << 20,), 1e-30) * 1e-10
    finally:
        torch.set_num_threads(threads)
    return (products != 0).double().mean().item()


class FlushingSeen(TrainingListener):
    def __init__(self):
        self.seen = set()
        self.denormal_shares = set()

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.seen.add(flushing_denormals())
        self.denormal_shares.add(denormal_share_on_two_threads())


@pytest.fixture
def two_torch_threads(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    # The test network is small enough to train on one thread; it keeps two,
    # as a large one does: when the team shrinks to one thread and grows
    # again, libgomp starts a new thread, which takes the flags of the
    # thread that starts it, and the test would not tell the two apart.
    monkeypatch.setattr(_training, "_ONE_THREAD_BELOW_FLOPS", 0)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)
    # The OpenMP team's threads take the calling thread's flags back.
    with _denormals.denormals_flushed(torch.device("cpu")):
        pass


@pytest.mark.parametrize("caller_flushes", [False, True])
def test_cpu_training_flushes_denormals_in_every_thread_and_gives_the_callers_setting_back(
    caller_flushes, data, two_torch_threads
):
    torch.set_flush_denormal(caller_flushes)
    seen = FlushingSeen()
    phase = finetune_phase(make_network().cpu(), data.cpu(), epochs=2)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), listener=seen)
    assert seen.seen == {True}
    # Both threads of the OpenMP team flush, not only the one that trains.
    assert seen.denormal_shares == {0.0}
    assert flushing_denormals() is caller_flushes
    assert denormal_share_on_two_threads() == (0.0 if caller_flushes else 1.0)


def test_without_the_openmp_team_only_the_training_thread_flushes(data, two_torch_threads, monkeypatch):
    # What the test above rules out: the second thread's half of each op
    # still meets denormals where the flags are set in one thread alone.
    monkeypatch.setattr(_denormals, "_openmp_team", lambda: None)
    seen = FlushingSeen()
    phase = finetune_phase(make_network().cpu(), data.cpu(), epochs=2)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), listener=seen)
    assert seen.seen == {True}
    (share,) = seen.denormal_shares
    assert 0.0 < share < 1.0
    assert not flushing_denormals()


def moments_of_weights_without_gradient(data):
    """Adam's first moments of weights whose gradient is exactly zero, started at 1e-37, after 63 more steps."""
    data = data.cpu().clone()
    data[:, 0] = 0.0  # the weights from input column 0 get no gradient
    network = make_network().cpu()
    phase = finetune_phase(network, data, epochs=1)
    optimizer = make_optimizer(OPTIONS, phase.parameters, OPTIONS.batch_size)
    train_phase(phase, OPTIONS, torch.Generator().manual_seed(0), optimizer=optimizer)
    first_weight = next(p for p in phase.parameters if p.shape == (6, 10))
    moments = optimizer.state[first_weight]["exp_avg"]
    moments[:, 0] = 1e-37  # just above the smallest normal float32, 1.2e-38
    # 7 steps an epoch: beta1**63 = 1.3e-3 takes the moments to about 1e-40.
    train_phase(finetune_phase(network, data, epochs=9), OPTIONS, torch.Generator().manual_seed(1), optimizer=optimizer)
    return moments[:, 0].clone()


def test_adams_moments_decay_to_zero_not_into_denormal_floats(data, monkeypatch):
    assert not flushing_denormals()
    assert torch.all(moments_of_weights_without_gradient(data) == 0)
    # Without the flush, the same moments end as denormals (which are ~10x
    # slower to compute with): the test above is not vacuous.
    monkeypatch.setattr(_training, "denormals_flushed", lambda device: nullcontext())
    kept = moments_of_weights_without_gradient(data)
    assert torch.all((kept != 0) & (kept.abs() < torch.finfo(torch.float32).tiny))


# ------------------------------------------------------ saved optimisers


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (TrainingOptions(optimizer="adam"), torch.optim.Adam),
        (TrainingOptions(optimizer="adamw", alpha=0.1), torch.optim.AdamW),
        (TrainingOptions(optimizer="sgd", alpha=0.5, momentum=0.3), torch.optim.SGD),
    ],
)
def test_a_saved_optimizer_comes_back_with_its_class_groups_and_state(options, expected, data):
    network = make_network()
    parameters = list(network.parameters())
    optimizer = make_optimizer(options, parameters, 16)
    train_phase(finetune_phase(network, data, epochs=2), options, torch.Generator().manual_seed(0), None, optimizer)
    saved = optimizer_to_numpy(optimizer, parameters)
    twin = make_network()
    twin.load_state_dict(network.state_dict())
    restored = optimizer_from_numpy(saved, list(twin.parameters()))
    assert type(restored) is expected
    assert restored.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for before, after in zip(optimizer.param_groups, restored.param_groups, strict=True):
        assert [p.shape for p in before["params"]] == [p.shape for p in after["params"]]
    # Both carry on alike: same state, same next steps.
    for net, opt in ((network, optimizer), (twin, restored)):
        train_phase(finetune_phase(net, data, epochs=1), options, torch.Generator().manual_seed(1), None, opt)
    for p, q in zip(network.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("options", [TrainingOptions(optimizer="adamw", alpha=0.1), TrainingOptions(optimizer="sgd")])
def test_a_bare_state_dict_of_pickle_format_1_is_read_with_its_class_and_groups(options):
    network = make_network()
    parameters = list(network.parameters())
    optimizer = make_optimizer(options, parameters, 16)
    saved = optimizer_to_numpy(optimizer, parameters)
    upgraded = optimizer_saved_in_format_1(saved["state_dict"], parameters)
    assert upgraded["class"] == saved["class"] and upgraded["groups"] == saved["groups"]
