"""Faults survived: divergence, interruption, running out of memory, old pickles, threads."""

import copy
import pickle
import threading
import warnings

import numpy as np
import pytest
import skops.io as skops_io
import torch
from conftest import DEVICE
from sklearn.utils.validation import check_is_fitted

import sk_stackae._data as data_module
from sk_stackae import StackedAutoencoder
from sk_stackae._listeners import TrainingListener, listening
from sk_stackae._loop import PhaseTrainer
from sk_stackae._network import StackedAutoencoderNetwork

PARAMS = {"hidden_layer_sizes": (16, 8, 4), "pretrain_epochs": 3, "finetune_epochs": 3, "batch_size": 32}


@pytest.fixture
def X(digits):
    return digits[0][:400]


def interrupt_at_step(monkeypatch, step):
    """Raise KeyboardInterrupt from inside training, at the given optimiser step."""
    # Every step through train_step, none as a CUDA graph replay.
    monkeypatch.setenv("SK_STACKAE_CUDA_GRAPHS", "0")
    original = PhaseTrainer.train_step
    calls = []

    def interrupting_step(trainer, batch):
        calls.append(trainer.phase.name)
        if len(calls) == step:
            raise KeyboardInterrupt
        return original(trainer, batch)

    monkeypatch.setattr(PhaseTrainer, "train_step", interrupting_step)
    return calls


# ------------------------------------------------------------- divergence


def test_a_warm_start_that_diverges_keeps_the_previous_working_model(X):
    model = StackedAutoencoder(**PARAMS, warm_start=True, random_state=0).fit(X)
    codes, curve, network = model.transform(X), list(model.loss_curve_), model.network_
    weights = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    model.set_params(learning_rate_init=1e30)
    with pytest.raises(ValueError, match=r"diverged: the loss became (nan|inf) in finetune at epoch \d/3"):
        model.fit(X * 1e6)
    assert model.network_ is network and model.loss_curve_ == curve and model.n_iter_ == 3
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    np.testing.assert_array_equal(model.transform(X), codes)


def test_a_diverging_partial_fit_keeps_the_previous_model_and_optimizer(X):
    model = StackedAutoencoder(**PARAMS, random_state=0).partial_fit(X)
    codes = model.transform(X)
    steps = [float(state["step"]) for state in model._optimizer.state.values()]
    model.set_params(learning_rate_init=1e30)
    with pytest.raises(ValueError, match="diverged"):
        model.partial_fit(X * 1e6)
    np.testing.assert_array_equal(model.transform(X), codes)
    assert [float(state["step"]) for state in model._optimizer.state.values()] == steps


# ----------------------------------------------------------- interruption


def test_interrupting_pretraining_warns_and_keeps_a_usable_estimator(monkeypatch, X):
    n_batches = int(np.ceil(len(X) / 32))
    # Interrupted in the second epoch of the second layer's phase.
    calls = interrupt_at_step(monkeypatch, 3 * n_batches + n_batches + 2)
    model = StackedAutoencoder(**PARAMS, random_state=0)
    with pytest.warns(UserWarning, match="Training interrupted by user during pretrain layer 2/3") as record:
        model.fit(X)
    assert record[0].filename == __file__  # the warning points at the line that called fit
    check_is_fitted(model)
    assert calls[-1] == "pretrain layer 2/3"
    assert [len(curve) for curve in model.pretrain_loss_curves_] == [3, 1, 0]
    assert model.loss_curve_ == [] and model.n_iter_ == 0
    codes = model.transform(X)
    assert codes.shape == (len(X), 4) and np.isfinite(codes).all()
    assert np.isfinite(model.score(X))
    # The interrupted estimator can be trained further.
    assert model.set_params(warm_start=True).fit(X).n_iter_ == 3


def test_interrupting_the_finetune_keeps_the_finished_epochs(monkeypatch, X):
    n_batches = int(np.ceil(len(X) / 32))
    interrupt_at_step(monkeypatch, 3 * 3 * n_batches + 2 * n_batches + 1)
    model = StackedAutoencoder(**PARAMS, random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user during finetune"):
        model.fit(X)
    assert len(model.loss_curve_) == model.n_iter_ == 2
    assert [len(curve) for curve in model.pretrain_loss_curves_] == [3, 3, 3]


def test_an_interrupted_phase_with_early_stopping_keeps_its_best_weights(monkeypatch, X):
    interrupt_at_step(monkeypatch, 60)
    model = StackedAutoencoder(
        **{**PARAMS, "pretrain_epochs": 0, "finetune_epochs": 50},
        early_stopping=True,
        n_iter_no_change=50,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="interrupted"):
        model.fit(X)
    assert model.best_validation_score_ == max(model.validation_scores_)
    rows = model.validation_scores_
    assert len(rows) == 4  # 60 steps of 12 training batches: four epochs finished


def test_an_interrupt_before_anything_trained_propagates_and_changes_nothing(monkeypatch, X):
    def interrupted(network, generator):
        raise KeyboardInterrupt

    monkeypatch.setattr(StackedAutoencoderNetwork, "reset_parameters", interrupted)
    model = StackedAutoencoder(**PARAMS)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    assert not hasattr(model, "n_features_in_")


def test_interrupting_partial_fit_keeps_a_usable_estimator(monkeypatch, X):
    model = StackedAutoencoder(**PARAMS, random_state=0).partial_fit(X)
    interrupt_at_step(monkeypatch, 3)
    with pytest.warns(UserWarning, match="interrupted by user during finetune"):
        model.partial_fit(X)
    assert model.n_iter_ == 1  # the interrupted epoch did not finish
    assert np.isfinite(model.transform(X)).all()


# --------------------------------------------------------- out of memory


class _InterruptWhenCaching(TrainingListener):
    def cache_started(self, layer, rows, width):
        if layer == 2:
            raise KeyboardInterrupt


def test_interrupting_a_cache_keeps_the_phases_that_trained(X):
    model = StackedAutoencoder(**PARAMS, random_state=0)
    with (
        listening(_InterruptWhenCaching()),
        pytest.warns(UserWarning, match="interrupted by user during caching the codes of layer 2"),
    ):
        model.fit(X)
    assert [len(curve) for curve in model.pretrain_loss_curves_] == [3, 3, 0]
    assert model.loss_curve_ == []
    assert np.isfinite(model.transform(X)).all()


def test_a_cache_that_does_not_fit_on_the_device_falls_back_to_host_memory(monkeypatch, X):
    allocations = []
    original = data_module._allocate_cache

    def device_full(n_rows, width, device, on_host, dtype):
        allocations.append(on_host)
        if not on_host:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(n_rows, width, device, on_host)

    monkeypatch.setattr(data_module, "_allocate_cache", device_full)
    model = StackedAutoencoder(**PARAMS, random_state=0).fit(X)
    reference = StackedAutoencoder(**PARAMS, random_state=0)
    monkeypatch.setattr(data_module, "_allocate_cache", original)
    reference.fit(X)
    assert allocations == [False, True]  # the second cache overwrites the first in place
    np.testing.assert_array_equal(model.transform(X), reference.transform(X))


def test_running_out_of_device_memory_in_training_says_what_to_change(monkeypatch, X):
    def out_of_memory(trainer, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total)")

    monkeypatch.setattr(PhaseTrainer, "train_step", out_of_memory)
    model = StackedAutoencoder(**PARAMS)
    with pytest.raises(torch.OutOfMemoryError) as error:
        model.fit(X)
    message = str(error.value)
    assert f"Out of memory on {DEVICE} while pretrain layer 1/3" in message
    assert "batches of 32 rows through layers up to 64 units wide" in message
    assert "Tried to allocate 20.00 MiB" in message
    assert "lower batch_size (now 32)" in message and "precision='bfloat16'" in message
    assert not hasattr(model, "n_features_in_")


def test_running_out_of_host_memory_for_a_cache_says_how_big_it_was(monkeypatch, X):
    def no_memory(n_rows, width, device, on_host, dtype):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
            f"you tried to allocate {n_rows * width * 4} bytes."
        )

    monkeypatch.setattr(data_module, "_allocate_cache", no_memory)
    with pytest.raises(MemoryError) as error:
        StackedAutoencoder(**PARAMS).fit(X)
    message = str(error.value)
    assert "while caching the codes of layer 1 for pretraining" in message
    assert "a cache of 400 x 16 float32 values (0.00 GiB)" in message
    assert "or pretrain_epochs=0 to skip the caches" in message


def test_other_runtime_errors_pass_through_unchanged(monkeypatch, X):
    def broken(trainer, batch):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(PhaseTrainer, "train_step", broken)
    with pytest.raises(RuntimeError, match=r"^mat1 and mat2 shapes cannot be multiplied$"):
        StackedAutoencoder(**PARAMS).fit(X)


# ------------------------------------------------------------- persistence


def test_pickles_carry_their_format_and_version(X):
    model = StackedAutoencoder(**PARAMS, random_state=0).fit(X)
    state = model.__getstate__()
    assert state["_sk_stackae_pickle_format"] == 2
    from sk_stackae import __version__

    assert state["_sk_stackae_version"] == __version__


@pytest.mark.parametrize("pickle_format", [None, 3])
def test_a_pickle_of_another_format_is_a_clear_error(pickle_format, X):
    model = StackedAutoencoder(**PARAMS, random_state=0).fit(X)
    state = model.__getstate__()
    state["_sk_stackae_version"] = "9.0"
    if pickle_format is None:
        del state["_sk_stackae_pickle_format"]
    else:
        state["_sk_stackae_pickle_format"] = pickle_format
    restored = StackedAutoencoder.__new__(StackedAutoencoder)
    with pytest.raises(
        ValueError, match=rf"saved by sk-stackae 9.0 in pickle format {pickle_format}, which sk-stackae"
    ):
        restored.__setstate__(state)


def test_skops_saves_and_loads_a_fitted_estimator_trusting_only_its_class(X):
    model = StackedAutoencoder(**PARAMS, random_state=0).fit(X)
    data = skops_io.dumps(model)
    assert skops_io.get_untrusted_types(data=data) == ["sk_stackae._estimator.StackedAutoencoder"]
    restored = skops_io.loads(data, trusted=["sk_stackae._estimator.StackedAutoencoder"])
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))


def test_a_pickle_of_format_1_with_a_partial_fit_optimizer_still_loads_and_continues(X):
    model = StackedAutoencoder(**PARAMS, alpha=0.1, random_state=0).partial_fit(X)
    state = model.__getstate__()
    # Format 1 saved partial_fit's optimiser as a bare state dict.
    state["_optimizer"] = state["_optimizer"]["state_dict"]
    state["_sk_stackae_pickle_format"] = 1
    restored = StackedAutoencoder.__new__(StackedAutoencoder)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    restored.partial_fit(X)
    model.partial_fit(X)
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))


@pytest.mark.parametrize(
    "change", [{"alpha": 0.1}, {"optimizer": "sgd"}, {"optimizer": "adamw", "alpha": 0.5}, {"learning_rate_init": 0.1}]
)
def test_a_partial_fit_model_whose_parameters_changed_pickles_and_continues(change, X):
    model = StackedAutoencoder(**PARAMS, random_state=0).partial_fit(X).partial_fit(X)
    model.set_params(**change)
    restored = pickle.loads(pickle.dumps(model))
    assert type(restored._optimizer) is type(model._optimizer)
    restored.partial_fit(X)
    model.partial_fit(X)
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))


def test_a_partially_fitted_estimator_survives_pickling_with_its_optimizer_and_shuffles(X):
    model = StackedAutoencoder(**PARAMS, random_state=0).partial_fit(X)
    restored = pickle.loads(pickle.dumps(model))
    copied = copy.deepcopy(model)
    for twin in (restored, copied):
        twin.partial_fit(X)
    model.partial_fit(X)
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))
    np.testing.assert_array_equal(copied.transform(X), model.transform(X))


# ------------------------------------------------------------------ threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_from_several_threads_at_once_matches_serial(dtype, X):
    model = StackedAutoencoder(**PARAMS, random_state=0).fit(X)
    chunks = [X[i::4].astype(dtype) for i in range(4)]
    serial = [model.transform(chunk) for chunk in chunks]
    results = [None] * len(chunks)
    barrier = threading.Barrier(len(chunks))

    def work(i):
        barrier.wait()
        for _ in range(5):
            results[i] = model.transform(chunks[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(chunks))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for got, expected in zip(results, serial, strict=True):
        np.testing.assert_array_equal(got, expected)
