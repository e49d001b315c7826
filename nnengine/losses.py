"""Losses with Keras 3's formulas, names and reductions.

A loss object is called as ``loss(y_true, y_pred)`` and returns a scalar Tensor:
the per-sample losses (each the mean or sum over the last axis, as Keras
defines it) reduced by ``reduction``: "sum_over_batch_size" (the mean over the
batch, Keras's default), "sum", or "none".

Probabilities are clipped to [eps, 1 - eps] with eps = 1e-7 where Keras clips
them. When a model's last activation is softmax (or sigmoid) and the loss is
categorical / sparse categorical (or binary) cross-entropy, the trainer hands
the loss the logits instead (``Loss.on_logits``; see ``Loss.logits_activation``): the fused,
numerically stable softmax cross-entropy, whose gradient p * sum(t) - t is right
for soft and unnormalised targets. That is what tf.keras 2.x did for a softmax
output; it differs from the clipped formula only where a probability is below 1e-7.
"""
import math

import numpy as np

from . import activations, arguments
from . import functional as F
from .dtypes import checked_cast
from .loss_base import EPSILON, REDUCTIONS, Loss, LossFunctionWrapper, absolute, targets_like
from .overlap_losses import Dice, Tversky, dice, tversky
from .margin_losses import (BinaryFocalCrossentropy, CategoricalFocalCrossentropy, CategoricalHinge, Hinge,
                            SquaredHinge)
from .tensor import Tensor
from .utils import lookup, to_host

__all__ = ["Loss", "LossFunctionWrapper", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber", "LogCosh", "KLDivergence",
           "Poisson", "CosineSimilarity", "categorical_crossentropy", "sparse_categorical_crossentropy",
           "binary_crossentropy", "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "kl_divergence",
           "poisson", "cosine_similarity", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Hinge",
           "SquaredHinge", "CategoricalHinge", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "hinge", "squared_hinge",
           "categorical_hinge", "binary_focal_crossentropy", "categorical_focal_crossentropy", "get", "serialize",
           "EPSILON", "REDUCTIONS", "Dice", "Tversky", "dice", "tversky"]


def _softmax_cross_entropy(logits, targets, reduction, labels_checked=False):
    """The fused softmax cross-entropy over the last axis of logits of any rank >= 2, as Keras computes it for
    sequences: logits (..., classes) taken as rows (N, classes), targets as rows or as N labels, and "none"
    giving one loss per position, in logits.shape[:-1] ("mean" is then over every position)."""
    positions = logits.shape[:-1]
    if logits.ndim > 2:
        classes = logits.shape[-1]
        targets = targets.reshape(-1) if targets.ndim == logits.ndim - 1 else targets.reshape(-1, classes)
        logits = logits.reshape(-1, classes)
    losses = F.softmax_cross_entropy(logits, targets, reduction=reduction, labels_checked=labels_checked)
    return losses.reshape(*positions) if reduction == "none" and len(positions) > 1 else losses


class CategoricalCrossentropy(Loss):
    """-sum(y_true * log(y_pred)) over the classes; y_pred normalised to sum 1 and clipped, as in Keras.

    Targets are one-hot, soft or unnormalised weights of y_pred's shape (n, classes), or (n, ..., classes) for
    a prediction per position (a sequence): one loss per position, the mean over all of them.
    ``from_logits=True`` takes raw scores and applies a stable log-softmax instead.
    """

    logits_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="categorical_crossentropy"):
        super().__init__(name, reduction)
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def check_targets(self, y_true_shape, y_pred_shape):
        """Targets must be (n, classes) like the predictions."""
        if len(y_true_shape) != len(y_pred_shape) or tuple(y_true_shape) != tuple(y_pred_shape):
            hint = (" Integer class labels need sparse_categorical_crossentropy, or one-hot encode them with "
                    "nnengine.utils.to_categorical." if len(y_true_shape) < len(y_pred_shape) else "")
            raise ValueError(f"{self.name}: y_true of shape {tuple(y_true_shape)} does not fit y_pred of shape "
                             f"{tuple(y_pred_shape)}; expected one-hot or soft targets of the same shape.{hint}")

    def prepare_targets(self, y_true, y_pred_shape, dtype):
        """One-hot, soft or unnormalised targets of y_pred's exact shape, as float ``dtype``."""
        host = to_host(y_true)
        self.check_targets(host.shape, y_pred_shape)
        return host.astype(dtype, copy=False)

    def _targets(self, y_true, y_pred):
        self.check_targets(np.shape(y_true) if not isinstance(y_true, Tensor) else y_true.shape, y_pred.shape)
        y_true = targets_like(self.name, y_true, y_pred)
        if self.label_smoothing:
            classes = y_pred.shape[-1]
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        return y_true

    def call(self, y_true, y_pred):
        """Per-sample cross-entropy."""
        if self.from_logits:
            return self.call_on_logits(y_true, y_pred)
        y_true = self._targets(y_true, y_pred)
        probabilities = F.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)
        return -(y_true * probabilities.log()).sum(axis=-1)

    def call_on_logits(self, y_true, logits):
        """Fused softmax cross-entropy of the logits (stable log-sum-exp)."""
        return _softmax_cross_entropy(logits, self._targets(y_true, logits), "none")

    def on_logits(self, y_true, logits):
        """The fused op also reduces: one node in the graph instead of three."""
        return _softmax_cross_entropy(logits, self._targets(y_true, logits), self._fused_reduction())

    def get_config(self):
        """name, reduction, from_logits, label_smoothing, axis."""
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": -1}


class SparseCategoricalCrossentropy(Loss):
    """-log(y_pred[label]) for integer class labels of shape (n,) or (n, 1); for predictions (n, ..., classes), a
    label per position, of shape (n, ...) or (n, ..., 1)."""

    logits_activation = "softmax"

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name="sparse_categorical_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)

    def check_targets(self, y_true_shape, y_pred_shape):
        """Labels are y_pred's shape without its classes axis, or with a last axis of 1 instead: (n,) or (n, 1) for
        predictions (n, classes)."""
        y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
        if len(y_true_shape) == len(y_pred_shape) and y_true_shape[-1:] == (1,):
            y_true_shape = y_true_shape[:-1]
        if len(y_pred_shape) < 2 or y_true_shape != y_pred_shape[:-1]:
            raise ValueError(f"{self.name}: expected integer labels of shape {y_pred_shape[:-1]} for y_pred of "
                             f"shape {y_pred_shape}, got y_true of shape {y_true_shape}")

    def prepare_targets(self, y_true, y_pred_shape, dtype=None):
        """Integer labels as int64 of y_pred's shape without its classes axis, checked on the host once: integral
        values in [0, classes)."""
        return self._labels(y_true, y_pred_shape)

    def from_prepared(self, targets, y_pred, logits=False, weights=None):
        """The loss from labels made by ``prepare_targets`` (already checked: no host work here)."""
        if weights is not None:
            return self._reduce(self.per_sample_prepared(targets, y_pred, logits), weights)
        if logits or self.from_logits:
            return _softmax_cross_entropy(y_pred, targets, self._fused_reduction(), labels_checked=True)
        return self._reduce(self._from_probabilities(targets, y_pred))

    def per_sample_prepared(self, targets, y_pred, logits=False):
        """Per-sample losses from checked labels."""
        if logits or self.from_logits:
            return _softmax_cross_entropy(y_pred, targets, "none", labels_checked=True)
        return self._from_probabilities(targets, y_pred)

    def _labels(self, y_true, y_pred_shape):
        host = to_host(y_true)
        y_pred_shape = tuple(y_pred_shape)
        self.check_targets(host.shape, y_pred_shape)
        labels = host.reshape(y_pred_shape[:-1])
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise ValueError(f"{self.name}: y_true must hold integer class labels, got non-integer values")
        elif labels.dtype.kind not in "iu":
            raise TypeError(f"{self.name}: y_true must hold integer class labels, got dtype {labels.dtype}")
        labels = checked_cast(labels, np.int64, f"{self.name}: y_true")
        classes = y_pred_shape[-1]
        # the ufuncs' reductions directly: ndarray.min/max add a Python wrapper each (a fifth of this check)
        if labels.size and (np.minimum.reduce(labels, None) < 0 or np.maximum.reduce(labels, None) >= classes):
            raise ValueError(f"{self.name}: labels must be in [0, {classes}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
        return labels

    def call(self, y_true, y_pred):
        """Per-sample cross-entropy of (normalised, clipped) probabilities."""
        if self.from_logits:
            return self.call_on_logits(y_true, y_pred)
        labels = Tensor(self._labels(y_true, y_pred.shape), device=y_pred.device)
        return self._from_probabilities(labels, y_pred)

    def _from_probabilities(self, labels, y_pred):
        """-log of the (normalised, clipped) probability of each label; the one-hot rows made on the device."""
        classes = Tensor(np.arange(y_pred.shape[-1]), dtype="int64", device=y_pred.device)
        one_hot = (labels.reshape(*labels.shape, 1) == classes).astype(y_pred.dtype)
        probabilities = F.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)
        return -(one_hot * probabilities.log()).sum(axis=-1)

    def call_on_logits(self, y_true, logits):
        """Fused softmax cross-entropy with integer targets."""
        return self.on_logits(y_true, logits, "none")

    def on_logits(self, y_true, logits, reduction=None):
        """The fused op on the labels, checked once on the host (``_labels``) and uploaded once."""
        labels = self._labels(y_true, logits.shape)
        return _softmax_cross_entropy(logits, Tensor(labels, device=logits.device),
                                      reduction or self._fused_reduction(), labels_checked=True)

    def get_config(self):
        """name, reduction, from_logits."""
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """-(y log p + (1 - y) log(1 - p)), averaged over the last axis; p clipped to [eps, 1 - eps]."""

    logits_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def _targets(self, y_true, y_pred):
        y_true = targets_like(self.name, y_true, y_pred)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def call(self, y_true, y_pred):
        """Per-sample binary cross-entropy of probabilities."""
        if self.from_logits:
            return self.call_on_logits(y_true, y_pred)
        y_true = self._targets(y_true, y_pred)
        p = F.clip(y_pred, EPSILON, 1.0 - EPSILON)
        return -(y_true * p.log() + (1.0 - y_true) * (1.0 - p).log()).mean(axis=-1)

    def call_on_logits(self, y_true, logits):
        """Stable form on logits z: max(z, 0) - z * y + log(1 + e^-|z|)."""
        y_true = self._targets(y_true, logits)
        return (F.relu(logits) - logits * y_true + (F.minimum(logits, -logits).exp() + 1.0).log()).mean(axis=-1)

    def get_config(self):
        """name, reduction, from_logits, label_smoothing."""
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """mean((y_true - y_pred)^2) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample mean squared error."""
        difference = targets_like(self.name, y_true, y_pred) - y_pred
        return (difference * difference).mean(axis=-1)


class MeanAbsoluteError(Loss):
    """mean(|y_true - y_pred|) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample mean absolute error."""
        return absolute(targets_like(self.name, y_true, y_pred) - y_pred).mean(axis=-1)


class MeanAbsolutePercentageError(Loss):
    """100 * mean(|y_true - y_pred| / max(|y_true|, eps)) over the last axis (eps = 1e-7 keeps zeros finite)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample mean absolute percentage error."""
        y_true = targets_like(self.name, y_true, y_pred)
        return (absolute(y_true - y_pred) / F.maximum(absolute(y_true), EPSILON)).mean(axis=-1) * 100.0


class MeanSquaredLogarithmicError(Loss):
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample mean squared logarithmic error."""
        y_true = targets_like(self.name, y_true, y_pred)
        difference = (F.maximum(y_pred, EPSILON) + 1.0).log() - (F.maximum(y_true, EPSILON) + 1.0).log()
        return (difference * difference).mean(axis=-1)


class Huber(Loss):
    """mean over the last axis of 0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta), with e = y_pred - y_true."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss"):
        super().__init__(name, reduction)
        self.delta = arguments.number(name, "delta", delta, low=0, low_open=True)

    def call(self, y_true, y_pred):
        """Quadratic near zero, linear beyond ``delta``: with q = min(|e|, delta), 0.5 q^2 + delta (|e| - q)."""
        error = absolute(y_pred - targets_like(self.name, y_true, y_pred))
        quadratic = F.minimum(error, self.delta)
        return (0.5 * quadratic * quadratic + self.delta * (error - quadratic)).mean(axis=-1)

    def get_config(self):
        """name, reduction, delta."""
        return {**super().get_config(), "delta": self.delta}


class LogCosh(Loss):
    """mean over the last axis of log(cosh(y_pred - y_true)), computed as x + softplus(-2x) - log 2."""

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """log cosh x = x + log(1 + e^(-2x)) - log 2, stable for large |x|."""
        x = y_pred - targets_like(self.name, y_true, y_pred)
        return (x + activations.softplus(-2.0 * x) - math.log(2.0)).mean(axis=-1)


class KLDivergence(Loss):
    """sum over the last axis of t log(t / p), with t and p clipped to [eps, 1]."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample Kullback-Leibler divergence of y_pred from y_true."""
        t = F.clip(targets_like(self.name, y_true, y_pred), EPSILON, 1.0)
        p = F.clip(y_pred, EPSILON, 1.0)
        return (t * (t / p).log()).sum(axis=-1)


class Poisson(Loss):
    """mean over the last axis of y_pred - y_true log(y_pred + eps)."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample Poisson negative log-likelihood, up to a term in y_true alone."""
        return (y_pred - targets_like(self.name, y_true, y_pred) * (y_pred + EPSILON).log()).mean(axis=-1)


class CosineSimilarity(Loss):
    """-sum(t_hat * p_hat) over the last axis, each normalised: x_hat = x / sqrt(max(sum x^2, 1e-12))."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"{name}: nnengine computes the cosine similarity over the last axis (axis=-1), got "
                             f"axis={axis!r}")
        self.axis = -1

    def call(self, y_true, y_pred):
        """Minus the cosine of the angle between y_true and y_pred: -1 when they point the same way."""
        def unit(x):
            return x / F.maximum((x * x).sum(axis=-1, keepdims=True), 1e-12).sqrt()
        return -(unit(targets_like(self.name, y_true, y_pred)) * unit(y_pred)).sum(axis=-1)

    def get_config(self):
        """name, reduction, axis."""
        return {**super().get_config(), "axis": self.axis}


def _per_sample(cls):
    def loss(y_true, y_pred):
        return cls(reduction="none")(y_true, y_pred)
    loss.__doc__ = f"Per-sample losses of {cls.__name__} (no reduction), as Keras's function of that name."
    return loss


categorical_crossentropy = _per_sample(CategoricalCrossentropy)
sparse_categorical_crossentropy = _per_sample(SparseCategoricalCrossentropy)
binary_crossentropy = _per_sample(BinaryCrossentropy)
mean_squared_error = _per_sample(MeanSquaredError)
mean_absolute_error = _per_sample(MeanAbsoluteError)
huber, log_cosh, kl_divergence = _per_sample(Huber), _per_sample(LogCosh), _per_sample(KLDivergence)
poisson, cosine_similarity = _per_sample(Poisson), _per_sample(CosineSimilarity)
mean_absolute_percentage_error = _per_sample(MeanAbsolutePercentageError)
mean_squared_logarithmic_error = _per_sample(MeanSquaredLogarithmicError)
hinge, squared_hinge, categorical_hinge = _per_sample(Hinge), _per_sample(SquaredHinge), _per_sample(CategoricalHinge)
binary_focal_crossentropy = _per_sample(BinaryFocalCrossentropy)
categorical_focal_crossentropy = _per_sample(CategoricalFocalCrossentropy)
for _function, _name in ((categorical_crossentropy, "categorical_crossentropy"),
                         (sparse_categorical_crossentropy, "sparse_categorical_crossentropy"),
                         (binary_crossentropy, "binary_crossentropy"), (mean_squared_error, "mean_squared_error"),
                         (mean_absolute_error, "mean_absolute_error"), (huber, "huber"), (log_cosh, "log_cosh"),
                         (kl_divergence, "kl_divergence"), (poisson, "poisson"),
                         (cosine_similarity, "cosine_similarity"),
                         (mean_absolute_percentage_error, "mean_absolute_percentage_error"),
                         (mean_squared_logarithmic_error, "mean_squared_logarithmic_error"), (hinge, "hinge"),
                         (squared_hinge, "squared_hinge"), (categorical_hinge, "categorical_hinge"),
                         (binary_focal_crossentropy, "binary_focal_crossentropy"),
                         (categorical_focal_crossentropy, "categorical_focal_crossentropy")):
    _function.__name__ = _name

_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy, "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber, "log_cosh": LogCosh, "logcosh": LogCosh, "kl_divergence": KLDivergence,
    "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence, "poisson": Poisson,
    "cosine_similarity": CosineSimilarity, "bce": BinaryCrossentropy,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError, "hinge": Hinge,
    "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy, "dice": Dice, "tversky": Tversky,
}
_CLASSES = {cls.__name__: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                          BinaryCrossentropy, MeanSquaredError, MeanAbsoluteError, Huber, LogCosh,
                                          KLDivergence, Poisson, CosineSimilarity, MeanAbsolutePercentageError,
                                          MeanSquaredLogarithmicError, Hinge, SquaredHinge, CategoricalHinge,
                                          BinaryFocalCrossentropy, CategoricalFocalCrossentropy, Dice, Tversky)}


def get(identifier):
    """Resolve a loss: a Keras name ('categorical_crossentropy', 'mse', ...), a class name, a config, a Loss,
    or a function ``fn(y_true, y_pred)`` returning per-sample values (wrapped, as Keras wraps it)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("BCE", "KLD", "MAE", "MSE", "MAPE", "MSLE"):   # Keras's upper-case aliases
            identifier = identifier.lower()
        return lookup("loss", identifier, {**_CLASSES, **_BY_NAME}, _BY_NAME)()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        cls = _CLASSES[identifier["class_name"]]
        accepted = set(cls().get_config()) - ({"axis"} if cls not in (Dice, Tversky) else set())
        return cls(**{k: v for k, v in (identifier.get("config") or {}).items() if k in accepted})
    for name, function in globals().items():
        if identifier is function and name in _BY_NAME:
            return _BY_NAME[name]()
    if callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier)
    if not isinstance(identifier, dict):
        raise TypeError(f"loss must be a name, a config dict or a Loss object, got {identifier!r} "
                        f"({type(identifier).__name__}); valid names: {', '.join(sorted(_BY_NAME))}")
    raise ValueError(f"Unknown loss {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")


def serialize(loss, identifier=None):
    """What Keras writes for a compiled loss: the string the user gave (a function's name), else a class config."""
    if isinstance(identifier, str):
        return identifier
    if isinstance(loss, LossFunctionWrapper):
        return loss.name
    return {"module": "keras.losses", "class_name": type(loss).__name__, "config": loss.get_config(),
            "registered_name": None}
