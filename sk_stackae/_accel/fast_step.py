"""A training step for dense stacks whose gradients are derived by hand: no autograd graph.

On a small network the arithmetic of a step is cheap and its fixed cost is
what counts: autograd records every op of the forward pass, builds a graph
and walks it back, a dozen dispatches per layer. A dense stack needs none
of that: each layer's gradient is two matrix products and a sum, and each
activation's is one of the kernels autograd itself would run
(:attr:`sk_stackae._activations.Activation.gradient`). :class:`FastStep`
runs a phase's forward pass from the :class:`~sk_stackae._network.DensePath`
the network built for it, takes the gradient of every objective term from
the term itself (``value_and_gradient``), walks the layers back and leaves
each trained parameter's gradient in its ``.grad``, where the optimiser
reads it as after ``backward()``.

The autograd step of :mod:`sk_stackae._loop` stays the reference: the tests
run both on the same batches, for every option that changes the objective,
and compare the gradients. It is also the step wherever this one does not
apply; :func:`fast_step_for` says why.
"""

import torch

from .._activations import ACTIVATIONS
from . import torch_private


def fast_step_for(phase, runner, options):
    """The hand-derived step for ``phase``, and None; or None and why the autograd step must run.

    It runs on the CPU and on CUDA GPUs (eagerly, and as the step that a
    CUDA graph records), for float32 networks (not under bfloat16
    autocast), in one process, for phases whose every objective term
    derives its gradient by hand and whose trained parameters all lie on
    the pass's dense path.

    Returns
    -------
    step : FastStep or None
    reason : str or None
        Why there is no hand-derived step (None when there is one).
    """
    if not options.acceleration.hand_derived_step:
        return None, "switched off"
    if phase.rows.device.type not in ("cpu", "cuda"):
        return None, f"device {phase.rows.device.type}"
    if options.precision == "bfloat16":
        return None, "bfloat16 autocast"
    if options.replicas.world_size > 1:
        return None, "distributed training"
    missing = phase.objective.not_hand_derived
    if missing:
        return None, f"no hand-derived gradient for {', '.join(missing)}"
    # Training runs in float32; the reference computes its losses in float32
    # whatever the network, which only a float32 network matches.
    if any(parameter.dtype != torch.float32 for parameter in phase.parameters):
        return None, "a network that is not float32"
    unread = set(phase.training_pass.outputs) - {term.output for term in phase.objective.terms}
    if unread:
        return None, f"no term reads the pass's {', '.join(sorted(unread))}"
    path = phase.training_pass.path
    if path is None:
        return None, "a pass without dense layers to differentiate by hand"
    # Every trained parameter must get a gradient at every step: the autograd
    # step leaves the others' .grad empty and the optimiser skips them.
    on_path = {tensor for step in path.steps() for tensor in (step.weight, step.bias)}
    if not set(phase.parameters) <= on_path:
        return None, "a trained parameter off the pass"
    return FastStep(phase, runner), None


class FastStep:
    """Forward pass, objective and hand-derived backward pass of one phase's batches.

    Parameters
    ----------
    phase : Phase
        The phase: its pass's path, its objective and its parameters.
    runner : ObjectiveRunner
        The phase's generator (for noise, perturbation and dropout, drawn
        in the same order as the autograd step draws them).
    """

    def __init__(self, phase, runner):
        path = phase.training_pass.path
        self.path = path
        self.trunk = path.trunk
        self.branches = path.branches
        self.output_names = phase.training_pass.outputs
        self.objective = phase.objective
        self.generator = runner.generator
        # Parameters hash by identity: membership asks "is this tensor trained".
        self.trained = trained = set(phase.parameters)
        self.parameters = list(phase.parameters)
        # The gradients go straight into the parameters' .grad buffers, made
        # once per phase: no allocation, no first touch of fresh memory, per step.
        for parameter in self.parameters:
            if parameter.grad is None or parameter.grad.shape != parameter.shape:
                parameter.grad = torch.zeros_like(parameter)
        # On a GPU, cuBLASLt adds the bias and applies a ReLU in the epilogue
        # of the product: one kernel, and one pass over the output, fewer per
        # ReLU layer. (On the CPU the same call is addmm then relu_.)
        self.fuse_relu = path.steps()[0].weight.device.type == "cuda"
        # Whether any trunk layer below index i (or i itself) trains: the
        # backward pass stops where nothing below needs a gradient.
        self.trunk_trains_from = [
            any(step.weight in trained or step.bias in trained for step in self.trunk[: i + 1])
            for i in range(len(self.trunk))
        ]

    def _layer_forward(self, step, inputs):
        """``(pre-activation, output, dropout mask or None, next input)`` of one layer."""
        weight = step.weight if step.transposed else step.weight.t()
        if step.activation == "relu" and self.fuse_relu:
            # ReLU's gradient needs only its output: no pre-activation is kept.
            output = pre_activation = torch_private.addmm_relu(step.bias, inputs, weight)
        else:
            pre_activation = torch.addmm(step.bias, inputs, weight)
            if step.activation is None:
                return pre_activation, pre_activation, None, pre_activation
            activation = ACTIVATIONS[step.activation]
            # An activation whose gradient needs only its output overwrites its
            # input: one tensor less to allocate and to write per layer.
            in_place = activation.in_place
            output = in_place(pre_activation) if in_place else activation.function(pre_activation)
        dropout = self.objective.dropout
        if not (step.dropout and dropout):
            return pre_activation, output, None, output
        keep = 1.0 - dropout
        mask = torch.empty_like(output).bernoulli_(keep, generator=self.generator).div_(keep)
        return pre_activation, output, mask, output * mask

    def _layer_backward(self, step, saved, grad_next, written, needs_input_gradient):
        """Write (or add) the layer's parameter gradients into their ``.grad``; its input's gradient, or None.

        ``grad_next`` is the gradient of the layer's output (after dropout),
        a tensor of this step's own that may be overwritten. ``written``
        holds the parameters whose ``.grad`` this step has already written:
        a tied weight gets the decoder's share first, then the encoder's.
        """
        inputs, pre_activation, output, mask = saved
        grad = grad_next if mask is None else grad_next.mul_(mask)
        if step.activation is not None:
            grad = ACTIVATIONS[step.activation].gradient(grad, pre_activation, output)
        weight, bias = step.weight, step.bias
        if weight in self.trained:
            left, right = (inputs.t(), grad) if step.transposed else (grad.t(), inputs)
            if weight in written:
                weight.grad.addmm_(left, right)
            else:
                torch.mm(left, right, out=weight.grad)
                written.add(weight)
        if bias in self.trained:
            torch.sum(grad, dim=0, out=bias.grad)
        if not needs_input_gradient:
            return None
        return torch.mm(grad, weight.t() if step.transposed else weight)

    @torch.no_grad()
    def __call__(self, batch):
        """One batch: leave the gradients in ``.grad``; return the loss (without the penalty)."""
        objective = self.objective
        inputs = objective.corrupt(batch, self.generator)
        trunk_saved = []
        hidden = inputs
        for step in self.trunk:
            pre_activation, output, mask, next_input = self._layer_forward(step, hidden)
            trunk_saved.append((hidden, pre_activation, output, mask))
            hidden = next_input
        branch_saved = []
        outputs = {}
        for name, branch in zip(self.output_names, self.branches, strict=True):
            saved = []
            branch_hidden = hidden
            for step in branch:
                pre_activation, output, mask, next_input = self._layer_forward(step, branch_hidden)
                saved.append((branch_hidden, pre_activation, output, mask))
                branch_hidden = next_input
            branch_saved.append(saved)
            outputs[name] = branch_hidden
        value, output_gradients = objective.loss_and_gradients(outputs, batch)

        written = set()
        trunk_trains = self.trunk_trains_from[-1]
        grad_hidden = None
        for name, branch, saved in zip(self.output_names, self.branches, branch_saved, strict=True):
            grad = output_gradients[name]
            for i in reversed(range(len(branch))):
                needs_input = i > 0 or trunk_trains
                grad = self._layer_backward(branch[i], saved[i], grad, written, needs_input)
            if grad is not None:
                grad_hidden = grad if grad_hidden is None else grad_hidden.add_(grad)
        if trunk_trains:
            penalty = objective.penalty
            grad = grad_hidden
            for i in reversed(range(len(self.trunk))):
                saved = trunk_saved[i]
                if penalty is not None:
                    inputs, pre_activation, code, mask = saved
                    # The penalty acts on the code before dropout: its
                    # gradient joins after the mask.
                    grad = (grad if mask is None else grad.mul_(mask)).add_(penalty.gradient(i, code, batch))
                    saved = (inputs, pre_activation, code, None)
                needs_input = i > 0 and self.trunk_trains_from[i - 1]
                grad = self._layer_backward(self.trunk[i], saved, grad, written, needs_input)
                if not needs_input:
                    break
        return value
