"""A training step for dense stacks whose gradients are derived by hand: no autograd graph.

On a small network the arithmetic of a step is cheap and its fixed cost is
what counts: autograd records every op of the forward pass, builds a graph
and walks it back, a dozen dispatches per layer. A dense stack needs none
of that: each layer's gradient is two matrix products and a sum, and each
activation's is one of the kernels autograd itself would run
(``ACTIVATION_GRADIENTS``). :class:`FastStep` runs a phase's forward pass
from its :class:`~sk_stackae._network.DensePath`, takes the loss's gradient
from the loss itself (``value_and_gradient``), walks the layers back and
leaves each trained parameter's gradient in its ``.grad``, where the
optimiser reads it as after ``backward()``.

The autograd step of :mod:`sk_stackae._training` stays the reference: the
tests run both on the same batches, with every option, and compare the
gradients and the loss curves. It is also the step wherever this one does
not apply (see :func:`fast_step_for`).
"""

import os

import torch

from ._network import ACTIVATION_GRADIENTS, ACTIVATIONS

# Activations computed in place: their gradients need only their outputs.
_IN_PLACE_ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": torch.sigmoid_,
    "sigmoid": torch.sigmoid_,
    "tanh": torch.tanh_,
    "relu": torch.relu_,
}


def fast_step_for(phase, objective, options):
    """The hand-derived step for ``phase``, or None where the autograd step must run.

    It runs on the CPU and on CUDA GPUs (eagerly, and as the step that a
    CUDA graph records), for float32 networks (not under bfloat16
    autocast), in one process, for phases whose forward pass is one of the
    network's dense training passes and whose loss derives its own
    gradient. ``SK_STACKAE_FAST_STEP=0`` in the environment turns it off.
    """
    if os.environ.get("SK_STACKAE_FAST_STEP", "1") == "0":
        return None
    if phase.rows.device.type not in ("cpu", "cuda") or options.precision == "bfloat16":
        return None
    if options.replicas.world_size > 1 or not hasattr(phase.loss, "value_and_gradient"):
        return None
    # Training runs in float32; the reference computes its losses in float32
    # whatever the network, which only a float32 network matches.
    if any(parameter.dtype != torch.float32 for parameter in phase.parameters):
        return None
    network = getattr(phase.forward, "__self__", None) or getattr(
        getattr(phase.forward, "func", None), "__self__", None
    )
    path = None if network is None or not hasattr(network, "training_path") else network.training_path(phase.forward)
    if path is None:
        return None
    # Every trained parameter must get a gradient at every step: the autograd
    # step leaves the others' .grad empty and the optimiser skips them.
    on_path = {tensor for step in path.steps() for tensor in (step.weight, step.bias)}
    if not set(phase.parameters) <= on_path:
        return None
    return FastStep(path, phase.loss, phase.parameters, objective)


class FastStep:
    """Forward pass, loss and hand-derived backward pass of one phase's batches.

    Parameters
    ----------
    path : DensePath
        The phase's layers.
    loss : object
        The phase's loss, with ``value_and_gradient(output, clean, target)``.
    parameters : list of torch.nn.Parameter
        What the phase trains: the parameters whose gradients are computed.
    objective : _Objective
        The phase's corruption, dropout, sparsity penalty and generator;
        they draw their random numbers in the same order as the autograd
        step does.
    """

    def __init__(self, path, loss, parameters, objective):
        self.path = path
        self.trunk = path.trunk
        self.branches = path.branches
        self.loss = loss
        self.objective = objective
        # Parameters hash by identity: membership asks "is this tensor trained".
        self.trained = trained = set(parameters)
        self.parameters = list(parameters)
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
            output = pre_activation = torch._addmm_activation(step.bias, inputs, weight)
        else:
            pre_activation = torch.addmm(step.bias, inputs, weight)
            if step.activation is None:
                return pre_activation, pre_activation, None, pre_activation
            in_place = _IN_PLACE_ACTIVATIONS.get(step.activation)
            # An activation whose gradient needs only its output overwrites its
            # input: one tensor less to allocate and to write per layer.
            output = in_place(pre_activation) if in_place else ACTIVATIONS[step.activation](pre_activation)
        dropout = self.objective.dropout
        if not (step.dropout and dropout):
            return pre_activation, output, None, output
        keep = 1.0 - dropout
        mask = torch.empty_like(output).bernoulli_(keep, generator=self.objective.generator).div_(keep)
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
            grad = ACTIVATION_GRADIENTS[step.activation](grad, pre_activation, output)
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
    def __call__(self, clean, target):
        """One batch: leave the gradients in ``.grad``; return the loss (without penalties)."""
        objective = self.objective
        inputs = objective.corrupt(clean)
        trunk_saved = []
        hidden = inputs
        for step in self.trunk:
            pre_activation, output, mask, next_input = self._layer_forward(step, hidden)
            trunk_saved.append((hidden, pre_activation, output, mask))
            hidden = next_input
        branch_saved = []
        outputs = []
        for branch in self.branches:
            saved = []
            branch_hidden = hidden
            for step in branch:
                pre_activation, output, mask, next_input = self._layer_forward(step, branch_hidden)
                saved.append((branch_hidden, pre_activation, output, mask))
                branch_hidden = next_input
            branch_saved.append(saved)
            outputs.append(branch_hidden)
        output = outputs[0] if len(outputs) == 1 else tuple(outputs)
        value, output_gradient = self.loss.value_and_gradient(output, clean, target)
        output_gradients = [output_gradient] if len(outputs) == 1 else list(output_gradient)

        written = set()
        trunk_trains = self.trunk_trains_from[-1]
        grad_hidden = None
        for branch, saved, grad in zip(self.branches, branch_saved, output_gradients, strict=True):
            for i in reversed(range(len(branch))):
                needs_input = i > 0 or trunk_trains
                grad = self._layer_backward(branch[i], saved[i], grad, written, needs_input)
            if grad is not None:
                grad_hidden = grad if grad_hidden is None else grad_hidden.add_(grad)
        if trunk_trains:
            grad = grad_hidden
            for i in reversed(range(len(self.trunk))):
                saved = trunk_saved[i]
                if objective.sparsity:
                    inputs, pre_activation, code, mask = saved
                    penalty = objective.penalty_gradients[i](code, objective.sparsity_target).mul(objective.sparsity)
                    # The penalty acts on the code before dropout: its
                    # gradient joins after the mask.
                    grad = (grad if mask is None else grad.mul_(mask)).add_(penalty)
                    saved = (inputs, pre_activation, code, None)
                needs_input = i > 0 and self.trunk_trains_from[i - 1]
                grad = self._layer_backward(self.trunk[i], saved, grad, written, needs_input)
                if not needs_input:
                    break
        return value


class DirectAdamUpdate:
    """Adam's (or AdamW's) fused update, called without ``torch.optim``'s per-step Python.

    ``optimizer.step()`` regroups the tensors, reinitialises its view of the
    state and increments one step counter per parameter (a ``foreach`` call
    that alone costs about as much as a small layer's forward pass on the
    CPU), every step. This update keeps the lists once and the counters as
    views of one tensor, incremented by one op, then runs the same fused
    kernel (``torch._fused_adam_``) on the optimiser's own state tensors:
    the optimiser, its ``state_dict`` and a later ``optimizer.step()`` see
    exactly what they would have seen.
    """

    def __init__(self, optimizer, groups, counter):
        self.optimizer = optimizer
        self.groups = groups
        self.counter = counter

    @classmethod
    def for_optimizer(cls, optimizer):
        """The direct update of ``optimizer`` after its first step, or None where it does not apply.

        It applies to ``torch.optim.Adam`` and ``AdamW`` with ``fused=True``
        on the CPU, without amsgrad, maximize, a tensor learning rate or
        differentiable steps, once every parameter has a state and all took
        the same number of steps.
        """
        if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
            return None
        groups = []
        states = []
        for group in optimizer.param_groups:
            unsupported = group["amsgrad"] or group["maximize"] or group["differentiable"] or group["capturable"]
            tensors = [group["lr"], *group["betas"]]
            if unsupported or not group["fused"] or any(isinstance(value, torch.Tensor) for value in tensors):
                return None
            group_states = [optimizer.state.get(parameter) for parameter in group["params"]]
            if any(state is None or "step" not in state for state in group_states):
                return None
            if any(parameter.device.type != "cpu" for parameter in group["params"]):
                return None
            groups.append(group)
            states.extend(group_states)
        steps = {float(state["step"]) for state in states}
        if len(steps) != 1:
            return None
        counter = torch.full((len(states),), steps.pop(), dtype=states[0]["step"].dtype)
        for i, state in enumerate(states):
            state["step"] = counter[i]
        prepared = []
        decoupled = isinstance(optimizer, torch.optim.AdamW)
        for group in groups:
            decoupled = decoupled or group.get("decoupled_weight_decay", False)
            parameters = group["params"]
            state = [optimizer.state[parameter] for parameter in parameters]
            prepared.append(
                (
                    group,
                    parameters,
                    [s["exp_avg"] for s in state],
                    [s["exp_avg_sq"] for s in state],
                    [s["step"] for s in state],
                    torch._fused_adamw_ if decoupled else torch._fused_adam_,
                )
            )
        return cls(optimizer, prepared, counter)

    def __call__(self):
        """One update from the parameters' ``.grad``; ``optimizer.step()`` where one is missing."""
        gradients = [[parameter.grad for parameter in group[1]] for group in self.groups]
        if any(grad is None for group in gradients for grad in group):
            self.optimizer.step()
            return
        self.counter.add_(1)
        for (group, parameters, exp_avgs, exp_avg_sqs, steps, update), grads in zip(
            self.groups, gradients, strict=True
        ):
            beta1, beta2 = group["betas"]
            update(
                parameters,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )
