"""Deep stacked autoencoders for scikit-learn, trained with PyTorch."""

from ._estimator import StackedAutoencoder

__version__ = "0.1.0.dev0"

__all__ = ["StackedAutoencoder"]
