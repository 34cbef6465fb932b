"""Deep stacked autoencoders for scikit-learn, trained with PyTorch."""

__version__ = "0.1.0.dev0"

from ._estimator import StackedAutoencoder  # after __version__, which its pickles record

__all__ = ["StackedAutoencoder"]
