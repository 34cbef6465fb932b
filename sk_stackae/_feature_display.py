"""FeatureDisplay: what the units of a fitted autoencoder's layer respond to."""

import math

import numpy as np

from ._features import linear_filters, maximizing_inputs
from ._plotting import (
    _check_image_shape,
    _check_matplotlib_support,
    _dense_rows,
    _draw_tiles,
    _find_autoencoder,
    _grid_figsize,
    _is_count,
    _new_axes,
)

FEATURE_METHODS = ("weights", "maximize")


def _symmetric_limits(tile):
    """A colour scale centred on zero, so that the sign of a pattern reads as its colour."""
    magnitude = float(np.abs(tile).max()) or 1.0
    return -magnitude, magnitude


class FeatureDisplay:
    """What the units of a layer respond to, one image tile per unit.

    It is recommended to use :meth:`FeatureDisplay.from_estimator` to create
    a :class:`FeatureDisplay`. All parameters are stored as attributes.

    Each tile is drawn on a colour scale of its own, centred on zero:
    positive values in one colour, negative in the other. Any set of
    patterns in input space can be shown, such as the ``components_`` of
    :class:`~sklearn.decomposition.PCA`.

    Read more in the :ref:`User Guide <plotting>`.

    Parameters
    ----------
    features : ndarray of shape (n_units, n_features)
        One input-space pattern per unit, flattened row-major.

    image_shape : tuple of int
        ``(height, width)`` of one pattern; ``height * width`` is
        ``n_features``.

    title : str, default=None
        Title of the plot. None shows no title.

    Attributes
    ----------
    images_ : ndarray of matplotlib AxesImage of shape (n_units,)
        One image per unit, in the order of ``features``.

    ax_ : matplotlib Axes
        Axes with the images.

    figure_ : matplotlib Figure
        Figure containing the images.

    See Also
    --------
    ReconstructionDisplay : Images above their reconstructions.
    LossCurveDisplay : How the loss fell in each phase of training.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sk_stackae.plotting import FeatureDisplay
    >>> X, _ = load_digits(return_X_y=True)
    >>> pca = PCA(n_components=12).fit(X)
    >>> display = FeatureDisplay(
    ...     features=pca.components_, image_shape=(8, 8), title="PCA components"
    ... )
    >>> display.plot(n_cols=6)
    <...FeatureDisplay object at ...>
    >>> len(display.images_)
    12
    """

    def __init__(self, *, features, image_shape, title=None):
        self.features = features
        self.image_shape = image_shape
        self.title = title

    def plot(self, ax=None, *, n_cols=None, title=None, cmap="RdBu_r", **imshow_kwargs):
        """Plot one tile per unit.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on. None creates a new figure and axes.

        n_cols : int, default=None
            Tiles per row. None makes the grid about square.

        title : str, default=None
            Title, overriding the ``title`` given at construction.

        cmap : str or matplotlib Colormap, default="RdBu_r"
            Colormap of the tiles; a diverging one shows the sign.

        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow` for every tile;
            ``vmin`` and ``vmax`` put every tile on the same scale.

        Returns
        -------
        display : :class:`FeatureDisplay`
            Object that stores the computed values and the artists.
        """
        _check_matplotlib_support(f"{type(self).__name__}.plot")
        features = np.asarray(self.features)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"features must be a 2-D array with one row per unit; got shape {features.shape}.")
        image_shape = _check_image_shape(self.image_shape, features.shape[1])
        n_units = features.shape[0]
        if n_cols is None:
            n_cols = math.ceil(math.sqrt(n_units))
        elif not isinstance(n_cols, int | np.integer) or n_cols < 1:
            raise ValueError(f"n_cols must be a positive integer; got {n_cols!r}.")
        n_cols = min(int(n_cols), n_units)
        if ax is None:
            ax = _new_axes(_grid_figsize(math.ceil(n_units / n_cols), n_cols, image_shape))

        self.images_ = _draw_tiles(
            ax, features, image_shape, n_cols, _symmetric_limits, {"cmap": cmap, **imshow_kwargs}
        )
        title = self.title if title is None else title
        if title is not None:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X=None,
        *,
        image_shape,
        layer=1,
        method="weights",
        units=None,
        n_cols=None,
        ax=None,
        cmap="RdBu_r",
        **imshow_kwargs,
    ):
        """Plot what the units of one encoder layer respond to.

        Two ways to put a unit into a picture, chosen by ``method``:

        - ``"weights"``: the product of the encoder weights up to the layer,
          ``W_layer @ ... @ W_1``, one row per unit. For ``layer=1`` these
          are the weights themselves, the unit's exact linear filter. For
          deeper layers the product leaves out the activations and biases in
          between, so it is a linear summary of what the unit looks for.
        - ``"maximize"``: the input of the same Euclidean norm as the rows
          of ``X`` (on average) that maximises the unit's activation,
          through every nonlinearity below it (Erhan et al., 2009). It is
          found by projected gradient ascent, starting from the row of
          ``X``, scaled to that norm, that activates the unit most.

        Parameters
        ----------
        estimator : estimator of this package, or Pipeline
            A fitted :class:`~sk_stackae.StackedAutoencoder`, classifier,
            regressor or outlier detector (whose network reads standardised
            columns), or a fitted pipeline with one such step (whatever
            comes after it is not used).

        X : {array-like, sparse matrix} of shape (n_samples, n_features), default=None
            Data as ``estimator`` takes it (a pipeline's steps before the
            autoencoder transform it first). Needed by
            ``method="maximize"``, which takes the norm of its patterns from
            it; not used by ``method="weights"``.

        image_shape : tuple of int
            ``(height, width)`` of one input image.

        layer : int, default=1
            Which encoder layer, counted from 1 as the pretraining phases
            are: ``1`` is the first hidden layer (``hidden_layer_sizes[0]``
            units), ``len(hidden_layer_sizes)`` the code layer.

        method : {"weights", "maximize"}, default="weights"
            How to turn a unit into an input pattern, as described above.

        units : array-like of int, default=None
            Indices of the units to show, in that order. None shows every
            unit of the layer.

        n_cols : int, default=None
            Tiles per row. None makes the grid about square.

        ax : matplotlib Axes, default=None
            Axes to plot on. None creates a new figure and axes.

        cmap : str or matplotlib Colormap, default="RdBu_r"
            Colormap of the tiles.

        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow` for every tile.

        Returns
        -------
        display : :class:`FeatureDisplay`
            Object that stores the computed values and the artists.

        References
        ----------
        Erhan, D., Bengio, Y., Courville, A. and Vincent, P. (2009).
        Visualizing higher-layer features of a deep network. Technical
        report 1341, University of Montreal.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sk_stackae import StackedAutoencoder
        >>> from sk_stackae.plotting import FeatureDisplay
        >>> X, _ = load_digits(return_X_y=True)
        >>> X = X / 16
        >>> autoencoder = StackedAutoencoder(
        ...     (16, 4), pretrain_epochs=2, finetune_epochs=2, device="cpu", random_state=0
        ... ).fit(X)
        >>> display = FeatureDisplay.from_estimator(autoencoder, image_shape=(8, 8))
        >>> len(display.images_)
        16
        >>> display = FeatureDisplay.from_estimator(
        ...     autoencoder, X, image_shape=(8, 8), layer=2, method="maximize"
        ... )
        >>> len(display.images_)
        4
        """
        _check_matplotlib_support(f"{cls.__name__}.from_estimator")
        preprocessing, autoencoder = _find_autoencoder(estimator, cls.__name__)
        network = autoencoder.network_
        if not _is_count(layer) or not 1 <= layer <= network.n_layers:
            raise ValueError(
                f"layer must be an integer from 1 (the first hidden layer) to {network.n_layers} "
                f"(the code layer) for hidden layers of sizes {network.widths[1:]}; got {layer!r}."
            )
        if method not in FEATURE_METHODS:
            raise ValueError(f"method must be one of {FEATURE_METHODS}; got {method!r}.")
        n_features = network.widths[0]
        image_shape = _check_image_shape(image_shape, n_features)
        layer_width = network.widths[layer]
        units = np.arange(layer_width) if units is None else np.asarray(units).reshape(-1)
        if (
            units.size == 0
            or not np.issubdtype(units.dtype, np.integer)
            or units.min() < 0
            or units.max() >= layer_width
        ):
            raise ValueError(f"units must be indices of units of layer {layer}, from 0 to {layer_width - 1}.")

        if method == "weights":
            features = linear_filters(network, int(layer))[units]
            description = "weights" if layer == 1 else "product of weights"
        else:
            if X is None:
                raise ValueError("method='maximize' needs X, to give its input patterns the norm of the data.")
            rows = _dense_rows(X if preprocessing is None else preprocessing.transform(X))
            if rows.shape[1] != n_features:
                raise ValueError(f"X has {rows.shape[1]} features, but the autoencoder takes {n_features}.")
            features = maximizing_inputs(network, int(layer), units, rows)
            description = "maximising inputs"
        display = cls(
            features=features,
            image_shape=image_shape,
            title=f"Layer {layer}: {description}",
        )
        return display.plot(ax=ax, n_cols=n_cols, cmap=cmap, **imshow_kwargs)
