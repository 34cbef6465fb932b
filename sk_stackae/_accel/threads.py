"""How many CPU threads a phase trains on: one for steps too small to share."""

from contextlib import contextmanager

import torch

# A CPU step of fewer floating-point operations than this runs faster on one
# thread than on two: the second thread's share of the work is smaller than
# what handing it over costs (benchmarks/profile_step.py times both counts).
_ONE_THREAD_BELOW_FLOPS = 25e6


def step_flops(path, batch_size):
    """Floating-point operations of one training step over ``path``: forward, and backward twice."""
    return 6 * batch_size * sum(step.weight.numel() for step in path.steps())


@contextmanager
def threads_for(trainer):
    """One torch thread for a CPU phase whose steps are too small to share, the caller's count back after.

    The count only ever goes down, so a limit set by the caller (``torch.set_num_threads``,
    threadpoolctl, joblib's workers) holds.
    """
    threads = torch.get_num_threads()
    path = trainer.fast_step.path if trainer.fast_step is not None else None
    small = path is not None and step_flops(path, trainer.batch_size) < _ONE_THREAD_BELOW_FLOPS
    if trainer.rows.device.type != "cpu" or threads == 1 or not small:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
