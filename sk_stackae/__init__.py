"""Deep stacked autoencoders for scikit-learn, trained with PyTorch."""

__version__ = "0.1.0.dev0"

# After __version__, which their pickles record.
from ._estimator import StackedAutoencoder
from ._outlier import StackedAutoencoderOutlierDetector
from ._supervised import StackedAutoencoderClassifier, StackedAutoencoderRegressor

__all__ = [
    "StackedAutoencoder",
    "StackedAutoencoderClassifier",
    "StackedAutoencoderOutlierDetector",
    "StackedAutoencoderRegressor",
]
