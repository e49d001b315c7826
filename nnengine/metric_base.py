"""The bases of the metrics (metrics.py holds Keras's metrics themselves): ``Metric``, the running ``Mean``
(with ``add`` for a batch mean and ``add_hits`` for hits the step counted), ``MeanMetricWrapper`` over a
per-sample function, and ``function_metric`` for a function of Tensors.
"""
from abc import ABC, abstractmethod

import numpy as np

from .tensor import Tensor
from .utils import to_host

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "function_metric", "match_rank"]


class Metric(ABC):
    """Base class of metrics: a named, resettable running value."""

    #: True when the metric depends on y_pred only through argmax over the last axis, so that
    #: logits give the same result as the softmax of the logits (fit then skips the softmax)
    accepts_logits = False
    #: "rows" (the share of argmax(y_pred) == argmax(y_true)) or "labels" (argmax(y_pred) == an integer label)
    #: for a metric that is such a share of hits: fit's step may then count them where it runs
    #: (``Backend.argmax_matches``) and hand the count to ``add_hits``, instead of reading its predictions back
    counts_argmax_hits = None

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
        values = to_host(values)
        if sample_weight is None and isinstance(values, np.ndarray) and values.dtype == np.bool_:
            # hits of an accuracy: their count is the sum of their 0/1 values, exactly (an integer), for half
            # the cost of converting them to floats first (fit records one per step)
            self.total += int(np.count_nonzero(values))
            self.count += values.size
            return
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if sample_weight is None:
            self.total += float(np.add.reduce(values))       # the ufunc itself: ndarray.sum adds a wrapper
            self.count += values.size
            return
        weights = np.broadcast_to(np.asarray(sample_weight, np.float64).reshape(-1), values.shape)
        self.total += float(np.dot(values, weights))
        self.count += float(weights.sum())

    def add_hits(self, hits, compared):
        """Add ``hits`` ones among ``compared`` 0/1 values, as ``update_state`` adds an array of them."""
        self.total += int(hits)
        self.count += compared

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


class Sum(Metric):
    """The (weighted) sum of the values it is given, Keras's ``Sum``: ``update_state(values, sample_weight)``."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        """Add the values (array-like), each times its weight when ``sample_weight`` is given."""
        values = np.asarray(to_host(values), np.float64)
        if sample_weight is not None:
            weights = np.asarray(to_host(sample_weight), np.float64)
            try:
                values = values * weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))
            except ValueError:
                raise ValueError(f"Sum {self.name!r}: sample_weight of shape {weights.shape} does not fit values of "
                                 f"shape {values.shape}") from None
        self.total += float(values.sum())

    def result(self):
        """The sum so far."""
        return self.total

    def reset_state(self):
        """Start from 0."""
        self.total = 0.0


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


def match_rank(y_true, y_pred):
    """Keras's rank matching: (n,) targets against (n, 1) predictions and back."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        return y_true[..., None]
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return y_true[..., 0]
    return y_true
