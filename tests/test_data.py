"""Rows served to training, the code cache, and batched inference."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sk_stackae._data import (
    HostRows,
    SparseRows,
    TensorRows,
    as_tensor,
    cache_codes,
    inference_batch_size,
    is_memory_mapped,
    map_row_batches,
    training_rows,
)

CPU = torch.device("cpu")


@pytest.fixture
def array():
    return np.random.RandomState(0).uniform(size=(50, 6))


def test_float32_arrays_are_shared_not_copied(array):
    X = array.astype(np.float32)
    tensor = as_tensor(X)
    assert tensor.data_ptr() == X.ctypes.data


def test_read_only_arrays_are_shared_without_a_warning(array, recwarn):
    X = array.astype(np.float32)
    X.setflags(write=False)
    tensor = as_tensor(X)
    assert tensor.data_ptr() == X.ctypes.data
    assert not [w for w in recwarn if "not writable" in str(w.message)]


def test_float64_arrays_are_converted_once_to_float32(array):
    rows = training_rows(array, CPU)
    assert isinstance(rows, TensorRows)
    assert rows.tensor.dtype == torch.float32
    np.testing.assert_array_equal(rows.tensor.numpy(), array.astype(np.float32))


@pytest.mark.parametrize("kind", ["tensor", "host", "sparse"])
def test_every_kind_of_rows_serves_the_same_batches(kind, array):
    tensor = as_tensor(array)
    rows = {
        "tensor": TensorRows(tensor),
        "host": HostRows(tensor, CPU),
        "sparse": SparseRows(sp.csr_matrix(array), CPU),
    }[kind]
    indices = torch.tensor([4, 0, 49, 4], device=rows.index_device)
    torch.testing.assert_close(rows.take(indices), tensor[[4, 0, 49, 4]])
    batches = list(rows.slices(16))
    assert [len(b) for b in batches] == [16, 16, 16, 2]
    torch.testing.assert_close(torch.cat(batches), tensor)


def test_sparse_training_data_stays_sparse(array):
    array[array < 0.7] = 0
    rows = training_rows(sp.csr_matrix(array), CPU)
    assert isinstance(rows, SparseRows)
    assert sp.issparse(rows.matrix)


def test_cache_holds_the_encoder_output_for_every_row(array):
    rows = TensorRows(as_tensor(array))
    weight = torch.randn(6, 3, requires_grad=True)

    def encode(batch):
        return torch.tanh(batch @ weight)

    cache = cache_codes(encode, rows, 3, batch_size=7)
    assert isinstance(cache, TensorRows)
    assert cache.tensor.shape == (50, 3)
    assert not cache.tensor.requires_grad
    torch.testing.assert_close(cache.tensor, encode(rows.tensor).detach())


def test_inference_batches_are_large_with_bounded_memory():
    assert inference_batch_size((784, 1000, 30), 256) == 2**22 // 1000
    assert inference_batch_size((4, 2), 256) == 2**22 // 4
    assert inference_batch_size((10**8, 2), 256) == 256


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_map_row_batches_gathers_results_in_the_requested_dtype(dtype, array):
    result = map_row_batches(lambda batch: batch.sum(dim=1), array, batch_size=7, device=CPU, width=None, dtype=dtype)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, array.sum(axis=1), rtol=1e-6)
    codes = map_row_batches(
        lambda batch: batch[:, :2] * 2, sp.csr_matrix(array), batch_size=7, device=CPU, width=2, dtype=dtype
    )
    np.testing.assert_allclose(codes, array[:, :2] * 2, rtol=1e-6)


def test_a_narrower_cache_can_overwrite_its_input_in_place():
    source = torch.arange(60.0).reshape(10, 6)
    rows = TensorRows(source.clone())
    cache = cache_codes(lambda batch: batch[:, :4] * 2, rows, 4, batch_size=3, reuse_storage=True)
    assert cache.tensor.data_ptr() == rows.tensor.data_ptr()
    torch.testing.assert_close(cache.tensor, source[:, :4] * 2)


def test_a_wider_cache_gets_storage_of_its_own():
    rows = TensorRows(torch.arange(20.0).reshape(10, 2))
    cache = cache_codes(lambda batch: batch.repeat(1, 2), rows, 4, batch_size=3, reuse_storage=True)
    assert cache.tensor.data_ptr() != rows.tensor.data_ptr()
    torch.testing.assert_close(cache.tensor, rows.tensor.repeat(1, 2))


@pytest.fixture
def nothing_fits_on_the_device(monkeypatch):
    monkeypatch.setattr("sk_stackae._data.fits_on_device", lambda n_bytes, device: False)


def test_rows_that_do_not_fit_on_the_device_are_streamed_from_host_memory(nothing_fits_on_the_device, array):
    rows = training_rows(array.astype(np.float32), CPU)
    assert isinstance(rows, HostRows)
    assert rows.index_device == CPU
    cache = cache_codes(lambda batch: batch[:, :3], rows, 3, batch_size=8)
    assert isinstance(cache, HostRows)
    torch.testing.assert_close(cache.tensor, torch.from_numpy(array.astype(np.float32)[:, :3]))


def test_training_from_host_memory_matches_training_on_the_device(monkeypatch, array):
    from sk_stackae import StackedAutoencoder

    params = {"hidden_layer_sizes": (5, 3), "pretrain_epochs": 2, "finetune_epochs": 2, "random_state": 0}
    on_device = StackedAutoencoder(**params).fit(array)
    monkeypatch.setattr("sk_stackae._data.fits_on_device", lambda n_bytes, device: False)
    streamed = StackedAutoencoder(**params).fit(array)
    np.testing.assert_array_equal(streamed.transform(array), on_device.transform(array))
    assert streamed.loss_curve_ == on_device.loss_curve_


@pytest.fixture
def float64_memmap(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=(3000, 20))
    X[:] = np.random.RandomState(0).uniform(size=X.shape)
    X.flush()
    return np.load(tmp_path / "X.npy", mmap_mode="r")


def test_memory_mapped_arrays_are_recognised_through_views(float64_memmap, array):
    assert is_memory_mapped(float64_memmap)
    assert is_memory_mapped(np.asarray(float64_memmap)[10:20])
    assert not is_memory_mapped(array)


def test_a_float32_memmap_is_shared_not_copied(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(100, 8))
    X[:] = 1.0
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    rows = training_rows(mapped, CPU)
    assert isinstance(rows, TensorRows)
    assert rows.tensor.data_ptr() == mapped.ctypes.data


def test_a_float64_memmap_is_read_a_batch_at_a_time_and_never_copied_whole(monkeypatch, float64_memmap):
    from sk_stackae import StackedAutoencoder

    converted = []
    original = as_tensor

    def recording_as_tensor(array, dtype=np.float32):
        converted.append(array.shape[0])
        return original(array, dtype)

    monkeypatch.setattr("sk_stackae._data.as_tensor", recording_as_tensor)
    monkeypatch.setattr("sk_stackae._data._INFERENCE_VALUES_PER_BATCH", 20 * 500)
    model = StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, batch_size=64, random_state=0)
    model.fit(float64_memmap)
    # Training batches, and inference batches for the mean and the first code cache.
    assert converted and max(converted) <= 500
    assert converted.count(64) >= 2 * (3000 // 64)
    # The same rows in memory train the same network: bit for bit on the
    # CPU; on a GPU, rows in its memory train as CUDA graph replays, whose
    # matrix products may round differently from the eager ones.
    in_memory = StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, batch_size=64, random_state=0)
    in_memory.fit(np.array(float64_memmap))
    codes, codes_in_memory = model.transform(float64_memmap), in_memory.transform(float64_memmap)
    if model.device_.type == "cpu":
        assert model.loss_curve_ == in_memory.loss_curve_
        np.testing.assert_array_equal(codes, codes_in_memory)
    else:
        assert model.loss_curve_ == pytest.approx(in_memory.loss_curve_, rel=1e-5)
        np.testing.assert_allclose(codes, codes_in_memory, rtol=1e-4, atol=1e-5)
