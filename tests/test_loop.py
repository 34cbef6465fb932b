"""The one phase loop: epochs, batches, steps, listeners, interruption, divergence, precision."""

import pytest
import torch
from conftest import DEVICE
from phases import OPTIONS, finetune_phase, make_network, split
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from sk_stackae._data import TensorRows
from sk_stackae._listeners import TrainingListener
from sk_stackae._loop import (
    DivergenceError,
    Phase,
    PhaseTrainer,
    TrainingOptions,
    matmul_precision,
    train_phase,
    validation_score,
)
from sk_stackae._losses import Objective, Term
from sk_stackae._network import TrainingPass


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
    options = TrainingOptions(optimizer="adam", learning_rate_init=1e-30, batch_size=32)
    result = train_phase(finetune_phase(network, data, epochs=1), options, torch.Generator().manual_seed(0))
    (epoch_loss,) = result.loss_curve
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(network.decode(network.encode(data)), data).item()
    assert epoch_loss == pytest.approx(expected, rel=1e-5)


def test_only_the_phase_parameters_change(data):
    network = make_network()
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    phase = finetune_phase(network, data, epochs=2)
    phase.parameters = network.layer_parameters(0)
    phase.training_pass = network.layer_pass(0)
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
    original = PhaseTrainer.train_step
    calls = []

    def interrupting_step(trainer, batch):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return original(trainer, batch)

    monkeypatch.setattr(PhaseTrainer, "train_step", interrupting_step)


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
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    # 5 batches per epoch over the 80 training rows: step 23 is in epoch 5.
    _interrupt_at_step(monkeypatch, 23)
    options = TrainingOptions(early_stopping=True, n_iter_no_change=50, learning_rate_init=1e-2, batch_size=16)
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


class _TargetError(Term):
    """A supervised term that autograd differentiates: squared error of the scores against the targets."""

    output = "scores"

    def value(self, scores, batch):
        return (scores - batch.target).square().mean()


class _NegativeTargetError:
    def partial(self, outputs, batch):
        errors = (outputs["scores"] - batch.target).square().mean(dim=1).double()
        return torch.stack([-errors.sum(), errors.new_tensor(len(errors))])

    def finish(self, sums):
        total, count = sums.tolist()
        return total / count


def test_a_phase_with_targets_trains_its_pass_toward_them(data):
    # The loop is not tied to reconstruction: a phase whose objective
    # compares the output with target rows learns the map from rows to
    # targets, through autograd where its term derives no gradient by hand.
    generator = torch.Generator().manual_seed(3)
    mapping = torch.randn(10, 2, generator=generator).to(DEVICE)
    targets = data @ mapping
    head = torch.nn.Linear(10, 2).to(DEVICE)
    phase = Phase(
        name="supervised",
        parameters=list(head.parameters()),
        training_pass=TrainingPass(("scores",), lambda inputs, **kwargs: ((head(inputs),), []), path=None),
        objective=Objective(terms=(_TargetError(),)),
        metric=_NegativeTargetError(),
        rows=TensorRows(data),
        targets=TensorRows(targets),
        epochs=60,
    )
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    options = TrainingOptions(learning_rate_init=5e-2, batch_size=16, early_stopping=True, n_iter_no_change=100)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert result.step == "autograd" and "_TargetError" in result.autograd_because
    assert result.loss_curve[-1] < 0.01 * result.loss_curve[0]
    with torch.no_grad():
        torch.testing.assert_close(head(data), targets, atol=0.1, rtol=0.05)
    assert result.validation_scores[-1] > result.validation_scores[0]


def test_non_finite_loss_raises_naming_phase_and_epoch(data):
    options = TrainingOptions(optimizer="adam", learning_rate_init=1e30, batch_size=16)
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
        options = TrainingOptions(optimizer="adam", learning_rate_init=1e-2, batch_size=6)
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


def test_early_stopping_stops_after_more_than_n_iter_no_change_epochs_without_improvement(data):
    network = make_network()
    phase = finetune_phase(network, data, epochs=200)
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    # A huge tol: no epoch counts as an improvement after the first, so the
    # phase stops once the count exceeds n_iter_no_change, as in MLPRegressor.
    options = TrainingOptions(early_stopping=True, n_iter_no_change=3, tol=1e9, learning_rate_init=1e-2, batch_size=16)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert result.stopped_early
    assert len(result.loss_curve) == len(result.validation_scores) == 1 + 3 + 1
    # The weights left behind are those of the best epoch.
    restored = validation_score(phase, phase.validation_indices, 1000)
    assert restored == pytest.approx(max(result.validation_scores), rel=1e-5)


def test_early_stopping_keeps_going_while_the_validation_score_improves(data):
    phase = finetune_phase(make_network(), data, epochs=15)
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    options = TrainingOptions(early_stopping=True, n_iter_no_change=10, tol=0.0, learning_rate_init=1e-2, batch_size=16)
    result = train_phase(phase, options, torch.Generator().manual_seed(0))
    assert not result.stopped_early
    assert len(result.validation_scores) == 15
    assert result.validation_scores[-1] > result.validation_scores[0]


def test_training_never_sees_the_validation_rows(data):
    taken = []
    phase = finetune_phase(make_network(), data, epochs=2)
    phase.train_indices, phase.validation_indices = split(len(data), 20)
    original_take = phase.rows.take
    phase.rows.take = lambda indices: (taken.append(indices), original_take(indices))[1]
    options = TrainingOptions(early_stopping=True, learning_rate_init=1e-2, batch_size=16)
    train_phase(phase, options, torch.Generator().manual_seed(0))
    # A step takes a batch of at most 16 training rows; validation takes all 20 at once.
    trained = torch.cat([t for t in taken if len(t) <= 16])
    assert set(trained.tolist()) == set(phase.train_indices.tolist())


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
    options = TrainingOptions(precision=precision, learning_rate_init=1e-2, batch_size=16)
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
        options = TrainingOptions(precision=precision, learning_rate_init=1e-2, batch_size=16)
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
