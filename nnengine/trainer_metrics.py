"""The metrics' bookkeeping of a Trainer (a base class of it, as ``BatchLoops`` is): the metric objects built
from compile's specs once the shapes are known, the loss's running mean, what each step adds to them
(the predictions, or the hits the step counted itself), the logs in Keras 3's order and evaluate's list.
"""
import numpy as np

from . import metrics as metrics_module

__all__ = ["TrainerMetrics"]

#: the modules whose losses' prepare_targets only cast and reshape y (the step may count hits on its targets)
_VALUE_KEEPING_TARGETS = ("nnengine.loss_base", "nnengine.losses")


def _metric_name(spec):
    """The log key of a compiled metric: its name, the string given, a class's default name or a function's name."""
    if isinstance(spec, metrics_module.Metric):
        return spec.name
    if isinstance(spec, str):
        return spec
    return spec().name if isinstance(spec, type) else getattr(spec, "__name__", type(spec).__name__)


class TrainerMetrics:
    """The metrics half of a Trainer: needs its ``_metrics``, ``_metric_specs``, ``_loss_tracker``, ``loss`` and
    ``output_shape``."""

    def _resolve_metrics(self, y_shape):
        """Build the metric objects once the target and output shapes are known ('accuracy' needs them)."""
        if not self._metrics and self._metric_specs:
            self._metrics = [metrics_module.get(spec, y_shape, self.output_shape) for spec in self._metric_specs]

    @property
    def metrics_names(self):
        """'loss' then each compiled metric's name (the order of evaluate's list)."""
        return ["loss", *[_metric_name(m) for m in (self._metrics or self._metric_specs)]]

    def _hits_compared(self, targets, shape):
        """How many rows the step compares when it counts its metrics' hits itself, else None (the host computes
        the metrics from the predictions). It does when every metric is a share of argmax hits
        (``metrics.argmax_hits_kind``) and the loss's prepared ``targets`` are the classes those hits need, with
        the values of y (the losses of this package only cast and reshape y in ``prepare_targets``). ``shape``:
        the predictions'."""
        kind = metrics_module.argmax_hits_kind(self._metrics)
        if kind is None or type(self.loss).prepare_targets.__module__ not in _VALUE_KEEPING_TARGETS:
            return None
        if len(shape) < 2 or not shape[-1]:
            return None
        if kind == "labels" and targets.dtype == np.int64 and targets.shape == shape[:-1]:
            return targets.size
        if kind == "rows" and targets.dtype.kind == "f" and targets.shape == shape:
            return targets.size // shape[-1]
        return None

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for metric in self._metrics:
            metric.reset_state()

    def _record(self, loss_value, y_batch, output, compared=None):
        """Add one batch to the loss and the metrics: ``output`` is the predictions, or with ``compared`` the
        number of hits the step counted among that many rows (``_hits_compared``)."""
        self._loss_tracker.add(loss_value, len(y_batch))
        if compared is not None:
            hits = int(output)
            for metric in self._metrics:
                metric.add_hits(hits, compared)
            return
        for metric in self._metrics:
            metric.update_state(y_batch, output)

    def _logs(self):
        """Running results keyed by name, sorted as Keras 3 orders its logs."""
        values = {"loss": self._loss_tracker.result(), **{m.name: m.result() for m in self._metrics}}
        return dict(sorted(values.items()))

    def _ordered(self, logs):
        """evaluate's list: loss, then the metrics in compile order; a float when there are no metrics."""
        results = [logs["loss"], *[logs[m.name] for m in self._metrics]]
        return results[0] if len(results) == 1 else results
