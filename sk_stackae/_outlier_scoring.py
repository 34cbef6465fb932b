"""What the outlier detector reads off its trained network: the two views' statistics, and its outputs.

:class:`OutlierScoring` is mixed into
:class:`~sk_stackae.StackedAutoencoderOutlierDetector`: it learns the views'
statistics and the threshold from the training rows once the network is
trained (:mod:`sk_stackae._outlier_views`), computes every row's feature
errors and code in float64, and answers :meth:`feature_errors` (which
columns make a row an outlier) in the container that ``set_output`` asks
for.
"""

import numpy as np
import torch
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._distributed import replicas_for
from ._losses import ReconstructionError
from ._outlier_views import Views, fit_views, threshold_below

# "auto" flags a row that lies more than this many robust standard
# deviations above the typical training row in either view.
AUTO_THRESHOLD = 2.0


class OutlierScoring:
    """The detector's calibration, its rows' errors and codes, and its output containers."""

    def _calibration(self, X, weights):
        """The two views' statistics and ``offset_``, from the training rows ``X`` (already standardised)."""
        feature_errors, codes = self._errors_and_codes(X, standardised=True)
        replicas = replicas_for(self.distributed, self.device_)
        feature_errors, codes = replicas.gather(feature_errors), replicas.gather(codes)
        weights = None if weights is None else replicas.gather(weights)
        views = fit_views(feature_errors, codes, weights, code_view=self.code_distance)
        if self.contamination == "auto":
            offset = -AUTO_THRESHOLD
        else:
            scores = -views.outlier_scores(feature_errors, codes)
            offset = threshold_below(scores, weights, 100.0 * self.contamination)
        return {
            "offset_": offset,
            "error_scale_": views.error_scale,
            "code_mean_": views.code_mean,
            "code_precision_": views.code_precision,
            "score_center_": views.centers,
            "score_scale_": views.scales,
        }

    def _reconstructions(self, X):
        """The reconstruction of every row of ``X``, in ``X``'s units: standardised in, and back out."""
        X = self._validate_inference_input(X)
        if self.scale_ is None:
            return super()._reconstructions(X)
        network = self._inference_network(X.dtype)
        center, scale = (
            torch.as_tensor(v, dtype=network.encoder[0].weight.dtype, device=self.device_)
            for v in (self.center_, self.scale_)
        )
        return self._map_rows(lambda batch: network((batch - center) / scale) * scale + center, X, self.n_features_in_)

    @property
    def _views(self):
        return Views(self.error_scale_, self.code_mean_, self.code_precision_, self.score_center_, self.score_scale_)

    # ---------------------------------------------------------- inference

    def _validate_scoring_input(self, X):
        X = self._validate_inference_input(X)
        self._check_value_range(X)
        return X

    def feature_errors(self, X):
        """The reconstruction error of every feature of every row: which columns make a row an outlier.

        With ``standardize=True`` (and ``loss="mse"``), the squared
        difference between a column's value and its reconstruction, in
        standard deviations of that column squared: a 9 means the
        reconstruction is three standard deviations off. With ``loss="bce"``
        it is each feature's relative entropy. The reconstruction view of
        :meth:`score_samples` sums them, each divided by its column's mean
        error over the typical training rows (``error_scale_``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to explain.

        Returns
        -------
        errors : ndarray or DataFrame of shape (n_samples, n_features)
            The error of every feature of every row, in ``X``'s float dtype;
            a pandas or polars frame with the feature names after
            ``set_output(transform="pandas")`` (or ``"polars"``).
        """
        validated = self._validate_scoring_input(X)
        errors = self._errors_and_codes(validated)[0].astype(validated.dtype)
        return self._in_output_container(errors, X)

    def _errors_and_codes(self, X, *, standardised=False):
        """The error of every feature of validated ``X`` and every row's code, in float64.

        Computed in float64 whatever ``X`` is, so that a row's score does
        not depend on the other rows of its batch (float32 products round
        differently for different batch sizes). Rows are standardised on
        the device, a batch at a time, unless they already are
        (``standardised=True``, the training rows).
        """
        loss = ReconstructionError(self.loss, self.output_activation)
        network = self._inference_network(np.float64)
        scaling = None
        if self.scale_ is not None and not standardised:
            scaling = [
                torch.as_tensor(v, dtype=torch.float64, device=self.device_) for v in (self.center_, self.scale_)
            ]

        def errors_and_codes(batch):
            if scaling is not None:
                center, scale = scaling
                batch = (batch - center) / scale
            pre_activation, codes = network.reconstruct(batch)
            return torch.cat([loss.feature_errors(pre_activation, batch), codes[-1]], dim=1)

        joined = self._map_rows(errors_and_codes, X.astype(np.float64), self.n_features_in_ + network.code_size)
        return joined[:, : self.n_features_in_], joined[:, self.n_features_in_ :]

    def _in_output_container(self, values, X):
        """``values`` (one column per feature) in the container that :meth:`set_output` asks for."""
        container = getattr(self, "_sklearn_output_config", {}).get("transform", "default")
        if container == "default":
            return values
        columns = self.get_feature_names_out()
        if container == "pandas":
            import pandas as pd

            return pd.DataFrame(values, columns=columns, index=getattr(X, "index", None))
        import polars as pl

        return pl.DataFrame(values, schema=columns.tolist())

    def set_output(self, *, transform=None):
        """Set the container of :meth:`feature_errors`' output, as scikit-learn's ``set_output`` does.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"pandas"`` or ``"polars"`` give a frame with the feature names
            (:meth:`get_feature_names_out`); ``"default"`` a numpy array;
            None leaves the setting as it is.

        Returns
        -------
        self : object
            The detector.
        """
        if transform is None:
            return self
        if transform not in ("default", "pandas", "polars"):
            raise ValueError(f"transform must be 'default', 'pandas', 'polars' or None; got {transform!r}.")
        self._sklearn_output_config = {**getattr(self, "_sklearn_output_config", {}), "transform": transform}
        return self

    def get_feature_names_out(self, input_features=None):
        """The names of :meth:`feature_errors`' columns: those of the input features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            The input feature names; None uses ``feature_names_in_``, or
            ``x0, x1, ...`` without names.

        Returns
        -------
        feature_names_out : ndarray of str
            One name per feature.
        """
        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)
