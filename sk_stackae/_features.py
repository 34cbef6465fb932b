"""What the units of a fitted network respond to: their linear filters and the inputs that excite them most.

Read by :class:`~sk_stackae.plotting.FeatureDisplay`; nothing here trains.
"""

import numpy as np
import torch

# Activation maximisation by projected gradient ascent: this many steps, the
# first this fraction of the input norm long, each later one a little shorter.
_MAXIMIZE_STEPS = 300
_MAXIMIZE_FIRST_STEP = 0.1
# Rows per no-grad batch when searching the data for each unit's best row.
_ACTIVATION_BATCH_SIZE = 4096


def linear_filters(network, layer):
    """``W_layer @ ... @ W_1`` as a float64 array: each unit's linear response to the input.

    For ``layer=1`` these are the first layer's weights, the units' exact
    linear filters; deeper, the product leaves out the activations and
    biases in between.
    """
    product = None
    for k in range(layer):
        weight = network.encoder[k].weight.detach().cpu().double().numpy()
        product = weight if product is None else weight @ product
    return product


def _onto_sphere(rows, norm):
    """Each row scaled to Euclidean norm ``norm``; rows of zeros stay zero."""
    lengths = rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
    return rows / lengths * norm


@torch.no_grad()
def _most_activating_rows(network, layer, units, X, norm):
    """For each unit, the row of ``X``, scaled to ``norm``, that activates it most.

    ``X`` stays in host memory; it goes to the network's device a batch at
    a time.
    """
    device = units.device
    best_activations = torch.full((len(units),), -torch.inf, device=device)
    best_rows = torch.zeros((len(units), X.shape[1]), device=device)
    for start in range(0, len(X), _ACTIVATION_BATCH_SIZE):
        batch = torch.as_tensor(X[start : start + _ACTIVATION_BATCH_SIZE], dtype=torch.float32, device=device)
        batch = _onto_sphere(batch, norm)
        activations, indices = network.encode(batch, n_layers=layer)[:, units].max(dim=0)
        better = activations > best_activations
        best_activations = torch.where(better, activations, best_activations)
        best_rows[better] = batch[indices[better]]
    return best_rows


def maximizing_inputs(network, layer, units, X):
    """Inputs of the mean norm of the rows of ``X`` that maximise each unit, as a float64 array.

    Erhan et al. (2009) "activation maximisation": for unit ``j`` of hidden
    layer ``layer`` (counted from 1), find ``x`` with ``||x|| = norm`` that
    maximises ``h_j(x)``, by projected gradient ascent. Each unit starts
    from the row of ``X`` (a float ndarray), scaled to that norm, that
    activates it most: a start inside the data, away from the stationary
    points that symmetric starts (such as the unit's weights) can sit on.
    Every unit's input is a row of one batch; as no row affects another's
    unit, one backward pass gives every unit's gradient.
    """
    device = next(network.parameters()).device
    norm = float(np.linalg.norm(X, axis=1).mean())
    units = torch.as_tensor(units, device=device)
    inputs = _most_activating_rows(network, layer, units, X, norm)
    rows = torch.arange(len(units), device=device)
    with torch.enable_grad():
        for step in range(_MAXIMIZE_STEPS):
            inputs.requires_grad_(True)
            activations = network.encode(inputs, n_layers=layer)[rows, units]
            (gradient,) = torch.autograd.grad(activations.sum(), inputs)
            with torch.no_grad():
                # Normalised steps of a shrinking length: the size of a
                # unit's gradient says nothing about how far its optimum is.
                step_length = _MAXIMIZE_FIRST_STEP * norm * (1 - step / _MAXIMIZE_STEPS)
                inputs = _onto_sphere(inputs.detach() + step_length * _onto_sphere(gradient, 1.0), norm)
    return inputs.cpu().double().numpy()
