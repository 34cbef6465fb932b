"""Device resolution, memory placement and device-independent network state."""

import re
import warnings

import numpy as np
import torch

_CUDA_SPEC = re.compile(r"cuda(?::(\d+))?")

# Share of the free device memory that the training data and a code cache may
# take together; the rest is left for activations, gradients and the optimizer.
_DEVICE_MEMORY_SHARE = 0.5


def resolve_device(device):
    """Turn the ``device`` parameter into an available :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``
        or ``"cuda:N"``.

    Returns
    -------
    torch.device
        The device, with an explicit index for CUDA.

    Raises
    ------
    ValueError
        If the string names no supported device, or names a CUDA device that
        this machine does not have.
    """
    spec = str(device)
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = _CUDA_SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}.")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested, but CUDA is not available on this machine "
            f"(torch {torch.__version__}). Use device='cpu' or device='auto'."
        )
    index = torch.cuda.current_device() if match.group(1) is None else int(match.group(1))
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was requested, but this machine has only "
            f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})."
        )
    return torch.device("cuda", index)


def fits_on_device(n_bytes, device):
    """Whether ``n_bytes`` more can live on ``device`` next to training work.

    The CPU is always a fit: host memory is the device there.
    """
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return n_bytes <= _DEVICE_MEMORY_SHARE * free


def device_for_loading(saved_device):
    """The device a network saved on ``saved_device`` is loaded onto.

    A network saved on a GPU comes back on that GPU when this machine has it,
    else on the CPU with a warning, so that a model trained on a GPU still
    loads on a laptop.
    """
    device = torch.device(saved_device)
    if device.type == "cpu":
        return device
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index or 0
        if index < torch.cuda.device_count():
            return torch.device("cuda", index)
    warnings.warn(
        f"The model was saved on device '{device}', which this machine does not have; it is loaded on the CPU instead.",
        UserWarning,
        stacklevel=3,
    )
    return torch.device("cpu")


def tree_to_numpy(tree):
    """The same nesting of dicts, lists and tuples, with every tensor as a numpy array of its own.

    The arrays are copies, never views of the tensors' memory: what is saved
    cannot change with the live model, nor the model with what is saved.
    """
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu().numpy().copy()
    if isinstance(tree, dict):
        return {key: tree_to_numpy(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(tree_to_numpy(value) for value in tree)
    return tree


def tree_to_torch(tree):
    """Undo :func:`tree_to_numpy`: numpy arrays become CPU tensors."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(tree)
    if isinstance(tree, dict):
        return {key: tree_to_torch(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(tree_to_torch(value) for value in tree)
    return tree


def cpu_has_bfloat16_units():
    """Whether this CPU computes bfloat16 products in hardware (AVX512-BF16 or AMX), or None when unknown.

    Without such units, torch emulates bfloat16 matrix products, which then
    run slower than float32 (``benchmarks/bench_peers.py``, contender
    ``StackedAutoencoder bf16``, measures by how much).
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:
        return None
    capabilities = get_capabilities()
    if capabilities.get("architecture") != "x86_64":
        return None
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
