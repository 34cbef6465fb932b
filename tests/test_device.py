"""Device resolution and loading saved networks on another machine."""

import numpy as np
import pytest
import torch

from sk_stackae._device import device_for_loading, fits_on_device, resolve_device, tree_to_numpy, tree_to_torch


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_auto_is_the_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_is_the_current_gpu_with_cuda(two_gpus):
    assert resolve_device("auto") == torch.device("cuda", 0)


@pytest.mark.parametrize(
    ("spec", "expected"), [("cuda", "cuda:0"), ("cuda:1", "cuda:1"), (torch.device("cuda", 1), "cuda:1")]
)
def test_cuda_specs_resolve_to_an_indexed_device(spec, expected, two_gpus):
    assert resolve_device(spec) == torch.device(expected)


def test_cpu_and_torch_devices_are_accepted(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_clear_error(spec, no_cuda):
    with pytest.raises(ValueError, match=f"device='{spec}' was requested, but CUDA is not available"):
        resolve_device(spec)


def test_a_gpu_index_this_machine_lacks_is_a_clear_error(two_gpus):
    with pytest.raises(ValueError, match=r"only 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "CPU", "mps:0", ""])
def test_unknown_devices_are_a_clear_error(spec):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(spec)


def test_everything_fits_on_the_cpu():
    assert fits_on_device(10**15, torch.device("cpu"))


def test_a_gpu_fit_is_loaded_on_the_cpu_with_a_warning_when_there_is_no_gpu(no_cuda):
    with pytest.warns(UserWarning, match="saved on device 'cuda:1'"):
        assert device_for_loading(torch.device("cuda", 1)) == torch.device("cpu")


def test_a_gpu_fit_is_loaded_back_on_its_gpu_when_there_is_one(two_gpus):
    assert device_for_loading(torch.device("cuda", 1)) == torch.device("cuda", 1)


def test_cpu_fits_load_on_the_cpu_silently(recwarn):
    assert device_for_loading(torch.device("cpu")) == torch.device("cpu")
    assert not recwarn


def test_trees_of_tensors_become_numpy_and_back():
    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(module.parameters())
    module(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tree = {"module": module.state_dict(), "optimizer": optimizer.state_dict(), "widths": (3, 2), "name": "x"}
    saved = tree_to_numpy(tree)
    assert isinstance(saved["module"]["weight"], np.ndarray)
    assert isinstance(saved["optimizer"]["state"][0]["exp_avg"], np.ndarray)
    assert saved["widths"] == (3, 2) and saved["name"] == "x"
    restored = tree_to_torch(saved)
    torch.testing.assert_close(restored["module"]["weight"], module.weight.detach())
    assert module.weight.requires_grad
