"""Metrics with Keras 3's names and formulas, accumulated over the batches of an epoch.

A metric keeps a running, sample-weighted mean: ``update_state(y_true, y_pred)``
adds a batch, ``result()`` reads the mean so far, ``reset_state()`` starts over.
Metrics are computed on the host from numpy arrays: they never take part in
autograd.

``get('accuracy', loss=..., ...)`` resolves the string 'accuracy' (or 'acc') as
Keras does, from the prediction and target shapes: binary accuracy when the
model predicts one value per sample, sparse categorical accuracy when the
targets have a lower rank than the predictions (or a last axis of 1 against
several classes), categorical accuracy otherwise. The metric keeps the name
the user gave, so History's keys read 'accuracy' / 'val_accuracy'.
"""
from abc import ABC, abstractmethod

import numpy as np

from .tensor import Tensor
from .utils import lookup, to_host

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "function_metric", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
           "SparseCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError", "accuracy", "binary_accuracy",
           "categorical_accuracy", "sparse_categorical_accuracy", "get"]


class Metric(ABC):
    """Base class of metrics: a named, resettable running value."""

    #: True when the metric depends on y_pred only through argmax over the last axis, so that
    #: logits give the same result as the softmax of the logits (fit then skips the softmax)
    accepts_logits = False

    def __init__(self, name):
        self.name = name

    @abstractmethod
    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch."""

    @abstractmethod
    def result(self):
        """The value over every batch since the last reset, a Python float."""

    @abstractmethod
    def reset_state(self):
        """Forget every batch."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        """{'name': ...}, as Keras writes it."""
        return {"name": self.name}


class Mean(Metric):
    """The (weighted) mean of the values it is given (fit uses one for the loss)."""

    def __init__(self, name="mean"):
        super().__init__(name)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        """Add values (array-like), each with weight 1 or ``sample_weight``."""
        values = np.asarray(to_host(values), dtype=np.float64).reshape(-1)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
            return
        weights = np.broadcast_to(np.asarray(sample_weight, np.float64).reshape(-1), values.shape)
        self.total += float(np.dot(values, weights))
        self.count += float(weights.sum())

    def add(self, value, weight):
        """Add one value with weight ``weight`` (cheap path for a batch mean)."""
        self.total += float(value) * weight
        self.count += weight

    def result(self):
        """total / count, 0 before any value (no division by zero)."""
        return self.total / self.count if self.count else 0.0

    def reset_state(self):
        """Start from total = count = 0."""
        self.total, self.count = 0.0, 0.0


class MeanMetricWrapper(Mean):
    """A metric that is the mean over samples of a per-sample function ``fn(y_true, y_pred)``."""

    def __init__(self, fn, name):
        super().__init__(name)
        self.fn = fn

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the per-sample values of ``fn`` on this batch."""
        super().update_state(self.fn(to_host(y_true), to_host(y_pred)), sample_weight)


def function_metric(fn, name=None):
    """A metric that averages ``fn(y_true, y_pred)`` over samples, ``fn`` written with Tensors (keras.ops) or numpy.

    ``fn`` gets float Tensors and returns one value per sample (or any shape with the batch first,
    averaged per sample), as a Keras metric function does.
    """
    name = name or getattr(fn, "__name__", type(fn).__name__)

    def per_sample(y_true, y_pred):
        values = to_host(fn(Tensor(y_true.astype(y_pred.dtype, copy=False)), Tensor(y_pred)))
        if values.ndim == 0 or values.shape[0] != len(y_pred):
            raise ValueError(f"metric function {name!r} must return per-sample values, shape ({len(y_pred)},), "
                             f"got shape {values.shape}")
        return values.reshape(len(values), -1).mean(axis=-1)
    return MeanMetricWrapper(per_sample, name)


def _match_rank(y_true, y_pred):
    """Keras's rank matching: (n,) targets against (n, 1) predictions and back."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        return y_true[..., None]
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return y_true[..., 0]
    return y_true


def accuracy(y_true, y_pred):
    """Per-sample mean of exact equality y_true == y_pred (over the last axis)."""
    y_true = _match_rank(y_true, y_pred)
    return np.mean(y_true == y_pred, axis=-1) if y_pred.ndim > 1 else (y_true == y_pred).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample mean of y_true == (y_pred > threshold)."""
    y_true = _match_rank(y_true, y_pred)
    hits = y_true == (y_pred > threshold).astype(y_true.dtype)
    return np.mean(hits, axis=-1) if hits.ndim > 1 else hits.astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    """1 where argmax(y_true) == argmax(y_pred), else 0."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the integer label y_true equals argmax(y_pred), else 0."""
    labels = y_true.reshape(y_true.shape[:-1]) if y_true.ndim == y_pred.ndim else y_true
    return (labels.astype(np.int64) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean of (y_true - y_pred)^2 over the last axis."""
    difference = _match_rank(y_true, y_pred) - y_pred
    return np.mean(difference * difference, axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean of |y_true - y_pred| over the last axis."""
    return np.mean(np.abs(_match_rank(y_true, y_pred) - y_pred), axis=-1)


def _wrapper_class(class_name, fn, default_name):
    def __init__(self, name=default_name):
        MeanMetricWrapper.__init__(self, fn, name)
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "__module__": __name__,
                                                   "__doc__": f"The running mean of ``{fn.__name__}``."})


Accuracy = _wrapper_class("Accuracy", accuracy, "accuracy")
CategoricalAccuracy = _wrapper_class("CategoricalAccuracy", categorical_accuracy, "categorical_accuracy")
SparseCategoricalAccuracy = _wrapper_class("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                           "sparse_categorical_accuracy")
CategoricalAccuracy.accepts_logits = SparseCategoricalAccuracy.accepts_logits = True
MeanSquaredError = _wrapper_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper_class("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")


class BinaryAccuracy(MeanMetricWrapper):
    """The running mean of ``binary_accuracy`` at ``threshold`` (0.5)."""

    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(lambda t, p: binary_accuracy(t, p, threshold), name)
        self.threshold = threshold

    def get_config(self):
        """name and threshold."""
        return {"name": self.name, "threshold": self.threshold}


_BY_NAME = {
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
_CLASSES = {cls.__name__: cls for cls in (Accuracy, CategoricalAccuracy, SparseCategoricalAccuracy, BinaryAccuracy,
                                          MeanSquaredError, MeanAbsoluteError)}
VALID_NAMES = sorted([*_BY_NAME, "accuracy", "acc"])


def resolve_accuracy(y_true_shape, y_pred_shape):
    """The accuracy class Keras picks for 'accuracy', from the target and prediction shapes."""
    if y_pred_shape[-1] == 1:
        return BinaryAccuracy
    sparse = len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1)
    return SparseCategoricalAccuracy if sparse else CategoricalAccuracy


def get(identifier, y_true_shape=None, y_pred_shape=None):
    """Resolve a metric from a name, a class name or a Metric; 'accuracy' needs the shapes (see module doc)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not isinstance(identifier, type):
        return function_metric(identifier)
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name, a Metric object or a function, got {type(identifier).__name__}")
    if identifier in ("accuracy", "acc"):
        if y_true_shape is None or y_pred_shape is None:
            return Accuracy(name=identifier)
        return resolve_accuracy(y_true_shape, y_pred_shape)(name=identifier)
    cls = lookup("metric", identifier, {**_CLASSES, **_BY_NAME}, VALID_NAMES)
    return cls(name=identifier) if identifier in _BY_NAME else cls()
