"""Training steps on a GPU as replays of CUDA graphs: one launch for a whole chunk of steps."""

import gc

import torch

from .._data import TensorRows
from .._warnings import warn_at_caller
from . import torch_private

# Eager steps before the first capture: they warm up what capture needs
# (cuBLAS workspaces, the optimiser's state) and train as usual.
_GRAPH_WARMUP_STEPS = 3
# Consecutive full batches that one graph trains: its replay costs one
# launch from Python for all of their kernels.
_GRAPH_CHUNK_STEPS = 16
# A phase with fewer full-batch steps than this does not pay for captures.
_GRAPH_MIN_STEPS = 32


def worth_a_cuda_graph(trainer):
    """Whether the trainer's batches should train as CUDA graph replays."""
    if not (trainer.options.acceleration.cuda_graphs and trainer.rows.device.type == "cuda"):
        return False
    if trainer.replicas.world_size > 1:
        return False  # the gradient all-reduce stays outside graphs
    phase = trainer.phase
    if not all(isinstance(rows, TensorRows) for rows in (phase.rows, phase.targets, phase.weights) if rows is not None):
        return False  # rows streamed from the host are copied by the CPU, batch by batch
    objective = phase.objective
    if objective.draws_random_numbers and not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return False  # this torch cannot replay draws from our own generator
    if objective.perturbation is not None:
        return False  # its gradient pass, inside the step, is not recorded
    if any(callback.changes_learning_rate for callback in trainer.callbacks):
        return False  # a captured step holds the learning rate it was captured with
    if not all(group.get("capturable", True) for group in trainer.optimizer.param_groups):
        return False  # an optimiser restored from elsewhere keeps its step count on the host
    full_steps_per_epoch = trainer.n_train // trainer.batch_size
    return full_steps_per_epoch * phase.epochs >= _GRAPH_MIN_STEPS + _GRAPH_WARMUP_STEPS


class CapturedSteps:
    """``n_steps`` consecutive training steps of ``n_rows`` rows each, captured as one CUDA graph.

    Its input is a static buffer of row indices, one row of it per step;
    each step takes its batch from the device-resident rows by those
    indices, computes the gradients (the hand-derived step where the phase
    has one, else the objective and backward), runs the optimiser step, and
    adds its loss times its rows to a static sum.
    """

    def __init__(self, trainer, n_steps, n_rows, gradients, device):
        self.indices = torch.zeros((n_steps, n_rows), dtype=torch.int64, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.graph = torch.cuda.CUDAGraph()
        runner = trainer.runner
        if runner.objective.draws_random_numbers:
            self.graph.register_generator_state(runner.generator)
        torch.cuda.synchronize(device)
        with runner.capturing(), torch.cuda.graph(self.graph):
            self.loss_sum.zero_()
            for step in range(n_steps):
                batch = trainer.phase.batch(self.indices[step])
                if trainer.fast_step is not None:
                    # Writes every gradient whole: nothing to zero first.
                    loss = trainer.fast_step(batch)
                else:
                    total, loss = runner.autograd_loss(batch)
                    torch_private.zero_all_(gradients)
                    total.backward()
                trainer.optimizer.step()
                self.loss_sum.add_(loss.detach(), alpha=n_rows)

    def replay(self, indices):
        """Train on the batches of ``indices`` (``n_steps * n_rows`` of them, in order); the loss sum."""
        self.indices.copy_(indices.view_as(self.indices))
        self.graph.replay()
        return self.loss_sum


class CudaGraphSteps:
    """The steps of a phase on a GPU, as replays of CUDA graphs.

    A step of a small network launches some fifty to seventy kernels
    (forward, backward, the optimiser); launched one by one from Python
    they cost more than they compute. A CUDA graph launches a whole
    recorded sequence at once. Here the first few steps train eagerly on a
    side stream (the warm-up that capture needs); then graphs are captured
    as the epoch needs them and replayed: one for a chunk of
    ``_GRAPH_CHUNK_STEPS`` full batches, one for a single full batch, and
    one for the last, smaller batch of an epoch. They all train the same
    parameters with the same optimiser state, and their gradients live in
    tensors held here, so that no other allocation can take their memory.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self.warmup_left = _GRAPH_WARMUP_STEPS
        self.graphs = {}
        self.gradients = None
        self.failed = False
        self.replayed_steps = 0

    def train(self, order, start, steps_left, loss_sum):
        """Train the batches of ``order`` from ``start`` on; ``(steps, rows)`` trained, ``(0, 0)`` to go eager."""
        if self.failed:
            return 0, 0
        trainer = self.trainer
        batch_size = trainer.batch_size
        rows_left = trainer.n_train - start
        if self.warmup_left > 0:
            self.warmup_left -= 1
            batch = trainer.phase.batch(order[start : start + batch_size])
            loss_sum.add_(self._warm_up(batch), alpha=batch.clean.shape[0])
            return 1, batch.clean.shape[0]
        full_batches = min(rows_left // batch_size, steps_left)
        if full_batches >= _GRAPH_CHUNK_STEPS:
            shape = (_GRAPH_CHUNK_STEPS, batch_size)
        elif full_batches >= 1:
            shape = (1, batch_size)
        else:
            shape = (1, rows_left)
        graph = self.graphs.get(shape)
        if graph is None:
            graph = self._capture(shape)
            if graph is None:
                return 0, 0
        n_steps, n_rows = shape
        loss_sum.add_(graph.replay(order[start : start + n_steps * n_rows]))
        self.replayed_steps += n_steps
        return n_steps, n_steps * n_rows

    def release(self):
        """Free the graphs and their memory now, while no capture is under way.

        A graph freed later, by the garbage collector during the capture of
        another phase's graph, would break that capture.
        """
        for captured in self.graphs.values():
            captured.graph.reset()
        self.graphs.clear()
        self.gradients = None
        self.trainer = None

    def _warm_up(self, batch):
        device = batch.clean.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            loss = self.trainer.train_step(batch)
        torch.cuda.current_stream(device).wait_stream(side)
        return loss

    def _capture(self, shape):
        trainer = self.trainer
        device = trainer.rows.device
        if self.gradients is None:
            for parameter in trainer.phase.parameters:
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
            self.gradients = [parameter.grad for parameter in trainer.phase.parameters]
        # No garbage collection inside a capture: freeing CUDA memory or
        # graphs there is an error that invalidates the capture.
        # (torch.cuda.graph collects once as it starts.)
        collecting = gc.isenabled()
        gc.disable()
        try:
            graph = CapturedSteps(trainer, *shape, self.gradients, device)
        except RuntimeError as error:
            self.failed = True
            torch.cuda.synchronize(device)
            warn_at_caller(
                f"Capturing training steps as a CUDA graph failed ({str(error).splitlines()[0]}); training "
                "goes on without CUDA graphs, which is slower for small networks. Set the environment variable "
                "SK_STACKAE_CUDA_GRAPHS=0 to skip the attempt.",
                RuntimeWarning,
            )
            return None
        finally:
            if collecting:
                gc.enable()
        self.graphs[shape] = graph
        return graph
