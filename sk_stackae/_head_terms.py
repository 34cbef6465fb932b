"""The objective terms of a supervised phase: the head's errors, pseudo-labels and consistency.

Each term derives its gradient by hand beside its value (see
:mod:`sk_stackae._losses`); the tasks of :mod:`sk_stackae._tasks` choose
which a phase trains.
"""

import torch
import torch.nn.functional as F

from ._losses import Term, row_shares, weighted_mean


class Consistency(Term):
    """Every row's prediction from its corrupted input, trained toward the teacher's clean prediction.

    The divergence of the task (``divergence``), averaged over the rows of
    the batch, labeled or not, times ``weight``.
    """

    output = "scores"
    hand_derived = True

    def __init__(self, task, weight, teacher):
        self.task = task
        self.weight = weight
        self.teacher = teacher

    def value(self, scores, batch):
        teacher_scores = self.teacher.scores(batch)
        if batch.weights is None:
            return self.weight * self.task.divergence(scores, teacher_scores)
        return self.weight * weighted_mean(self.task.row_divergences(scores, teacher_scores), batch.weights)

    def value_and_gradient(self, scores, batch):
        teacher_scores = self.teacher.scores(batch)
        if batch.weights is None:
            return self.task.divergence_and_gradient(scores, teacher_scores, self.weight)
        shares = row_shares(batch.weights)
        return self.task.divergence_and_gradient(scores, teacher_scores, self.weight * len(scores) * shares)


def _labeled_shares(labeled, batch, class_weights=None):
    """Each labeled row's share of the batch's mean error: its weight (times its class's) over theirs."""
    if batch.weights is None and class_weights is None:
        return None
    weights = labeled.to(batch.clean.dtype) if batch.weights is None else batch.weights * labeled
    if class_weights is not None:
        weights = weights * class_weights[batch.target.clamp(min=0)]
    return row_shares(weights)


class SoftmaxCrossEntropy(Term):
    """Mean cross-entropy of the softmax of the scores against the labels, over the labeled rows of a batch.

    Parameters
    ----------
    class_weights : torch.Tensor or None, default=None
        A weight per class, multiplying the rows' own (``class_weight``).
    """

    output = "scores"
    hand_derived = True

    def __init__(self, class_weights=None):
        self.class_weights = class_weights

    def value(self, scores, batch):
        labeled = batch.target >= 0
        errors = F.cross_entropy(scores, batch.target.clamp(min=0), reduction="none")
        shares = _labeled_shares(labeled, batch, self.class_weights)
        if shares is not None:
            return torch.dot(errors, shares)
        return errors.mul(labeled).sum() / labeled.sum().clamp(min=1)

    def value_and_gradient(self, scores, batch):
        target = batch.target
        labeled = target >= 0
        row_weights = _labeled_shares(labeled, batch, self.class_weights)
        if row_weights is None:
            row_weights = labeled.to(scores.dtype) / labeled.sum().clamp(min=1)
        log_probabilities = torch.log_softmax(scores, dim=1)
        picked = log_probabilities.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)
        value = -torch.dot(picked, row_weights)
        # Softmax cross-entropy: d/dscores = probabilities - one-hot(target).
        probabilities = log_probabilities.exp_()
        gradient = probabilities.scatter_add_(
            1, target.clamp(min=0).unsqueeze(1), probabilities.new_full((len(scores), 1), -1.0)
        ).mul_(row_weights.unsqueeze(1))
        return value, gradient


class PseudoLabels(Term):
    """Every unlabeled row's cross-entropy against the class it predicts now (Lee, 2013), times ``weight``.

    The pseudo-labels push the decision boundaries away from the unlabeled
    rows.
    """

    output = "scores"
    hand_derived = True

    def __init__(self, weight, multilabel=False):
        self.weight = weight
        self.multilabel = multilabel

    def _shares(self, unlabeled, batch):
        if batch.weights is None:
            return unlabeled.to(batch.clean.dtype) / unlabeled.sum().clamp(min=1)
        return row_shares(batch.weights, unlabeled)

    def _unlabeled(self, batch):
        return torch.isnan(batch.target[:, 0]) if self.multilabel else batch.target < 0

    def value(self, scores, batch):
        unlabeled = self._unlabeled(batch)
        if self.multilabel:
            # Each label against what the row predicts for it now (above or below one half).
            predicted = (scores.detach() > 0).to(scores.dtype)
            errors = F.binary_cross_entropy_with_logits(scores, predicted, reduction="none").mean(dim=1)
            return self.weight * torch.dot(errors, self._shares(unlabeled, batch))
        predicted = scores.detach().argmax(dim=1)
        errors = F.cross_entropy(scores, predicted, reduction="none")
        if batch.weights is not None:
            return self.weight * torch.dot(errors, self._shares(unlabeled, batch))
        return self.weight * (errors.mul(unlabeled).sum() / unlabeled.sum().clamp(min=1))

    def value_and_gradient(self, scores, batch):
        unlabeled = self._unlabeled(batch)
        row_weights = self._shares(unlabeled, batch) * self.weight
        if self.multilabel:
            predicted = (scores > 0).to(scores.dtype)
            errors = F.binary_cross_entropy_with_logits(scores, predicted, reduction="none").mean(dim=1)
            gradient = torch.sigmoid(scores).sub_(predicted).mul_(row_weights.unsqueeze(1) / scores.shape[1])
            return torch.dot(errors, row_weights), gradient
        predicted = scores.argmax(dim=1, keepdim=True)
        log_probabilities = torch.log_softmax(scores, dim=1)
        value = -torch.dot(log_probabilities.gather(1, predicted).squeeze(1), row_weights)
        probabilities = log_probabilities.exp_()
        gradient = probabilities.scatter_add_(1, predicted, probabilities.new_full((len(scores), 1), -1.0))
        return value, gradient.mul_(row_weights.unsqueeze(1))


class SquaredError(Term):
    """Mean squared error of every output, over the labeled rows of a batch (NaN targets: unlabeled)."""

    output = "scores"
    hand_derived = True

    def value(self, scores, batch):
        target = batch.target
        labeled = ~torch.isnan(target[:, 0])
        errors = (scores - target.nan_to_num()).square().mean(dim=1)
        shares = _labeled_shares(labeled, batch)
        if shares is not None:
            return torch.dot(errors, shares)
        return errors.mul(labeled).sum() / labeled.sum().clamp(min=1)

    def value_and_gradient(self, scores, batch):
        target = batch.target
        labeled = ~torch.isnan(target[:, 0])
        row_weights = _labeled_shares(labeled, batch)
        if row_weights is None:
            row_weights = labeled.to(scores.dtype) / labeled.sum().clamp(min=1)
        difference = scores - target.nan_to_num()
        value = torch.dot(difference.square().mean(dim=1), row_weights)
        return value, difference.mul_(row_weights.unsqueeze(1) * (2.0 / scores.shape[1]))


class SigmoidCrossEntropy(Term):
    """Mean binary cross-entropy of a sigmoid per label, over the labels and the labeled rows of a batch."""

    output = "scores"
    hand_derived = True

    def _shares(self, target, batch):
        labeled = ~torch.isnan(target[:, 0])
        shares = _labeled_shares(labeled, batch)
        return labeled.to(target.dtype) / labeled.sum().clamp(min=1) if shares is None else shares

    def value(self, scores, batch):
        target = batch.target
        errors = F.binary_cross_entropy_with_logits(scores, target.nan_to_num(), reduction="none").mean(dim=1)
        return torch.dot(errors, self._shares(target, batch))

    def value_and_gradient(self, scores, batch):
        target = batch.target.nan_to_num()
        shares = self._shares(batch.target, batch)
        errors = F.binary_cross_entropy_with_logits(scores, target, reduction="none").mean(dim=1)
        gradient = torch.sigmoid(scores).sub_(target).mul_(shares.unsqueeze(1) / scores.shape[1])
        return torch.dot(errors, shares), gradient
