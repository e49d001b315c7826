"""Keras 3's correlation metrics: PearsonCorrelation and ConcordanceCorrelation, per sample along ``axis`` and
averaged over the samples of an epoch (as any MeanMetricWrapper).

For targets t and predictions p along ``axis`` (the features of each sample by default; for targets of one value
per sample, along the batch, one value per batch):

    pearson     = mean((t - mean t) / std(t) * (p - mean p) / std(p))
    concordance = mean(2 (t - mean p)(p - mean p) / (var t + var p + (mean t - mean p)^2 + 1e-7))

The concordance is Keras 3.15's formula, whose covariance term centres the targets on the predictions' mean
(Lin's coefficient centres them on their own mean); nnengine follows Keras so that the logs agree. Where a
standard deviation is 0 (a constant row), Pearson's division gives 0 here, where Keras's gives NaN.
"""
import numpy as np

from . import arguments
from .metric_base import MeanMetricWrapper, match_rank
from .utils import to_host

__all__ = ["PearsonCorrelation", "ConcordanceCorrelation", "pearson_correlation", "concordance_correlation"]


def _aligned(y_true, y_pred):
    y_pred = np.asarray(to_host(y_pred), np.float64)
    return match_rank(np.asarray(to_host(y_true), np.float64), y_pred), y_pred


def _standardized(x, axis):
    """(x - mean) / std along ``axis``, 0 where the std is 0."""
    centred = x - x.mean(axis=axis, keepdims=True)
    spread = centred.std(axis=axis, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson's correlation of targets and predictions along ``axis`` (numpy arrays in, one value per row out)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return np.mean(_standardized(y_true, axis) * _standardized(y_pred, axis), axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Keras 3.15's concordance correlation along ``axis`` (see the module's docstring for its formula)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    true_mean, pred_mean = y_true.mean(axis=axis, keepdims=True), y_pred.mean(axis=axis, keepdims=True)
    true_var, pred_var = y_true.var(axis=axis, keepdims=True), y_pred.var(axis=axis, keepdims=True)
    covariance = (y_true - pred_mean) * (y_pred - pred_mean)
    norm = true_var + pred_var + (true_mean - pred_mean) ** 2
    return np.mean(2 * covariance / (norm + 1e-7), axis=axis)


class _Correlation(MeanMetricWrapper):
    """The mean over samples (or batches) of a correlation along ``axis``."""

    function = None

    def __init__(self, name, axis):
        self.axis = arguments.integer(type(self).__name__, "axis", axis)
        function = type(self).function
        super().__init__(lambda y_true, y_pred: function(y_true, y_pred, self.axis), name)

    def get_config(self):
        """Keras 3's config."""
        return {"name": self.name, "axis": self.axis}


class PearsonCorrelation(_Correlation):
    """Pearson's correlation coefficient of targets and predictions along ``axis``, averaged over samples."""

    function = staticmethod(pearson_correlation)

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(name, axis)


class ConcordanceCorrelation(_Correlation):
    """The concordance correlation coefficient (Keras 3.15's formula) along ``axis``, averaged over samples."""

    function = staticmethod(concordance_correlation)

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(name, axis)
