"""The metrics' bookkeeping of a Trainer (a base class of it, as ``BatchLoops`` is): the metric objects built
from compile's specs once the shapes are known, the loss's running mean, what each step adds to them
(the predictions, or the hits the step counted itself), the logs in Keras 3's order and evaluate's list.
"""
import numpy as np

from . import metrics as metrics_module
from .masks import metric_weights
from .model_inputs import SampleArrays
from .output_heads import evaluate_order, metric_keys, metric_objects

__all__ = ["TrainerMetrics"]

#: the modules whose losses' prepare_targets only cast and reshape y (the step may count hits on its targets)
_VALUE_KEEPING_TARGETS = ("nnengine.loss_base", "nnengine.losses")


def _hits_kind(head):
    """The kind of argmax hits the step may count for ``head`` ("rows", "labels"; see ``metrics.argmax_hits_kind``),
    or None: every metric must count them, none be weighted (a weighted share is not a count), and the loss's
    ``prepare_targets`` must keep the values of y (the losses of this package only cast and reshape y)."""
    if head.weighted or head.loss is None or type(head.loss).prepare_targets.__module__ not in _VALUE_KEEPING_TARGETS:
        return None
    return metrics_module.argmax_hits_kind(head.metrics)


class TrainerMetrics:
    """The metrics half of a Trainer: needs its ``_heads`` (output_heads.py), ``_loss_tracker`` and
    ``_output_shapes()``. A step's results for the metrics, as ``_step`` returns them: ``extras``, each tracked
    head's loss then each head's metric output; ``compared``, per head, the rows whose hits it counted (or None)."""

    @property
    def _metrics(self):
        """Every compiled metric object: each output's metrics, then each output's weighted metrics (empty before
        the shapes are known)."""
        return metric_objects(self._heads)

    def _resolve_metrics(self, y):
        """Build the metric objects once the target and output shapes are known ('accuracy' needs them). ``y``: the
        prepared targets (an array, or a SampleArrays with one array per output)."""
        if not self._metrics_pending:
            return                              # (each batch of fit asks)
        targets = y.arrays if isinstance(y, SampleArrays) else [y]
        for head, shape in zip(self._heads, self._output_shapes()):
            if targets[head.position] is not None:
                head.resolve_metrics(targets[head.position].shape, shape)
        self._name_logs()

    def _forget_metrics(self):
        """Drop the metric objects (the output shape changed: 'accuracy' is resolved again)."""
        for head in self._heads:
            head.metrics, head.weighted = [], []
        self._name_logs()

    def _name_logs(self):
        """Name what the logs hold, once per compile and resolution (each batch reads it): the tracked outputs'
        loss trackers, (key, metric) of each metric object, and the keys in evaluate's order."""
        self._trackers = [head.tracker for head in self._heads if head.tracker is not None]
        self._logged_metrics = list(zip(metric_keys(self._heads), self._metrics))
        self._key_order = evaluate_order(self._heads)
        for head in self._heads:
            head.hits_kind = _hits_kind(head)
        self._metrics_pending = any(head.metric_specs and not head.metrics or head.weighted_specs and not head.weighted
                                    for head in self._heads)

    @property
    def metrics_names(self):
        """The keys of evaluate's list, in its order: 'loss', each output's loss (several outputs), the metrics."""
        return list(self._key_order)

    def _hits_compared(self, head, targets, shape):
        """How many rows the step compares when it counts ``head``'s metric hits itself, else None (the host
        computes the metrics from the predictions). It does when every metric is a share of argmax hits
        (``metrics.argmax_hits_kind``) and the loss's prepared ``targets`` are the classes those hits need, with
        the values of y (the losses of this package only cast and reshape y in ``prepare_targets``). ``shape``:
        the predictions'."""
        kind = head.hits_kind
        if kind is None or len(shape) < 2 or not shape[-1]:
            return None
        if kind == "labels" and targets.dtype == np.int64 and targets.shape == shape[:-1]:
            return targets.size
        if kind == "rows" and targets.dtype.kind == "f" and targets.shape == shape:
            return targets.size // shape[-1]
        return None

    def reset_metrics(self):
        """Keras's ``model.reset_metrics()``: every metric, and the loss's running mean, back to their start."""
        self._require_compiled("reset_metrics")
        self._reset_metrics()

    def get_metrics_result(self):
        """Keras's ``model.get_metrics_result()``: the loss's and each metric's current result (floats, by name, as
        the logs hold them). Before the first batch the metrics are not built (their kind depends on the data), a
        ValueError as in Keras."""
        self._require_compiled("get_metrics_result")
        if self._metrics_pending:
            raise ValueError("get_metrics_result: the metrics are built at the first batch of fit, evaluate or "
                             "*_on_batch (their kind depends on the data's shapes); run one first")
        return self._logs()

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for tracker in self._trackers:
            tracker.reset_state()
        for _, metric in self._logged_metrics:
            metric.reset_state()

    def _record(self, loss_value, y_batch, extras, compared, w_batch=None):
        """Add one batch to the losses and the metrics (``extras`` and ``compared``: see the class docstring; host
        arrays). ``w_batch``: the batch's sample weights (an array, or a SampleArrays per output), which the
        weighted metrics take."""
        count = len(y_batch)
        self._loss_tracker.add(loss_value, count)
        trackers = self._trackers
        if trackers:
            for tracker, value in zip(trackers, extras):
                tracker.add(float(np.asarray(value).reshape(())), count)
            extras = extras[len(trackers):]
        for head, output, hits_of in zip(self._heads, extras, compared):
            masked = getattr(head, "masked", False)         # the output carried Keras's mask (trainer_step)
            if hits_of is not None:
                hits, hits_of = (int(output[0]), float(output[1])) if masked else (int(output), hits_of)
                for metric in head.metrics:
                    metric.add_hits(hits, hits_of)
            elif head.metrics or head.weighted:
                targets = y_batch.arrays[head.position] if isinstance(y_batch, SampleArrays) else y_batch
                weights = w_batch.arrays[head.position] if isinstance(w_batch, SampleArrays) else w_batch
                kept = None
                if masked:                                  # the mask weighs every metric, times sample weights
                    output, kept, weights = metric_weights(output, weights)
                for metric in head.metrics:
                    metric.update_state(targets, output, sample_weight=kept)
                for metric in head.weighted:
                    metric.update_state(targets, output, sample_weight=weights)

    def _logs(self):
        """Running results keyed by name, sorted as Keras 3 orders its logs."""
        values = {"loss": self._loss_tracker.result()}
        values.update({tracker.name: tracker.result() for tracker in self._trackers})
        values.update({key: metric.result() for key, metric in self._logged_metrics})
        return dict(sorted(values.items()))

    def _ordered(self, logs):
        """evaluate's list (``metrics_names``'s order); a float when it holds the loss alone."""
        results = [logs[key] for key in self._key_order if key in logs]
        return results[0] if len(results) == 1 else results
