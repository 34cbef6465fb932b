"""What a phase predicts: reconstruction, classification, regression, each as one object.

A task carries what the loop and the engine need to know of it: its
objective terms (the head's error, and the semi-supervised terms that use
the unlabeled rows: pseudo-labels, consistency), each with its gradient
beside it; its validation metric; which rows are labeled and what an
early-stopping split stratifies on; and where a fresh head starts. A new
kind of target (multilabel, say) is a new task here, never a branch
elsewhere.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ._losses import Term

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
        errors = self.error.per_sample(outputs["reconstruction"], batch.clean)
        return torch.stack([-errors.double().sum(), errors.new_tensor(len(errors), dtype=torch.float64)])

    def finish(self, sums):
        total, count = sums.tolist()
        return total / count


class AccuracyScore:
    """Validation score of a classification: the share of rows whose class is predicted right."""

    def partial(self, outputs, batch):
        correct = (outputs["scores"].argmax(dim=1) == batch.target).sum().double()
        return torch.stack([correct, correct.new_tensor(len(batch.target))])

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
        return torch.cat(
            [
                (outputs["scores"].double() - target).square().sum(dim=0),
                target.sum(dim=0),
                target.square().sum(dim=0),
                target.new_tensor([len(target)]),
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
                scores = self.forward(batch.clean).float()
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
            divergence = self.divergence(self.teacher.forward(inputs + step).float(), teacher_scores)
            (direction,) = torch.autograd.grad(divergence, step)
        return inputs + _unit_rows(direction).mul_(self.epsilon)


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
        return self.weight * self.task.divergence(scores, self.teacher.scores(batch))

    def value_and_gradient(self, scores, batch):
        return self.task.divergence_and_gradient(scores, self.teacher.scores(batch), self.weight)


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

    def head_start(self, values, n_outputs):
        """The head's bias that predicts the class prior of the labeled training ``values``: log frequencies."""
        counts = np.bincount(values, minlength=n_outputs).astype(np.float64)
        return np.log(np.maximum(counts, 0.5) / counts.sum())

    def head_error(self):
        return SoftmaxCrossEntropy()

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
    def divergence_and_gradient(scores, teacher_scores, weight):
        """``weight`` times :meth:`divergence`, and its gradient with respect to ``scores``."""
        weight = weight / len(scores)
        teacher_log_probabilities = torch.log_softmax(teacher_scores, dim=1)
        teacher_probabilities = teacher_log_probabilities.exp()
        log_probabilities = torch.log_softmax(scores, dim=1)
        value = torch.sum(teacher_probabilities * (teacher_log_probabilities - log_probabilities)) * weight
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

    def head_start(self, values, n_outputs):
        """The head's bias that predicts the mean of the labeled training ``values``."""
        return values.mean(axis=0)

    def head_error(self):
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
    def divergence_and_gradient(scores, teacher_scores, weight):
        weight = weight / len(scores)
        difference = scores - teacher_scores
        value = difference.square().sum() * (weight / scores.shape[1])
        return value, difference.mul_(2.0 * weight / scores.shape[1])


CLASSIFICATION = ClassificationTask()
REGRESSION = RegressionTask()


# ------------------------------------------------------ the head's errors


class SoftmaxCrossEntropy(Term):
    """Mean cross-entropy of the softmax of the scores against the labels, over the labeled rows of a batch."""

    output = "scores"
    hand_derived = True

    def value(self, scores, batch):
        labeled = batch.target >= 0
        errors = F.cross_entropy(scores, batch.target.clamp(min=0), reduction="none")
        return errors.mul(labeled).sum() / labeled.sum().clamp(min=1)

    def value_and_gradient(self, scores, batch):
        target = batch.target
        labeled = target >= 0
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

    def __init__(self, weight):
        self.weight = weight

    def value(self, scores, batch):
        unlabeled = batch.target < 0
        predicted = scores.detach().argmax(dim=1)
        summed = F.cross_entropy(scores, predicted, reduction="none").mul(unlabeled).sum()
        return self.weight * (summed / unlabeled.sum().clamp(min=1))

    def value_and_gradient(self, scores, batch):
        unlabeled = batch.target < 0
        predicted = scores.argmax(dim=1, keepdim=True)
        row_weights = unlabeled.to(scores.dtype) * (self.weight / unlabeled.sum().clamp(min=1))
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
        return errors.mul(labeled).sum() / labeled.sum().clamp(min=1)

    def value_and_gradient(self, scores, batch):
        target = batch.target
        labeled = ~torch.isnan(target[:, 0])
        row_weights = labeled.to(scores.dtype) / labeled.sum().clamp(min=1)
        difference = scores - target.nan_to_num()
        value = torch.dot(difference.square().mean(dim=1), row_weights)
        return value, difference.mul_(row_weights.unsqueeze(1) * (2.0 / scores.shape[1]))
