"""Plotting: Display objects for a fitted :class:`~sk_stackae.StackedAutoencoder`.

The Displays follow scikit-learn's visualisation API: build one with
``from_estimator`` (or from precomputed values and ``plot``); it draws on
``ax_`` in ``figure_``. They need matplotlib, the ``plot`` extra
(``pip install 'sk-stackae[plot]'``), which is imported only when a Display
draws.

- :class:`ReconstructionDisplay`: images above their reconstructions.
- :class:`FeatureDisplay`: what the units of a layer respond to.
- :class:`LossCurveDisplay`: the loss of every pretraining phase and of the
  fine-tune.
"""

from ._feature_display import FeatureDisplay
from ._loss_curve_display import LossCurveDisplay
from ._plotting import ReconstructionDisplay

__all__ = ["FeatureDisplay", "LossCurveDisplay", "ReconstructionDisplay"]
