"""Keras's metrics that are the running mean of a per-sample loss, the root mean squared error and R².

* probabilistic: ``BinaryCrossentropy``, ``CategoricalCrossentropy``, ``SparseCategoricalCrossentropy``,
  ``KLDivergence``, ``Poisson``;
* regression: ``MeanAbsolutePercentageError``, ``MeanSquaredLogarithmicError``, ``LogCoshError``,
  ``CosineSimilarity``, ``RootMeanSquaredError``, ``R2Score``;
* hinge: ``Hinge``, ``SquaredHinge``, ``CategoricalHinge``.

A metric here averages one value per sample over the batches (sample-weighted when given weights), as every
``MeanMetricWrapper`` does. Where losses.py has the loss (every metric here but the root mean squared error and
R², which are not means of a per-sample value), the metric asks it for the per-sample values, on the host (the
numpy backend): one formula for the loss and the metric. Each matches Keras 3.15's result over three batches,
one of them sample-weighted (``tests/test_loss_metrics.py``).
"""
import numpy as np

from . import losses
from .metric_base import Mean, MeanMetricWrapper, Metric, match_rank
from .tensor import Tensor
from .utils import to_host

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "KLDivergence",
           "Poisson", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "LogCoshError",
           "CosineSimilarity", "RootMeanSquaredError", "R2Score", "Hinge", "SquaredHinge", "CategoricalHinge", "BY_NAME",
           "CLASSES"]


def _per_sample_of(loss):
    """A function (y_true, y_pred) -> the per-sample values of ``loss`` (a losses.py Loss), on the host."""
    def per_sample(y_true, y_pred):
        y_pred = np.asarray(to_host(y_pred))
        y_true = np.asarray(to_host(y_true))
        if not isinstance(loss, losses.SparseCategoricalCrossentropy):
            y_true = y_true.astype(y_pred.dtype, copy=False)
        return to_host(loss.call(Tensor(y_true, device="numpy"), Tensor(y_pred, device="numpy")))
    return per_sample


def _metric_class(class_name, default_name, make_fn, doc):
    """A MeanMetricWrapper class whose ``__init__(name, **options)`` averages ``make_fn(**options)``'s values."""
    def __init__(self, name=default_name, **options):
        MeanMetricWrapper.__init__(self, make_fn(**options), name)
        self.options = options

    def get_config(self):
        """The name and the options it was made with (a cross-entropy's ``label_smoothing``, ...)."""
        return {"name": self.name, **self.options}
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "get_config": get_config,
                                                   "__module__": __name__, "__doc__": doc})


def _of_loss(loss_class):
    return lambda **options: _per_sample_of(loss_class(**options))


def _negated(per_sample):
    return lambda y_true, y_pred: -per_sample(y_true, y_pred)


BinaryCrossentropy = _metric_class("BinaryCrossentropy", "binary_crossentropy", _of_loss(losses.BinaryCrossentropy),
                                   "The running mean of the binary cross-entropy (``label_smoothing``, "
                                   "``from_logits`` as the loss takes them).")
CategoricalCrossentropy = _metric_class("CategoricalCrossentropy", "categorical_crossentropy",
                                        _of_loss(losses.CategoricalCrossentropy),
                                        "The running mean of the categorical cross-entropy of one-hot targets.")
SparseCategoricalCrossentropy = _metric_class("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                                              _of_loss(losses.SparseCategoricalCrossentropy),
                                              "The running mean of the cross-entropy of integer class labels.")
KLDivergence = _metric_class("KLDivergence", "kl_divergence", _of_loss(losses.KLDivergence),
                             "The running mean of sum(y_true * log(y_true / y_pred)), both clipped to [eps, 1].")
Poisson = _metric_class("Poisson", "poisson", _of_loss(losses.Poisson),
                        "The running mean of mean(y_pred - y_true * log(y_pred + eps)).")
LogCoshError = _metric_class("LogCoshError", "logcosh", _of_loss(losses.LogCosh),
                             "The running mean of mean(log(cosh(y_pred - y_true))).")
CosineSimilarity = _metric_class("CosineSimilarity", "cosine_similarity",
                                 lambda: _negated(_per_sample_of(losses.CosineSimilarity())),
                                 "The running mean of the cosine of the angle between y_true and y_pred (1: same "
                                 "direction); the loss of that name is its negative.")
MeanAbsolutePercentageError = _metric_class("MeanAbsolutePercentageError", "mean_absolute_percentage_error",
                                            _of_loss(losses.MeanAbsolutePercentageError),
                                            "The running mean of ``mean_absolute_percentage_error``.")
MeanSquaredLogarithmicError = _metric_class("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
                                            _of_loss(losses.MeanSquaredLogarithmicError),
                                            "The running mean of ``mean_squared_logarithmic_error``.")
Hinge = _metric_class("Hinge", "hinge", _of_loss(losses.Hinge), "The running mean of ``hinge``.")
SquaredHinge = _metric_class("SquaredHinge", "squared_hinge", _of_loss(losses.SquaredHinge),
                             "The running mean of ``squared_hinge``.")
CategoricalHinge = _metric_class("CategoricalHinge", "categorical_hinge", _of_loss(losses.CategoricalHinge),
                                 "The running mean of ``categorical_hinge``.")


class RootMeanSquaredError(Mean):
    """sqrt of the (sample-weighted) mean of the per-sample mean squared errors, as Keras 3 computes it."""

    def __init__(self, name="root_mean_squared_error"):
        super().__init__(name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's per-sample mean squared errors."""
        y_pred = np.asarray(to_host(y_pred), np.float64)
        difference = match_rank(np.asarray(to_host(y_true)), y_pred) - y_pred
        squared = (difference * difference).reshape(len(y_pred), -1).mean(axis=-1)
        super().update_state(squared, sample_weight)

    def result(self):
        """sqrt(total / count), 0 before any value."""
        return float(np.sqrt(super().result()))


class R2Score(Metric):
    """The coefficient of determination over the epoch, per output column: 1 - SS_res / SS_tot, with
    SS_res = sum(w (y - y_pred)^2) and SS_tot = sum(w y^2) - sum(w y)^2 / sum(w); the columns averaged
    ("uniform_average"), weighted by their SS_tot ("variance_weighted_average"), or kept (None). With
    ``num_regressors`` p > 0, the adjusted score 1 - (1 - R²)(n - 1) / (n - p - 1), n the values seen. A column
    whose targets did not vary (SS_tot = 0) scores 0 (Keras gives 0 for such an infinite score, NaN for 0 / 0)."""

    AGGREGATIONS = ("uniform_average", "variance_weighted_average", None)

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score"):
        super().__init__(name)
        if class_aggregation not in self.AGGREGATIONS:
            raise ValueError(f"R2Score: class_aggregation must be one of {self.AGGREGATIONS}, got "
                             f"{class_aggregation!r}")
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, (int, np.integer)) or num_regressors < 0:
            raise ValueError(f"R2Score: num_regressors must be an int >= 0, got {num_regressors!r}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        self.reset_state()

    def reset_state(self):
        """Forget every batch: the per-column sums start over."""
        self.sums = None                        # [sum(w y), sum(w y^2), sum(w (y - y_pred)^2), sum(w)] per column
        self.values = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch of (samples, columns) targets and predictions."""
        y_pred = np.asarray(to_host(y_pred), np.float64)
        y_true = match_rank(np.asarray(to_host(y_true), np.float64), y_pred)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(f"R2Score expects targets and predictions of one shape (batch_size, output_dim), got "
                             f"{y_true.shape} and {y_pred.shape}")
        weights = np.ones(len(y_pred)) if sample_weight is None else \
            np.broadcast_to(np.asarray(to_host(sample_weight), np.float64).reshape(-1), (len(y_pred),))
        weights = weights[:, None]
        batch = np.stack([np.sum(weights * y_true, axis=0), np.sum(weights * y_true * y_true, axis=0),
                          np.sum(weights * (y_true - y_pred) ** 2, axis=0),
                          np.sum(np.broadcast_to(weights, y_true.shape), axis=0)])
        self.sums = batch if self.sums is None else self.sums + batch
        self.values += y_true.size

    def result(self):
        """The score (a float; one per column when class_aggregation is None); 0 before any batch."""
        if self.sums is None:
            return 0.0
        weighted_sum, squared_sum, residual, count = self.sums
        mean = np.divide(weighted_sum, count, out=np.zeros_like(weighted_sum), where=count != 0)
        total = squared_sum - weighted_sum * mean
        scores = 1.0 - np.divide(residual, total, out=np.ones_like(total), where=total != 0)
        if self.class_aggregation is None:
            return scores
        if self.class_aggregation == "uniform_average":
            score = float(np.mean(scores))
        else:
            score = float(np.sum(total * scores) / np.sum(total)) if np.sum(total) != 0 else 0.0
        n, p = self.values, self.num_regressors
        if 0 < p < n - 1:                       # Keras falls back to the plain score otherwise (with a warning)
            score = 1.0 - (1.0 - score) * (n - 1) / (n - p - 1)
        return score

    def get_config(self):
        """name, class_aggregation and num_regressors."""
        return {"name": self.name, "class_aggregation": self.class_aggregation, "num_regressors": self.num_regressors}


#: the names Keras's ``metrics.get`` knows them by
BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy, "sparse_categorical_crossentropy":
    SparseCategoricalCrossentropy, "kl_divergence": KLDivergence, "poisson": Poisson, "logcosh": LogCoshError,
    "log_cosh_error": LogCoshError, "cosine_similarity": CosineSimilarity,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
    "root_mean_squared_error": RootMeanSquaredError, "r2_score": R2Score, "hinge": Hinge, "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
}
CLASSES = {cls.__name__: cls for cls in set(BY_NAME.values())}
