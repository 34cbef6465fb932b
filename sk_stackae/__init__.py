"""Deep stacked autoencoders for scikit-learn, trained with PyTorch."""

__version__ = "0.1.0.dev0"

# After __version__, which their pickles record.
from ._classifier import StackedAutoencoderClassifier
from ._estimator import StackedAutoencoder
from ._loop import DivergenceError
from ._outlier import StackedAutoencoderOutlierDetector
from ._regressor import StackedAutoencoderRegressor

__all__ = [
    "DivergenceError",
    "StackedAutoencoder",
    "StackedAutoencoderClassifier",
    "StackedAutoencoderOutlierDetector",
    "StackedAutoencoderRegressor",
]
