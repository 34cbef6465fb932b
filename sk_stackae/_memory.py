"""Running out of memory, said as an error that tells the user what to change."""

from contextlib import contextmanager

import torch


def is_out_of_memory(error):
    """Whether ``error`` is torch's or the allocator's way of saying memory ran out."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error)
    return "can't allocate memory" in message or "not enough memory" in message


@contextmanager
def out_of_memory_explained(device, doing, size, advice):
    """Re-raise running out of memory in the block as an error that says where, how big, and what to change."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        message = f"Out of memory on {device} while {doing}, with {size}: {first_line}. To fit, {advice}."
        explained = type(error)(message) if isinstance(error, torch.OutOfMemoryError) else MemoryError(message)
        raise explained from error
