"""LossCurveDisplay: the loss of every phase of a fit, one after another."""

import numpy as np

from ._engine import FINETUNE_NAME, pretrain_phase_name
from ._plotting import _check_matplotlib_support, _find_autoencoder, _new_axes


class LossCurveDisplay:
    """The loss of every phase of training, one after another, on one Axes.

    Greedy pretraining phase ``k`` and the fine-tune are drawn in the order
    they ran, each in its own colour, with epochs counted over the whole fit.
    With early stopping, the validation loss (minus the validation score)
    of each phase is drawn dashed in the same colour, and the legend adds a
    key to the two line styles.

    The phases measure different things: phase 1 and the fine-tune the
    reconstruction error of the input (with ``loss``), deeper phases the
    squared error of reconstructing the codes of the layer below. The
    vertical axis is logarithmic by default so that all of them can be read.

    It is recommended to use :meth:`LossCurveDisplay.from_estimator` to
    create a :class:`LossCurveDisplay`. All parameters are stored as
    attributes.

    Read more in the :ref:`User Guide <plotting>`.

    Parameters
    ----------
    pretrain_loss_curves : list of list of float
        The training loss of every epoch of each pretraining phase, as in
        ``pretrain_loss_curves_``. Empty phases are not drawn.

    loss_curve : list of float
        The training loss of every fine-tune epoch, as in ``loss_curve_``.

    pretrain_validation_scores : list of list of float, default=None
        The validation score of every epoch of each pretraining phase, as in
        ``pretrain_validation_scores_``; None when there are none.

    validation_scores : list of float, default=None
        The validation score of every fine-tune epoch, as in
        ``validation_scores_``; None when there are none.

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        The training loss of each phase that ran, in training order.

    validation_lines_ : list of matplotlib Line2D or None
        The validation loss of each phase that has validation scores, in
        training order; None when no phase has any.

    ax_ : matplotlib Axes
        Axes with the curves.

    figure_ : matplotlib Figure
        Figure containing the curves.

    See Also
    --------
    ReconstructionDisplay : Images above their reconstructions.
    FeatureDisplay : What the units of a layer respond to.

    Examples
    --------
    >>> from sk_stackae.plotting import LossCurveDisplay
    >>> display = LossCurveDisplay(
    ...     pretrain_loss_curves=[[0.09, 0.05, 0.04], [0.5, 0.3, 0.2]],
    ...     loss_curve=[0.05, 0.03, 0.02, 0.018],
    ... )
    >>> display.plot()
    <...LossCurveDisplay object at ...>
    >>> [line.get_label() for line in display.lines_]
    ['pretrain layer 1/2', 'pretrain layer 2/2', 'finetune']
    >>> display.lines_[2].get_xdata().tolist()
    [7, 8, 9, 10]
    """

    def __init__(self, *, pretrain_loss_curves, loss_curve, pretrain_validation_scores=None, validation_scores=None):
        self.pretrain_loss_curves = pretrain_loss_curves
        self.loss_curve = loss_curve
        self.pretrain_validation_scores = pretrain_validation_scores
        self.validation_scores = validation_scores

    def _phases(self):
        """``(name, losses, validation scores or None)`` of every phase, in training order."""
        n_layers = len(self.pretrain_loss_curves)
        pretrain_scores = self.pretrain_validation_scores or [None] * n_layers
        if len(pretrain_scores) != n_layers:
            raise ValueError(
                f"pretrain_validation_scores has {len(pretrain_scores)} phases, "
                f"but pretrain_loss_curves has {n_layers}."
            )
        phases = [
            (pretrain_phase_name(k + 1, n_layers), curve, scores)
            for k, (curve, scores) in enumerate(zip(self.pretrain_loss_curves, pretrain_scores, strict=True))
        ]
        phases.append((FINETUNE_NAME, self.loss_curve, self.validation_scores))
        return phases

    def plot(self, ax=None, *, yscale="log"):
        """Plot the loss curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on. None creates a new figure and axes.

        yscale : {"log", "linear"}, default="log"
            Scale of the loss axis.

        Returns
        -------
        display : :class:`LossCurveDisplay`
            Object that stores the computed values and the artists.
        """
        _check_matplotlib_support(f"{type(self).__name__}.plot")
        if yscale not in ("log", "linear"):
            raise ValueError(f"yscale must be 'log' or 'linear'; got {yscale!r}.")
        phases = self._phases()
        if not any(len(losses) for _, losses, _ in phases):
            raise ValueError("There is no loss to plot: every phase has an empty loss curve.")
        if ax is None:
            ax = _new_axes((6.4, 4.0))

        self.lines_ = []
        validation_lines = []
        first_epoch = 1
        for color_index, (name, losses, scores) in enumerate(phases):
            if not len(losses):
                continue
            epochs = np.arange(first_epoch, first_epoch + len(losses))
            color = f"C{color_index}"
            (line,) = ax.plot(epochs, losses, color=color, label=name)
            self.lines_.append(line)
            if scores is not None and len(scores):
                # Scores are minus the validation loss; drawn as a loss, they
                # share the axis with the training loss they compare to.
                (validation_line,) = ax.plot(
                    epochs[: len(scores)],
                    -np.asarray(scores, dtype=float),
                    color=color,
                    linestyle="--",
                    label=f"{name} (validation)",
                )
                validation_lines.append(validation_line)
            first_epoch += len(losses)
        self.validation_lines_ = validation_lines or None

        ax.set_yscale(yscale)
        ax.set_xlabel("epoch (the phases one after another)")
        ax.set_ylabel("mean reconstruction loss")
        ax.legend(handles=self._legend_handles())
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _legend_handles(self):
        """One entry per phase, and a key to the line styles when validation is drawn.

        A validation line per phase would double the legend for no more
        information: its colour already names the phase.
        """
        handles = list(self.lines_)
        if self.validation_lines_ is not None:
            from matplotlib.lines import Line2D

            handles += [
                Line2D([], [], color="grey", label="training"),
                Line2D([], [], color="grey", linestyle="--", label="validation"),
            ]
        return handles

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, yscale="log"):
        """Plot the loss curves of a fitted estimator of this package.

        The greedy phases' curves, then the main stage's: the fine-tune of
        :class:`~sk_stackae.StackedAutoencoder` and of the detector, the
        supervised fine-tune of the classifier and the regressor.

        Parameters
        ----------
        estimator : estimator of this package, or Pipeline
            A fitted :class:`~sk_stackae.StackedAutoencoder`, classifier,
            regressor or outlier detector, or a fitted pipeline with one
            such step.

        ax : matplotlib Axes, default=None
            Axes to plot on. None creates a new figure and axes.

        yscale : {"log", "linear"}, default="log"
            Scale of the loss axis.

        Returns
        -------
        display : :class:`LossCurveDisplay`
            Object that stores the computed values and the artists.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sk_stackae import StackedAutoencoder
        >>> from sk_stackae.plotting import LossCurveDisplay
        >>> X, _ = load_digits(return_X_y=True)
        >>> X = X / 16
        >>> autoencoder = StackedAutoencoder(
        ...     (32, 8), pretrain_epochs=3, finetune_epochs=4, device="cpu", random_state=0
        ... ).fit(X)
        >>> display = LossCurveDisplay.from_estimator(autoencoder)
        >>> [len(line.get_xdata()) for line in display.lines_]
        [3, 3, 4]
        """
        _check_matplotlib_support(f"{cls.__name__}.from_estimator")
        _, estimator = _find_autoencoder(estimator, cls.__name__)
        display = cls(
            pretrain_loss_curves=estimator.pretrain_loss_curves_,
            loss_curve=estimator.loss_curve_,
            pretrain_validation_scores=estimator.pretrain_validation_scores_,
            validation_scores=estimator.validation_scores_,
        )
        return display.plot(ax=ax, yscale=yscale)
