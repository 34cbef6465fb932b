"""Every private torch API the package calls, behind one gate, each with a public fallback.

The fast paths call torch functions that are not part of its public API:
the kernels autograd runs for activation gradients, the product with a
ReLU in its epilogue, the fused Adam kernels, the ``_foreach`` ops and the
optimisers' methods without their ``torch._dynamo`` guard. They are used
only on torch versions the package is tested with (:data:`TESTED_VERSIONS`)
and only where they exist; anywhere else, and inside
:func:`public_apis_only` (for tests), each function here computes the same
thing with public torch calls, only slower.
"""

import functools
import inspect
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.torch_version import TorchVersion

# The torch releases (major, minor) whose private APIs these calls were
# written and tested against, first and last.
TESTED_VERSIONS = ((2, 4), (2, 14))


def _version_is_tested(version=torch.__version__):
    release = TorchVersion(version)
    first, last = TESTED_VERSIONS
    return release >= first and release < (last[0], last[1] + 1)


class _Gate:
    """Whether the private APIs may be called: a tested torch, and not switched off."""

    def __init__(self):
        self.tested = _version_is_tested()
        self.switched_off = False

    @property
    def open(self):
        return self.tested and not self.switched_off


_GATE = _Gate()


def private_apis_in_use():
    """Whether the functions here call torch's private APIs (True) or only its public ones."""
    return _GATE.open


@contextmanager
def public_apis_only():
    """Within the block, every function here uses public torch APIs only (the fallbacks)."""
    previous = _GATE.switched_off
    _GATE.switched_off = True
    try:
        yield
    finally:
        _GATE.switched_off = previous


def _aten_backward(name):
    """``torch.ops.aten.<name>.grad_input`` (the out= form of an activation's backward kernel), or None."""
    try:
        return getattr(torch.ops.aten, name).grad_input
    except (AttributeError, RuntimeError):
        return None


_SIGMOID_BACKWARD = _aten_backward("sigmoid_backward")
_TANH_BACKWARD = _aten_backward("tanh_backward")
_THRESHOLD_BACKWARD = _aten_backward("threshold_backward")
_LEAKY_RELU_BACKWARD = _aten_backward("leaky_relu_backward")
_ELU_BACKWARD = _aten_backward("elu_backward")
_GELU_BACKWARD = _aten_backward("gelu_backward")


def _autograd_gradient(function, grad, pre_activation):
    """``grad`` times the derivative of ``function`` at ``pre_activation``, by autograd, written over ``grad``."""
    with torch.enable_grad():
        leaf = pre_activation.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(function(leaf), leaf, grad)
    return grad.copy_(gradient)


# The gradients of the activations, from the gradient of their output: each
# is the kernel autograd runs, writing its result over ``grad`` (see
# sk_stackae._activations.Activation.gradient). The sigmoid's, tanh's and
# ReLU's need only the output, which may be the pre-activation's storage,
# overwritten by the in-place activation.


def sigmoid_gradient(grad, pre_activation, output):
    if _GATE.open and _SIGMOID_BACKWARD is not None:
        return _SIGMOID_BACKWARD(grad, output, grad_input=grad)
    return grad.mul_(output * (1.0 - output))


def tanh_gradient(grad, pre_activation, output):
    if _GATE.open and _TANH_BACKWARD is not None:
        return _TANH_BACKWARD(grad, output, grad_input=grad)
    return grad.mul_(1.0 - output * output)


def relu_gradient(grad, pre_activation, output):
    if _GATE.open and _THRESHOLD_BACKWARD is not None:
        return _THRESHOLD_BACKWARD(grad, output, 0, grad_input=grad)
    return grad.mul_(output > 0)


def leaky_relu_gradient(slope):
    """The gradient of ``F.leaky_relu(x, slope)``."""

    def gradient(grad, pre_activation, output):
        if _GATE.open and _LEAKY_RELU_BACKWARD is not None:
            return _LEAKY_RELU_BACKWARD(grad, pre_activation, slope, False, grad_input=grad)
        return _autograd_gradient(lambda x: F.leaky_relu(x, slope), grad, pre_activation)

    return gradient


def elu_gradient(alpha):
    """The gradient of ``F.elu(x, alpha)``."""

    def gradient(grad, pre_activation, output):
        if _GATE.open and _ELU_BACKWARD is not None:
            return _ELU_BACKWARD(grad, alpha, 1, 1, False, pre_activation, grad_input=grad)
        return _autograd_gradient(lambda x: F.elu(x, alpha), grad, pre_activation)

    return gradient


def gelu_gradient(grad, pre_activation, output):
    if _GATE.open and _GELU_BACKWARD is not None:
        return _GELU_BACKWARD(grad, pre_activation, grad_input=grad)
    return _autograd_gradient(F.gelu, grad, pre_activation)


def addmm_relu(bias, inputs, weight):
    """``relu(bias + inputs @ weight)``: on a GPU one cuBLASLt kernel with the ReLU in its epilogue."""
    if _GATE.open and hasattr(torch, "_addmm_activation"):
        return torch._addmm_activation(bias, inputs, weight)
    return torch.addmm(bias, inputs, weight).relu_()


def fused_adam_kernel(decoupled_weight_decay):
    """Torch's fused Adam (or AdamW) update of lists of tensors, or None where it cannot be called."""
    name = "_fused_adamw_" if decoupled_weight_decay else "_fused_adam_"
    return getattr(torch, name, None) if _GATE.open else None


def lerp_all_(tensors, ends, weight):
    """``tensor.lerp_(end, weight)`` for each pair, in one call where torch has it."""
    if _GATE.open and hasattr(torch, "_foreach_lerp_"):
        torch._foreach_lerp_(tensors, ends, weight)
        return
    for tensor, end in zip(tensors, ends, strict=True):
        tensor.lerp_(end, weight)


def copy_all_(tensors, sources):
    """``tensor.copy_(source)`` for each pair, in one call where torch has it."""
    if _GATE.open and hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(tensors, sources)
        return
    for tensor, source in zip(tensors, sources, strict=True):
        tensor.copy_(source)


def zero_all_(tensors):
    """``tensor.zero_()`` for each tensor, in one call where torch has it."""
    if _GATE.open and hasattr(torch, "_foreach_zero_"):
        torch._foreach_zero_(tensors)
        return
    for tensor in tensors:
        tensor.zero_()


def unguarded(owner, name):
    """``owner.name`` without the ``torch._dynamo`` guard it is wrapped in, or None.

    torch wraps an optimiser's ``step`` and ``add_param_group`` in guards
    that keep ``torch.compile`` from tracing them; the guard imports
    ``torch._dynamo`` and sympy on its first call, which costs a process
    about 1.5 s. Outside ``torch.compile`` the guard does nothing else, so
    the package's own optimisers call the function it wraps (``step`` under
    ``torch.no_grad()``, as the guard would). None where the function is not
    wrapped as expected: the caller then keeps the guarded one.
    """
    return _unwrapped(owner, name) if _GATE.open else None


@functools.cache
def _unwrapped(owner, name):
    guarded = owner.__dict__.get(name)
    inner = inspect.unwrap(guarded) if guarded is not None else None
    if inner is None or inner is guarded or getattr(inner, "__name__", None) != name:
        return None
    return inner
