"""Display objects: what a fitted autoencoder reconstructs, what its units respond to, how it trained.

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

from ._engine import FINETUNE_NAME, pretrain_phase_name
from ._estimator import StackedAutoencoder
from ._network import linear_filters, maximizing_inputs

_INSTALL_HINT = "pip install 'sk-stackae[plot]'"

# Empty space between image tiles, as a fraction of a tile's width.
_TILE_GAP = 0.15

FEATURE_METHODS = ("weights", "maximize")


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
            ``inverse_transform``: a :class:`~sk_stackae.StackedAutoencoder`,
            a :class:`~sklearn.pipeline.Pipeline` of such transformers, or
            :class:`~sklearn.decomposition.PCA`, for example. A pipeline
            that goes on past its autoencoder (to a classifier, say) is
            shown through its steps up to the autoencoder.

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
        if isinstance(estimator, Pipeline) and not hasattr(estimator, "inverse_transform"):
            # A pipeline that goes on past its autoencoder (to a classifier,
            # say): reconstruct through the steps up to the autoencoder.
            preprocessing, autoencoder = _find_autoencoder(estimator, cls.__name__)
            estimator = autoencoder if preprocessing is None else Pipeline([*preprocessing.steps, ("ae", autoencoder)])
        for method in ("transform", "inverse_transform"):
            if not hasattr(estimator, method):
                raise TypeError(
                    f"{cls.__name__} needs an estimator with transform and inverse_transform; "
                    f"{type(estimator).__name__} has no {method}."
                )
        check_is_fitted(estimator)
        if not _is_count(n_images) or n_images < 1:
            raise ValueError(f"n_images must be a positive integer; got {n_images!r}.")
        shown = _safe_indexing(X, slice(0, n_images))
        originals = _dense_rows(shown)
        image_shape = _check_image_shape(image_shape, originals.shape[1])
        reconstructions = _dense_rows(estimator.inverse_transform(estimator.transform(shown)))
        display = cls(
            originals=originals,
            reconstructions=reconstructions,
            image_shape=image_shape,
            name=type(estimator).__name__ if name is None else name,
        )
        return display.plot(ax=ax, cmap=cmap, **imshow_kwargs)


def _find_autoencoder(estimator, caller):
    """``(steps before it, autoencoder)``: a fitted autoencoder, or the one step of a Pipeline that is one.

    The steps before it are a Pipeline of the preprocessing (None when there
    is none), so that data in the pipeline's input space can be brought to
    the autoencoder's.
    """
    if isinstance(estimator, Pipeline):
        positions = [i for i, (_, step) in enumerate(estimator.steps) if isinstance(step, StackedAutoencoder)]
        if len(positions) != 1:
            found = "no step" if not positions else f"{len(positions)} steps"
            raise ValueError(
                f"{caller} needs a pipeline with one autoencoder step; this one has {found} of that kind. "
                "Pass the autoencoder step itself, e.g. pipeline.named_steps[...]."
            )
        position = positions[0]
        check_is_fitted(estimator[position])
        return (estimator[:position] if position > 0 else None), estimator[position]
    if not isinstance(estimator, StackedAutoencoder):
        raise TypeError(f"{caller} needs a StackedAutoencoder or a Pipeline with one; got {type(estimator).__name__}.")
    check_is_fitted(estimator)
    return None, estimator


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
        estimator : StackedAutoencoder or Pipeline
            The fitted autoencoder, or a fitted pipeline with one
            autoencoder step (whatever comes after it is not used).

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
        """Plot the loss curves of a fitted :class:`~sk_stackae.StackedAutoencoder`.

        Parameters
        ----------
        estimator : StackedAutoencoder or Pipeline
            The fitted autoencoder, or a fitted pipeline with one
            autoencoder step.

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
