"""The early-stopping split: which rows train and which are held out to score each epoch."""

import math

import numpy as np
import torch


def random_split(n_rows, fraction, generator):
    """Indices of the training and the held-out rows, for early stopping."""
    n_validation = math.ceil(fraction * n_rows)
    order = torch.randperm(n_rows, generator=generator)
    return order[n_validation:], order[:n_validation]


def stratified_split(groups, fraction, generator):
    """Like :func:`random_split`, for the labeled and the unlabeled rows apart, stratified by class.

    The labeled rows hold out ``ceil(validation_fraction * n_labeled)``
    of them (as ``train_test_split`` rounds), at least one and never all,
    spread over the groups (the classes) in proportion to their sizes:
    each group's share rounded down, the rows left over given to the
    groups with the largest remainders, and no group left without a
    training row when it has two or more. The unlabeled rows (group -1)
    hold out the same fraction of theirs.
    """
    train, validation = [], []
    values, counts = np.unique(groups, return_counts=True)
    labeled = values != -1
    quotas = np.zeros(len(values), dtype=int)
    if labeled.any():
        quotas[labeled] = stratified_quotas(counts[labeled], fraction)
    if (~labeled).any():
        n_unlabeled = counts[~labeled][0]
        quotas[~labeled] = min(n_unlabeled - 1, math.ceil(fraction * n_unlabeled))
    for group, quota in zip(values, quotas, strict=True):
        members = torch.from_numpy(np.flatnonzero(groups == group))
        order = members[torch.randperm(len(members), generator=generator)]
        validation.append(order[:quota])
        train.append(order[quota:])
    return torch.cat(train), torch.cat(validation)


def stratified_quotas(counts, fraction):
    """How many rows of each group (of ``counts`` rows) to hold out: ``ceil(fraction * total)``, in proportion."""
    total = int(counts.sum())
    wanted = min(total - 1, max(1, math.ceil(fraction * total)))
    shares = fraction * counts * wanted / max(fraction * total, 1e-12)
    quotas = np.floor(shares).astype(int)
    # A group of two or more rows keeps one to train on.
    ceilings = np.where(counts >= 2, counts - 1, counts)
    quotas = np.minimum(quotas, ceilings)
    remainders = shares - quotas
    for group in np.argsort(-remainders, kind="stable"):
        if quotas.sum() >= wanted:
            break
        if quotas[group] < ceilings[group]:
            quotas[group] += 1
    for group in np.argsort(-counts, kind="stable"):  # still short (many singletons): the largest groups give
        while quotas.sum() < wanted and quotas[group] < counts[group] - 1:
            quotas[group] += 1
    return quotas
