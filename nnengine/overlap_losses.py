"""Keras 3's overlap losses for segmentation: Dice and Tversky (one minus how much the prediction covers the mask).

For targets t and predictions p (probabilities, 0/1 masks for t), summed over ``axis``:

    Dice:     1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7)
    Tversky:  1 - sum(t p) / (sum(t p) + alpha sum(t (1 - p)) + beta sum((1 - t) p) + 1e-7)

Tversky with alpha = beta = 0.5 is Dice; a larger alpha punishes missed mask more, a larger beta false alarms
(Keras names the alpha term fp and the beta term fn, swapped from the usual names; the formula here is its).
``axis=None`` (Keras's default) sums over the whole batch: one value for the batch, which sample weights scale
by their mean, as Keras's reduction does. ``axis=(1, 2, 3)`` for images gives one loss per sample, which is
what a segmentation model usually wants. Everything is core ops, so autograd and the compiled step apply.
"""
from abc import abstractmethod

import numpy as np

from . import arguments
from .loss_base import EPSILON, Loss, as_tensor, targets_like
from .tensor import Tensor

__all__ = ["Dice", "Tversky", "dice", "tversky"]


def _axes(owner, axis):
    """None, or a tuple of axes after the batch axis (an int, or a list or tuple of them)."""
    if axis is None:
        return None
    values = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not values:
        raise ValueError(f"{owner}: axis must be None, an axis or a list of axes, got an empty {type(axis).__name__}")
    axes = tuple(arguments.integer(owner, "axis", value) for value in values)
    if any(a == 0 for a in axes):
        raise ValueError(f"{owner}: axis must not include the batch axis 0 (axis=None sums over the whole batch), "
                         f"got {axis!r}")
    return axes


class _Overlap(Loss):
    """What Dice and Tversky share: the sums over ``axis`` and the batch-wide form of axis=None."""

    def __init__(self, name, reduction, axis):
        super().__init__(name, reduction)
        self.axis = _axes(name, axis)

    def _sum(self, x):
        """The sum over ``axis``: per sample (and any axes left), or one value for the batch (shape (1,))."""
        if self.axis is None:
            return x.sum().reshape(1)
        for a in self.axis:
            if not -x.ndim < a < x.ndim:
                raise ValueError(f"{self.name}: axis {a} is out of range for predictions of rank {x.ndim}")
        return x.sum(axis=tuple(a % x.ndim for a in self.axis))

    def call(self, y_true, y_pred):
        """The loss per sample, or the batch's one value for axis=None."""
        return 1.0 - self.overlap(targets_like(self.name, y_true, y_pred), y_pred)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss; with axis=None the batch's one value, which any number of sample weights scale."""
        if self.axis is None and sample_weight is not None:
            y_pred = y_pred if isinstance(y_pred, Tensor) else Tensor(np.asarray(y_pred))
            return self._reduce(self.call(y_true, y_pred), as_tensor(sample_weight, y_pred, y_pred.dtype).reshape(-1))
        return super().__call__(y_true, y_pred, sample_weight)

    def _reduce(self, per_sample, weights=None):
        """axis=None: the batch's one value, times the weights' mean (Keras's sum(w * loss) / n for a loss that
        is the same for every sample); otherwise the usual reduction."""
        if self.axis is None and weights is not None:
            scale = weights.astype(per_sample.dtype)
            if self.reduction in ("none", None):
                return per_sample * scale
            return per_sample.sum() * (scale.sum() if self.reduction == "sum" else scale.mean())
        return super()._reduce(per_sample, weights)

    @abstractmethod
    def overlap(self, targets, y_pred):
        """The covered share, 1 for a perfect prediction."""

    def get_config(self):
        """Keras 3's config of this loss."""
        return {**super().get_config(), "axis": None if self.axis is None else list(self.axis)}


class Dice(_Overlap):
    """1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7), summed over ``axis`` (None: the whole batch)."""

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None):
        super().__init__(name, reduction, axis)

    def overlap(self, targets, y_pred):
        """2 sum(t p) / (sum(t) + sum(p) + 1e-7)."""
        return 2.0 * self._sum(targets * y_pred) / (self._sum(targets) + self._sum(y_pred) + EPSILON)


class Tversky(_Overlap):
    """1 - sum(t p) / (sum(t p) + alpha sum(t (1 - p)) + beta sum((1 - t) p) + 1e-7), over ``axis``."""

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky", axis=None):
        super().__init__(name, reduction, axis)
        self.alpha = arguments.number(name, "alpha", alpha, low=0)
        self.beta = arguments.number(name, "beta", beta, low=0)

    def overlap(self, targets, y_pred):
        """sum(t p) / (sum(t p) + alpha sum(t (1 - p)) + beta sum((1 - t) p) + 1e-7)."""
        intersection = self._sum(targets * y_pred)
        missed = self._sum((1.0 - y_pred) * targets)
        false_alarms = self._sum(y_pred * (1.0 - targets))
        return intersection / (intersection + self.alpha * missed + self.beta * false_alarms + EPSILON)

    def get_config(self):
        """Keras 3's config of this loss."""
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


def dice(y_true, y_pred, axis=None):
    """Keras's ``dice`` function: 1 - the Dice coefficient over ``axis`` (None: everything), a Tensor."""
    loss = Dice(reduction="none", axis=axis).call(y_true, y_pred)
    return loss.reshape() if axis is None else loss


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """Keras's ``tversky`` function: 1 - the Tversky index over ``axis`` (None: everything), a Tensor."""
    loss = Tversky(alpha, beta, reduction="none", axis=axis).call(y_true, y_pred)
    return loss.reshape() if axis is None else loss
