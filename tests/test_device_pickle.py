"""A model fitted and pickled on a GPU loads and encodes on a machine without one.

``tests/data/gpu_digits_64_32_8.pkl`` was fitted on an NVIDIA GPU by
``benchmarks/gpu_check.py`` (digits / 16, hidden_layer_sizes=(32, 8)), with
the codes it gave there in ``gpu_digits_64_32_8_codes.npy``; the machine,
torch version and command are in ``benchmarks/RESULTS.md``.
"""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def gpu_pickle():
    return (DATA / "gpu_digits_64_32_8.pkl").read_bytes(), np.load(DATA / "gpu_digits_64_32_8_codes.npy")


def test_a_model_pickled_on_a_gpu_gives_its_codes_on_this_machine(gpu_pickle, monkeypatch):
    data, expected_codes = gpu_pickle
    # As on a machine without a GPU, whatever this one has.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = pickle.loads(data)
    assert any("saved on device 'cuda" in str(w.message) and "loaded on the CPU" in str(w.message) for w in record)
    assert model.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in model.network_.parameters())
    X = load_digits().data / 16.0
    codes = model.transform(X)
    assert codes.shape == (1797, 8)
    # The GPU and the CPU round float32 products differently, in the last bits.
    np.testing.assert_allclose(codes, expected_codes, rtol=1e-4, atol=1e-5)
    # The loaded model trains on, on the CPU.
    model.set_params(warm_start=True, finetune_epochs=1, device="cpu").fit(X)
    assert np.isfinite(model.transform(X)).all()
