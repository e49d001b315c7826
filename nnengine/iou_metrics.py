"""Keras 3's Intersection-over-Union metrics for segmentation and classification: IoU, MeanIoU, BinaryIoU,
OneHotIoU, OneHotMeanIoU.

Each keeps a confusion matrix cm (rows: true class, columns: predicted class) summed over the batches of an
epoch, and gives, for each target class c,

    IoU_c = tp_c / (tp_c + fp_c + fn_c) = cm[c, c] / (sum of row c + sum of column c - cm[c, c])

and the mean of IoU_c over the target classes whose denominator is not 0 (a class never seen nor predicted
does not count). Keras computes the division as tp / (denominator + 1e-7) and the mean as sum / (count + 1e-7),
and so does this module. As in Keras 3.15:
* a pair whose true or predicted class is outside [0, num_classes), or whose true class is ``ignore_class``,
  is left out;
* the matrix has the metric's ``dtype``, int32 by default, so sample weights are truncated to integers (a
  warning says so when they are fractions); ``dtype='float32'`` keeps fractional weights;
* one-hot (``sparse_y_true=False``, ``sparse_y_pred=False``, the OneHot* metrics) and scores are turned into
  classes by argmax over ``axis``; BinaryIoU predicts class 1 where y_pred >= threshold.
"""
import warnings

import numpy as np

from . import arguments
from .metric_base import Metric
from .utils import snake_case, to_host

__all__ = ["IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU"]

#: Keras's epsilon in the divisions of the result
EPSILON = 1e-7


class IoU(Metric):
    """The mean IoU over ``target_class_ids`` (see the module's docstring for the formula and the rules)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        owner = type(self).__name__
        super().__init__(name or snake_case(owner))
        self.num_classes = arguments.integer(owner, "num_classes", num_classes, minimum=1)
        if not isinstance(target_class_ids, (list, tuple, range, np.ndarray)) or len(target_class_ids) == 0:
            raise ValueError(f"{owner}: target_class_ids must be a non-empty list of class ids, got "
                             f"{target_class_ids!r:.60}")
        self.target_class_ids = [arguments.integer(owner, "target_class_ids", c, minimum=0)
                                 for c in target_class_ids]
        if max(self.target_class_ids) >= self.num_classes:
            raise ValueError(f"{owner}: target class id {max(self.target_class_ids)} is out of range [0, "
                             f"{self.num_classes})")
        self.dtype = np.dtype("int32" if dtype is None else dtype)
        if self.dtype.kind not in "iuf":
            raise ValueError(f"{owner}: dtype must be an integer or float type, got {dtype!r}")
        self.ignore_class = None if ignore_class is None else arguments.integer(owner, "ignore_class", ignore_class)
        self.sparse_y_true = arguments.boolean(owner, "sparse_y_true", sparse_y_true)
        self.sparse_y_pred = arguments.boolean(owner, "sparse_y_pred", sparse_y_pred)
        self.axis = arguments.integer(owner, "axis", axis)
        self.reset_state()

    def reset_state(self):
        """An empty confusion matrix."""
        self.total_cm = np.zeros((self.num_classes, self.num_classes), self.dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's pairs (true class, predicted class) to the confusion matrix."""
        y_true, y_pred = np.asarray(to_host(y_true)), np.asarray(to_host(y_pred))
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        self._add(y_true.reshape(-1), self._predicted_classes(y_pred).reshape(-1), sample_weight)

    def _predicted_classes(self, y_pred):
        """The predicted class of each element (BinaryIoU thresholds its scores)."""
        return y_pred

    def _add(self, y_true, y_pred, sample_weight):
        owner = type(self).__name__
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{owner}: targets and predictions must give one class each, got {y_true.size} "
                             f"targets and {y_pred.size} predictions")
        for name, values in (("targets", y_true), ("predictions", y_pred)):
            if values.dtype.kind not in "iufb" or (values.dtype.kind == "f" and not np.all(np.isfinite(values))):
                raise ValueError(f"{owner}: {name} must be class numbers, got {values.dtype} values")
        y_true, y_pred = y_true.astype(np.int64), y_pred.astype(np.int64)     # Keras casts to its dtype
        weights = self._weights(owner, sample_weight, y_true.size)
        kept = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (y_pred < self.num_classes)
        if self.ignore_class is not None:
            kept &= y_true != self.ignore_class
        counts = np.zeros(self.num_classes * self.num_classes, self.total_cm.dtype)
        np.add.at(counts, y_true[kept] * self.num_classes + y_pred[kept], weights[kept])
        self.total_cm += counts.reshape(self.num_classes, self.num_classes)

    def _weights(self, owner, sample_weight, count):
        """The weights in the matrix's dtype, one per pair (truncated to integers for an integer dtype)."""
        if sample_weight is None:
            return np.ones(count, self.total_cm.dtype)
        weights = np.asarray(to_host(sample_weight), np.float64).reshape(-1)
        if weights.size not in (1, count):
            raise ValueError(f"{owner}: sample_weight must have one weight per element ({count}) or one in all, got "
                             f"{weights.size}")
        if self.dtype.kind in "iu" and np.any(weights != np.trunc(weights)):
            warnings.warn(f"{owner}: fractional sample weights are truncated to integers, as the confusion matrix "
                          f"has dtype {self.dtype} (Keras's default); pass dtype='float32' to keep them",
                          UserWarning, stacklevel=4)
        return np.broadcast_to(weights, (count,)).astype(self.total_cm.dtype)

    def result(self):
        """The mean IoU over the target classes seen (0 before any)."""
        cm = self.total_cm.astype(np.float64)
        true_positives = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - true_positives
        ids = self.target_class_ids
        true_positives, denominator = true_positives[ids], denominator[ids]
        valid = denominator > 1e-9
        iou = np.where(valid, true_positives / (denominator + EPSILON), 0.0)
        return float(iou.sum() / (valid.sum() + EPSILON))

    def get_config(self):
        """Keras 3's config."""
        return {"name": self.name, "dtype": self.dtype.name, "num_classes": self.num_classes,
                "target_class_ids": list(self.target_class_ids), "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class MeanIoU(IoU):
    """The mean IoU over every class."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, list(range(arguments.integer("MeanIoU", "num_classes", num_classes,
                                                                   minimum=1))),
                         name, dtype, ignore_class, sparse_y_true, sparse_y_pred, axis)

    def get_config(self):
        """Keras 3's config (no target_class_ids)."""
        config = super().get_config()
        del config["target_class_ids"]
        return config


class BinaryIoU(IoU):
    """IoU of two classes from scores: class 1 where y_pred >= ``threshold``, else 0; ``target_class_ids`` (0, 1),
    [0] or [1]."""

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(2, target_class_ids, name, dtype)
        self.threshold = arguments.number(type(self).__name__, "threshold", threshold)

    def _predicted_classes(self, y_pred):
        return (np.asarray(y_pred, np.float64) >= self.threshold).astype(np.int64)

    def get_config(self):
        """Keras 3's config."""
        return {"name": self.name, "dtype": self.dtype.name, "target_class_ids": list(self.target_class_ids),
                "threshold": self.threshold}


class OneHotIoU(IoU):
    """IoU of one-hot targets and class scores (each turned into a class by argmax over ``axis``)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name, dtype, ignore_class, False, sparse_y_pred, axis)

    def get_config(self):
        """Keras 3's config (no sparse_y_true)."""
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """MeanIoU of one-hot targets and class scores (each turned into a class by argmax over ``axis``)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name, dtype, ignore_class, False, sparse_y_pred, axis)

    def get_config(self):
        """Keras 3's config (no sparse_y_true)."""
        config = super().get_config()
        del config["sparse_y_true"]
        return config
