"""The training loop of a Keras model: compile, fit, evaluate, predict and the *_on_batch methods.

``Trainer`` is a base class of ``Sequential`` (as Keras 3's ``Model`` inherits from its
``Trainer``): the model keeps its structure and config (models.py), this module owns the
step, the loop over batches and epochs (with batch_loops.py) and callback dispatch; the
metrics' bookkeeping is trainer_metrics.py's.

What a Trainer needs from the model it is part of: ``_layers`` (the layers, each once),
``_output_layer`` (the one that computes the output), ``_input_layers``, ``_input_consumers()``,
``_forward(x, training, return_logits)``, ``_ensure_built(x)``, ``_check_input(x, method)``, ``output_shape``,
``dtype``, ``input_dtype`` and ``trainable_weights``.

Semantics follow Keras 3 (see docs/keras.md for the list):

* ``fit`` returns a ``History``; each epoch's ``loss`` is the batch-size-weighted
  mean of the per-batch losses, each measured before that batch's update.
* ``validation_split`` holds out the LAST fraction of x and y, before shuffling;
  ``validation_data`` takes precedence over it. ``shuffle=True`` reshuffles the
  training samples every epoch.
* ``evaluate`` returns ``[loss, *metrics]`` (a float when there are no metrics);
  ``predict`` runs in batches and returns a numpy array.
* Inputs may be numpy arrays or lists of any int or float dtype; they are cast
  to the model's input dtype (float32 unless its input or first layer says float64,
  or ``Input(dtype='int64')`` asks for integers).
* A softmax (sigmoid) output trained with (sparse) categorical (binary)
  cross-entropy runs as ONE fused, stable loss on the logits (``trains_on_logits``).
"""
import math
import warnings

import numpy as np

from . import arguments
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .activations import name_of
from .autograd import enable_grad, no_grad
from .batch_loops import BatchLoops, array_batches, batches
from .compiled_step import StepCompiler
from .data import is_batch_source
from .dtypes import checked_cast
from .layer_base import checked_on_host
from .layers import Activation, Dense
from .model_inputs import InputArrays, as_array, input_arrays, input_key, prepare_inputs
from .tensor import Tensor
from .trainer_metrics import TrainerMetrics
from .utils import global_rng
from .weighting import sample_weights

__all__ = ["Trainer"]


def _no_y_with_batches(method, y, sample_weight):
    if y is not None or sample_weight is not None:
        raise ValueError(f"{method}: when x is a generator or PyDataset its batches carry the targets (and "
                         "weights); y and sample_weight must be None")


def _check_callbacks(method, callbacks):
    return arguments.sequence_of(method, "callbacks", callbacks, callbacks_module.Callback, "callback",
                                 "callbacks=[EarlyStopping()]")


class Trainer(BatchLoops, TrainerMetrics):
    """The training half of a Keras model (see the module docstring)."""

    def _init_training_state(self):
        """Uncompiled: no optimizer, loss or metrics yet."""
        self.optimizer = self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compile_config = {}
        self._metrics = []
        self._metric_specs = []
        self._loss_tracker = metrics_module.Mean("loss")
        self._compiler = StepCompiler("auto")

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto"):
        """Set the optimizer, loss and metrics (names or objects, as Keras accepts them).

        ``jit_compile`` ("auto", True or False) and ``run_eagerly`` choose between compiled and eager
        steps as in Keras 3: see compiled_step.py, and ``jit_report()`` for what was compiled.
        """
        arguments.unsupported("compile", loss_weights=loss_weights, weighted_metrics=weighted_metrics)
        run_eagerly = arguments.boolean("compile", "run_eagerly", run_eagerly)
        arguments.integer("compile", "steps_per_execution", steps_per_execution, minimum=1)   # same results
        if run_eagerly and jit_compile is True:
            raise ValueError("compile: run_eagerly=True and jit_compile=True contradict each other")
        compiler = StepCompiler(False if run_eagerly else jit_compile)
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = None if loss is None else losses_module.get(loss)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"compile: metrics must be a list, got {type(metrics).__name__}")
        self._metric_specs = list(metrics or [])
        for spec in self._metric_specs:       # unknown names fail here, not in the middle of fit
            metrics_module.get(spec)
        self._metrics = []
        self._compile_config = {"loss": loss, "metrics": metrics}
        self._compiler = compiler
        self.compiled = True

    def jit_report(self):
        """What the compiled steps did: mode, plans captured by kind, plans held, the last fallback's reason."""
        return self._compiler.report()

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before using the model: {method}() needs an optimizer "
                               "and a loss")
        if self.loss is None:
            raise ValueError(f"{method}: the model was compiled without a loss; pass compile(loss=...)")

    def trains_on_logits(self):
        """THE one place that decides the logits path: True when the loss takes the last layer's logits.

        That is when the output layer's activation is the loss's ``logits_activation`` (softmax with
        (sparse) categorical cross-entropy, sigmoid with binary cross-entropy) and the loss was not
        made with from_logits=True. The step then stops the last layer at its logits
        (``return_logits``) and calls ``loss.on_logits``: one fused, stable op.
        """
        wanted = getattr(self.loss, "logits_activation", None)
        if wanted is None or getattr(self.loss, "from_logits", True) or not self._layers:
            return False
        last = self._output_layer
        if last is None or last.activity_regularizer is not None:   # it penalises the activated output: compute it
            return False
        return isinstance(last, (Dense, Activation)) and name_of(last.activation) == wanted

    def _prepare_x(self, x, method):
        if len(self._input_layers) > 1:           # one array per input: a list, or a dict by input name
            x = prepare_inputs(x, self._input_layers, method)
            self._check_on_host(x.arrays)
            return x
        x = as_array(f"{method}: x", x)
        if len(x) == 0:
            raise ValueError(f"{method}: x is empty (0 samples)")
        if not self._layers:
            raise ValueError(f"{method}: the model has no layers")
        self._ensure_built(x)
        self._check_input(x, method)
        x = checked_cast(x, self.input_dtype, f"{method}: x")
        self._check_on_host([x])
        return x

    def _index_readers(self):
        """(input position, layer) for each layer that reads a model input and checks its values as indices (an
        Embedding: ``check_indices``)."""
        return [(position, layer) for position, layer in self._input_consumers() if hasattr(layer, "check_indices")]

    def _check_on_host(self, arrays):
        """Check, on the host, the input arrays that a layer reads directly and would otherwise check on the
        device's values (an Embedding's indices): the step then need not read them back, and can be compiled."""
        for position, layer in self._index_readers():
            layer.check_indices(arrays[position])

    def _host_checked(self, x):
        """The input Tensors of a step (a Tensor or a list) whose values ``_check_on_host`` checked."""
        tensors = x if isinstance(x, list) else [x]
        return [tensors[position] for position, _ in self._index_readers()]

    def _prepare_xy(self, x, y, method):
        x = self._prepare_x(x, method)
        if y is None:
            raise ValueError(f"{method}: y is required (targets for the loss)")
        y = as_array(f"{method}: y", y)
        if len(x) != len(y):
            raise ValueError(f"{method}: x and y must have the same number of samples, got {len(x)} and {len(y)}")
        self.loss.check_targets(y.shape, (len(y), *self.output_shape[1:]))
        if y.dtype.kind == "f" or not isinstance(self.loss, losses_module.SparseCategoricalCrossentropy):
            y = y.astype(self.dtype, copy=False)
        return x, y

    def _tensor(self, array):
        """A prepared batch of inputs as a Tensor of the model's input dtype on the model's device (a list of
        Tensors, one per input, for InputArrays: prepare_inputs cast them)."""
        backend = self._backend_of_model()
        if isinstance(array, InputArrays):
            return [Tensor._make(backend.from_numpy(part), backend) for part in array.arrays]
        return Tensor._make(backend.from_numpy(checked_cast(array, self.input_dtype, "the batch")), backend)

    def _step(self, x_batch, y_batch, training, w_batch=None, on_device=False):
        """One batch's (loss, metric output, compared): the loss as a float; the metric output and ``compared`` as
        ``_record`` takes them (the predictions as a numpy array, or None without metrics; or the hits the step
        counted among ``compared`` rows). ``on_device``: the device's own arrays instead (the plan's, overwritten
        by its next step), read later.

        The host prepares the batch (inputs cast, targets checked by the loss) and uploads it; the device
        part (forward, loss, backward, the metrics' activation or hits) is one compiled step or runs eagerly;
        the optimizer then applies the gradients. Both paths make the same primitive calls.
        """
        logits = self.trains_on_logits()
        x = self._tensor(x_batch)
        first = x[0] if isinstance(x, list) else x          # (a model with several inputs has a list)
        target_shape = (len(y_batch), *self.output_shape[1:])
        targets = self.loss.prepare_targets(y_batch, target_shape, self.dtype)
        compared = self._hits_compared(targets, target_shape)
        metric_output = "hits" if compared is not None else "predictions" if self._metrics else None
        y = Tensor._make(first.backend.from_numpy(targets), first.backend)     # prepare_targets made its dtype
        w = None if w_batch is None else Tensor(w_batch, dtype=self.dtype, device=first.device)
        trainable = self.trainable_weights
        key = ("train" if training else "test", *input_key(x), y.shape, y.dtype.str, first.device, logits,
               metric_output, w is not None, self._structure_key(trainable))
        # what a plan reads, and whether to wait for the optimizer's slots (made by the first step; making them
        # before it changes the order of the big allocations: thousands of page faults per MNIST-size step).
        # Functions, as a step that replays its plan needs neither.
        params = lambda: self.weights + ([s for _, _, s in self.optimizer.slot_variables()] if training else [])  # noqa
        defer = training and (lambda: not self.optimizer.has_slots_for(trainable))
        inputs = input_arrays(x) + [y._data] + ([] if w is None else [w._data])
        if training and self.optimizer.exchanges_gradients:
            loss, output = self._exchanging_step(key, x, y, w, inputs, logits, metric_output, trainable, params,
                                                 defer)
        else:
            loss, output = self._compiler.run(
                key, y.backend, inputs, params,
                lambda: self._device_step(x, y, training, logits, metric_output, trainable, w),
                self._capture_blocker(training), live=self.optimizer if training else None, defer=defer)
        if on_device:
            return loss, output, compared
        to_host = y.backend.to_numpy
        return to_host(loss).reshape(()).item(), (None if output is None else to_host(output)), compared

    def _exchanging_step(self, key, x, y, w, inputs, logits, metric_output, trainable, params, defer):
        """A step whose optimizer exchanges gradients on the host (DistributedOptimizer averages them): a plan for
        loss, predictions and gradients, the exchange, a plan for the update; each compiles as a step would."""
        loss, output, *grads = self._compiler.run(
            ("train-gradients",) + key[1:], y.backend, inputs, self.weights,
            lambda: self._device_gradients(x, y, True, logits, metric_output, trainable, w),
            self._capture_blocker(True))
        grads = self.optimizer.exchange_gradients(y.backend, grads)
        self._compiler.run(("train-update",) + key[1:], y.backend, [g for g in grads if g is not None], params,
                           lambda: self._device_update(trainable, grads), live=self.optimizer, defer=defer)
        return loss, output

    def _device_step(self, x, y, training, logits, metric_output, trainable, w=None):
        """The device part of a step, eagerly: forward, loss, and when training backward, the optimizer's
        gradient exchange (the identity unless it is distributed) and its update. Returns [loss, the metric
        output] (arrays; see ``_device_gradients``)."""
        loss, output, *grads = self._device_gradients(x, y, training, logits, metric_output, trainable, w)
        if training:
            self._device_update(trainable, self.optimizer.exchange_gradients(y.backend, grads))
        return [loss, output]

    def _device_gradients(self, x, y, training, logits, metric_output, trainable, w=None):
        """Forward, loss and (training) backward: [loss, metric output, *one gradient array or None per
        trainable weight (training only)]. The metric output is what ``metric_output`` names: "predictions"
        (the logits when every metric depends only on their argmax), "hits" (their count against the targets
        ``y``: ``Backend.argmax_matches``) or None."""
        for weight in trainable:                        # each step's gradients are its own, as in Keras
            weight.zero_grad()
        with (enable_grad() if training else no_grad()), checked_on_host(self._host_checked(x)):
            penalties = [penalty for layer in self._layers for penalty in layer.regularization_losses()]
            out = self._forward(x, training=training, return_logits=logits, penalties=penalties)
            loss = self.loss.from_prepared(y, out, logits, weights=w)
            for penalty in penalties:                   # Keras adds the regularizers' penalties to the loss
                loss = loss + penalty.astype(loss.dtype)
            if training and loss.requires_grad:         # a model without trainable weights has nothing to do
                loss.backward()
        output = None
        if metric_output == "hits":             # argmax hits: the logits' argmax is the activation's
            output = y.backend.argmax_matches(out._data, y._data)
        elif metric_output == "predictions":
            with no_grad():
                if logits and not all(m.accepts_logits for m in self._metrics):
                    out = self._output_layer.activation(out)
                output = out._data
        grads = []
        if training:
            grads = [None if weight.grad is None else weight.grad._data for weight in trainable]
            for weight in trainable:
                weight.zero_grad()
        return [loss._data, output, *grads]

    def _device_update(self, trainable, grads):
        """The optimizer's update from the step's gradient arrays, then the layers' weight constraints. Returns []."""
        self.optimizer.apply_prepared(trainable, grads)
        with no_grad():
            for layer in self._layers:          # weight constraints after the update, as Keras applies them
                layer.apply_constraints()
        return []

    def _predict_batch(self, x_batch):
        """The model's outputs for one prepared batch, as a numpy array (a compiled step when it can be)."""
        x = self._tensor(x_batch)
        first = x[0] if isinstance(x, list) else x          # (a model with several inputs has a list)
        backend = first.backend

        def eager():
            with no_grad(), checked_on_host(self._host_checked(x)):
                return [self._forward(x)._data]
        key = ("predict", *input_key(x), first.device, self._structure_key())
        (out,) = self._compiler.run(key, backend, input_arrays(x), self.weights, eager, self._capture_blocker(False))
        return backend.to_numpy(out)

    def _structure_key(self, trainable=None):
        """What a plan depends on in the model itself: its layers, their activations, and the weights' identity."""
        trainable = self.trainable_weights if trainable is None else trainable
        return (tuple([(id(layer), id(getattr(layer, "activation", None)), layer.trainable) for layer in self._layers]),
                tuple(map(id, trainable)), id(self.optimizer))

    def _capture_blocker(self, training):
        """The first layer's reason why this step cannot be compiled, or None."""
        for layer in self._layers:
            reason = layer.capture_blocker(training)
            if reason is not None:
                return reason
        return None

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; return a History whose ``history`` maps each log key to per-epoch values."""
        self._require_compiled("fit")
        if not is_batch_source(x):
            arguments.unsupported("fit", steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)
        verbose_argument = verbose
        batch_size, verbose = arguments.batch_size("fit", batch_size), arguments.verbose("fit", verbose)
        validation_batch_size = arguments.batch_size(
            "fit", batch_size if validation_batch_size is None else validation_batch_size, "validation_batch_size")
        epochs, initial_epoch = arguments.epochs("fit", epochs, initial_epoch)
        validation_split = arguments.number("fit", "validation_split", validation_split, 0, 1, high_open=True)
        validation_freq = arguments.integer("fit", "validation_freq", validation_freq, minimum=1)
        shuffle = arguments.boolean("fit", "shuffle", shuffle)
        callbacks = _check_callbacks("fit", callbacks)
        if is_batch_source(x):
            _no_y_with_batches("fit", y, sample_weight)
            return self._fit_batches(x, epochs, initial_epoch, verbose, verbose_argument, callbacks, shuffle, dict(
                steps_per_epoch=steps_per_epoch, validation_data=validation_data, validation_steps=validation_steps,
                validation_freq=validation_freq, validation_batch_size=validation_batch_size,
                class_weight=class_weight, validation_split=validation_split))
        x, y = self._prepare_xy(x, y, "fit")
        w = sample_weights("fit", sample_weight, class_weight, y, len(x), self.output_shape)
        x, y, w, validation = self._split_validation(x, y, w, validation_split, validation_data)
        if class_weight is not None and validation_data is None and validation is not None:
            validation = (*validation[:2], None)    # Keras weights the training samples only
        self._resolve_metrics(y.shape)
        steps = math.ceil(len(x) / batch_size)
        history = callbacks_module.History()
        extra = callbacks
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *extra, history], self,
                                            {"verbose": verbose_argument, "epochs": epochs, "steps": steps})
        self.stop_training = False
        self._nan_reported = False
        if not self.trainable_weights:
            warnings.warn("fit: the model does not have any trainable weights; its steps change nothing (as in "
                          "Keras)", UserWarning, stacklevel=2)
        run.call("on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            run.call("on_epoch_begin", epoch, {})
            order = global_rng().permutation(len(x)) if shuffle else None
            self._train_epoch(array_batches(x, y, w, batch_size, order), run, epoch)
            logs = self._logs()
            if validation is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_arrays(*validation, validation_batch_size)
                logs.update({f"val_{name}": value for name, value in val_logs.items()})
            run.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        run.call("on_train_end", {})
        self.history = history
        history.model = self
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics on (x, y): ``[loss, *metrics]``, a float without metrics, or a dict."""
        self._require_compiled("evaluate")
        batch_size, verbose = arguments.batch_size("evaluate", batch_size), arguments.verbose("evaluate", verbose)
        callbacks = _check_callbacks("evaluate", callbacks)
        return_dict = arguments.boolean("evaluate", "return_dict", return_dict)
        if is_batch_source(x):
            _no_y_with_batches("evaluate", y, sample_weight)
            return self._evaluate_batches(x, steps, verbose, callbacks, return_dict)
        arguments.unsupported("evaluate", steps=steps)
        x, y = self._prepare_xy(x, y, "evaluate")
        w = sample_weights("evaluate", sample_weight, None, y, len(x))
        self._resolve_metrics(y.shape)
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks], self,
                                            {"verbose": verbose, "steps": math.ceil(len(x) / batch_size),
                                             "mode": "test"})
        run.call("on_test_begin", {})
        logs = self._evaluate_arrays(x, y, w, batch_size, run)
        run.call("on_test_end", logs)
        return logs if return_dict else self._ordered(logs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for x, computed in batches, as a numpy array."""
        batch_size, verbose = arguments.batch_size("predict", batch_size), arguments.verbose("predict", verbose)
        callbacks = _check_callbacks("predict", callbacks)
        if is_batch_source(x):
            return self._predict_batches(x, steps, verbose, callbacks)
        arguments.unsupported("predict", steps=steps)
        x = self._prepare_x(x, "predict")
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks], self,
                                            {"verbose": verbose, "steps": math.ceil(len(x) / batch_size)})
        run.call("on_predict_begin", {})
        outputs = []
        for batch, index in enumerate(batches(len(x), batch_size)):
            run.call("on_predict_batch_begin", batch, {})
            outputs.append(self._predict_batch(x[index]))
            run.call("on_predict_batch_end", batch, {"outputs": outputs[-1]})
        run.call("on_predict_end", {})
        return np.concatenate(outputs)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        return self._one_batch("train_on_batch", x, y, True, return_dict, sample_weight, class_weight)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        return self._one_batch("test_on_batch", x, y, False, return_dict, sample_weight)

    def _one_batch(self, method, x, y, training, return_dict, sample_weight=None, class_weight=None):
        """Keras 3's *_on_batch: metrics reset first, so the result is this batch's alone."""
        self._require_compiled(method)
        return_dict = arguments.boolean(method, "return_dict", return_dict)
        x, y = self._prepare_xy(x, y, method)
        w = sample_weights(method, sample_weight, class_weight, y, len(x), self.output_shape)
        self._resolve_metrics(y.shape)
        self._reset_metrics()
        loss_value, output, compared = self._step(x, y, training, w)
        self._record(loss_value, y, output, compared)
        return self._logs() if return_dict else self._ordered(self._logs())

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as a numpy array."""
        return self._predict_batch(self._prepare_x(x, "predict_on_batch"))
