"""The device step of a Trainer (a base class of it, as ``BatchLoops`` and ``TrainerMetrics`` are): one batch's
forward, loss, backward and update, compiled (compiled_step.py) or eager, and the predictions of a batch.

``_step`` prepares a batch on the host (each output's targets through its loss's ``prepare_targets``), keys the
plan by all it depends on, and runs ``_device_step``: forward, Keras's loss (the sum over outputs of
``weight * loss``, plus the regularization penalties), backward and the optimizer's update. It returns the loss
and, between the loss and the gradients, the "extras": each tracked output's loss (when several outputs have
one), then each output's metric output (its predictions, the argmax hits the step counted, or None).
``trains_on_logits`` is THE one place that decides the fused logits path.
"""
import contextlib

import numpy as np

from .activations import name_of
from .autograd import enable_grad, no_grad
from .dropout_masks import MaskFeed, feeding
from .dtypes import checked_cast
from .layer_base import checked_on_host, noting_input_readers
from .layers import Activation, Dense
from .masks import masked_hits, with_mask_column
from .model_inputs import SampleArrays, input_arrays, input_key
from .tensor import Tensor

__all__ = ["TrainerStep"]


def _on_logits(loss, layer):
    """Whether ``loss`` takes the logits of the output ``layer`` computes (see ``Trainer.trains_on_logits``)."""
    wanted = getattr(loss, "logits_activation", None)
    if wanted is None or getattr(loss, "from_logits", True) or layer is None:
        return False
    if layer.activity_regularizer is not None:      # it penalises the activated output: compute it
        return False
    return isinstance(layer, (Dense, Activation)) and name_of(layer.activation) == wanted


_UNSEEN = object()           # a key _mask_feed has not decided yet


def _learning_first(feed, defer):
    """``defer`` for a step with dropout masks: also run eagerly while ``feed`` learns which masks a step draws
    (the first step of its key draws them inside, which a plan would freeze)."""
    if feed is None:
        return defer
    return lambda: feed.spec is None or (defer() if callable(defer) else defer)


def _frozen(weights, trainable):
    """The weights that would get a gradient but are not trained (a layer or nested model set trainable=False)."""
    trained = {id(weight) for weight in trainable}
    return [weight for weight in weights if weight.requires_grad and id(weight) not in trained]


@contextlib.contextmanager
def _without_gradients(frozen):
    """No gradient for ``frozen`` during the step, as Keras computes none for them: backward would otherwise
    compute and keep adding up gradients nobody reads (and a compiled step would refuse that stale sum)."""
    for weight in frozen:
        weight.requires_grad = False
    try:
        yield
    finally:
        for weight in frozen:
            weight.requires_grad = True


class TrainerStep:
    """The step half of a Trainer: needs its ``_heads``, ``_layers``, ``_output_layers``, ``_output_shapes()``,
    ``_forward``, ``optimizer``, ``_compiler`` and the weights."""

    def trains_on_logits(self):
        """THE one place that decides the logits path: True when the loss takes the last layer's logits (a list,
        one per output, for a model with several outputs).

        That is when the output layer's activation is the loss's ``logits_activation`` (softmax with
        (sparse) categorical cross-entropy, sigmoid with binary cross-entropy) and the loss was not
        made with from_logits=True. The step then stops the last layer at its logits
        (``return_logits``) and calls ``loss.on_logits``: one fused, stable op.
        """
        flags = self._logits_flags()
        return flags[0] if len(flags) == 1 else flags

    def _logits_flags(self):
        """``trains_on_logits`` per output, as a list."""
        return [_on_logits(head.loss, layer) for head, layer in zip(self._heads, self._output_layers)]

    def _tensor(self, array):
        """A prepared batch of inputs as a Tensor of the model's input dtype on the model's device (a list of
        Tensors, one per input, for SampleArrays: prepare_inputs cast them)."""
        backend = self._backend_of_model()
        if isinstance(array, SampleArrays):
            return [Tensor._make(backend.from_numpy(part), backend) for part in array.arrays]
        return Tensor._make(backend.from_numpy(checked_cast(array, self.input_dtype, "the batch")), backend)

    def _step(self, x_batch, y_batch, training, w_batch=None, on_device=False):
        """One batch's (loss, extras, compared): the loss as a float; ``extras`` (each tracked output's loss, then
        each output's metric output) and ``compared`` as ``_record`` takes them (a metric output is the
        predictions as a numpy array, or None without metrics; or the hits the step counted among ``compared``
        rows). ``on_device``: the device's own arrays instead (the plan's, overwritten by its next step), read
        later.

        The host prepares the batch (inputs cast, targets checked by the loss) and uploads it; the device
        part (forward, loss, backward, the metrics' activation or hits) is one compiled step or runs eagerly;
        the optimizer then applies the gradients. Both paths make the same primitive calls.
        """
        if self._learnt_readers:
            self._check_learnt_readers(x_batch)
        x = self._tensor(x_batch)
        first = x[0] if isinstance(x, list) else x          # (a model with several inputs has a list)
        backend = first.backend
        targets = y_batch.arrays if isinstance(y_batch, SampleArrays) else [y_batch]
        weights = w_batch.arrays if isinstance(w_batch, SampleArrays) else [w_batch] * len(self._heads)
        ys, ws, logits, kinds, compared, keys = zip(*[
            self._head_batch(head, layer, targets[head.position], weights[head.position],
                             known_output_shape(shape, np.shape(targets[head.position]), len(y_batch)), first)
            for head, layer, shape in zip(self._heads, self._output_layers, self._output_shapes())])
        trainable = self.trainable_weights
        key = ("train" if training else "test", *input_key(x), keys, first.device, self._structure_key(trainable))
        inputs = input_arrays(x) + [t._data for t in ys + ws if t is not None]
        replayed = self._replayed(key, inputs, training)
        if replayed is not None:                # the hot path: a verified plan, no dropout masks, nothing to note
            loss, *extras = replayed
            return self._step_results(backend, loss, extras, compared, on_device)
        # what a plan reads, and whether to wait for the optimizer's slots (made by the first step; making them
        # before it changes the order of the big allocations: thousands of page faults per MNIST-size step).
        # Functions, as a step that replays its plan needs neither.
        params = lambda: self.weights + ([s for _, _, s in self.optimizer.slot_variables()] if training else [])  # noqa
        defer = training and (lambda: not self.optimizer.has_slots_for(trainable))
        feed = self._compiler.mask_feeds.get(key, _UNSEEN) if training else None
        if feed is _UNSEEN:
            feed = self._mask_feed(key)
        if feed is not None:                # dropout: this step's masks are inputs too, drawn before it
            inputs += feed.prepare() if feed.learnt else []
            defer = _learning_first(feed, defer)
        def run():
            if training and self.optimizer.exchanges_gradients:
                return self._exchanging_step(key, x, ys, ws, inputs, logits, kinds, trainable, params, defer, feed)
            return self._compiler.run(key, backend, inputs, params,
                                      lambda: self._device_step(x, ys, training, logits, kinds, trainable, ws),
                                      self._capture_blocker(training, feed), live=self.optimizer if training else None,
                                      defer=defer)
        found = []
        with feeding(feed), self._noting_readers(key, x, found):
            loss, *extras = run()
        if feed is not None:
            feed.finish()
            if feed.unsteady:               # a plan captured from this step would replay other masks than it drew
                self._compiler.drop(key)
        if found:
            self._learn_readers(found, key)
        return self._step_results(backend, loss, extras, compared, on_device)

    def _replayed(self, key, inputs, training):
        """The step's outputs replayed from its verified plan (``StepCompiler.replay``), or None: the step then
        takes the full path (a first step, dropout masks to feed, a blocker, gradients to exchange)."""
        if training and self.optimizer.exchanges_gradients or self._capture_blocker(training) is not None:
            return None
        return self._compiler.replay(key, inputs)

    @staticmethod
    def _step_results(backend, loss, extras, compared, on_device):
        """What ``_step`` returns: the device's arrays with ``on_device``, else the loss as a float and the extras
        as numpy arrays."""
        if on_device:
            return loss, extras, compared
        to_host = backend.to_numpy
        return to_host(loss).reshape(()).item(), [None if e is None else to_host(e) for e in extras], compared

    def _head_batch(self, head, layer, host_targets, host_weights, shape, first):
        """One output's part of a step: (its targets as a Tensor on the device, or None without a loss; its weights
        as a Tensor or None; whether its loss takes the logits of ``layer``, the output's; its metric output:
        "hits", "predictions" or None; the rows whose hits the step counts, or None; what the step's plan depends
        on in all this). ``shape``: the batch's output shape."""
        if head.loss is None:
            kind = "predictions" if head.metrics or head.weighted else None
            return None, None, False, kind, None, (None, None, False, kind, False)
        logits = _on_logits(head.loss, layer)
        prepared = head.loss.prepare_targets(host_targets, shape, self.dtype)
        rows = self._hits_compared(head, prepared, shape)
        kind = "hits" if rows is not None else "predictions" if head.metrics or head.weighted else None
        y = Tensor._make(first.backend.from_numpy(prepared), first.backend)     # prepare_targets made its dtype
        w = None if host_weights is None else Tensor(host_weights, dtype=self.dtype, device=first.device)
        return y, w, logits, kind, rows, (y.shape, y.dtype.str, logits, kind, w is not None)

    def _extras_count(self):
        """How many arrays a device step returns between its loss and its gradients (see ``_step``)."""
        return len(self._trackers) + len(self._heads)

    def _noting_readers(self, key, x, found):
        """The context in which a step of ``key`` notes into ``found`` the layers that read an input back to check
        it (``layer_base.noting_input_readers``); none for a step that replays its plan, which reads nothing back."""
        if self._compiler.replays(key):
            return contextlib.nullcontext()
        return noting_input_readers(x if isinstance(x, list) else [x], found)

    def _mask_feed(self, key):
        """The MaskFeed of the training steps of ``key`` when a layer draws dropout masks in training, else None;
        decided on the key's first step and kept (the key holds the model's layers)."""
        feed = MaskFeed() if any(layer.draws_dropout_masks(True) for layer in self._layers) else None
        self._compiler.mask_feeds[key] = feed
        return feed

    def _exchanging_step(self, key, x, ys, ws, inputs, logits, kinds, trainable, params, defer, feed=None):
        """A step whose optimizer exchanges gradients on the host (DistributedOptimizer averages them): a plan for
        loss, metric outputs and gradients, the exchange, a plan for the update; each compiles as a step would.
        Returns [loss, *extras]."""
        backend = self._backend_of_model()
        results = self._compiler.run(
            ("train-gradients",) + key[1:], backend, inputs, self.weights,
            lambda: self._device_gradients(x, ys, True, logits, kinds, trainable, ws),
            self._capture_blocker(True, feed), defer=_learning_first(feed, False))
        count = 1 + self._extras_count()
        grads = self.optimizer.exchange_gradients(backend, results[count:])
        self._compiler.run(("train-update",) + key[1:], backend, [g for g in grads if g is not None], params,
                           lambda: self._device_update(trainable, grads), live=self.optimizer, defer=defer)
        return results[:count]

    def _device_step(self, x, ys, training, logits, kinds, trainable, ws=None):
        """The device part of a step, eagerly: forward, loss, and when training backward, the optimizer's
        gradient exchange (the identity unless it is distributed) and its update. Returns [loss, *extras]
        (arrays; see ``_device_gradients``)."""
        results = self._device_gradients(x, ys, training, logits, kinds, trainable, ws)
        count = 1 + self._extras_count()
        if training:
            backend = self._backend_of_model()
            self._device_update(trainable, self.optimizer.exchange_gradients(backend, results[count:]))
        return results[:count]

    def _device_gradients(self, x, ys, training, logits, kinds, trainable, ws=None):
        """Forward, loss and (training) backward: [loss, *extras, *one gradient array or None per trainable weight
        (training only)]. Per output (lists): ``ys`` the prepared targets (None: no loss), ``ws`` the weights,
        ``logits`` whether the loss takes the logits, ``kinds`` the metric output: "predictions" (the logits when
        every metric depends only on their argmax), "hits" (their count against the targets:
        ``Backend.argmax_matches``) or None. The extras: each tracked output's loss, then each metric output."""
        for weight in trainable:                        # each step's gradients are its own, as in Keras
            weight.zero_grad()
        ws = ws or [None] * len(ys)
        frozen = _frozen(self.weights, trainable) if training else ()
        with (enable_grad() if training else no_grad()), checked_on_host(self._host_checked(x)), \
                _without_gradients(frozen):
            penalties = [penalty for layer in self._layers for penalty in layer.regularization_losses()]
            out = self._forward(x, training=training, return_logits=logits[0] if len(logits) == 1 else logits,
                                penalties=penalties)
            outs = out if len(self._heads) > 1 else [out]
            loss, tracked = self._total_loss(outs, ys, ws, logits)
            for penalty in penalties:                   # Keras adds the regularizers' penalties to the loss
                loss = loss + penalty.astype(loss.dtype)
            if training and loss.requires_grad:         # a model without trainable weights has nothing to do
                loss.backward()
        outputs = [self._metric_output(head, out, y, kind, flag)
                   for head, out, y, kind, flag in zip(self._heads, outs, ys, kinds, logits)]
        grads = []
        if training:
            grads = [None if weight.grad is None else weight.grad._data for weight in trainable]
            for weight in trainable:
                weight.zero_grad()
        return [loss._data, *[value._data for value in tracked], *outputs, *grads]

    def _total_loss(self, outs, ys, ws, logits):
        """Keras's loss of a step: the sum over the outputs with a loss of ``weight * loss`` (the loss alone when it
        has no weight). Returns it and the unweighted losses of the tracked outputs (Tensors)."""
        total, tracked = None, []
        for head, out, y, w, flag in zip(self._heads, outs, ys, ws, logits):
            if head.loss is None:
                continue
            mask = out._keras_mask
            value = head.loss.from_prepared(y, out, flag, weights=w) if mask is None else \
                head.loss.from_masked(y, out, flag, w, mask)
            if head.tracker is not None:
                tracked.append(value)
            weighted = value if head.weight is None else value * head.weight
            total = weighted if total is None else total + weighted
        return total, tracked

    def _metric_output(self, head, out, y, kind, logits):
        """What one output's metrics need from the device (see ``_device_gradients``). An output that carries
        Keras's mask (``head.masked``, which a plan keeps as it was captured) weights its metrics by it:
        masked_hits' [hits, kept] instead of the hits, or the predictions with the mask as one more last column."""
        mask = out._keras_mask
        head.masked = mask is not None and kind is not None
        if kind == "hits":                      # argmax hits: the logits' argmax is the activation's
            if head.masked:
                return masked_hits(out, y, mask)._data
            return y.backend.argmax_matches(out._data, y._data)
        if kind != "predictions":
            return None
        with no_grad():
            if logits and not all(m.accepts_logits for m in head.all_metrics):
                out = self._output_layers[head.position].activation(out)
            if head.masked:
                return with_mask_column(out, mask)._data
            return out._data

    def _device_update(self, trainable, grads):
        """The optimizer's update from the step's gradient arrays, then the layers' weight constraints. Returns []."""
        self.optimizer.apply_prepared(trainable, grads)
        with no_grad():
            for layer in self._layers:          # weight constraints after the update, as Keras applies them
                layer.apply_constraints()
        return []

    def _predict_batch(self, x_batch):
        """The model's outputs for one prepared batch, as a numpy array (a list of them for several outputs; a
        compiled step when it can be)."""
        self._check_learnt_readers(x_batch)
        x = self._tensor(x_batch)
        first = x[0] if isinstance(x, list) else x          # (a model with several inputs has a list)
        backend = first.backend
        several = len(self._output_shapes()) > 1

        def eager():
            with no_grad(), checked_on_host(self._host_checked(x)):
                out = self._forward(x)
                return [value._data for value in (out if several else [out])]
        key = ("predict", *input_key(x), first.device, self._structure_key())
        found = []
        with self._noting_readers(key, x, found):
            outs = self._compiler.run(key, backend, input_arrays(x), self.weights, eager, self._capture_blocker(False))
        if found:
            self._learn_readers(found, key)
        outs = [backend.to_numpy(out) for out in outs]
        return outs if several else outs[0]

    def _structure_key(self, trainable=None):
        """What a plan depends on in the model itself: its layers, their activations, and the weights' identity."""
        trainable = self.trainable_weights if trainable is None else trainable
        return (tuple([(id(layer), id(getattr(layer, "activation", None)), layer.trainable) for layer in self._layers]),
                tuple(map(id, trainable)), id(self.optimizer))

    def _capture_blocker(self, training, feed=None):
        """The first layer's reason why this step cannot be compiled (or the mask feed's), or None."""
        if feed is not None and feed.blocker() is not None:
            return feed.blocker()
        for layer in self._layers:
            reason = layer.capture_blocker(training)
            if reason is not None:
                return reason
        return None


def known_output_shape(output_shape, targets_shape, count):
    """An output's shape for a batch of ``count`` samples, as far as its targets (of ``targets_shape``; () for
    none) can be checked against it: every axis the output knows; an axis of unknown size (a sequence of any
    length, Input(shape=(None, 5))) takes the targets' size there, and the loss then meets the predictions'."""
    sizes = [size if size is not None or axis >= len(targets_shape) else targets_shape[axis]
             for axis, size in enumerate(output_shape)]
    return (count, *sizes[1:])
