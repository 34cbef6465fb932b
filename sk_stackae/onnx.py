"""ONNX export: skl2onnx converters for every sk-stackae estimator.

Importing this module registers a converter and a shape calculator for
:class:`~sk_stackae.StackedAutoencoder`,
:class:`~sk_stackae.StackedAutoencoderClassifier` and
:class:`~sk_stackae.StackedAutoencoderRegressor` with `skl2onnx
<https://onnx.ai/sklearn-onnx/>`_, so that :func:`skl2onnx.to_onnx` converts
them alone or inside a :class:`~sklearn.pipeline.Pipeline` with
scikit-learn's own steps; onnxruntime then runs the model without torch,
scikit-learn or sk-stackae. It needs the ``onnx`` extra
(``pip install 'sk-stackae[onnx]'``); ``import sk_stackae`` never imports it.

What the graphs compute, for an input ``X`` of float32 or float64 (the
graph computes in the input's dtype, with the weights cast to it, as the
estimators do):

- :class:`~sk_stackae.StackedAutoencoder`: ``variable``, the codes of
  :meth:`~sk_stackae.StackedAutoencoder.transform`. With the option
  ``{"score_samples": True}``, a second output ``score_samples``: the
  scores of :meth:`~sk_stackae.StackedAutoencoder.score_samples`, as a
  column (the graph does not check that ``X`` lies in [0, 1] for
  ``loss="bce"``, as the estimator does).
- :class:`~sk_stackae.StackedAutoencoderClassifier`: ``label``
  (:meth:`~sk_stackae.StackedAutoencoderClassifier.predict`, int64 or string
  labels) and ``probabilities``
  (:meth:`~sk_stackae.StackedAutoencoderClassifier.predict_proba`), which
  skl2onnx's ``zipmap`` option shapes as for its own classifiers: by
  default ``output_label`` and ``output_probability``, a list of
  ``{class: probability}`` dicts; ``{"zipmap": False}`` keeps one tensor,
  ``{"zipmap": "columns"}`` gives a column per class. ``{"nocl": True}``
  outputs class indices instead of labels.
- :class:`~sk_stackae.StackedAutoencoderRegressor`: ``variable``,
  :meth:`~sk_stackae.StackedAutoencoderRegressor.predict` with one column
  per output (a column also for a one-dimensional ``y``, as skl2onnx's
  regressors give it).

Every activation converts. onnxruntime has no float64 kernel for the error
function, so in a float64 graph ``activation="gelu"`` evaluates erf in
float32: its results then agree with the estimator's to about 1e-7 rather
than 1e-12.

Examples
--------
>>> import numpy as np
>>> import onnxruntime
>>> import skl2onnx
>>> import sk_stackae.onnx  # registers the converters
>>> from sklearn.datasets import load_digits
>>> from sk_stackae import StackedAutoencoder
>>> X = load_digits().data.astype(np.float32) / 16
>>> autoencoder = StackedAutoencoder((32, 8), pretrain_epochs=2, finetune_epochs=2, random_state=0).fit(X)
>>> onx = skl2onnx.to_onnx(autoencoder, X[:1])
>>> session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
>>> [output.name for output in session.get_outputs()]
['variable']
>>> codes = session.run(None, {"X": X})[0]
>>> bool(np.allclose(codes, autoencoder.transform(X), atol=1e-5))
True
"""

try:
    import skl2onnx  # noqa: F401
except ImportError as error:
    raise ImportError(
        "sk_stackae.onnx needs skl2onnx and onnx, which are not installed. Install the ONNX extra with "
        "`pip install 'sk-stackae[onnx]'`."
    ) from error

from . import _onnx

_onnx.register_converters()

# The import is the interface: it registers, and the module defines nothing to call.
__all__ = []
