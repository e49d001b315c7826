"""The base of every loss: ``Loss`` (reductions, the host and device halves of a step) and the function wrapper.

losses.py holds the concrete losses and the name tables; this module holds what they share, so that
each file stays readable. See losses.py's docstring for the formulas and the fused logits path.
"""
from abc import ABC, abstractmethod

import numpy as np

from . import functional as F
from .masks import loss_weights
from .tensor import Tensor
from .utils import to_host

__all__ = ["Loss", "LossFunctionWrapper", "EPSILON", "REDUCTIONS", "as_tensor", "absolute", "matched_shape",
           "targets_like"]

EPSILON = 1e-7
REDUCTIONS = ("sum_over_batch_size", "sum", "none", None)

def as_tensor(value, like, dtype):
    """``value`` as a Tensor of ``dtype`` on ``like``'s device."""
    if isinstance(value, Tensor):
        return value
    return Tensor(np.asarray(value), dtype=dtype, device=like.device)


def absolute(x):
    """|x| as max(x, -x)."""
    return F.maximum(x, -x)


class Loss(ABC):
    """Base class: ``call(y_true, y_pred)`` gives per-sample losses, ``__call__`` reduces them."""

    #: the output activation whose input, the logits, this loss can take instead of the output
    #: (through ``on_logits``, one fused and stable op), or None
    logits_activation = None

    def __init__(self, name, reduction="sum_over_batch_size"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.name, self.reduction = name, reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss of predictions ``y_pred`` (logits when the loss was made with from_logits=True).

        ``sample_weight`` (one weight per sample) weights each sample's loss, as Keras does.
        """
        if not isinstance(y_pred, Tensor):
            y_pred = Tensor(np.asarray(y_pred))
        if sample_weight is not None:
            weights = as_tensor(sample_weight, y_pred, y_pred.dtype)
            per_sample = self.call_on_logits(y_true, y_pred) if getattr(self, "from_logits", False) else \
                self.call(y_true, y_pred)
            if weights.size != per_sample.shape[0]:
                raise ValueError(f"{self.name}: sample_weight has {weights.size} values for {per_sample.shape[0]} "
                                 "samples")
            return self._reduce(per_sample, weights)
        if getattr(self, "from_logits", False):
            return self.on_logits(y_true, y_pred)
        return self._reduce(self.call(y_true, y_pred))

    def on_logits(self, y_true, logits):
        """The reduced loss computed from ``logits``, the input of ``logits_activation``.

        The trainer calls this instead of ``__call__`` when the model's last activation is this
        loss's ``logits_activation``: the same loss, by one fused and stable op.
        """
        return self._reduce(self.call_on_logits(y_true, logits))

    def _fused_reduction(self):
        """The reduction name of the fused softmax cross-entropy op for this loss's reduction."""
        return {"sum_over_batch_size": "mean", "sum": "sum"}.get(self.reduction, "none")

    def _reduce(self, per_sample, weights=None):
        """Reduce per-sample losses; with ``weights`` (one per sample), Keras's weighted form: the weighted
        values summed and divided by the number of values (not by the sum of the weights). Losses per position
        (n, ...) take their sample's weight at every position."""
        if weights is not None:
            shape = (per_sample.shape[0], *[1] * (per_sample.ndim - 1))
            per_sample = per_sample * weights.reshape(*shape).astype(per_sample.dtype)
        if self.reduction in ("none", None):
            return per_sample
        if self.reduction == "sum":
            return per_sample.sum()
        if per_sample.shape[0] == 0:
            raise ValueError(f"{self.name}: the mean over an empty batch is undefined")
        return per_sample.mean()

    @abstractmethod
    def call(self, y_true, y_pred):
        """Per-sample losses (n,) of predictions ``y_pred`` against targets ``y_true``."""

    def call_on_logits(self, y_true, logits):
        """Per-sample losses computed from ``logits``, the input of ``logits_activation``."""
        raise ValueError(f"{self.name} cannot take logits")

    def prepare_targets(self, y_true, y_pred_shape, dtype):
        """The host half of the loss, once per batch: ``y_true`` checked and shaped as the loss computes with it.

        Returns a numpy array for ``from_prepared``: here y_true in y_pred's shape (after Keras's rank
        matching) and float ``dtype``. Everything that looks at target VALUES on the host happens here,
        before the upload, so the device half reads no host data (and a compiled step can replay it).
        """
        host = to_host(y_true)
        shape = matched_shape(self.name, host.shape, y_pred_shape)
        return host.astype(dtype, copy=False).reshape(shape)

    def from_prepared(self, targets, y_pred, logits=False, weights=None):
        """The reduced loss from ``targets``, the upload of ``prepare_targets``'s array: the device half.

        ``logits``: ``y_pred`` holds the logits of ``logits_activation`` (the trainer's fused path).
        ``weights``: a Tensor of per-sample weights (sample_weight or class_weight), or None.
        """
        if weights is not None:
            return self._reduce(self.per_sample_prepared(targets, y_pred, logits), weights)
        return self.on_logits(targets, y_pred) if logits else self(targets, y_pred)

    def from_masked(self, targets, y_pred, logits, weights, mask):
        """``from_prepared`` for an output that carries Keras's ``mask`` (bool, (n, steps)): the per-entry losses
        times ``masks.loss_weights`` (padded entries weigh 0), reduced; for a mean, over every entry, which the
        weights make the mean over the kept ones, as Keras's apply_mask does."""
        per_entry = self.per_sample_prepared(targets, y_pred, logits)
        weighted = per_entry * loss_weights(mask, per_entry, weights, self.reduction)
        if self.reduction in ("none", None):
            return weighted
        return weighted.sum() if self.reduction == "sum" else weighted.mean()

    def per_sample_prepared(self, targets, y_pred, logits=False):
        """The per-sample losses from prepared ``targets`` (no host work: a compiled step can replay it)."""
        if logits or getattr(self, "from_logits", False):
            return self.call_on_logits(targets, y_pred)
        return self.call(targets, y_pred)

    def check_targets(self, y_true_shape, y_pred_shape):
        """Raise ValueError when targets of ``y_true_shape`` cannot go with predictions of ``y_pred_shape``."""
        matched_shape(self.name, y_true_shape, y_pred_shape)

    def get_config(self):
        """Keras's config: name, reduction, and the loss's own arguments."""
        return {"name": self.name, "reduction": self.reduction}


def matched_shape(name, y_true_shape, y_pred_shape):
    """Keras's rank matching: (n,) targets go with (n, 1) predictions and back; otherwise shapes must be equal."""
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    if len(y_true_shape) == len(y_pred_shape) - 1 and y_pred_shape[-1] == 1:
        y_true_shape = (*y_true_shape, 1)
    elif len(y_true_shape) == len(y_pred_shape) + 1 and y_true_shape[-1] == 1:
        y_true_shape = y_true_shape[:-1]
    if y_true_shape != y_pred_shape:
        raise ValueError(f"{name}: y_true of shape {y_true_shape} does not fit y_pred of shape {y_pred_shape}; "
                         "they must have the same shape")
    return y_true_shape


def targets_like(name, y_true, y_pred):
    """y_true as a float Tensor reshaped to y_pred's shape (after Keras's rank matching)."""
    shape = matched_shape(name, np.shape(y_true) if not isinstance(y_true, Tensor) else y_true.shape, y_pred.shape)
    y_true = as_tensor(y_true, y_pred, dtype=y_pred.dtype)
    if y_true.dtype != y_pred.dtype:
        y_true = y_true.astype(y_pred.dtype)
    return y_true.reshape(*shape) if y_true.shape != shape else y_true


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred)`` of Tensors that returns per-sample values.

    As in Keras, ``y_true`` arrives as a float Tensor in its own shape, and the values (one per sample,
    or any shape with the batch first) are reduced by ``reduction``: their mean by default.
    """

    def __init__(self, fn, name=None, reduction="sum_over_batch_size"):
        super().__init__(name or getattr(fn, "__name__", type(fn).__name__), reduction)
        self.fn = fn

    def call(self, y_true, y_pred):
        """``fn``'s values, checked: a Tensor whose first axis is the batch."""
        values = self.fn(as_tensor(y_true, y_pred, y_pred.dtype), y_pred)
        if not isinstance(values, Tensor):
            raise TypeError(f"loss function {self.name!r} must return a Tensor (use nnengine.keras.ops), got "
                            f"{type(values).__name__}")
        if values.ndim == 0 or values.shape[0] != y_pred.shape[0]:
            raise ValueError(f"loss function {self.name!r} must return per-sample values, shape "
                             f"({y_pred.shape[0]},) or ({y_pred.shape[0]}, ...), got shape {values.shape}")
        if values.dtype.kind != "f":
            raise TypeError(f"loss function {self.name!r} must return floats, got {values.dtype}")
        return values.reshape(values.shape[0], -1).mean(axis=-1) if values.ndim > 1 else values

    def prepare_targets(self, y_true, y_pred_shape, dtype):
        """y_true as floats of ``dtype`` in its own shape (the function decides what it needs)."""
        return to_host(y_true).astype(dtype, copy=False)

    def check_targets(self, y_true_shape, y_pred_shape):
        """Only the batch size must agree; the function checks the rest."""
        if tuple(y_true_shape)[:1] != tuple(y_pred_shape)[:1]:
            raise ValueError(f"loss function {self.name!r}: y_true of shape {tuple(y_true_shape)} and y_pred of "
                             f"shape {tuple(y_pred_shape)} have different batch sizes")

    def get_config(self):
        """The function's name and the reduction (the function itself cannot be saved)."""
        return {"name": self.name, "reduction": self.reduction}
