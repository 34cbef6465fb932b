import os

# scikit-learn's check_array_api_input runs only with SciPy's array API
# support switched on, which must happen before SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sk_stackae._device import resolve_device

# Where the tests train: "auto" (a GPU when there is one, else the CPU, as
# estimators left at their default device do), or what
# SK_STACKAE_TEST_DEVICE names (benchmarks/gpu_check.py sets "cuda").
DEVICE = resolve_device(os.environ.get("SK_STACKAE_TEST_DEVICE", "auto"))


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1]: features and labels."""
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture
def blobs():
    """A small float64 dataset with structure worth encoding."""
    rng = np.random.RandomState(0)
    centers = rng.normal(size=(4, 12))
    labels = rng.randint(4, size=120)
    return centers[labels] + 0.1 * rng.normal(size=(120, 12))


def leave_process_group(succeeded):
    """End a worker of a test's process group (``torch.multiprocessing.spawn``).

    On success, the workers meet at a barrier, their results already on
    disk, and leave with ``os._exit(0)``: gloo's C++ teardown (destroying
    the group, or the interpreter's exit) sometimes aborts a worker with
    "terminate called without an active exception" once its peer has gone,
    failing a fit that succeeded (seen in two of eight CI runs). After a
    failure the group is destroyed and the exception goes on as usual, so
    that ``spawn`` reports it.
    """
    import torch.distributed as dist

    if not succeeded:
        dist.destroy_process_group()
        return
    dist.barrier()
    os._exit(0)
