"""Keeping the replicas of a network equal across the processes of a torch.distributed group.

With ``distributed=True`` every process (one per GPU or CPU socket, started
by ``torchrun``) fits the same estimator on its own shard of the data. The
replicas start from the same weights, average their gradients at every
step, and add up the sums that decisions depend on (epoch losses,
validation losses, column means and scales) or gather the values (the
scores that a detector's threshold is taken from), so every process takes
the same steps and ends with the same network. Without it, :class:`SingleProcess` does nothing.
"""

import numpy as np
import torch
import torch.distributed as dist


class SingleProcess:
    """The one process there is: nothing to agree with."""

    world_size = 1

    def broadcast_parameters(self, parameters):
        pass

    def average_gradients(self, parameters):
        pass

    def sum(self, tensor):
        return tensor

    def max(self, value):
        return value

    def gather(self, array):
        return array


class ProcessGroup(SingleProcess):
    """Every process of the default process group, for data-parallel training."""

    def __init__(self):
        self.world_size = dist.get_world_size()

    def broadcast_parameters(self, parameters):
        """Give every replica rank 0's weights, whatever seed each process drew."""
        with torch.no_grad():
            for parameter in parameters:
                dist.broadcast(parameter.data, src=0)

    def average_gradients(self, parameters):
        """Replace each gradient by its mean over the processes, in one all-reduce."""
        gradients = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in gradients])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        for gradient, parameter, averaged in zip(
            gradients, parameters, flat.split([g.numel() for g in gradients]), strict=True
        ):
            if parameter.grad is None:
                parameter.grad = gradient
            parameter.grad.copy_(averaged.view_as(gradient))

    def sum(self, tensor):
        """The sum of ``tensor`` over the processes, in place."""
        dist.all_reduce(tensor)
        return tensor

    def max(self, value):
        """The largest of an integer ``value`` over the processes."""
        tensor = torch.tensor([value], dtype=torch.int64, device=self._device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def gather(self, array):
        """The 1-D numpy ``array`` of every process, concatenated in rank order."""
        parts = [None] * self.world_size
        dist.all_gather_object(parts, array)
        return np.concatenate(parts)

    @staticmethod
    def _device():
        # NCCL reduces CUDA tensors only; gloo reduces CPU tensors.
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def replicas_for(distributed, device):
    """The replicas a fit keeps equal: those of the process group, or just this process.

    Raises
    ------
    ValueError
        If ``distributed`` is asked for without an initialised process
        group, or with a backend that cannot reduce tensors on ``device``.
    """
    if not distributed:
        return SingleProcess()
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError(
            "distributed=True trains across the processes of a torch.distributed process group, but none is "
            "initialised: launch with torchrun and call torch.distributed.init_process_group() before fit."
        )
    backend = dist.get_backend()
    if backend == "nccl" and device.type != "cuda":
        raise ValueError(
            f"The process group uses the nccl backend, which reduces CUDA tensors only, but the estimator "
            f"trains on {device}. Use device='cuda' (one GPU per process) or a gloo process group."
        )
    return ProcessGroup()
