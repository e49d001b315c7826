"""Keras 3's hinge and focal losses: for classifiers trained by margins, and for classes that are rare.

losses.py holds the name tables and ``get``; these classes live here so that each file stays readable.
Every formula is Keras 3.15's (checked against it in tests/test_keras_functions.py):

* ``Hinge``: mean(max(1 - t * p, 0)) over the last axis;
* ``SquaredHinge``: mean(max(1 - t * p, 0)^2) over the last axis;
  for both, targets of 0s and 1s only are first read as -1 and +1 (t = 2 y - 1), per batch, as Keras does:
  a batch holding any other value (-1/+1 labels, say) is taken as it is;
* ``CategoricalHinge``: max(neg - pos + 1, 0), pos = sum(t * p), neg = max((1 - t) * p), over the last axis;
* ``BinaryFocalCrossentropy``: mean((1 - p_t)^gamma * bce) over the last axis, with p_t = t p + (1 - t)(1 - p)
  and bce the binary cross-entropy of p clipped to [eps, 1 - eps]; ``apply_class_balancing`` also weighs each
  entry by alpha (positives) or 1 - alpha (negatives);
* ``CategoricalFocalCrossentropy``: sum(-alpha (1 - q)^gamma t log q) over the classes, with q the predictions
  normalised to sum 1 and clipped to [eps, 1 - eps].

Focal losses (Lin et al., 2017) weigh the examples a model already gets right, (1 - p_t)^gamma, close to 0,
so that training looks at the hard ones. Label values are read on the host only in ``prepare_targets`` (the
hinge's 0/1 test), so a compiled step replays the device half with no host read.
"""
from abc import abstractmethod

import numpy as np

from . import arguments
from . import functional as F
from .loss_base import EPSILON, Loss, targets_like
from .utils import to_host

__all__ = ["Hinge", "SquaredHinge", "CategoricalHinge", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy",
           "hinge_labels"]


def hinge_labels(y_true):
    """Keras's hinge targets, on the host: labels that are all 0 or 1 become -1 and +1 (2 y - 1); any other
    values are returned as they are."""
    y_true = np.asarray(y_true)
    return 2 * y_true - 1 if np.all((y_true == 0) | (y_true == 1)) else y_true


class _HingeBase(Loss):
    """What Hinge and SquaredHinge share: the 0/1 -> -1/+1 reading of the targets, on the host."""

    def prepare_targets(self, y_true, y_pred_shape, dtype):
        """The targets in y_pred's shape, 0/1 labels read as -1/+1 (this batch's values decide, as in Keras)."""
        return hinge_labels(super().prepare_targets(y_true, y_pred_shape, dtype))

    def call(self, y_true, y_pred):
        """Per-sample losses of targets given as they are (their values read here, on the host)."""
        return self.margins(targets_like(self.name, hinge_labels(to_host(y_true)), y_pred), y_pred)

    def from_prepared(self, targets, y_pred, logits=False, weights=None):
        """The reduced loss of targets ``prepare_targets`` has read already (no host work here)."""
        return self._reduce(self.margins(targets, y_pred), weights)

    def per_sample_prepared(self, targets, y_pred, logits=False):
        """Per-sample losses of targets ``prepare_targets`` has read already."""
        return self.margins(targets, y_pred)

    @abstractmethod
    def margins(self, targets, y_pred):
        """Per-sample losses of -1/+1 (or real-valued) ``targets``."""


class Hinge(_HingeBase):
    """mean(max(1 - t * p, 0)) over the last axis: 0 once each prediction is on its target's side by a margin
    of 1. Targets are -1/+1, or 0/1 (read as -1/+1)."""

    def __init__(self, reduction="sum_over_batch_size", name="hinge"):
        super().__init__(name, reduction)

    def margins(self, targets, y_pred):
        """mean(max(1 - t * p, 0)) over the last axis."""
        return F.relu(1.0 - targets * y_pred).mean(axis=-1)


class SquaredHinge(_HingeBase):
    """mean(max(1 - t * p, 0)^2) over the last axis; targets -1/+1, or 0/1 (read as -1/+1)."""

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge"):
        super().__init__(name, reduction)

    def margins(self, targets, y_pred):
        """mean(max(1 - t * p, 0)^2) over the last axis."""
        margin = F.relu(1.0 - targets * y_pred)
        return (margin * margin).mean(axis=-1)


class CategoricalHinge(Loss):
    """max(neg - pos + 1, 0) with pos = sum(t * p) and neg = max((1 - t) * p) over the last axis: the score of
    the true class must beat the best other one by 1. Targets are one-hot rows of the predictions' shape."""

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        """Per-sample categorical hinge."""
        targets = targets_like(self.name, y_true, y_pred)
        positive = (targets * y_pred).sum(axis=-1)
        negative = ((1.0 - targets) * y_pred).max(axis=-1)
        return F.relu(negative - positive + 1.0)


def _focal_arguments(owner, alpha, gamma, label_smoothing):
    """alpha in [0, 1], gamma >= 0 and label_smoothing in [0, 1], as floats."""
    return (arguments.number(owner, "alpha", alpha, 0, 1), arguments.number(owner, "gamma", gamma, low=0),
            arguments.number(owner, "label_smoothing", label_smoothing, 0, 1))


def _modulated(miss, gamma):
    """The focal factor miss^gamma; 1 for gamma = 0 (no power taken: its derivative would be 0 * 0^-1 at 0)."""
    return F.power(miss, gamma) if gamma else 1.0


class BinaryFocalCrossentropy(Loss):
    """The binary cross-entropy weighted by (1 - p_t)^gamma, mean over the last axis (see the module's formula).

    ``apply_class_balancing``: also weigh positives by ``alpha`` and negatives by 1 - alpha. ``from_logits``:
    the predictions are logits (a sigmoid is applied first). ``label_smoothing``: targets move towards 0.5.
    """

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 axis=-1, reduction="sum_over_batch_size", name="binary_focal_crossentropy"):
        super().__init__(name, reduction)
        self.alpha, self.gamma, self.label_smoothing = _focal_arguments(name, alpha, gamma, label_smoothing)
        self.apply_class_balancing = arguments.boolean(name, "apply_class_balancing", apply_class_balancing)
        self.from_logits = arguments.boolean(name, "from_logits", from_logits)
        if axis != -1:
            raise ValueError(f"{name}: nnengine averages over the last axis (axis=-1), got axis={axis!r}")

    def call(self, y_true, y_pred):
        """Per-sample focal cross-entropy (from logits too: the flag decides, as in Keras)."""
        targets = targets_like(self.name, y_true, y_pred)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = F.sigmoid(y_pred) if self.from_logits else y_pred
        clipped = F.clip(p, EPSILON, 1.0 - EPSILON)
        cross_entropy = -(targets * clipped.log() + (1.0 - targets) * (1.0 - clipped).log())
        p_t = targets * p + (1.0 - targets) * (1.0 - p)      # the probability given to the true outcome
        focal = _modulated(1.0 - p_t, self.gamma) * cross_entropy
        if self.apply_class_balancing:
            focal = focal * (targets * self.alpha + (1.0 - targets) * (1.0 - self.alpha))
        return focal.mean(axis=-1)

    def call_on_logits(self, y_true, logits):
        """from_logits=True: the same formula on sigmoid(logits)."""
        return self.call(y_true, logits)

    def get_config(self):
        """Keras 3's config of this loss."""
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": -1}


class CategoricalFocalCrossentropy(Loss):
    """The categorical cross-entropy of each class weighted by alpha (1 - q)^gamma, summed over the classes (see
    the module's formula). Targets are one-hot (or soft) rows; ``from_logits`` applies a softmax first;
    ``label_smoothing`` mixes the targets with the uniform distribution."""

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy"):
        super().__init__(name, reduction)
        self.alpha, self.gamma, self.label_smoothing = _focal_arguments(name, alpha, gamma, label_smoothing)
        self.from_logits = arguments.boolean(name, "from_logits", from_logits)
        if axis != -1:
            raise ValueError(f"{name}: nnengine sums over the last axis (axis=-1), got axis={axis!r}")

    def call(self, y_true, y_pred):
        """Per-sample focal cross-entropy."""
        targets = targets_like(self.name, y_true, y_pred)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / y_pred.shape[-1]
        q = F.softmax(y_pred, -1) if self.from_logits else y_pred
        q = F.clip(q / q.sum(axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)
        weight = _modulated(1.0 - q, self.gamma) * self.alpha
        return -(weight * targets * q.log()).sum(axis=-1)

    def call_on_logits(self, y_true, logits):
        """from_logits=True: the same formula on softmax(logits)."""
        return self.call(y_true, logits)

    def get_config(self):
        """Keras 3's config of this loss."""
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": -1}
