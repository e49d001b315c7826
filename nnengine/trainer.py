"""The training loop of a Keras model: compile, fit, evaluate, predict and the *_on_batch methods.

``Trainer`` is a base class of ``Sequential`` (as Keras 3's ``Model`` inherits from its
``Trainer``): the model keeps its structure and config (models.py), this module owns compile,
the preparation of the data, the loop over batches and epochs (with batch_loops.py) and callback
dispatch; the device step is trainer_step.py's, the metrics' bookkeeping trainer_metrics.py's, and
what compile sets up for each output output_heads.py's.

What a Trainer needs from the model it is part of: ``_layers`` (the layers, each once),
``_output_layers`` (per output, the layer that computes it, or None), ``output_names``,
``_output_shapes()``, ``_input_layers``, ``_input_consumers()``,
``_forward(x, training, return_logits)``, ``_ensure_built(x)``, ``_check_input(x, method)``,
``dtype``, ``input_dtype`` and ``trainable_weights``.

Semantics follow Keras 3 (see docs/keras.md for the list):

* ``fit`` returns a ``History``; each epoch's ``loss`` is the batch-size-weighted
  mean of the per-batch losses, each measured before that batch's update.
* ``validation_split`` holds out the LAST fraction of x and y, before shuffling;
  ``validation_data`` takes precedence over it. ``shuffle=True`` reshuffles the
  training samples every epoch.
* ``evaluate`` returns ``[loss, *metrics]`` (a float when there are no metrics);
  ``predict`` runs in batches and returns a numpy array.
* A functional model with several outputs takes a loss, a loss weight and metrics per output
  (output_heads.py), y as a list or a dict by output name, and logs ``<output>_loss`` and
  ``<output>_<metric>``; evaluate lists the loss, each output's loss, then the metrics, sorted;
  predict returns one array per output.
* Inputs may be numpy arrays or lists of any int or float dtype; they are cast
  to the model's input dtype (float32 unless its input or first layer says float64,
  or ``Input(dtype='int64')`` asks for integers).
* A softmax (sigmoid) output trained with (sparse) categorical (binary)
  cross-entropy runs as ONE fused, stable loss on the logits (``trains_on_logits``).
"""
import warnings

from . import arguments
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .batch_loops import ArrayEpochs, BatchLoops
from .compiled_step import StepCompiler
from .data import is_batch_source
from .dtypes import checked_cast
from .model_inputs import SampleArrays, as_array, by_name, joined, prepare_inputs
from .output_heads import Head, compile_heads
from .trainer_metrics import TrainerMetrics
from .trainer_step import TrainerStep, known_output_shape
from .weighting import sample_weights

__all__ = ["Trainer"]


def _no_y_with_batches(method, y, sample_weight):
    if y is not None or sample_weight is not None:
        raise ValueError(f"{method}: when x is a generator or PyDataset its batches carry the targets (and "
                         "weights); y and sample_weight must be None")


def _check_callbacks(method, callbacks):
    return arguments.sequence_of(method, "callbacks", callbacks, callbacks_module.Callback, "callback",
                                 "callbacks=[EarlyStopping()]")


class Trainer(BatchLoops, TrainerStep, TrainerMetrics):
    """The training half of a Keras model (see the module docstring)."""

    def _init_training_state(self):
        """Uncompiled: no optimizer, loss or metrics yet."""
        self.optimizer = self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compile_config = {}
        self._heads = [Head(0, None, None, None, [])]
        self._name_logs()
        self._loss_tracker = metrics_module.Mean("loss")
        self._compiler = StepCompiler("auto")
        self._learnt_readers = []        # (input position, layer): index readers the steps found (_learn_readers)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto"):
        """Set the optimizer, loss and metrics (names or objects, as Keras accepts them); for a model with several
        outputs, ``loss``, ``loss_weights`` and ``metrics`` may be lists with one entry per output or dicts by
        output name (output_heads.py). ``weighted_metrics`` take the forms of ``metrics`` and are updated with the
        sample weights (or class weights), as the loss is.

        ``jit_compile`` ("auto", True or False) and ``run_eagerly`` choose between compiled and eager
        steps as in Keras 3: see compiled_step.py, and ``jit_report()`` for what was compiled.
        """
        run_eagerly = arguments.boolean("compile", "run_eagerly", run_eagerly)
        arguments.integer("compile", "steps_per_execution", steps_per_execution, minimum=1)   # same results
        if run_eagerly and jit_compile is True:
            raise ValueError("compile: run_eagerly=True and jit_compile=True contradict each other")
        compiler = StepCompiler(False if run_eagerly else jit_compile)
        optimizer = optimizers_module.get(optimizer)            # everything resolved before anything is set
        self._heads = compile_heads(self.output_names, loss, loss_weights, metrics, weighted_metrics)
        self.optimizer = optimizer
        self._name_logs()
        self.loss = self._heads[0].loss if len(self._heads) == 1 else [head.loss for head in self._heads]
        self._compile_config = {"loss": loss, "metrics": metrics, "loss_weights": loss_weights,
                                "weighted_metrics": weighted_metrics}
        self._compiler = compiler
        self.compiled = True

    def jit_report(self):
        """What the compiled steps did: mode, plans captured by kind, plans held, the last fallback's reason."""
        return self._compiler.report()

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before using the model: {method}() needs an optimizer "
                               "and a loss")
        if self.loss is None or isinstance(self.loss, list) and not any(self.loss):
            raise ValueError(f"{method}: the model was compiled without a loss; pass compile(loss=...)")

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
        """The input Tensors of a step (a Tensor or a list) whose values ``_check_on_host`` checked (or, for the
        readers a step found, ``_check_learnt_readers``)."""
        tensors = x if isinstance(x, list) else [x]
        return [tensors[position] for position, _ in self._index_readers() + self._learnt_readers]

    def _check_learnt_readers(self, x_batch):
        """Check one batch's inputs, on the host, for the index readers an earlier step found inside layers the
        trainer cannot see into (an Embedding in a custom layer): as ``_check_on_host`` does for the others."""
        arrays = x_batch.arrays if isinstance(x_batch, SampleArrays) else [x_batch]
        for position, layer in self._learnt_readers:
            layer.check_indices(arrays[position])

    def _learn_readers(self, found, key):
        """Remember the index readers a step found (``layer_base.noting_input_readers``): later steps check their
        inputs on the host, so that the layer need not read them back; the plan of ``key``, which could not be
        captured because of that read, is forgotten so that a later step captures one."""
        new = [reader for reader in dict.fromkeys(found) if reader not in self._learnt_readers]
        if new:
            self._learnt_readers.extend(new)
            self._compiler.drop(key)

    def _prepare_xy(self, x, y, method):
        """x and y checked and cast: y an array, or for a model with several outputs a SampleArrays with one array
        per output (None for an output without loss or metrics), from a list or a dict by output name."""
        x = self._prepare_x(x, method)
        if y is None:
            raise ValueError(f"{method}: y is required (targets for the loss)")
        if len(self._heads) == 1:
            return x, self._prepared_targets(self._heads[0], as_array(f"{method}: y", y), len(x), method)
        needed = [head.name for head in self._heads if head.needs_targets]
        values = by_name(method, "y", y, self.output_names, "outputs", needed)
        return x, SampleArrays(
            None if not head.needs_targets else
            self._prepared_targets(head, as_array(f"{method}: y[{head.name!r}]", value), len(x),
                                   f"{method}: y[{head.name!r}]")
            for head, value in zip(self._heads, values))

    def _prepared_targets(self, head, y, count, what):
        """One output's targets, checked against its shape by its loss and cast to the model's dtype (integer class
        labels stay integers)."""
        if count != len(y):
            raise ValueError(f"{what}: x and y must have the same number of samples, got {count} and {len(y)}")
        if head.loss is not None:
            expected = known_output_shape(self._output_shapes()[head.position], y.shape, len(y))
            head.loss.check_targets(y.shape, expected)
        if y.dtype.kind == "f" or not isinstance(head.loss, losses_module.SparseCategoricalCrossentropy):
            y = y.astype(self.dtype, copy=False)
        return y

    def _sample_weights(self, method, sample_weight, class_weight, y, count):
        """The per-sample weights (weighting.py): an array, or for a model with several outputs a SampleArrays with
        each output's weights (None where none), from one array for every output, a list or a dict by name."""
        if len(self._heads) == 1:
            shape = None if class_weight is None else self._output_shapes()[0]     # (only class weights need it)
            return sample_weights(method, sample_weight, class_weight, y, count, shape)
        if class_weight is not None:
            raise ValueError(f"{method}: class_weight is only supported for a model with one output, as in Keras; "
                             "weight each output's samples with sample_weight (a list or a dict by output name)")
        if sample_weight is None:
            return None
        names = self.output_names
        per_output = isinstance(sample_weight, dict) or isinstance(sample_weight, (list, tuple)) and all(
            item is None or hasattr(item, "__len__") for item in sample_weight)
        if not per_output:                      # one array for every output
            return SampleArrays([sample_weights(method, sample_weight, None, None, count)] * len(names))
        values = by_name(method, "sample_weight", sample_weight, names, "outputs", [])
        weights = [None if value is None else sample_weights(f"{method}: sample_weight[{name!r}]", value, None, None,
                                                             count) for name, value in zip(names, values)]
        return None if all(w is None for w in weights) else SampleArrays(weights)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; return a History whose ``history`` maps each log key to per-epoch values."""
        self._require_compiled("fit")
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
        w = self._sample_weights("fit", sample_weight, class_weight, y, len(x))
        x, y, w, validation = self._split_validation(x, y, w, validation_split, validation_data)
        if class_weight is not None and validation_data is None and validation is not None:
            validation = (*validation[:2], None)    # Keras weights the training samples only
        self._resolve_metrics(y)
        training = ArrayEpochs("fit", (x, y, w), batch_size, shuffle, steps_per_epoch, "steps_per_epoch")
        validating = None if validation is None else \
            ArrayEpochs("fit", validation, validation_batch_size, steps=validation_steps, steps_name="validation_steps")
        history = callbacks_module.History()
        extra = callbacks
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *extra, history], self,
                                            {"verbose": verbose_argument, "epochs": epochs,
                                             "steps": training.steps_per_epoch})
        self.stop_training = False
        self._nan_reported = False
        if not self.trainable_weights:
            warnings.warn("fit: the model does not have any trainable weights; its steps change nothing (as in "
                          "Keras)", UserWarning, stacklevel=2)
        run.call("on_train_begin", {})
        for epoch in range(self._starting_epoch(initial_epoch), epochs):
            run.call("on_epoch_begin", epoch, {})
            self._train_epoch(training.epoch(), run, epoch)
            logs = self._logs()
            if validating is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_epochs(validating)
                logs.update({f"val_{name}": value for name, value in val_logs.items()})
            run.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        run.call("on_train_end", {})
        self.history = history
        history.model = self
        return history

    def _starting_epoch(self, initial_epoch):
        """The epoch fit starts at: one a callback restored in on_train_begin (``model._initial_epoch``, which
        BackupAndRestore sets, as in Keras 3) when it is not 0, else ``initial_epoch``. It is taken once:
        a later fit starts where it is told."""
        restored, self._initial_epoch = getattr(self, "_initial_epoch", None), None
        return restored or initial_epoch

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
        x, y = self._prepare_xy(x, y, "evaluate")
        w = self._sample_weights("evaluate", sample_weight, None, y, len(x))
        self._resolve_metrics(y)
        epochs = ArrayEpochs("evaluate", (x, y, w), batch_size, steps=steps)
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks], self,
                                            {"verbose": verbose, "steps": epochs.steps_per_epoch, "mode": "test"})
        run.call("on_test_begin", {})
        logs = self._evaluate_epochs(epochs, run)
        run.call("on_test_end", logs)
        return logs if return_dict else self._ordered(logs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for x, computed in batches, as a numpy array (a list of them, one per output, for a
        model with several outputs)."""
        batch_size, verbose = arguments.batch_size("predict", batch_size), arguments.verbose("predict", verbose)
        callbacks = _check_callbacks("predict", callbacks)
        if is_batch_source(x):
            return self._predict_batches(x, steps, verbose, callbacks)
        x = self._prepare_x(x, "predict")
        epochs = ArrayEpochs("predict", (x,), batch_size, steps=steps)
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks], self,
                                            {"verbose": verbose, "steps": epochs.steps_per_epoch})
        run.call("on_predict_begin", {})
        outputs = []
        for batch, (x_batch,) in enumerate(epochs.epoch()):
            run.call("on_predict_batch_begin", batch, {})
            outputs.append(self._predict_batch(x_batch))
            run.call("on_predict_batch_end", batch, {"outputs": outputs[-1]})
        run.call("on_predict_end", {})
        return joined(outputs)

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
        w = self._sample_weights(method, sample_weight, class_weight, y, len(x))
        self._resolve_metrics(y)
        self._reset_metrics()
        loss_value, extras, compared = self._step(x, y, training, w)
        self._record(loss_value, y, extras, compared, w)
        return self._logs() if return_dict else self._ordered(self._logs())

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as a numpy array (a list of them for several outputs)."""
        return self._predict_batch(self._prepare_x(x, "predict_on_batch"))

