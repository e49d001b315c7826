"""The Keras-style ``Sequential`` model: compile, fit, evaluate, predict, summary and files.

Semantics follow Keras 3 (see docs/keras.md for the list):

* ``fit`` returns a ``History``; each epoch's ``loss`` is the batch-size-weighted
  mean of the per-batch losses, each measured before that batch's update.
* ``validation_split`` holds out the LAST fraction of x and y, before shuffling;
  ``validation_data`` takes precedence over it. ``shuffle=True`` reshuffles the
  training samples every epoch.
* ``evaluate`` returns ``[loss, *metrics]`` (a float when there are no metrics);
  ``predict`` runs in batches and returns a numpy array.
* Inputs may be numpy arrays or lists of any int or float dtype; they are cast
  to the model's dtype (float32 unless its layers say float64).
* A softmax (sigmoid) output trained with (sparse) categorical (binary)
  cross-entropy runs as ONE fused, stable loss on the logits.
"""
import math
import warnings

import numpy as np

from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .activations import name_of
from .autograd import no_grad
from .layers import LAYER_CLASSES, Activation, Dense, InputLayer, Layer
from .metrics import Mean
from .tensor import Tensor
from .utils import global_rng, unique_name

__all__ = ["Sequential", "load_model"]


def _as_array(name, value):
    """Array-like model input or target as a numpy array of numbers, with a clear error."""
    if isinstance(value, Tensor):
        return value.numpy()
    try:
        array = np.asarray(value)
    except ValueError as error:
        raise ValueError(f"{name}: cannot make an array from this data: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers (an int or float array), got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{name}: expected an array with a batch axis, got a scalar")
    return array


def _check_batch_size(batch_size):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return verbose


def _batches(count, batch_size, order=None):
    """Index arrays (or slices) of consecutive batches over ``count`` samples."""
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        yield slice(start, stop) if order is None else order[start:stop]


class Sequential:
    """A linear stack of layers, trained with Keras's compile / fit / evaluate / predict.

    Args:
        layers: a list of layers; the first may be ``Input(shape=...)`` or carry ``input_shape``.
        name: the model's name ('sequential', 'sequential_1', ... by default).
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name if name is not None else unique_name("sequential")
        self.trainable = trainable
        self._input_layer = None
        self._layers = []
        self.optimizer = self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compile_config = {}
        self._metrics = []
        self._metric_specs = []
        self._loss_tracker = Mean("loss")
        for layer in layers or []:
            self.add(layer)

    # -- structure ----------------------------------------------------------------------------
    @property
    def layers(self):
        """The layers, without the InputLayer (as Keras lists them)."""
        return list(self._layers)

    def add(self, layer):
        """Append a layer; it is built at once when the model's input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("Sequential.add: an InputLayer can only be the first layer")
            self._input_layer = layer
            return
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Sequential.add: layer {layer.name!r} is already in the model")
        if not self._layers and self._input_layer is None and layer.batch_input_shape is not None:
            self._input_layer = InputLayer(batch_shape=layer.batch_input_shape, dtype=layer.dtype)
        self._layers.append(layer)
        if self._input_layer is not None:
            self._build_from(len(self._layers) - 1)

    def _build_from(self, index):
        """Build layers[index:] from the output shape of the layer before them."""
        shape = self._input_layer.batch_input_shape
        for position, layer in enumerate(self._layers):
            if position >= index and not layer.built:
                layer.build(shape)
            elif position >= index and layer.input_shape is not None and \
                    tuple(layer.input_shape[1:]) != tuple(shape[1:]):
                raise ValueError(f"layer {layer.name!r} was built for inputs {layer.input_shape} but receives "
                                 f"{shape} in this model")
            shape = layer.compute_output_shape(shape)

    @property
    def built(self):
        """True once every layer has its weights."""
        return bool(self._layers) and all(layer.built for layer in self._layers)

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is not None:
            input_shape = tuple(input_shape)
            if self._input_layer is None:
                self._input_layer = InputLayer(batch_shape=input_shape, dtype=self.dtype)
            elif tuple(self._input_layer.batch_input_shape[1:]) != input_shape[1:]:
                raise ValueError(f"model {self.name!r} expects inputs {self._input_layer.batch_input_shape}, "
                                 f"build() got {input_shape}")
        if self._input_layer is None:
            raise ValueError(f"model {self.name!r} has no input shape: pass build(input_shape), start it with "
                             "Input(shape=...), or give the first layer input_shape=...")
        self._build_from(0)

    @property
    def input_shape(self):
        """The batch input shape, e.g. (None, 10); None before the model knows it."""
        return None if self._input_layer is None else self._input_layer.batch_input_shape

    @property
    def output_shape(self):
        """The batch output shape, e.g. (None, 10)."""
        shape = self.input_shape
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @property
    def dtype(self):
        """The dtype inputs are cast to: that of the input layer or the first layer (float32 by default)."""
        if self._input_layer is not None:
            return self._input_layer.dtype
        return self._layers[0].dtype if self._layers else "float32"

    # -- weights ------------------------------------------------------------------------------
    @property
    def weights(self):
        """Every weight Tensor, layer by layer."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        """The weights the optimizer updates."""
        return [w for layer in self._layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self):
        """The weights the optimizer leaves alone."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self):
        """Every weight as a numpy array, layer by layer (kernel before bias)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Set every weight from numpy arrays in ``get_weights()`` order and shapes."""
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f"model {self.name!r} has {expected} weight arrays, set_weights got {len(weights)}")
        position = 0
        for layer in self._layers:
            count = len(layer.weights)
            layer.set_weights(weights[position:position + count])
            position += count

    def count_params(self):
        """The number of scalars in the weights."""
        return sum(layer.count_params() for layer in self._layers)

    def to(self, device):
        """Move the weights and the optimizer's state to ``device`` in place; return self."""
        for layer in [*([self._input_layer] if self._input_layer else []), *self._layers]:
            layer.to(device)
        if self.optimizer is not None:
            for _, slots in self.optimizer._slots.values():
                for slot in slots.values():
                    slot.move_(device)
        return self

    # -- compile ------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto"):
        """Set the optimizer, loss and metrics (names or objects, as Keras accepts them)."""
        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("compile: loss_weights and weighted_metrics are not supported by nnengine")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = None if loss is None else losses_module.get(loss)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"compile: metrics must be a list, got {type(metrics).__name__}")
        self._metric_specs = list(metrics or [])
        for spec in self._metric_specs:       # unknown names fail here, not in the middle of fit
            metrics_module.get(spec)
        self._metrics = []
        self._compile_config = {"loss": loss, "metrics": metrics}
        self.compiled = True

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before using the model: {method}() needs an optimizer "
                               "and a loss")
        if self.loss is None:
            raise ValueError(f"{method}: the model was compiled without a loss; pass compile(loss=...)")

    def _resolve_metrics(self, y_shape):
        """Build the metric objects once the target and output shapes are known ('accuracy' needs them)."""
        if not self._metrics and self._metric_specs:
            self._metrics = [metrics_module.get(spec, y_shape, self.output_shape) for spec in self._metric_specs]

    @property
    def metrics_names(self):
        """'loss' then each compiled metric's name (the order of evaluate's list)."""
        return ["loss", *[m.name if isinstance(m, metrics_module.Metric) else
                          (m if isinstance(m, str) else m().name) for m in (self._metrics or self._metric_specs)]]

    # -- forward --------------------------------------------------------------------------------
    def _fused_loss(self):
        """True when the loss can take the last layer's pre-activation (softmax/sigmoid fusion)."""
        wanted = getattr(self.loss, "fusable_activation", None)
        if wanted is None or getattr(self.loss, "from_logits", True) or not self._layers:
            return False
        last = self._layers[-1]
        return isinstance(last, (Dense, Activation)) and name_of(last.activation) == wanted

    def _ensure_built(self, x):
        if self._input_layer is None:
            self.build((None, *x.shape[1:]))
        elif not self.built:
            self._build_from(0)

    def _check_input(self, x, method):
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != got for e, got in zip(expected[1:], x.shape[1:])):
            first = self._layers[0].name if self._layers else self.name
            raise ValueError(f"{method}: input of shape {x.shape} does not fit layer {first!r}, which expects "
                             f"inputs of shape {expected} (None is the batch axis)")

    def _prepare_x(self, x, method):
        x = _as_array(f"{method}: x", x)
        if len(x) == 0:
            raise ValueError(f"{method}: x is empty (0 samples)")
        if not self._layers:
            raise ValueError(f"{method}: the model has no layers")
        self._ensure_built(x)
        self._check_input(x, method)
        return x.astype(self.dtype, copy=False)

    def _prepare_xy(self, x, y, method):
        x = self._prepare_x(x, method)
        if y is None:
            raise ValueError(f"{method}: y is required (targets for the loss)")
        y = _as_array(f"{method}: y", y)
        if len(x) != len(y):
            raise ValueError(f"{method}: x and y must have the same number of samples, got {len(x)} and {len(y)}")
        self.loss.check_targets(y.shape, (len(y), *self.output_shape[1:]))
        if y.dtype.kind == "f" or not isinstance(self.loss, losses_module.SparseCategoricalCrossentropy):
            y = y.astype(self.dtype, copy=False)
        return x, y

    def _tensor(self, array):
        return Tensor(array, dtype=self.dtype, device=self._layers[0].device)

    def _forward(self, x, training=False, pre_activation=False):
        """Run the layers on Tensor ``x``; with ``pre_activation`` the last one stops before its activation."""
        for layer in self._layers[:-1]:
            x = layer.call(x, training=training)
        last = self._layers[-1]
        if pre_activation:
            return last.call(x, training=training, skip_activation=True)
        return last.call(x, training=training)

    def __call__(self, x, training=False):
        """The model's output Tensor for input ``x`` (a Tensor or array); differentiable."""
        if not isinstance(x, Tensor):
            x = self._tensor(self._prepare_x(x, "call"))
        else:
            self._ensure_built(x)
        return self._forward(x, training=training)

    # -- one batch -------------------------------------------------------------------------------
    def _step(self, x_batch, y_batch, training):
        """Loss (a float) and predictions (a numpy array, or None without metrics) of one batch."""
        fused = self._fused_loss()
        x = self._tensor(x_batch)
        if training:
            out = self._forward(x, training=True, pre_activation=fused)
            loss = self.loss(y_batch, out, from_pre_activation=fused)
            loss.backward()
            self.optimizer.step(self.trainable_weights)
        else:
            with no_grad():
                out = self._forward(x, training=False, pre_activation=fused)
                loss = self.loss(y_batch, out, from_pre_activation=fused)
        predictions = None
        if self._metrics:
            with no_grad():
                if fused and not all(m.argmax_only for m in self._metrics):
                    out = self._layers[-1].activation(out)
                predictions = out.numpy()   # logits when every metric depends only on their argmax
        return loss.item(), predictions

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for metric in self._metrics:
            metric.reset_state()

    def _record(self, loss_value, y_batch, predictions):
        self._loss_tracker.add(loss_value, len(y_batch))
        for metric in self._metrics:
            metric.update_state(y_batch, predictions)

    def _logs(self):
        """Running results keyed by name, sorted as Keras 3 orders its logs."""
        values = {"loss": self._loss_tracker.result(), **{m.name: m.result() for m in self._metrics}}
        return dict(sorted(values.items()))

    def _ordered(self, logs):
        """evaluate's list: loss, then the metrics in compile order; a float when there are no metrics."""
        results = [logs["loss"], *[logs[m.name] for m in self._metrics]]
        return results[0] if len(results) == 1 else results

    # -- fit ---------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; return a History whose ``history`` maps each log key to per-epoch values."""
        self._require_compiled("fit")
        if class_weight is not None or sample_weight is not None or steps_per_epoch is not None:
            raise ValueError("fit: class_weight, sample_weight and steps_per_epoch are not supported by nnengine")
        verbose_argument = verbose
        batch_size, verbose = _check_batch_size(batch_size), _check_verbose(verbose)
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        x, y = self._prepare_xy(x, y, "fit")
        x, y, validation = self._split_validation(x, y, validation_split, validation_data)
        self._resolve_metrics(y.shape)
        steps = math.ceil(len(x) / batch_size)
        history = callbacks_module.History()
        extra = list(callbacks or [])
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *extra, history], self,
                                            {"verbose": verbose_argument, "epochs": epochs, "steps": steps})
        self.stop_training = False
        self._nan_reported = False
        run.call("on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            run.call("on_epoch_begin", epoch, {})
            logs = self._train_epoch(x, y, batch_size, shuffle, run, epoch)
            if validation is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_arrays(*validation, _check_batch_size(validation_batch_size or batch_size))
                logs.update({f"val_{name}": value for name, value in val_logs.items()})
            run.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        run.call("on_train_end", {})
        self.history = history
        history.model = self
        return history

    def _split_validation(self, x, y, validation_split, validation_data):
        """Keras: validation_data wins; otherwise the LAST fraction of the samples, taken before shuffling."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
            if len(validation_data) == 3:
                raise ValueError("fit: validation sample weights are not supported by nnengine")
            return (x, y, self._prepare_xy(*validation_data, "fit (validation_data)"))
        if not validation_split:
            return x, y, None
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0 or split_at == len(x):
            raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples leaves "
                             f"{split_at} for training and {len(x) - split_at} for validation; both need at least 1")
        return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])

    def _train_epoch(self, x, y, batch_size, shuffle, run, epoch):
        self._reset_metrics()
        order = global_rng().permutation(len(x)) if shuffle else None
        for batch, index in enumerate(_batches(len(x), batch_size, order)):
            run.call("on_train_batch_begin", batch, {})
            loss_value, predictions = self._step(x[index], y[index], training=True)
            self._check_finite(loss_value, epoch, batch)
            self._record(loss_value, y[index], predictions)
            run.call("on_train_batch_end", batch, self._logs())
            if self.stop_training:
                break
        return self._logs()

    def _check_finite(self, loss_value, epoch, batch):
        """Report (once per fit) a NaN or infinite loss instead of training through it silently."""
        if not math.isfinite(loss_value) and not self._nan_reported:
            self._nan_reported = True
            warnings.warn(f"fit: the loss is {loss_value} at epoch {epoch + 1}, batch {batch}; the weights are "
                          "no longer finite. Lower the learning rate, check the data, or add "
                          "callbacks.TerminateOnNaN() to stop.", RuntimeWarning, stacklevel=3)

    # -- evaluate and predict -------------------------------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, run=None):
        self._reset_metrics()
        for batch, index in enumerate(_batches(len(x), batch_size)):
            if run is not None:
                run.call("on_test_batch_begin", batch, {})
            loss_value, predictions = self._step(x[index], y[index], training=False)
            self._record(loss_value, y[index], predictions)
            if run is not None:
                run.call("on_test_batch_end", batch, self._logs())
        return self._logs()

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics on (x, y): ``[loss, *metrics]``, a float without metrics, or a dict."""
        self._require_compiled("evaluate")
        if sample_weight is not None or steps is not None:
            raise ValueError("evaluate: sample_weight and steps are not supported by nnengine")
        batch_size, verbose = _check_batch_size(batch_size), _check_verbose(verbose)
        x, y = self._prepare_xy(x, y, "evaluate")
        self._resolve_metrics(y.shape)
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *(callbacks or [])], self,
                                            {"verbose": verbose, "steps": math.ceil(len(x) / batch_size),
                                             "mode": "test"})
        run.call("on_test_begin", {})
        logs = self._evaluate_arrays(x, y, batch_size, run)
        run.call("on_test_end", logs)
        return logs if return_dict else self._ordered(logs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for x, computed in batches, as a numpy array."""
        batch_size, verbose = _check_batch_size(batch_size), _check_verbose(verbose)
        x = self._prepare_x(x, "predict")
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *(callbacks or [])], self,
                                            {"verbose": verbose, "steps": math.ceil(len(x) / batch_size)})
        run.call("on_predict_begin", {})
        outputs = []
        with no_grad():
            for batch, index in enumerate(_batches(len(x), batch_size)):
                run.call("on_predict_batch_begin", batch, {})
                outputs.append(self._forward(self._tensor(x[index])).numpy())
                run.call("on_predict_batch_end", batch, {"outputs": outputs[-1]})
        run.call("on_predict_end", {})
        return np.concatenate(outputs)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        return self._one_batch("train_on_batch", x, y, True, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        return self._one_batch("test_on_batch", x, y, False, return_dict)

    def _one_batch(self, method, x, y, training, return_dict):
        """Keras 3's *_on_batch: metrics reset first, so the result is this batch's alone."""
        self._require_compiled(method)
        x, y = self._prepare_xy(x, y, method)
        self._resolve_metrics(y.shape)
        self._reset_metrics()
        loss_value, predictions = self._step(x, y, training=training)
        self._record(loss_value, y, predictions)
        return self._logs() if return_dict else self._ordered(self._logs())

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as a numpy array."""
        x = self._prepare_x(x, "predict_on_batch")
        with no_grad():
            return self._forward(self._tensor(x)).numpy()

    # -- summary, config and files ---------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print the layer table as Keras 3 prints it (layer, output shape, parameter count, totals)."""
        from .summary import summary_lines
        for line in summary_lines(self):
            (print_fn or print)(line)

    def get_config(self):
        """Keras 3's Sequential config: name, layers (InputLayer first) and build_input_shape."""
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        for layer in self._layers:
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config()})
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.dtype},
                            "registered_name": None},
                  "layers": layers}
        if self.input_shape is not None:
            config["build_input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuild a model from its config (Keras 3 or tf.keras 2.x); only nnengine's own layer classes load."""
        model = cls(name=config.get("name"))
        for entry in config.get("layers", []):
            layer_class = LAYER_CLASSES.get(entry.get("class_name"))
            if layer_class is None:
                raise ValueError(f"cannot load layer class {entry.get('class_name')!r}: nnengine knows "
                                 f"{', '.join(sorted(LAYER_CLASSES))}")
            model.add(layer_class.from_config(entry.get("config") or {}))
        if not model.built and config.get("build_input_shape"):
            model.build(tuple(config["build_input_shape"]))
        return model

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Write the model to a Keras legacy HDF5 file (``.h5``), atomically."""
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Write the weights to a Keras 3 ``.weights.h5`` file, atomically."""
        from .saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Read weights written by ``save_weights`` or ``save`` (nnengine's or Keras's)."""
        from .saving import load_weights
        load_weights(self, filepath)

    def __repr__(self):
        return f"<Sequential name={self.name!r}, layers={[layer.name for layer in self._layers]}>"


def load_model(filepath, compile=True):
    """Read a model saved with ``model.save('*.h5')`` by nnengine or by Keras (Sequential of Dense layers)."""
    from .saving import load_model as load
    return load(filepath, compile=compile)
