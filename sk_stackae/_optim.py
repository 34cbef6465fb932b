"""The optimisers of the phases, and how they are saved and loaded.

Every phase trains with one of torch's optimisers (Adam, AdamW, SGD with
momentum, their fused kernels). The classes here are those optimisers with
one difference: their ``step`` and ``add_param_group`` skip the guard that
keeps ``torch.compile`` from tracing them, whose first call imports
``torch._dynamo`` (about 1.5 s of a process's first fit; see
:func:`sk_stackae._accel.torch_private.unguarded`). Where torch does not
wrap them as expected, they are torch's own methods.
"""

import torch

from ._accel import torch_private
from ._device import tree_to_numpy, tree_to_torch


class _Unguarded:
    """``step`` and ``add_param_group`` of the torch optimiser this is mixed into, without the dynamo guard."""

    def add_param_group(self, param_group):
        unguarded = torch_private.unguarded(torch.optim.Optimizer, "add_param_group")
        if unguarded is None:
            return super().add_param_group(param_group)
        return unguarded(self, param_group)

    def step(self, closure=None):
        unguarded = torch_private.unguarded(self._torch_class, "step")
        if unguarded is None:
            return super().step(closure)
        with torch.no_grad():
            return unguarded(self, closure)


class Adam(_Unguarded, torch.optim.Adam):
    """``torch.optim.Adam``, stepping without the dynamo guard."""

    _torch_class = torch.optim.Adam


class AdamW(_Unguarded, torch.optim.AdamW):
    """``torch.optim.AdamW``, stepping without the dynamo guard."""

    # AdamW inherits Adam's step.
    _torch_class = torch.optim.Adam


class SGD(_Unguarded, torch.optim.SGD):
    """``torch.optim.SGD``, stepping without the dynamo guard."""

    _torch_class = torch.optim.SGD


def _on_cuda(groups):
    return any(p.is_cuda for group in groups for p in group["params"])


def _adam(groups, options):
    # The fused kernels update every tensor in one launch, on CUDA and CPU;
    # on CUDA, capturable keeps the step count on the device, so that a CUDA
    # graph can hold the whole training step.
    return Adam(groups, lr=options.learning_rate_init, fused=True, capturable=_on_cuda(groups))


def _adamw(groups, options):
    return AdamW(groups, lr=options.learning_rate_init, fused=True, capturable=_on_cuda(groups))


def _sgd(groups, options):
    return SGD(groups, lr=options.learning_rate_init, momentum=options.momentum, fused=True)


OPTIMIZERS = {"adam": _adam, "adamw": _adamw, "sgd": _sgd}

# How a saved optimiser names its class (torch's name), and the class that reads it back.
_OPTIMIZER_CLASSES = {"Adam": Adam, "AdamW": AdamW, "SGD": SGD}


def _torch_name(optimizer):
    """The name of the torch optimiser class ``optimizer`` is (``"Adam"``, ``"AdamW"``, ``"SGD"``)."""
    for name in ("AdamW", "Adam", "SGD"):
        if isinstance(optimizer, getattr(torch.optim, name)):
            return name
    return type(optimizer).__name__


def make_optimizer(options, parameters, batch_size):
    """The optimiser for one phase, with the L2 penalty on weights only.

    For Adam and SGD, ``alpha`` is an L2 penalty scaled as in
    :class:`~sklearn.neural_network.MLPRegressor`, whose penalty gradient is
    ``alpha * W / batch_size`` next to half the squared error; our loss is
    the squared error itself, hence the factor 2; with sample weights,
    ``batch_size`` is what a batch weighs (scikit-learn divides by the sum of
    a batch's weights). AdamW decouples weight decay from the gradient, so
    there ``alpha`` is its decay rate as is.
    """
    if options.alpha == 0:
        # One group: one fused update per step instead of two.
        return OPTIMIZERS[options.optimizer]([{"params": list(parameters), "weight_decay": 0.0}], options)
    weights = [p for p in parameters if p.ndim > 1]
    biases = [p for p in parameters if p.ndim <= 1]
    decay = options.alpha if options.optimizer == "adamw" else 2.0 * options.alpha / batch_size
    groups = [{"params": weights, "weight_decay": decay}, {"params": biases, "weight_decay": 0.0}]
    return OPTIMIZERS[options.optimizer]([g for g in groups if g["params"]], options)


def continue_optimizer(optimizer, options, parameters, batch_size):
    """The optimiser to carry on with: ``optimizer`` with today's settings, or a new one.

    Incremental training keeps the optimiser's state (Adam's moments, SGD's
    velocity) from call to call, but follows the estimator's current
    parameters: a changed learning rate or momentum applies at once, and a
    changed optimiser or penalty starts a new optimiser.
    """
    fresh = make_optimizer(options, parameters, batch_size)
    if (
        optimizer is None
        or _torch_name(optimizer) != _torch_name(fresh)
        or len(optimizer.param_groups) != len(fresh.param_groups)
    ):
        return fresh
    for group, wanted in zip(optimizer.param_groups, fresh.param_groups, strict=True):
        if group["weight_decay"] != wanted["weight_decay"]:
            return fresh
        group["lr"] = wanted["lr"]
        if "momentum" in wanted:
            group["momentum"] = wanted["momentum"]
    return optimizer


def optimizer_to_numpy(optimizer, parameters):
    """Everything needed to rebuild ``optimizer`` over ``parameters``, with numpy arrays for tensors.

    It records the optimiser's torch class and which of ``parameters`` each
    of its groups holds, not the settings that built it: an estimator whose
    parameters changed since still restores the optimiser it had.
    """
    position = {id(parameter): index for index, parameter in enumerate(parameters)}
    return {
        "class": _torch_name(optimizer),
        "groups": [[position[id(p)] for p in group["params"]] for group in optimizer.param_groups],
        "state_dict": tree_to_numpy(optimizer.state_dict()),
    }


def optimizer_saved_in_format_1(state_dict, parameters):
    """What :func:`optimizer_to_numpy` would have saved, from a bare ``state_dict`` of pickle format 1.

    Format 1 kept neither the class nor the groups; both follow from how
    :func:`make_optimizer` builds an optimiser: one group of every
    parameter, or a group of weights and a group of biases; SGD's groups
    have a dampening, AdamW's decouple their weight decay.
    """
    groups = state_dict["param_groups"]
    if len(groups) == 1:
        members = [list(range(len(parameters)))]
    else:
        weights = [i for i, p in enumerate(parameters) if p.ndim > 1]
        members = [weights, [i for i, p in enumerate(parameters) if p.ndim <= 1]]
    if "dampening" in groups[0]:
        name = "SGD"
    elif groups[0].get("decoupled_weight_decay"):
        name = "AdamW"
    else:
        name = "Adam"
    return {"class": name, "groups": members, "state_dict": state_dict}


def optimizer_from_numpy(saved, parameters):
    """Undo :func:`optimizer_to_numpy` over ``parameters`` (the same list, in the same order)."""
    groups = [{"params": [parameters[index] for index in group]} for group in saved["groups"]]
    optimizer = _OPTIMIZER_CLASSES[saved["class"]](groups)
    # load_state_dict restores every group's settings (learning rate, decay,
    # fused kernels) and moves the state to the parameters' device.
    optimizer.load_state_dict(tree_to_torch(saved["state_dict"]))
    return optimizer
