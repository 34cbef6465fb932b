"""Adam's (or AdamW's) fused update, called without ``torch.optim``'s per-step Python."""

import torch

from . import torch_private


class DirectAdamUpdate:
    """Adam's (or AdamW's) fused update, called without ``torch.optim``'s per-step Python.

    ``optimizer.step()`` regroups the tensors, reinitialises its view of the
    state and increments one step counter per parameter (a ``foreach`` call
    that alone costs about as much as a small layer's forward pass on the
    CPU), every step. This update keeps the lists once and the counters as
    views of one tensor, incremented by one op, then runs the same fused
    kernel (``torch._fused_adam_``) on the optimiser's own state tensors:
    the optimiser, its ``state_dict`` and a later ``optimizer.step()`` see
    exactly what they would have seen. The learning rate is read from the
    optimiser's groups at every step, so that a schedule that changes it
    applies.
    """

    def __init__(self, optimizer, groups, counter):
        self.optimizer = optimizer
        self.groups = groups
        self.counter = counter

    @classmethod
    def for_optimizer(cls, optimizer):
        """The direct update of ``optimizer`` after its first step, or None where it does not apply.

        It applies to ``torch.optim.Adam`` and ``AdamW`` (and their
        subclasses) with ``fused=True`` on the CPU, without amsgrad,
        maximize, a tensor learning rate or differentiable steps, once every
        parameter has a state and all took the same number of steps, where
        torch's fused kernel can be called.
        """
        if not isinstance(optimizer, torch.optim.Adam):
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
        prepared = []
        decoupled = isinstance(optimizer, torch.optim.AdamW)
        for group in groups:
            kernel = torch_private.fused_adam_kernel(decoupled or group.get("decoupled_weight_decay", False))
            if kernel is None:
                return None
            prepared.append((group, kernel))
        counter = torch.full((len(states),), steps.pop(), dtype=states[0]["step"].dtype)
        for i, state in enumerate(states):
            state["step"] = counter[i]
        return cls(
            optimizer,
            [
                (
                    group,
                    group["params"],
                    [optimizer.state[p]["exp_avg"] for p in group["params"]],
                    [optimizer.state[p]["exp_avg_sq"] for p in group["params"]],
                    [optimizer.state[p]["step"] for p in group["params"]],
                    kernel,
                )
                for group, kernel in prepared
            ],
            counter,
        )

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
