"""Metrics with Keras 3's names and formulas, accumulated over the batches of an epoch.

A metric keeps a running, sample-weighted mean: ``update_state(y_true, y_pred)``
adds a batch, ``result()`` reads the mean so far, ``reset_state()`` starts over.
Metrics are computed on the host from numpy arrays: they never take part in
autograd. The exception: fit and evaluate count the hits of categorical and
sparse categorical accuracy inside their step (``Metric.counts_argmax_hits``,
``argmax_hits_kind``) and hand the count to ``add_hits``. The bases
(``Metric``, ``Mean``, ``MeanMetricWrapper``) are in metric_base.py.

``get('accuracy', loss=..., ...)`` resolves the string 'accuracy' (or 'acc') as
Keras does, from the prediction and target shapes: binary accuracy when the
model predicts one value per sample, sparse categorical accuracy when the
targets have a lower rank than the predictions (or a last axis of 1 against
several classes), categorical accuracy otherwise. The metric keeps the name
the user gave, so History's keys read 'accuracy' / 'val_accuracy'.
"""
import numpy as np

from . import arguments, loss_metrics
from .loss_metrics import (BinaryCrossentropy, CategoricalCrossentropy, CategoricalHinge, CosineSimilarity,
                           Hinge, KLDivergence, LogCoshError, MeanAbsolutePercentageError,
                           MeanSquaredLogarithmicError, Poisson, R2Score, RootMeanSquaredError,
                           SparseCategoricalCrossentropy, SquaredHinge)
from .confusion_metrics import (AUC, FalseNegatives, FalsePositives, PrecisionAtRecall, Precision, Recall,
                                RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity, TrueNegatives,
                                TruePositives, weights_of)
from .correlation_metrics import ConcordanceCorrelation, PearsonCorrelation
from .iou_metrics import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from .metric_base import Mean, MeanMetricWrapper, Metric, Sum, function_metric, match_rank
from .utils import lookup, to_host

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "function_metric", "Precision", "Recall", "AUC", "F1Score",
           "FBetaScore", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "top_k_categorical_accuracy",
           "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision",
           "IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU", "Sum", "PearsonCorrelation",
           "ConcordanceCorrelation",
           "sparse_top_k_categorical_accuracy", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
           "SparseCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError", "accuracy", "binary_accuracy",
           "categorical_accuracy", "sparse_categorical_accuracy", "get",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "KLDivergence", "Poisson",
           "LogCoshError", "CosineSimilarity", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "RootMeanSquaredError", "R2Score", "Hinge", "SquaredHinge", "CategoricalHinge"]


def accuracy(y_true, y_pred):
    """Per-sample mean of exact equality y_true == y_pred (over the last axis)."""
    y_true = match_rank(y_true, y_pred)
    return np.mean(y_true == y_pred, axis=-1) if y_pred.ndim > 1 else (y_true == y_pred).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample mean of y_true == (y_pred > threshold)."""
    y_true = match_rank(y_true, y_pred)
    hits = y_true == (y_pred > threshold).astype(y_true.dtype)
    return np.mean(hits, axis=-1) if hits.ndim > 1 else hits.astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    """1 where argmax(y_true) == argmax(y_pred), else 0."""
    return _categorical_hits(y_true, y_pred).astype(np.float64)


def _categorical_hits(y_true, y_pred):
    """argmax(y_true) == argmax(y_pred) as booleans: what CategoricalAccuracy counts."""
    return np.asarray(y_true).argmax(axis=-1) == np.asarray(y_pred).argmax(axis=-1)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the integer label y_true equals argmax(y_pred), else 0."""
    return _sparse_categorical_hits(y_true, y_pred).astype(np.float64)


def _sparse_categorical_hits(y_true, y_pred):
    """The integer label y_true == argmax(y_pred) as booleans: what SparseCategoricalAccuracy counts."""
    labels = y_true.reshape(y_true.shape[:-1]) if y_true.ndim == y_pred.ndim else y_true
    return labels.astype(np.int64) == np.argmax(y_pred, axis=-1)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean of (y_true - y_pred)^2 over the last axis."""
    difference = match_rank(y_true, y_pred) - y_pred
    return np.mean(difference * difference, axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean of |y_true - y_pred| over the last axis."""
    return np.mean(np.abs(match_rank(y_true, y_pred) - y_pred), axis=-1)


def _wrapper_class(class_name, fn, default_name, counted=None):
    """A MeanMetricWrapper class of ``fn``; ``counted``, when given, computes fn's 0/1 values as booleans,
    which ``Mean`` counts instead of summing."""
    def __init__(self, name=default_name):
        MeanMetricWrapper.__init__(self, counted or fn, name)
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "__module__": __name__,
                                                   "__doc__": f"The running mean of ``{fn.__name__}``."})


Accuracy = _wrapper_class("Accuracy", accuracy, "accuracy")
CategoricalAccuracy = _wrapper_class("CategoricalAccuracy", categorical_accuracy, "categorical_accuracy",
                                     _categorical_hits)
SparseCategoricalAccuracy = _wrapper_class("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                           "sparse_categorical_accuracy", _sparse_categorical_hits)
CategoricalAccuracy.accepts_logits = SparseCategoricalAccuracy.accepts_logits = True
CategoricalAccuracy.counts_argmax_hits, SparseCategoricalAccuracy.counts_argmax_hits = "rows", "labels"
MeanSquaredError = _wrapper_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper_class("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")


def argmax_hits_kind(metrics):
    """"rows" or "labels" when every one of ``metrics`` is a share of argmax hits of that kind
    (``Metric.counts_argmax_hits``) whose ``update_state`` is still the wrapper's own; else None."""
    kinds = {metric.counts_argmax_hits if type(metric).update_state is MeanMetricWrapper.update_state else None
             for metric in metrics}
    return kinds.pop() if len(kinds) == 1 else None


class BinaryAccuracy(MeanMetricWrapper):
    """The running mean of ``binary_accuracy`` at ``threshold`` (0.5)."""

    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(lambda t, p: binary_accuracy(t, p, threshold), name)
        self.threshold = threshold

    def get_config(self):
        """name and threshold."""
        return {"name": self.name, "threshold": self.threshold}


class FBetaScore(Metric):
    """Keras 3's FBetaScore: per class, (1 + beta^2) p r / (beta^2 p + r) from counts over the epoch; ``average``
    combines the classes (beta > 1 weighs recall more, beta < 1 precision).

    Without ``threshold`` each sample's largest prediction is its predicted class; with it, y_pred > threshold.
    ``average``: None (one score per class, an array), 'micro', 'macro' or 'weighted'.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score"):
        super().__init__(name)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None, 'micro', 'macro' or 'weighted', got "
                             f"{average!r}")
        self.beta = arguments.number(type(self).__name__, "beta", beta, low=0, low_open=True)
        self.average, self.threshold = average, threshold
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's per-class counts."""
        y_pred = np.asarray(to_host(y_pred), np.float64)
        y_true = np.asarray(to_host(y_true), np.float64).reshape(y_pred.shape)
        if self.threshold is None:
            chosen = (y_pred >= y_pred.max(axis=-1, keepdims=True)) & (np.abs(y_pred) > 1e-9)
        else:
            chosen = y_pred > self.threshold
        chosen = chosen.astype(np.float64)
        weights = weights_of(sample_weight, len(y_pred))[:, None]
        axis = None if self.average == "micro" else 0
        counts = [np.sum(value * weights, axis=axis) for value in
                  (chosen * y_true, chosen * (1 - y_true), (1 - chosen) * y_true, y_true)]
        self.tp, self.fp, self.fn, self.support = (
            new if old is None else old + new for old, new in zip((self.tp, self.fp, self.fn, self.support), counts))

    def result(self):
        """The score (an array per class when average is None)."""
        if self.tp is None:
            return 0.0
        epsilon, squared = 1e-7, self.beta * self.beta
        precision = self.tp / (self.tp + self.fp + epsilon)
        recall = self.tp / (self.tp + self.fn + epsilon)
        score = precision * recall / (squared * precision + recall + epsilon) * (1 + squared)
        if self.average == "weighted":
            return float(np.sum(score * self.support / np.sum(self.support)))
        if self.average in ("macro", "micro"):
            return float(np.mean(score))
        return score

    def reset_state(self):
        """Forget every batch."""
        self.tp = self.fp = self.fn = self.support = None

    def get_config(self):
        """average, beta, threshold and name, as Keras's."""
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """Keras 3's F1Score: FBetaScore with beta = 1, 2 p r / (p + r) per class."""

    def __init__(self, average=None, threshold=None, name="f1_score"):
        super().__init__(average, 1.0, threshold, name)

    def get_config(self):
        """average, threshold and name, as Keras's."""
        config = super().get_config()
        config.pop("beta")
        return config


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the true class (argmax of y_true) is among the k largest predictions (ties count as in), else 0."""
    target = np.take_along_axis(y_pred, np.argmax(y_true, axis=-1)[..., None], axis=-1)
    return (np.sum(y_pred > target, axis=-1) < k).astype(np.float64)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """top_k_categorical_accuracy for integer labels."""
    labels = (y_true.reshape(y_true.shape[:-1]) if y_true.ndim == y_pred.ndim else y_true).astype(np.int64)
    target = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    return (np.sum(y_pred > target, axis=-1) < k).astype(np.float64)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """The running mean of ``top_k_categorical_accuracy`` (k=5)."""

    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        super().__init__(lambda t, p: top_k_categorical_accuracy(t, p, k), name)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """The running mean of ``sparse_top_k_categorical_accuracy`` (k=5)."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        super().__init__(lambda t, p: sparse_top_k_categorical_accuracy(t, p, k), name)
        self.k = k


_BY_NAME = {
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "precision": Precision, "recall": Recall,
    "auc": AUC, "f1_score": F1Score, "fbeta_score": FBetaScore, "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy, **loss_metrics.BY_NAME,
    "pearson_correlation": PearsonCorrelation, "concordance_correlation": ConcordanceCorrelation,
}
_CLASSES = {**{cls.__name__: cls for cls in (Accuracy, CategoricalAccuracy, SparseCategoricalAccuracy, BinaryAccuracy,
                                             MeanSquaredError, MeanAbsoluteError, Precision, Recall, AUC, F1Score,
                                             FBetaScore, TruePositives, FalsePositives, TrueNegatives,
                                             FalseNegatives, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                                             SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
                                             RecallAtPrecision, IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU,
                                             PearsonCorrelation, ConcordanceCorrelation)},
            **loss_metrics.CLASSES}
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
