"""What a phase predicts: reconstruction, classification, regression, each as one object.

A task carries what the loop and the engine need to know of it: its
objective terms (the head's error, and the semi-supervised terms that use
the unlabeled rows: pseudo-labels, consistency), each with its gradient
beside it; its validation metric; which rows are labeled and what an
early-stopping split stratifies on; and where a fresh head starts. A new
kind of target is a new task here, with its terms in
:mod:`sk_stackae._head_terms`, never a branch elsewhere.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ._head_terms import Consistency, PseudoLabels, SigmoidCrossEntropy, SoftmaxCrossEntropy, SquaredError
from ._losses import full_precision

# ---------------------------------------------------------------- metrics


class ReconstructionScore:
    """Validation score of a reconstruction: minus the mean of its per-row errors.

    ``error`` is the phase's :class:`~sk_stackae._losses.ReconstructionError`.

    A metric turns each validation batch into a small tensor of sums
    (:meth:`partial`), which are added over batches and over the replicas of
    a process group, then into one score, higher is better
    (:meth:`finish`).
    """

    def __init__(self, error):
        self.error = error

    def partial(self, outputs, batch):
        errors = self.error.per_sample(outputs["reconstruction"], batch.clean).double()
        if batch.weights is None:
            return torch.stack([-errors.sum(), errors.new_tensor(len(errors))])
        weights = batch.weights.double()
        return torch.stack([-torch.dot(errors, weights), weights.sum()])

    def finish(self, sums):
        total, count = sums.tolist()
        return total / count


class AccuracyScore:
    """Validation score of a classification: the share of rows whose class is predicted right."""

    def partial(self, outputs, batch):
        correct = (outputs["scores"].argmax(dim=1) == batch.target).double()
        if batch.weights is None:
            return torch.stack([correct.sum(), correct.new_tensor(len(batch.target))])
        weights = batch.weights.double()
        return torch.stack([torch.dot(correct, weights), weights.sum()])

    def finish(self, sums):
        correct, count = sums.tolist()
        return correct / count


class SubsetAccuracy:
    """Validation score of multilabel targets: the share of rows whose every label is predicted right."""

    def partial(self, outputs, batch):
        correct = ((outputs["scores"] > 0) == (batch.target > 0.5)).all(dim=1).double()
        if batch.weights is None:
            return torch.stack([correct.sum(), correct.new_tensor(len(correct))])
        weights = batch.weights.double()
        return torch.stack([torch.dot(correct, weights), weights.sum()])

    def finish(self, sums):
        correct, count = sums.tolist()
        return correct / count


class R2Score:
    """Validation score of a regression: R², averaged over the outputs as ``r2_score`` does.

    The sums it keeps per output (squared error, sum and sum of squares of
    the targets, count) give the same R² over several batches as over one.
    """

    def partial(self, outputs, batch):
        target = batch.target.double()
        weights = target.new_ones(len(target)) if batch.weights is None else batch.weights.double()
        return torch.cat(
            [
                weights @ (outputs["scores"].double() - target).square(),
                weights @ target,
                weights @ target.square(),
                weights.sum().unsqueeze(0),
            ]
        )

    def finish(self, sums):
        n_outputs = (len(sums) - 1) // 3
        squared_error, total, total_of_squares = sums[:-1].view(3, n_outputs)
        count = sums[-1]
        variance = total_of_squares - total.square() / count
        # A constant target: R² is 1 for a perfect fit, else 0 (r2_score's force_finite).
        constant = variance <= 1e-12 * total_of_squares.clamp(min=1e-300)
        r2 = torch.where(constant, (squared_error <= 1e-12).double(), 1.0 - squared_error / variance.clamp(min=1e-300))
        return float(r2.mean())


# ------------------------------------------------------- shared machinery


class Teacher:
    """The predictions that consistency aims at: the head's scores of the clean rows, without dropout.

    Parameters
    ----------
    forward : callable
        ``forward(rows)``: the head's scores of ``rows`` (the clean pass).
    """

    def __init__(self, forward):
        self.forward = forward

    def scores(self, batch):
        """The scores of the batch's clean rows, in float32 and outside any graph; computed once a batch."""
        scores = batch.cache.get("teacher_scores")
        if scores is None:
            with torch.no_grad():
                scores = full_precision(self.forward(batch.clean))
            batch.cache["teacher_scores"] = scores
        return scores


# The probe step of the virtual adversarial perturbation, as a fraction of its epsilon.
_PROBE_FRACTION = 1e-2


def _unit_rows(matrix):
    """``matrix`` with each row scaled to unit L2 norm (a zero row stays zero), in place."""
    return matrix.div_(torch.linalg.vector_norm(matrix, dim=1, keepdim=True).clamp_(min=1e-12))


class VirtualAdversarialPerturbation:
    """Moves each corrupted row by ``epsilon`` toward the largest change of its prediction.

    The direction is one power iteration from a random one (Miyato et al.,
    2018): the gradient, with respect to a small random step from the
    rows, of the divergence between the teacher's scores of the clean rows
    and the scores at the rows plus that step. Where the rows are clean,
    this gradient is the Hessian of the divergence times the step, whose
    power iteration finds the direction the prediction is most sensitive
    to; where noise has already moved a row, it is, to first order, the
    direction that adds most to the divergence the noise caused. No dropout
    in this pass: the direction belongs to the network, not to one draw of
    it. The moved rows carry no gradient to the parameters.

    Parameters
    ----------
    epsilon : float
        The L2 norm, per row, of the perturbation.
    teacher : Teacher
        The clean predictions.
    divergence : callable
        ``divergence(scores, teacher_scores)``: the task's consistency error.
    """

    def __init__(self, epsilon, teacher, divergence):
        self.epsilon = epsilon
        self.teacher = teacher
        self.divergence = divergence

    def __call__(self, inputs, batch, generator):
        teacher_scores = self.teacher.scores(batch)
        step = torch.randn(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
        # The step's length: small against epsilon, so that the gradient
        # sees the divergence's local curvature, but not so small that
        # float32 rounds it away where it is added to inputs of order 1
        # (the paper's 1e-6 spread over 784 pixels would be).
        step = _unit_rows(step).mul_(_PROBE_FRACTION * self.epsilon)
        with torch.enable_grad():
            step.requires_grad_(True)
            divergence = self.divergence(full_precision(self.teacher.forward(inputs + step)), teacher_scores)
            (direction,) = torch.autograd.grad(divergence, step)
        return inputs + _unit_rows(direction).mul_(self.epsilon)


# ------------------------------------------------------------------ tasks


class ClassificationTask:
    """One class per row: softmax cross-entropy, class indices as targets (``-1``: unlabeled)."""

    name = "classification"
    target_dtype = np.int64

    def labeled(self, values):
        """Which rows of the target values (numpy) have a label."""
        return values >= 0

    def labeled_rows(self, target):
        """Which rows of a target batch (torch) have a label."""
        return target >= 0

    def groups(self, values):
        """What an early-stopping split stratifies on: the class, ``-1`` for the unlabeled rows."""
        return values

    def head_start(self, values, n_outputs, weights=None):
        """The head's bias that predicts the class prior of the labeled training ``values``: log frequencies."""
        counts = np.bincount(values, weights=weights, minlength=n_outputs).astype(np.float64)
        floor = 0.5 if weights is None else 0.5 * weights[weights > 0].min(initial=1.0)
        return np.log(np.maximum(counts, floor) / counts.sum())

    def head_error(self, class_weights=None):
        return SoftmaxCrossEntropy(class_weights)

    def pseudo_labels(self, weight):
        return PseudoLabels(weight)

    def consistency(self, weight, teacher):
        return Consistency(self, weight, teacher)

    def metric(self):
        return AccuracyScore()

    @staticmethod
    def divergence(scores, teacher_scores):
        """Mean Kullback-Leibler divergence of the predicted class probabilities from the teacher's."""
        return F.kl_div(
            torch.log_softmax(scores, dim=1),
            torch.log_softmax(teacher_scores, dim=1),
            reduction="batchmean",
            log_target=True,
        )

    @staticmethod
    def row_divergences(scores, teacher_scores):
        """The divergence of each row's predicted class probabilities from the teacher's."""
        teacher_log_probabilities = torch.log_softmax(teacher_scores, dim=1)
        log_probabilities = torch.log_softmax(scores, dim=1)
        return torch.sum(teacher_log_probabilities.exp() * (teacher_log_probabilities - log_probabilities), dim=1)

    @staticmethod
    def divergence_and_gradient(scores, teacher_scores, weight):
        """``weight`` times :meth:`divergence`, and its gradient with respect to ``scores``.

        ``weight`` is a number, or one per row (the rows' own weights).
        """
        teacher_log_probabilities = torch.log_softmax(teacher_scores, dim=1)
        teacher_probabilities = teacher_log_probabilities.exp()
        log_probabilities = torch.log_softmax(scores, dim=1)
        per_element = teacher_probabilities * (teacher_log_probabilities - log_probabilities)
        if isinstance(weight, torch.Tensor):
            weight = (weight / len(scores)).unsqueeze(1)
            value = torch.sum(per_element * weight)
        else:
            weight = weight / len(scores)
            value = torch.sum(per_element) * weight
        # d KL(p_teacher || softmax(scores)) / d scores = softmax(scores) - p_teacher.
        return value, log_probabilities.exp_().sub_(teacher_probabilities).mul_(weight)


class RegressionTask:
    """One or several real targets per row: squared error, NaN targets for the unlabeled rows."""

    name = "regression"
    target_dtype = np.float32

    def labeled(self, values):
        return ~np.isnan(values[:, 0])

    def labeled_rows(self, target):
        return ~torch.isnan(target[:, 0])

    def groups(self, values):
        """What an early-stopping split stratifies on: labeled (0) or not (-1)."""
        return np.where(self.labeled(values), 0, -1)

    def head_start(self, values, n_outputs, weights=None):
        """The head's bias that predicts the mean of the labeled training ``values``."""
        return np.average(values, axis=0, weights=weights)

    def head_error(self, class_weights=None):
        if class_weights is not None:
            raise ValueError("Class weights are for classes; a regression has none.")
        return SquaredError()

    def pseudo_labels(self, weight):
        raise ValueError("Pseudo-labels are for classes; a regression has none.")

    def consistency(self, weight, teacher):
        return Consistency(self, weight, teacher)

    def metric(self):
        return R2Score()

    @staticmethod
    def divergence(scores, teacher_scores):
        """Mean squared difference of the predictions."""
        return F.mse_loss(scores, teacher_scores)

    @staticmethod
    def row_divergences(scores, teacher_scores):
        """The mean squared difference of each row's predictions from the teacher's."""
        return (scores - teacher_scores).square().mean(dim=1)

    @staticmethod
    def divergence_and_gradient(scores, teacher_scores, weight):
        """``weight`` times :meth:`divergence` (a number, or one per row), and its gradient."""
        difference = scores - teacher_scores
        if isinstance(weight, torch.Tensor):
            weight = (weight / len(scores)).unsqueeze(1)
            value = torch.sum(difference.square() * weight) / scores.shape[1]
        else:
            weight = weight / len(scores)
            value = difference.square().sum() * (weight / scores.shape[1])
        return value, difference.mul_(2.0 * weight / scores.shape[1])


class MultilabelTask:
    """Several yes-or-no labels per row: a sigmoid per label, 0/1 targets (a row of NaN: unlabeled)."""

    name = "multilabel"
    target_dtype = np.float32

    def labeled(self, values):
        return ~np.isnan(values[:, 0])

    def labeled_rows(self, target):
        return ~torch.isnan(target[:, 0])

    def groups(self, values):
        """What an early-stopping split stratifies on: labeled (0) or not (-1)."""
        return np.where(self.labeled(values), 0, -1)

    def head_start(self, values, n_outputs, weights=None):
        """The head's bias that predicts each label's frequency among the labeled training rows."""
        frequency = np.average(values, axis=0, weights=weights).clip(1e-3, 1 - 1e-3)
        return np.log(frequency / (1 - frequency))

    def head_error(self, class_weights=None):
        if class_weights is not None:
            raise ValueError("class_weight is for one class per row; multilabel targets have none.")
        return SigmoidCrossEntropy()

    def pseudo_labels(self, weight):
        return PseudoLabels(weight, multilabel=True)

    def consistency(self, weight, teacher):
        return Consistency(self, weight, teacher)

    def metric(self):
        return SubsetAccuracy()

    @staticmethod
    def row_divergences(scores, teacher_scores):
        """Each row's Kullback-Leibler divergence of its label probabilities from the teacher's, over labels."""
        teacher = torch.sigmoid(teacher_scores)
        # KL(Bernoulli(t) || Bernoulli(sigmoid(s))) = BCE(s, t) - H(t).
        cross_entropy = F.binary_cross_entropy_with_logits(scores, teacher, reduction="none")
        entropy = F.binary_cross_entropy_with_logits(teacher_scores, teacher, reduction="none")
        return (cross_entropy - entropy).mean(dim=1)

    @classmethod
    def divergence(cls, scores, teacher_scores):
        """Mean divergence of the predicted label probabilities from the teacher's."""
        return cls.row_divergences(scores, teacher_scores).mean()

    @classmethod
    def divergence_and_gradient(cls, scores, teacher_scores, weight):
        """``weight`` times :meth:`divergence` (a number, or one per row), and its gradient."""
        per_row = cls.row_divergences(scores, teacher_scores)
        n_rows, n_labels = scores.shape
        if isinstance(weight, torch.Tensor):
            row_weight = weight / n_rows
            value = torch.dot(per_row, row_weight)
            scale = (row_weight / n_labels).unsqueeze(1)
        else:
            value = per_row.mean() * weight
            scale = weight / (n_rows * n_labels)
        # d BCE(s, t) / d s = sigmoid(s) - t.
        return value, torch.sigmoid(scores).sub_(torch.sigmoid(teacher_scores)).mul_(scale)


CLASSIFICATION = ClassificationTask()
REGRESSION = RegressionTask()
MULTILABEL = MultilabelTask()
