"""skl2onnx converters: the fitted networks of sk-stackae's estimators as ONNX nodes.

Each estimator has a shape calculator (the types and widths of its outputs)
and a converter (the nodes that compute them); :data:`REGISTRATIONS` lists
them and :func:`register_converters` hands them to skl2onnx, which then
converts the estimators alone or inside a pipeline. :mod:`sk_stackae.onnx`
registers them when it is imported.

:class:`NetworkNodes` writes a network's layers in the float dtype of the
graph's input, with the float32 weights cast to it, as the estimators
compute float64 input in float64. Every activation is written by the
``onnx_nodes`` of its record in :data:`sk_stackae._activations.ACTIVATIONS`,
the one place that spells out its formula.

To convert another estimator, write its shape calculator and its
converter from the methods of :class:`NetworkNodes` and add an entry to
:data:`REGISTRATIONS`. skl2onnx's default parser gives an ``OutlierMixin``
estimator two outputs, ``label`` and ``scores``, as it does for
``IsolationForest``: the outlier detector fills them with ``predict`` and
``decision_function``.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from onnx import TensorProto
from onnx.helper import tensor_dtype_to_np_dtype
from skl2onnx import get_model_alias, update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType, guess_proto_type
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from skl2onnx.common.utils import check_input_and_output_numbers, check_input_and_output_types
from skl2onnx.common.utils_classifier import get_label_classes

from ._activations import ACTIVATIONS
from ._classifier import StackedAutoencoderClassifier
from ._estimator import StackedAutoencoder
from ._network import TiedDenseLayer
from ._outlier import StackedAutoencoderOutlierDetector
from ._regressor import StackedAutoencoderRegressor

# The estimators compute in float32 or float64; other input types must be
# cast by an earlier step of the pipeline, or declared as one of these.
FLOAT_TENSOR_TYPES = [FloatTensorType, DoubleTensorType]


class NetworkNodes:
    """Writes the computations of a fitted network as ONNX nodes, in one float dtype.

    Parameters
    ----------
    scope : skl2onnx.common._topology.Scope
        The conversion's scope, which makes names unique.
    container : skl2onnx.common._container.ModelComponentContainer
        The graph the nodes and initializers are added to.
    network : sk_stackae._network.StackedAutoencoderNetwork
        The fitted network.
    proto_dtype : int
        ``onnx.TensorProto.FLOAT`` or ``onnx.TensorProto.DOUBLE``: the dtype
        of the input, of every initializer and of every output.
    """

    def __init__(self, scope, container, network, proto_dtype):
        self.scope = scope
        self.container = container
        self.network = network
        self.proto_dtype = proto_dtype
        self.numpy_dtype = tensor_dtype_to_np_dtype(proto_dtype)
        # Initializer names by parameter (so that a tied weight is stored
        # once, for the encoder and the decoder) and by scalar value.
        self._parameter_names = {}
        self._scalar_names = {}

    def node(self, op_type, *inputs, output=None, **attributes):
        """Add an ``op_type`` node on ``inputs`` (names); return the name of its output."""
        output = output or self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(
            op_type, list(inputs), [output], name=self.scope.get_unique_operator_name(op_type), **attributes
        )
        return output

    def initializer(self, values, name):
        """Add ``values``, cast to the graph's dtype, as an initializer; return its name."""
        values = np.asarray(values, dtype=self.numpy_dtype)
        unique_name = self.scope.get_unique_variable_name(name)
        self.container.add_initializer(unique_name, self.proto_dtype, list(values.shape), values.ravel())
        return unique_name

    def scalar(self, value):
        """The name of a scalar initializer holding ``value``, added on first use."""
        if value not in self._scalar_names:
            self._scalar_names[value] = self.initializer(value, "scalar")
        return self._scalar_names[value]

    def shape_initializer(self, shape):
        """An int64 initializer holding a shape, for Reshape."""
        return self.int64_initializer(shape, "shape")

    def int64_initializer(self, values, name):
        """An int64 initializer (labels, shapes), whatever the graph's float dtype."""
        values = np.asarray(values, dtype=np.int64)
        unique_name = self.scope.get_unique_variable_name(name)
        self.container.add_initializer(unique_name, TensorProto.INT64, list(values.shape), values.ravel())
        return unique_name

    def parameter(self, tensor, name):
        """The name of the initializer holding a torch parameter, added on first use."""
        if id(tensor) not in self._parameter_names:
            self._parameter_names[id(tensor)] = self.initializer(tensor.detach().cpu().numpy(), name)
        return self._parameter_names[id(tensor)]

    def dense(self, layer, inputs):
        """A dense layer's affine map; a tied layer multiplies by its encoder layer's weight, untransposed."""
        tied = isinstance(layer, TiedDenseLayer)
        weight = layer.encoder_layer.weight if tied else layer.weight
        return self.node(
            "Gemm",
            inputs,
            self.parameter(weight, "weight"),
            self.parameter(layer.bias, "bias"),
            transB=0 if tied else 1,
        )

    def activation(self, name, inputs):
        """The activation ``name`` (a key of ``ACTIVATIONS``) applied to ``inputs``."""
        return ACTIVATIONS[name].onnx_nodes(self, inputs)

    def erf(self, inputs):
        """The error function, in float32 when the graph is float64.

        onnxruntime has no float64 kernel for Erf: a float64 graph computes
        it in float32 (relative error about 1e-7) and everything else in
        float64.
        """
        if self.proto_dtype == TensorProto.FLOAT:
            return self.node("Erf", inputs)
        in_float32 = self.node("Cast", inputs, to=TensorProto.FLOAT)
        return self.node("Cast", self.node("Erf", in_float32), to=self.proto_dtype)

    def encode(self, inputs):
        """The codes of ``inputs``: every encoder layer with its activation."""
        hidden = inputs
        for layer, name in zip(self.network.encoder, self.network.encoder_activation_names, strict=True):
            hidden = self.activation(name, self.dense(layer, hidden))
        return hidden

    def reconstruction_pre_activation(self, codes):
        """The decoder applied to ``codes``, deepest layer first, without the output activation."""
        hidden = codes
        for k in reversed(range(self.network.n_layers)):
            hidden = self.dense(self.network.decoder[k], hidden)
            if k > 0:
                hidden = self.activation(self.network.decoder_activation_names[k], hidden)
        return hidden

    def head(self, codes):
        """The prediction head's scores on ``codes``."""
        return self.dense(self.network.head, codes)

    def feature_errors(self, inputs, codes, loss):
        """The error of every feature of every row: what ``feature_errors`` returns.

        The squared error (``loss="mse"``) or the relative entropy
        (``loss="bce"``: the binary cross-entropy of the logits less the
        input's own entropy) of the reconstruction of ``codes``.
        """
        logits = self.reconstruction_pre_activation(codes)
        if loss == "bce":
            return self._relative_entropy(logits, inputs)
        difference = self.node("Sub", self.activation(self.network.decoder_activation_names[0], logits), inputs)
        return self.node("Mul", difference, difference)

    def negative_reconstruction_errors(self, inputs, codes, loss):
        """Minus each row's reconstruction error (the mean of its feature errors), as a column."""
        # One product by a column of -1/n_features: each row's mean, negated.
        n_features = self.network.widths[0]
        return self.node(
            "MatMul",
            self.feature_errors(inputs, codes, loss),
            self.initializer(np.full((n_features, 1), -1.0 / n_features), "minus_mean"),
        )

    def row_sums(self, values, weights, name):
        """Each row's sum of ``values`` times ``weights`` (one per column), as a column."""
        return self.node("MatMul", values, self.initializer(np.asarray(weights)[:, None], name))

    def _relative_entropy(self, logits, targets):
        """Elementwise binary cross-entropy of ``logits`` against ``targets`` less the targets' entropy.

        The cross-entropy is written as max(z, 0) - z t + log(1 + exp(-|z|)),
        which never overflows, and the entropy through t log t, taken as 0 at
        t = 0.
        """
        cross_entropy = self.node(
            "Add",
            self.node("Sub", self.node("Max", logits, self.scalar(0.0)), self.node("Mul", logits, targets)),
            self.node(
                "Log", self.node("Add", self.scalar(1.0), self.node("Exp", self.node("Neg", self.node("Abs", logits))))
            ),
        )
        complements = self.node("Sub", self.scalar(1.0), targets)
        return self.node("Add", cross_entropy, self.node("Add", self._x_log_x(targets), self._x_log_x(complements)))

    def _x_log_x(self, values):
        # Where picks 0 at 0, where the product is 0 * -inf = NaN.
        positive = self.node("Greater", values, self.scalar(0.0))
        product = self.node("Mul", values, self.node("Log", values))
        return self.node("Where", positive, product, self.scalar(0.0))


def _network_nodes(scope, operator, container):
    """A :class:`NetworkNodes` for the operator's estimator, in its input's dtype."""
    proto_dtype = guess_proto_type(operator.inputs[0].type)
    return NetworkNodes(scope, container, operator.raw_operator.network_, proto_dtype)


def _float_output_type(operator, width):
    """The type of a float output of ``width`` columns, in the input's dtype."""
    return type(operator.inputs[0].type)([operator.inputs[0].get_first_dimension(), width])


# --------------------------------------------------------- StackedAutoencoder


def parse_autoencoder(scope, model, inputs, custom_parsers=None):
    """Declare the outputs: the codes, ``variable``; with option ``score_samples``, the scores too."""
    operator = scope.declare_local_operator(get_model_alias(type(model)), model)
    operator.inputs = inputs
    outputs = ["variable"]
    if scope.get_options(model, {"score_samples": False})["score_samples"]:
        outputs.append("score_samples")
    for name in outputs:
        operator.outputs.append(scope.declare_local_variable(name, type(inputs[0].type)()))
    return operator.outputs


def calculate_autoencoder_output_shapes(operator):
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=[1, 2])
    check_input_and_output_types(operator, good_input_types=FLOAT_TENSOR_TYPES)
    operator.outputs[0].type = _float_output_type(operator, operator.raw_operator.network_.code_size)
    if len(operator.outputs) == 2:
        operator.outputs[1].type = _float_output_type(operator, 1)


def convert_autoencoder(scope, operator, container):
    """``transform``, and with option ``score_samples`` the scores of ``score_samples`` as a column."""
    nodes = _network_nodes(scope, operator, container)
    inputs = operator.inputs[0].full_name
    codes = nodes.encode(inputs)
    nodes.node("Identity", codes, output=operator.outputs[0].full_name)
    if len(operator.outputs) == 2:
        scores = nodes.negative_reconstruction_errors(inputs, codes, operator.raw_operator.loss)
        nodes.node("Identity", scores, output=operator.outputs[1].full_name)


# ----------------------------------------------- StackedAutoencoderClassifier


def calculate_classifier_output_shapes(operator):
    check_input_and_output_types(operator, good_input_types=FLOAT_TENSOR_TYPES)
    calculate_linear_classifier_output_shapes(operator)


def _class_label_initializer(scope, container, model):
    """The classes as a string or int64 initializer: the label types of skl2onnx's classifiers.

    scikit-learn's classifiers accept numbers as classes only when they are
    integers (in value: 1.0 is a class, 1.5 is not), so int64 holds them all.
    """
    classes = get_label_classes(scope, model)
    name = scope.get_unique_variable_name("classes")
    if all(isinstance(label, str) for label in classes):
        container.add_initializer(name, TensorProto.STRING, [len(classes)], [label.encode() for label in classes])
    else:
        container.add_initializer(name, TensorProto.INT64, [len(classes)], np.asarray(classes).astype(np.int64))
    return name


def convert_classifier(scope, operator, container):
    """``predict`` (the ``label`` output) and ``predict_proba`` (``probabilities``)."""
    nodes = _network_nodes(scope, operator, container)
    scores = nodes.head(nodes.encode(operator.inputs[0].full_name))
    # The label is the argmax of the scores, as predict takes it, not of the rounded probabilities.
    best = nodes.node("ArgMax", scores, axis=1, keepdims=0)
    labels = _class_label_initializer(scope, container, operator.raw_operator)
    nodes.node("Gather", labels, best, axis=0, output=operator.outputs[0].full_name)
    nodes.node("Softmax", scores, axis=1, output=operator.outputs[1].full_name)


# ------------------------------------------------ StackedAutoencoderRegressor


def calculate_regressor_output_shapes(operator):
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(operator, good_input_types=FLOAT_TENSOR_TYPES)
    operator.outputs[0].type = _float_output_type(operator, operator.raw_operator.n_outputs_)


def convert_regressor(scope, operator, container):
    """``predict``: the head's scores mapped back to the targets' units, one column per output."""
    model = operator.raw_operator
    nodes = _network_nodes(scope, operator, container)
    scores = nodes.head(nodes.encode(operator.inputs[0].full_name))
    scaled = nodes.node("Mul", scores, nodes.initializer(model._target_scale, "target_scale"))
    nodes.node(
        "Add", scaled, nodes.initializer(model._target_mean, "target_mean"), output=operator.outputs[0].full_name
    )


# ------------------------------------------- StackedAutoencoderOutlierDetector


def calculate_detector_output_shapes(operator):
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    check_input_and_output_types(operator, good_input_types=FLOAT_TENSOR_TYPES)
    n_rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([n_rows])
    operator.outputs[1].type = _float_output_type(operator, 1)


def convert_detector(scope, operator, container):
    """``predict`` (``label``: +1 or -1) and ``decision_function`` (``scores``), as for IsolationForest.

    The graph computes in float64 whatever its input, as the detector does
    (:meth:`~StackedAutoencoderOutlierDetector.score_samples`), and casts the
    scores back to the input's dtype: the two views of every row
    (:mod:`sk_stackae._outlier_views`), each a cube root on a robust
    z-scale, and minus the larger of them.
    """
    model = operator.raw_operator
    nodes = NetworkNodes(scope, container, model.network_, TensorProto.DOUBLE)
    inputs = nodes.node("Cast", operator.inputs[0].full_name, to=TensorProto.DOUBLE)
    if model.scale_ is not None:
        centred = nodes.node("Sub", inputs, nodes.initializer(model.center_, "center"))
        inputs = nodes.node("Div", centred, nodes.initializer(model.scale_, "scale"))
    codes = nodes.encode(inputs)
    errors = nodes.feature_errors(inputs, codes, model.loss)
    views = [nodes.row_sums(errors, 1.0 / model.error_scale_, "inverse_error_scale")]
    if model.code_mean_ is not None:
        deviations = nodes.node("Sub", codes, nodes.initializer(model.code_mean_, "code_mean"))
        precise = nodes.node("MatMul", deviations, nodes.initializer(model.code_precision_, "code_precision"))
        views.append(nodes.row_sums(nodes.node("Mul", precise, deviations), np.ones(len(model.code_mean_)), "ones"))
    z_scores = []
    for view, center, scale in zip(views, model.score_center_, model.score_scale_, strict=True):
        root = nodes.node("Pow", nodes.node("Max", view, nodes.scalar(0.0)), nodes.scalar(1.0 / 3.0))
        z_scores.append(
            nodes.node("Div", nodes.node("Sub", root, nodes.scalar(float(center))), nodes.scalar(float(scale)))
        )
    outlier_scores = z_scores[0] if len(z_scores) == 1 else nodes.node("Max", *z_scores)
    decision = nodes.node("Sub", nodes.node("Neg", outlier_scores), nodes.scalar(float(model.offset_)))
    nodes.node("Cast", decision, output=operator.outputs[1].full_name, to=guess_proto_type(operator.inputs[0].type))
    outlier = nodes.node("Less", nodes.node("Reshape", decision, nodes.shape_initializer([-1])), nodes.scalar(0.0))
    labels = nodes.node(
        "Where", outlier, nodes.int64_initializer([-1], "outlier"), nodes.int64_initializer([1], "inlier")
    )
    nodes.node("Identity", labels, output=operator.outputs[0].full_name)


# --------------------------------------------------------------- registering


class Registration(NamedTuple):
    """What skl2onnx needs to convert an estimator class."""

    alias: str
    calculate_shapes: Callable
    convert: Callable
    parser: Callable | None = None
    options: dict | None = None


# Every estimator of the package has an entry (the module docstring says how
# to add one). The options follow skl2onnx's own converters: "zipmap" and "nocl" as for
# every classifier (probabilities as a list of dicts, a column per class or
# one tensor; class indices instead of labels), "score_samples" as for
# GaussianMixture (an extra output).
REGISTRATIONS = {
    StackedAutoencoder: Registration(
        "SkStackaeStackedAutoencoder",
        calculate_autoencoder_output_shapes,
        convert_autoencoder,
        parser=parse_autoencoder,
        options={"score_samples": [False, True]},
    ),
    StackedAutoencoderClassifier: Registration(
        "SkStackaeStackedAutoencoderClassifier",
        calculate_classifier_output_shapes,
        convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [False, True]},
    ),
    StackedAutoencoderRegressor: Registration(
        "SkStackaeStackedAutoencoderRegressor", calculate_regressor_output_shapes, convert_regressor
    ),
    StackedAutoencoderOutlierDetector: Registration(
        "SkStackaeStackedAutoencoderOutlierDetector", calculate_detector_output_shapes, convert_detector
    ),
}


def register_converters():
    """Register the converter and shape calculator of every estimator with skl2onnx (again, harmlessly)."""
    for estimator_class, registration in REGISTRATIONS.items():
        update_registered_converter(
            estimator_class,
            registration.alias,
            registration.calculate_shapes,
            registration.convert,
            overwrite=True,
            parser=registration.parser,
            options=registration.options,
        )
