"""What compile() trains on each output of a model: one ``Head`` per output, with its loss, loss weight and
metrics, read from compile()'s arguments as Keras 3 reads them.

A model with one output has one head: any ``loss``, a ``loss_weights`` number, and ``metrics`` as a list (the
log keys are the metrics' names: 'accuracy'). A functional model with several outputs (``Model(x, [a, b])``)
has one head per output, named after the layer that computes it (Keras's ``output_names``), and takes:

* ``loss``: one loss for every output, a list with one per output, or a dict by output name naming every
  output (Keras 3.15 refuses a dict that leaves one out); a ``None`` entry leaves that output without a loss;
* ``loss_weights``: a list with one number per output, or a dict by output name;
* ``metrics``: a list with one entry per output (a metric, a list of them, or None), or a dict by output name
  (outputs it does not name get none).
* ``weighted_metrics``: as ``metrics``; they are updated with the samples' weights (the loss's), and one whose
  key is taken logs as 'weighted_<name>'.

The loss that training minimises is Keras's: the sum over outputs of ``weight * loss`` (plus the layers'
regularization penalties). With more than one loss, each output's own loss (unweighted) is logged too, as
``<output>_loss``, and each metric as ``<output>_<metric>``; a name met twice gets '_1', '_2', as in Keras.
"""
import math
import numbers

from . import losses as losses_module
from . import metrics as metrics_module
from .model_inputs import by_name

__all__ = ["Head", "compile_heads", "by_output_name", "metric_keys", "metric_objects", "evaluate_order", "metric_name"]


class Head:
    """One output of a compiled model: its position among the outputs, its name (None for a model's only output),
    its loss (or None), the loss's weight (None: 1, and the loss is used as it is), the specs of its metrics and
    weighted metrics that compile got and, once ``resolve_metrics`` knows the shapes, the metric objects."""

    def __init__(self, position, name, loss, weight, metric_specs, weighted_specs=()):
        self.position, self.name, self.loss, self.weight = position, name, loss, weight
        self.metric_specs, self.weighted_specs = metric_specs, list(weighted_specs)
        self.metrics, self.weighted = [], []   # weighted: updated with the samples' weights, as the loss is
        self.tracker = None                     # the running mean of this output's loss, when several are logged
        self.hits_kind = None                   # what hits the step may count for its metrics (trainer_metrics.py)

    @property
    def needs_targets(self):
        """Whether the step needs this output's targets (for its loss or its metrics)."""
        return self.loss is not None or bool(self.metric_specs) or bool(self.weighted_specs)

    @property
    def all_metrics(self):
        """Its metric objects, then its weighted ones."""
        return self.metrics + self.weighted

    def log_key(self, metric_name):
        """The log key of one of this head's metrics: 'accuracy', or '<output>_accuracy' with several outputs."""
        return metric_name if self.name is None else f"{self.name}_{metric_name}"

    def resolve_metrics(self, y_shape, output_shape):
        """Make the metric objects once the target and output shapes are known ('accuracy' needs them)."""
        if not self.metrics and self.metric_specs:
            self.metrics = [metrics_module.get(spec, y_shape, output_shape) for spec in self.metric_specs]
        if not self.weighted and self.weighted_specs:
            self.weighted = [metrics_module.get(spec, y_shape, output_shape) for spec in self.weighted_specs]


def compile_heads(output_names, loss, loss_weights, metrics, weighted_metrics=None):
    """One Head per output from compile()'s ``loss``, ``loss_weights``, ``metrics`` and ``weighted_metrics`` (in the
    forms of ``metrics``; see the module docstring).
    ``output_names``: the model's, one per output. ValueError or TypeError naming the argument that does not fit
    the outputs; unknown loss and metric names fail here, not in the middle of fit."""
    if len(set(output_names)) < len(output_names):
        raise ValueError(f"compile: the outputs {output_names} share a name (several outputs of one layer, such as "
                         "a recurrent layer's states): a model trained on them needs each output from a layer of its "
                         "own (an Identity layer will do)")
    single = len(output_names) == 1
    losses = _per_output("loss", loss, output_names, every=True)
    weights = _loss_weights(loss_weights, output_names)
    specs = _metric_specs("metrics", metrics, output_names)
    weighted = _metric_specs("weighted_metrics", weighted_metrics, output_names)
    heads = [Head(position, None if single else name, None if lost is None else losses_module.get(lost),
                  weights[position], specs[position], weighted[position])
             for position, (name, lost) in enumerate(zip(output_names, losses))]
    for head in heads:
        for spec in head.metric_specs + head.weighted_specs:
            metrics_module.get(spec)
    if sum(head.loss is not None for head in heads) > 1:      # Keras logs each output's loss when there are several
        for head in heads:
            if head.loss is not None:
                head.tracker = metrics_module.Mean(f"{head.name}_loss")
    return heads


def _per_output(what, value, output_names, every):
    """``value`` spread over the outputs: the same for each (not a list or dict, or a loss's config dict), a list
    with one item per output, or a dict by output name (naming each output when ``every``; the others get None)."""
    if isinstance(value, (list, tuple)) and len(value) == 1 == len(output_names):
        return [value[0]]
    if isinstance(value, (list, tuple)) or by_output_name(value):
        return by_name("compile", what, value, output_names, "outputs", None if every else [], "entries")
    return [value] * len(output_names)


def by_output_name(value):
    """Whether ``value`` of compile (or of a file's compile config) is a dict by output name: a dict that is not a
    loss's or metric's own config (which names its ``class_name``)."""
    return isinstance(value, dict) and "class_name" not in value


def _loss_weights(loss_weights, output_names):
    """One float (or None) per output; a number is accepted for a model with one output, as in Keras."""
    if loss_weights is None:
        return [None] * len(output_names)
    if len(output_names) > 1 and not isinstance(loss_weights, (list, tuple, dict)):
        raise ValueError(f"compile: loss_weights must be a list or a dict by output name for a model with "
                         f"{len(output_names)} outputs {output_names}, got {loss_weights!r:.80}")
    weights = _per_output("loss_weights", loss_weights, output_names, every=True)
    for name, weight in zip(output_names, weights):
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
            raise TypeError(f"compile: loss_weights of output {name!r} must be a finite number, got {weight!r:.80}")
    return [float(weight) for weight in weights]


def _metric_specs(what, metrics, output_names):
    """The metric specs of each output: all of a flat list for a model's only output; otherwise one entry per
    output (Keras refuses a flat list that does not have one), or a dict by output name."""
    if metrics is None:
        return [[] for _ in output_names]
    if not isinstance(metrics, (list, tuple, dict)):
        raise TypeError(f"compile: {what} must be a list or a dict, got {type(metrics).__name__}")
    if len(output_names) == 1:
        return [_flat(metrics.values() if isinstance(metrics, dict) else metrics)]
    try:
        entries = _per_output(what, metrics, output_names, every=False)
    except ValueError as error:
        raise ValueError(f"{error}. With several outputs, {what} is a list with one entry per output (a metric, "
                         "a list of them, or None) or a dict by output name, as Keras requires") from None
    return [_flat([] if entry is None else entry if isinstance(entry, (list, tuple)) else [entry])
            for entry in entries]


def _flat(items):
    flat = []
    for item in items:
        flat.extend(_flat(item) if isinstance(item, (list, tuple)) else [item])
    return flat


def metric_keys(heads):
    """The log key of each metric of ``heads``, in the order of ``metric_objects``, as Keras 3 names them:
    '<output>_<name>' (the name alone for a model's only output); a weighted metric whose key is taken gets
    '<output>_weighted_<name>'; a key still taken gets '_1', '_2'. Before the shapes are known, the keys the
    specs will give."""
    keys, seen = [], {}
    for weighted, head, metric in _each_metric(heads):
        key = head.log_key(metric_name(metric))
        if weighted and key in seen:
            key = head.log_key(f"weighted_{metric_name(metric)}")
        count = seen.get(key, 0)
        seen[key] = count + 1
        keys.append(key if count == 0 else f"{key}_{count}")
    return keys


def metric_objects(heads):
    """Every resolved metric object: each output's metrics, then each output's weighted metrics (Keras's order, the
    order of ``metric_keys``)."""
    return [metric for _, _, metric in _each_metric(heads, resolved=True)]


def _each_metric(heads, resolved=False):
    for weighted in (False, True):
        for head in heads:
            objects = head.weighted if weighted else head.metrics
            specs = head.weighted_specs if weighted else head.metric_specs
            for metric in (objects if resolved else objects or specs):
                yield weighted, head, metric


def evaluate_order(heads):
    """The log keys in the order of evaluate's list, by Keras 3's rule: first the keys among 'loss', each metric's
    own name (its key for a model's only output) and each tracked output's loss, in that order (a name met
    twice is listed twice, as Keras 3 lists it); then the other keys, sorted."""
    trackers = [head.tracker.name for head in heads if head.tracker is not None]
    present = {"loss", *trackers, *metric_keys(heads)}
    names = ["loss", *[metric_name(metric) for _, _, metric in _each_metric(heads)], *trackers]
    first = [name for name in names if name in present]
    return first + sorted(present - set(first))


def metric_name(spec):
    """A metric's name: a Metric's own, the string given, a class's default name or a function's name."""
    if isinstance(spec, metrics_module.Metric):
        return spec.name
    if isinstance(spec, str):
        return spec
    return spec().name if isinstance(spec, type) else getattr(spec, "__name__", type(spec).__name__)
