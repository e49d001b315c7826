"""Keras 3's metrics counted from confusion counts at thresholds: Precision and Recall (thresholds, top_k,
class_id), AUC, the counts themselves (TruePositives, ...), and the metrics at a point of a curve:
SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision.

An element is predicted positive when y_pred > threshold, and is a positive target when y_true is non-zero.
The weighted counts of true/false positives/negatives at every threshold come from one sort of each batch
(``_ConfusionCounts``), not one comparison per threshold and element. Metrics on evenly spaced thresholds
(AUC; the curve-point metrics) clip the predictions to [0, 1] first, as Keras's bucketed counting does.
Everything runs on the host in float64, as the other metrics do (metrics.py).
"""
import numpy as np

from . import arguments
from .metric_base import Metric, match_rank
from .utils import snake_case, to_host

__all__ = ["Precision", "Recall", "AUC", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives",
           "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision",
           "weights_of", "divide_no_nan", "top_k_and_class", "evenly_spaced_thresholds", "NEG_INF"]


def weights_of(sample_weight, count):
    """Per-sample weights as float64 of length ``count`` (ones when None)."""
    if sample_weight is None:
        return np.ones(count)
    return np.broadcast_to(np.asarray(to_host(sample_weight), np.float64).reshape(-1), (count,))


def divide_no_nan(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (Keras's divide_no_nan)."""
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros(np.broadcast(numerator, denominator).shape),
                     where=denominator != 0)


class _ConfusionCounts(Metric):
    """Weighted counts of true/false positives/negatives at each of ``thresholds``, over every element.

    An element is predicted positive when y_pred > threshold; y_true is positive when it is non-zero.
    The counts come from one sort per batch, not one comparison per threshold and element.
    """

    #: clip the predictions to [0, 1] first (Keras's bucketed counting on evenly spaced thresholds does)
    clips = False

    def __init__(self, name, thresholds):
        super().__init__(name)
        self.thresholds = np.asarray(thresholds, np.float64)
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's counts."""
        y_pred = np.asarray(to_host(y_pred), np.float64)
        if self.clips:
            y_pred = np.clip(y_pred, 0.0, 1.0)
        y_true = match_rank(np.asarray(to_host(y_true)), y_pred)
        weights = np.broadcast_to(weights_of(sample_weight, len(y_pred)).reshape(-1, *[1] * (y_pred.ndim - 1)),
                                  y_pred.shape).reshape(-1)
        positive = (y_true != 0).reshape(-1)
        order = np.argsort(y_pred.reshape(-1), kind="stable")
        scores = y_pred.reshape(-1)[order]
        positive_weight = np.concatenate([[0.0], np.cumsum(np.where(positive[order], weights[order], 0.0))])
        negative_weight = np.concatenate([[0.0], np.cumsum(np.where(positive[order], 0.0, weights[order]))])
        below = np.searchsorted(scores, self.thresholds, side="right")      # elements <= threshold
        self.fn += positive_weight[below]
        self.tn += negative_weight[below]
        self.tp += positive_weight[-1] - positive_weight[below]
        self.fp += negative_weight[-1] - negative_weight[below]

    def reset_state(self):
        """All counts to zero."""
        self.tp, self.fp, self.tn, self.fn = (np.zeros(len(self.thresholds)) for _ in range(4))


def _one_threshold(owner, value):
    """One threshold: a number in [0, 1]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not 0 <= value <= 1:
        raise ValueError(f"{owner}: each threshold must be a number in [0, 1], got {value!r:.40}")
    return float(value)


def _thresholds(owner, thresholds, default=0.5):
    """Keras's ``thresholds``: None (``default``), one number or a non-empty list of them, as a list."""
    if thresholds is None:
        return [default]
    if isinstance(thresholds, (list, tuple, np.ndarray)):
        if len(thresholds) == 0:
            raise ValueError(f"{owner}: thresholds must not be an empty list")
        return [_one_threshold(owner, value) for value in thresholds]
    return [_one_threshold(owner, thresholds)]


#: what Keras's top_k filter makes of the predictions outside the top k (and the default threshold with top_k)
NEG_INF = -1e10


def top_k_and_class(owner, y_pred, y_true, top_k, class_id):
    """Keras's top_k and class_id, in its order: predictions outside each sample's k largest (the first k in
    index order among ties) become NEG_INF; then only column ``class_id`` of targets and predictions counts."""
    if top_k is not None:
        order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :top_k]
        kept = np.zeros(y_pred.shape, bool)
        np.put_along_axis(kept, order, True, axis=-1)
        y_pred = np.where(kept, y_pred, NEG_INF)
    if class_id is not None:
        if y_pred.ndim < 2 or not class_id < y_pred.shape[-1]:
            raise ValueError(f"{owner}: class_id={class_id} needs predictions (samples, classes) with more than "
                             f"{class_id} classes, got shape {y_pred.shape}")
        y_true = match_rank(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{owner}: with class_id, targets must have the predictions' shape {y_pred.shape} "
                             f"(one 0/1 column per class), got {y_true.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    return y_true, y_pred


class _TopKAndClass(_ConfusionCounts):
    """Precision and Recall: counts at each of ``thresholds`` after Keras's top_k and class_id; one number for
    one threshold, an array for several."""

    def __init__(self, name, thresholds, top_k, class_id):
        owner = type(self).__name__
        self.top_k = None if top_k is None else arguments.integer(owner, "top_k", top_k, minimum=1)
        self.class_id = None if class_id is None else arguments.integer(owner, "class_id", class_id, minimum=0)
        self.init_thresholds = thresholds
        super().__init__(name, _thresholds(owner, thresholds, 0.5 if top_k is None else NEG_INF))

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's counts (after top_k and class_id)."""
        y_pred = np.asarray(to_host(y_pred), np.float64)
        y_true, y_pred = top_k_and_class(type(self).__name__, y_pred, np.asarray(to_host(y_true)), self.top_k,
                                          self.class_id)
        super().update_state(y_true, y_pred, sample_weight)

    def _per_threshold(self, values):
        return float(values[0]) if len(self.thresholds) == 1 else values

    def get_config(self):
        """Keras 3's config."""
        return {"name": self.name, "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_TopKAndClass):
    """tp / (tp + fp) over every element, y_pred > threshold counting as positive (0.5 by default; with
    ``top_k``, each sample's k largest predictions); ``class_id`` counts one class's column only. A list of
    thresholds gives one precision per threshold."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision"):
        super().__init__(name, thresholds, top_k, class_id)

    def result(self):
        """The precision so far (0 before any predicted positive)."""
        return self._per_threshold(divide_no_nan(self.tp, self.tp + self.fp))


class Recall(_TopKAndClass):
    """tp / (tp + fn) over every element, as Precision counts them (thresholds, top_k, class_id)."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall"):
        super().__init__(name, thresholds, top_k, class_id)

    def result(self):
        """The recall so far (0 before any positive target)."""
        return self._per_threshold(divide_no_nan(self.tp, self.tp + self.fn))


class AUC(_ConfusionCounts):
    """Area under the ROC or precision-recall curve from counts at ``num_thresholds`` thresholds (Keras's).

    Thresholds: -1e-7, then i / (n - 1) for i = 1 .. n - 2, then 1 + 1e-7. ROC: the trapezoid rule over
    (false positive rate, true positive rate). PR: Davis and Goadrich's interpolation between thresholds,
    precision taken as linear in the number of predicted positives. Predictions are clipped to [0, 1] first,
    as Keras's bucketed counting clips them (logits or values outside [0, 1] count at the end thresholds).
    """

    clips = True

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name="auc",
                 thresholds=None, multi_label=False, from_logits=False):
        if curve not in ("ROC", "PR") or summation_method != "interpolation" or thresholds is not None or \
                multi_label or from_logits:
            raise ValueError("AUC: nnengine supports curve='ROC' or 'PR' with summation_method='interpolation', "
                             "default thresholds, multi_label=False and from_logits=False")
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) or num_thresholds < 2:
            raise ValueError(f"AUC: num_thresholds must be an int > 1, got {num_thresholds!r}")
        _check_threshold_count("AUC", num_thresholds)
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__(name, [-1e-7, *inner, 1.0 + 1e-7])
        self.num_thresholds, self.curve = num_thresholds, curve

    def get_config(self):
        """Keras 3's config."""
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": "interpolation", "multi_label": False, "num_labels": None,
                "label_weights": None, "from_logits": False}

    def result(self):
        """The area so far."""
        if self.curve == "ROC":
            tpr, fpr = divide_no_nan(self.tp, self.tp + self.fn), divide_no_nan(self.fp, self.fp + self.tn)
            return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))
        # PR: between thresholds i and i+1, precision = slope * p + intercept in p = tp + fp; integrate
        # it against recall = tp / (tp + fn): slope * (dtp + intercept * log(p_i / p_i+1)) / positives
        tp, predicted = self.tp, self.tp + self.fp
        dtp, dp = tp[:-1] - tp[1:], predicted[:-1] - predicted[1:]
        slope = divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * predicted[1:]
        both = (predicted[:-1] > 0) & (predicted[1:] > 0)
        ratio = np.where(both, divide_no_nan(predicted[:-1], np.maximum(predicted[1:], 0)), 1.0)
        increments = divide_no_nan(slope * (dtp + intercept * np.log(np.where(ratio > 0, ratio, 1.0))),
                             np.maximum(tp[1:] + self.fn[1:], 0))
        return float(np.sum(increments))


class _Count(_ConfusionCounts):
    """One of the weighted confusion counts at ``thresholds`` (0.5; a list gives one count per threshold)."""

    count = None                        # "tp", "fp", "tn" or "fn"

    def __init__(self, thresholds=None, name=None):
        owner = type(self).__name__
        self.init_thresholds = thresholds
        super().__init__(name or snake_case(owner), _thresholds(owner, thresholds))

    def result(self):
        """The weighted count so far (an array, one per threshold, for several thresholds; one number for one,
        as Keras returns it)."""
        counts = getattr(self, self.count)
        return counts.copy() if len(self.thresholds) > 1 else float(counts[0])

    def get_config(self):
        """Keras 3's config: the name and the thresholds as given."""
        return {"name": self.name, "thresholds": self.init_thresholds}


class TruePositives(_Count):
    """Weighted count of elements with a non-zero target and y_pred > threshold."""

    count = "tp"


class FalsePositives(_Count):
    """Weighted count of elements with a zero target and y_pred > threshold."""

    count = "fp"


class TrueNegatives(_Count):
    """Weighted count of elements with a zero target and y_pred <= threshold."""

    count = "tn"


class FalseNegatives(_Count):
    """Weighted count of elements with a non-zero target and y_pred <= threshold."""

    count = "fn"


#: the most thresholds a curve metric keeps (four float64 counts each: 32 MB at the limit)
MAX_THRESHOLDS = 1_000_000


def _check_threshold_count(owner, count):
    """A ValueError for more thresholds than MAX_THRESHOLDS (a typo of 10**9 would otherwise exhaust memory)."""
    if count > MAX_THRESHOLDS:
        raise ValueError(f"{owner}: num_thresholds must be at most {MAX_THRESHOLDS:,} (each keeps four counts), got "
                         f"{count:,}")


def evenly_spaced_thresholds(count):
    """Keras's thresholds for the curve-point metrics: 0, i / (count - 1) for i = 1 .. count - 2, 1 (0.5 alone
    for one)."""
    if count == 1:
        return [0.5]
    return [0.0, *[(i + 1) / (count - 1) for i in range(count - 2)], 1.0]


class _CurvePoint(_ConfusionCounts):
    """The best value of one rate among the thresholds where another rate reaches ``value`` (Keras's
    SensitivitySpecificityBase): counts at ``num_thresholds`` evenly spaced thresholds, ``class_id`` one
    class's column only. 0 when no threshold reaches it."""

    #: the argument that names ``value`` in the constructor and the config ("specificity", ...)
    constraint = None

    def __init__(self, value, num_thresholds=200, class_id=None, name=None):
        owner = type(self).__name__
        self.value = arguments.number(owner, self.constraint, value, 0, 1)
        self.num_thresholds = arguments.integer(owner, "num_thresholds", num_thresholds, minimum=1)
        _check_threshold_count(owner, self.num_thresholds)
        self.class_id = None if class_id is None else arguments.integer(owner, "class_id", class_id, minimum=0)
        self.clips = self.num_thresholds > 1          # Keras's bucketed counting, not for its one threshold
        super().__init__(name or snake_case(owner), evenly_spaced_thresholds(self.num_thresholds))

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's counts (only column ``class_id`` with one)."""
        y_pred = np.asarray(to_host(y_pred), np.float64)
        y_true, y_pred = top_k_and_class(type(self).__name__, y_pred, np.asarray(to_host(y_true)), None,
                                         self.class_id)
        super().update_state(y_true, y_pred, sample_weight)

    def rates(self):
        """{name: its value at every threshold}: sensitivity (= recall), specificity, precision."""
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        return {"sensitivity": divide_no_nan(tp, tp + fn), "specificity": divide_no_nan(tn, tn + fp),
                "precision": divide_no_nan(tp, tp + fp)}

    def best(self, constrained, dependent):
        """max of ``dependent`` over the thresholds where ``constrained`` >= value (0 where none does)."""
        feasible = constrained >= self.value
        return float(np.max(np.where(feasible, dependent, 0.0), initial=0.0))

    def get_config(self):
        """Keras 3's config."""
        return {"name": self.name, self.constraint: self.value, "num_thresholds": self.num_thresholds,
                "class_id": self.class_id}


class SensitivityAtSpecificity(_CurvePoint):
    """The best sensitivity tp / (tp + fn) among the thresholds whose specificity tn / (tn + fp) is at least
    ``specificity``."""

    constraint = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None):
        super().__init__(specificity, num_thresholds, class_id, name)

    def result(self):
        """The sensitivity at the specificity asked for."""
        rates = self.rates()
        return self.best(rates["specificity"], rates["sensitivity"])


class SpecificityAtSensitivity(_CurvePoint):
    """The best specificity among the thresholds whose sensitivity is at least ``sensitivity``."""

    constraint = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None):
        super().__init__(sensitivity, num_thresholds, class_id, name)

    def result(self):
        """The specificity at the sensitivity asked for."""
        rates = self.rates()
        return self.best(rates["sensitivity"], rates["specificity"])


class PrecisionAtRecall(_CurvePoint):
    """The best precision tp / (tp + fp) among the thresholds whose recall is at least ``recall``."""

    constraint = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None):
        super().__init__(recall, num_thresholds, class_id, name)

    def result(self):
        """The precision at the recall asked for."""
        rates = self.rates()
        return self.best(rates["sensitivity"], rates["precision"])


class RecallAtPrecision(_CurvePoint):
    """The best recall among the thresholds whose precision is at least ``precision``."""

    constraint = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None):
        super().__init__(precision, num_thresholds, class_id, name)

    def result(self):
        """The recall at the precision asked for."""
        rates = self.rates()
        return self.best(rates["precision"], rates["sensitivity"])
