"""What the Displays share, and ReconstructionDisplay: what a fitted autoencoder reconstructs.

They follow scikit-learn's Display API (``from_estimator``, ``plot``, ``ax_``,
``figure_``). matplotlib is imported only when a Display draws, so that
``import sk_stackae`` never needs it.
"""

import math
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_array
from sklearn.utils.validation import check_is_fitted

from ._base import BaseStackedAutoencoder

_INSTALL_HINT = "pip install 'sk-stackae[plot]'"

# Empty space between image tiles, as a fraction of a tile's width.
_TILE_GAP = 0.15


def _check_matplotlib_support(caller_name):
    """Raise an ImportError that says how to install matplotlib, if it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{caller_name} needs matplotlib, which is not installed. Install the plotting extra "
            f"with `{_INSTALL_HINT}`, or matplotlib itself."
        ) from error


def _new_axes(figsize):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _is_count(value):
    """Whether ``value`` is an integer (numpy's too), and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def _check_image_shape(image_shape, n_features):
    """``image_shape`` as a (height, width) tuple of ints that holds ``n_features`` pixels."""
    sizes = list(np.atleast_1d(np.asarray(image_shape, dtype=object)))
    if len(sizes) != 2 or not all(_is_count(size) and size >= 1 for size in sizes):
        raise ValueError(f"image_shape must be (height, width) with positive integer sizes; got {image_shape!r}.")
    shape = (int(sizes[0]), int(sizes[1]))
    if shape[0] * shape[1] != n_features:
        raise ValueError(
            f"image_shape={shape} holds {shape[0] * shape[1]} pixels, but the data have {n_features} features."
        )
    return shape


def _dense_rows(X):
    """``X`` as a dense float ndarray (images are drawn pixel by pixel)."""
    X = check_array(X, accept_sparse=True, dtype=(np.float64, np.float32))
    return X.toarray() if sp.issparse(X) else X


def _tile_origin(index, n_cols, image_shape):
    """Top-left corner, in axes data units, of tile ``index`` in a grid of ``n_cols`` columns."""
    height, width = image_shape
    row, col = divmod(index, n_cols)
    return col * width * (1 + _TILE_GAP), row * height * (1 + _TILE_GAP)


def _draw_tiles(ax, tiles, image_shape, n_cols, color_limits, imshow_kwargs):
    """Draw each row of ``tiles`` as an image in a grid on ``ax``; one AxesImage per tile.

    Tiles share one Axes (so a Display fits in any subplot) and are placed by
    their ``extent``; ``color_limits(tile)`` gives each tile's ``(vmin, vmax)``.
    """
    height, width = image_shape
    images = np.empty(len(tiles), dtype=object)
    for index, tile in enumerate(tiles):
        left, top = _tile_origin(index, n_cols, image_shape)
        vmin, vmax = color_limits(tile)
        kwargs = {"vmin": vmin, "vmax": vmax, "interpolation": "nearest", **imshow_kwargs}
        images[index] = ax.imshow(
            tile.reshape(image_shape), extent=(left, left + width, top + height, top), origin="upper", **kwargs
        )
    n_rows = math.ceil(len(tiles) / n_cols)
    right, bottom = _tile_origin(n_rows * n_cols - 1, n_cols, image_shape)
    ax.set_xlim(0, right + width)
    ax.set_ylim(bottom + height, 0)  # row 0 on top, as images are read
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return images


def _grid_figsize(n_rows, n_cols, image_shape, inches_per_tile=0.7):
    height, width = image_shape
    tile_width = inches_per_tile
    tile_height = inches_per_tile * height / width
    return (max(4.5, n_cols * tile_width + 0.8), max(1.5, n_rows * tile_height + 0.8))


class ReconstructionDisplay:
    """Images next to their reconstructions: originals above, reconstructions below.

    It is recommended to use :meth:`ReconstructionDisplay.from_estimator` to
    create a :class:`ReconstructionDisplay`. All parameters are stored as
    attributes.

    Any fitted transformer with ``transform`` and ``inverse_transform`` can
    be shown: a :class:`~sk_stackae.StackedAutoencoder`, a pipeline that ends
    in one, or :class:`~sklearn.decomposition.PCA` for comparison.

    Read more in the :ref:`User Guide <plotting>`.

    Parameters
    ----------
    originals : ndarray of shape (n_images, n_features)
        The images, one flattened image per row (row-major, as
        ``image.reshape(-1)`` gives).

    reconstructions : ndarray of shape (n_images, n_features)
        Their reconstructions, row for row.

    image_shape : tuple of int
        ``(height, width)`` of one image; ``height * width`` is
        ``n_features``.

    name : str, default=None
        Name of the model, shown as the title. None shows no title.

    Attributes
    ----------
    images_ : ndarray of matplotlib AxesImage of shape (2, n_images)
        Row 0 holds the originals, row 1 the reconstructions.

    ax_ : matplotlib Axes
        Axes with the images.

    figure_ : matplotlib Figure
        Figure containing the images.

    See Also
    --------
    FeatureDisplay : What the units of a layer respond to.
    LossCurveDisplay : How the loss fell in each phase of training.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_stackae import StackedAutoencoder
    >>> from sk_stackae.plotting import ReconstructionDisplay
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> autoencoder = StackedAutoencoder(
    ...     (32, 8), pretrain_epochs=2, finetune_epochs=2, device="cpu", random_state=0
    ... ).fit(X)
    >>> reconstructions = autoencoder.inverse_transform(autoencoder.transform(X[:5]))
    >>> display = ReconstructionDisplay(
    ...     originals=X[:5], reconstructions=reconstructions, image_shape=(8, 8)
    ... )
    >>> display.plot()
    <...ReconstructionDisplay object at ...>
    >>> display.images_.shape
    (2, 5)
    """

    def __init__(self, *, originals, reconstructions, image_shape, name=None):
        self.originals = originals
        self.reconstructions = reconstructions
        self.image_shape = image_shape
        self.name = name

    def plot(self, ax=None, *, name=None, cmap="gray_r", **imshow_kwargs):
        """Plot the originals and their reconstructions.

        Both rows share one colour scale, the range of the originals, so
        that a reconstruction's contrast can be compared with its
        original's.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on. None creates a new figure and axes.

        name : str, default=None
            Title, overriding the ``name`` given at construction.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colormap of the images.

        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow` for every image,
            e.g. ``vmin`` and ``vmax`` to set the colour scale.

        Returns
        -------
        display : :class:`ReconstructionDisplay`
            Object that stores the computed values and the artists.
        """
        _check_matplotlib_support(f"{type(self).__name__}.plot")
        originals = np.asarray(self.originals)
        reconstructions = np.asarray(self.reconstructions)
        if originals.ndim != 2 or originals.shape != reconstructions.shape:
            raise ValueError(
                "originals and reconstructions must be 2-D arrays of the same shape (n_images, n_features); "
                f"got {originals.shape} and {reconstructions.shape}."
            )
        image_shape = _check_image_shape(self.image_shape, originals.shape[1])
        n_images = originals.shape[0]
        if ax is None:
            ax = _new_axes(_grid_figsize(2, n_images, image_shape))

        color_range = (float(originals.min()), float(originals.max()))
        tiles = np.concatenate([originals, reconstructions])
        images = _draw_tiles(
            ax, tiles, image_shape, n_images, lambda tile: color_range, {"cmap": cmap, **imshow_kwargs}
        )
        self.images_ = images.reshape(2, n_images)

        height = image_shape[0]
        ax.set_yticks([height / 2, height * (1.5 + _TILE_GAP)], labels=["original", "reconstruction"])
        ax.tick_params(axis="y", length=0)
        title = self.name if name is None else name
        if title is not None:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls, estimator, X, *, image_shape, n_images=10, name=None, ax=None, cmap="gray_r", **imshow_kwargs
    ):
        """Plot the first images of ``X`` above their reconstructions by ``estimator``.

        The reconstruction of ``X`` is
        ``estimator.inverse_transform(estimator.transform(X))``.

        Parameters
        ----------
        estimator : estimator instance
            A fitted transformer with ``transform`` and
            ``inverse_transform`` (a :class:`~sk_stackae.StackedAutoencoder`,
            a :class:`~sklearn.pipeline.Pipeline` of such transformers, or
            :class:`~sklearn.decomposition.PCA`, for example), or any fitted
            estimator of this package (the classifier, the regressor and the
            detector reconstruct through their networks; the detector in
            the units of ``X``), alone or in a pipeline. A pipeline that
            goes on past its estimator of this package (to a classifier,
            say) is shown through its steps up to it.

        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Images, one flattened image per row, as ``estimator`` takes
            them. Only the first ``n_images`` rows are used: select or
            shuffle the rows to show others.

        image_shape : tuple of int
            ``(height, width)`` of one image.

        n_images : int, default=10
            Number of images to show, at most ``n_samples``.

        name : str, default=None
            Title of the plot. None uses the estimator's class name.

        ax : matplotlib Axes, default=None
            Axes to plot on. None creates a new figure and axes.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colormap of the images.

        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow` for every image.

        Returns
        -------
        display : :class:`ReconstructionDisplay`
            Object that stores the computed values and the artists.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn.decomposition import PCA
        >>> from sk_stackae import StackedAutoencoder
        >>> from sk_stackae.plotting import ReconstructionDisplay
        >>> X, _ = load_digits(return_X_y=True)
        >>> X = X / 16
        >>> autoencoder = StackedAutoencoder(
        ...     (32, 8), pretrain_epochs=2, finetune_epochs=2, device="cpu", random_state=0
        ... ).fit(X)
        >>> display = ReconstructionDisplay.from_estimator(
        ...     autoencoder, X, image_shape=(8, 8), n_images=6
        ... )
        >>> display.images_.shape
        (2, 6)
        >>> pca_display = ReconstructionDisplay.from_estimator(
        ...     PCA(n_components=8).fit(X), X, image_shape=(8, 8), n_images=6
        ... )
        >>> pca_display.ax_.get_title()
        'PCA'
        """
        _check_matplotlib_support(f"{cls.__name__}.from_estimator")
        if not _is_count(n_images) or n_images < 1:
            raise ValueError(f"n_images must be a positive integer; got {n_images!r}.")
        shown = _safe_indexing(X, slice(0, n_images))
        title = type(estimator).__name__ if name is None else name
        network_estimator = isinstance(estimator, BaseStackedAutoencoder)
        if (isinstance(estimator, Pipeline) or network_estimator) and not hasattr(estimator, "inverse_transform"):
            # A pipeline that goes on past its autoencoder (to a classifier,
            # say), or an estimator of the stack that does not decode codes:
            # reconstruct through its network, in the pipeline's input space.
            preprocessing, autoencoder = _find_autoencoder(estimator, cls.__name__)
            rows = shown if preprocessing is None else preprocessing.transform(shown)
            reconstructions = autoencoder._reconstructions(rows)
            if preprocessing is not None:
                reconstructions = preprocessing.inverse_transform(reconstructions)
            originals = _dense_rows(shown)
            display = cls(
                originals=originals,
                reconstructions=_dense_rows(reconstructions),
                image_shape=_check_image_shape(image_shape, originals.shape[1]),
                name=title,
            )
            return display.plot(ax=ax, cmap=cmap, **imshow_kwargs)
        for method in ("transform", "inverse_transform"):
            if not hasattr(estimator, method):
                raise TypeError(
                    f"{cls.__name__} needs an estimator with transform and inverse_transform; "
                    f"{type(estimator).__name__} has no {method}."
                )
        check_is_fitted(estimator)
        originals = _dense_rows(shown)
        image_shape = _check_image_shape(image_shape, originals.shape[1])
        reconstructions = _dense_rows(estimator.inverse_transform(estimator.transform(shown)))
        display = cls(
            originals=originals,
            reconstructions=reconstructions,
            image_shape=image_shape,
            name=title,
        )
        return display.plot(ax=ax, cmap=cmap, **imshow_kwargs)


def _find_autoencoder(estimator, caller):
    """``(steps before it, autoencoder)``: a fitted autoencoder, or the one step of a Pipeline that is one.

    The steps before it are a Pipeline of the preprocessing (None when there
    is none), so that data in the pipeline's input space can be brought to
    the autoencoder's.
    """
    if isinstance(estimator, Pipeline):
        positions = [i for i, (_, step) in enumerate(estimator.steps) if isinstance(step, BaseStackedAutoencoder)]
        if len(positions) != 1:
            found = "no step" if not positions else f"{len(positions)} steps"
            raise ValueError(
                f"{caller} needs a pipeline with one autoencoder step; this one has {found} of that kind. "
                "Pass the autoencoder step itself, e.g. pipeline.named_steps[...]."
            )
        position = positions[0]
        check_is_fitted(estimator[position])
        return (estimator[:position] if position > 0 else None), estimator[position]
    if not isinstance(estimator, BaseStackedAutoencoder):
        raise TypeError(
            f"{caller} needs an sk-stackae estimator (StackedAutoencoder, StackedAutoencoderClassifier, "
            "StackedAutoencoderRegressor, StackedAutoencoderOutlierDetector) or a Pipeline with one; "
            f"got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    return None, estimator
