"""The ladder fine-tune: the supervised fine-tune as a ladder network (Rasmus et al., 2015).

The stage trains the network's encoder and head inside a
:class:`~sk_stackae._ladder_network.LadderNetwork` on the labeled rows'
error (of the corrupted pass, as the paper trains it) and every row's
denoising costs, then folds the ladder's batch normalisation back into the
network: what the fit returns is a plain encoder and head.
"""

from dataclasses import dataclass, replace

import torch

from ._engine import Finetune, GreedyPretraining, SupervisedFinetune
from ._ladder_network import LadderNetwork, data_weights
from ._loop import Phase
from ._losses import Term, weighted_mean

# The paper's denoising weights on permutation-invariant MNIST (Rasmus et
# al., 2015, section 4.1): 1000 on the input, 10 on the first hidden layer,
# 0.1 above it.
PAPER_INPUT_WEIGHT, PAPER_FIRST_LAYER_WEIGHT, PAPER_UPPER_WEIGHT = 1000.0, 10.0, 0.1
# The mean variance of MNIST's 784 pixel columns, scaled to [0, 1] (its 60,000 training rows): the
# input's units in which the paper's input weight is 1000.
PAPER_INPUT_VARIANCE = 0.0673
# The Γ-model's one cost, on the head's output.
GAMMA_TOP_WEIGHT = 1.0


def default_level_weights(kind, n_levels, input_variance=PAPER_INPUT_VARIANCE):
    """The ``"auto"`` denoising weights of a ladder of ``n_levels`` levels (the input, the layers, the head).

    ``"full"``: the paper's, with the input's weight per unit of the
    input's variance: the paper's 1000 at MNIST's mean column variance
    ``PAPER_INPUT_VARIANCE``, and ``1000 * PAPER_INPUT_VARIANCE /
    input_variance`` elsewhere, so that the input's cost weighs the same
    against the others whatever the input's units (the costs above it are
    on batch-normalised units already). ``"gamma"``: the head's level
    alone, the paper's Γ-model.
    """
    if kind == "gamma":
        return (0.0,) * (n_levels - 1) + (GAMMA_TOP_WEIGHT,)
    # Constant inputs have nothing to denoise: the paper's weight, whose cost is then 0 anyway.
    scale = PAPER_INPUT_VARIANCE / input_variance if input_variance > 0 else 1.0
    return (PAPER_INPUT_WEIGHT * scale, PAPER_FIRST_LAYER_WEIGHT) + (PAPER_UPPER_WEIGHT,) * (n_levels - 2)


class LadderDenoisingCosts(Term):
    """The ladder's denoising costs: each level's, times its weight, summed, averaged over the rows.

    The training pass gives every row's cost at every level (the input, the
    hidden layers, the head; see
    :class:`~sk_stackae._ladder_network.LadderNetwork`). The rows weigh as
    rows of the data (:func:`~sk_stackae._ladder_network.data_weights`):
    the labeled rows that an epoch repeats count once, not as often as they
    are repeated. No gradient by hand: the ladder's pass trains through
    autograd.

    Parameters
    ----------
    level_weights : sequence of float
        The weight of each level's cost, from the input up.
    labeled_rows : callable or None, default=None
        ``labeled_rows(target)``: which rows of a batch are labeled.
    labeled_repeats : float, default=1.0
        How many times more often than the others an epoch shows each
        labeled row.
    """

    output = "denoising"
    hand_derived = False

    def __init__(self, level_weights, labeled_rows=None, labeled_repeats=1.0):
        self.level_weights = tuple(float(weight) for weight in level_weights)
        self.labeled_rows = labeled_rows
        self.labeled_repeats = float(labeled_repeats)

    def value(self, costs, batch):
        per_row = costs @ costs.new_tensor(self.level_weights)
        return weighted_mean(per_row, data_weights(batch, self.labeled_rows, self.labeled_repeats))


@dataclass(frozen=True)
class LadderFinetune(SupervisedFinetune):
    """The supervised fine-tune as a ladder network.

    The fields of :class:`SupervisedFinetune`, and the following.

    Parameters
    ----------
    noise : float, default=0.3
        Standard deviation of the corrupted pass's Gaussian noise, on the
        input and on every standardised pre-activation.
    level_weights : tuple of float, default=()
        The weight of each level's denoising cost, from the input up to the
        head (``n_layers + 2`` values).

    Every row, labeled or not, contributes its denoising costs; each epoch
    sees the unlabeled rows once and the labeled rows repeated to make up
    half of it. The rows are not corrupted before the pass (``noise`` of the
    options is for the other stages): the ladder corrupts its own. A fresh
    head starts at the class prior (or the targets' mean) with random
    weights; the ladder's shifts and scales start where the network is (see
    :meth:`~sk_stackae._ladder_network.LadderNetwork.start_from`), and its
    decoder afresh at every fit, continued or not. Pseudo-labels, with a
    weight, read the corrupted pass's scores.
    """

    noise: float = 0.3
    level_weights: tuple = ()

    def run(self, fit):
        network = fit.network
        labeled_train, validation = fit.labeled_split()
        train = fit.with_unlabeled_rows(labeled_train)
        task = fit.target_values.task
        labeled = fit.target_values.labeled
        repeats = int(labeled[train.cpu().numpy()].sum()) / max(1, len(labeled_train))
        statistics_rows = self._statistics_rows(fit)
        trained_layers = set()
        if fit.continuing or fit.plan.start_from is not None or fit.result.results_of((GreedyPretraining, Finetune)):
            trained_layers.update(range(network.n_layers))
        fresh_head = not fit.head_started
        if not fresh_head:
            trained_layers.add(network.n_layers)
        fit.start_head()
        repeats = max(1.0, repeats)
        ladder = LadderNetwork(network, self.noise, task.labeled_rows, repeats)
        ladder.reset_parameters(fit.parameter_generator)
        if fresh_head:
            ladder.draw_head(fit.parameter_generator)
        batch_size = fit.options.batch_size
        ladder.start_from(fit.rows, statistics_rows, fit.weights, batch_size, trained_layers)
        terms = [task.head_error(fit.class_weights)]
        if self.pseudo_label_weight > 0:
            terms.append(task.pseudo_labels(self.pseudo_label_weight))
        terms.append(LadderDenoisingCosts(self.level_weights, task.labeled_rows, repeats))
        phase = Phase(
            name=self.name,
            parameters=ladder.trained_parameters(),
            training_pass=ladder.training_pass(),
            objective=replace(fit.objective(terms, network.encoder_activation_names), noise=None),
            metric=task.metric(),
            rows=fit.rows,
            targets=fit.targets,
            weights=fit.weights,
            epochs=self.epochs,
            train_indices=train,
            validation_indices=validation,
            average_from_epoch=self.average_from_epoch,
        )
        # The ladder's parameters are new at every fit: an optimiser carried on would not hold them.
        fit.optimizer = None
        fit.train(self, phase)
        # Interrupted or not, the network goes back to a plain encoder and head.
        ladder.fold_into(fit.rows, statistics_rows, fit.weights, batch_size)

    @staticmethod
    def _statistics_rows(fit):
        """The rows the batch-normalisation statistics are taken over: the training split's."""
        if fit.split is not None:
            return fit.split[0].to(fit.rows.index_device)
        return torch.arange(fit.rows.n_rows, device=fit.rows.index_device)
