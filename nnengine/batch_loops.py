"""The loops over batches of fit and evaluate, for arrays and for batches from Python (generators,
iterators, ``PyDataset``): ``BatchLoops``.

A base class of ``Trainer``: one training loop and one evaluation loop walk batches of (x, y, weights),
from the arrays (``ArrayEpochs``) or from a ``data.BatchSource``, and run the same steps, metrics,
callbacks and progress bars. Each batch from a source is checked and cast like array input
(``_prepare_xy``), so a generator that yields inconsistent batches gets the same clear errors. When the number of batches is unknown (a generator without
``steps_per_epoch``), the progress bar counts ``n/Unknown`` as Keras's does.
"""
import math
import time
import warnings

import numpy as np

from . import callbacks as callbacks_module
from .backends import get_backend
from .data import BatchSource, checked_steps, is_batch_source
from .model_inputs import SampleArrays, joined
from .utils import global_rng

__all__ = ["BatchLoops", "ArrayEpochs", "PendingBatches", "batches", "array_batches", "rows_in_batches"]

#: on a device whose reads wait for it (a GPU), fit reads its steps' results back at most this often ...
READ_INTERVAL_S = 0.25
#: ... or after this many steps (their outputs wait on the device meanwhile)
MAX_PENDING_STEPS = 64


def batches(count, batch_size, order=None):
    """Index arrays (or slices) of consecutive batches over ``count`` samples."""
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        yield slice(start, stop) if order is None else order[start:stop]


def array_batches(x, y, w, batch_size, order=None):
    """(x, y, weights or None) of each consecutive batch of the arrays, in ``order`` when given."""
    return rows_in_batches((x, y, w), batch_size, order)


def rows_in_batches(arrays, batch_size, order=None):
    """A tuple of each array's rows (None for a None array) for each consecutive batch, in ``order`` when given."""
    if order is None:
        for index in batches(len(arrays[0]), batch_size):
            yield tuple(None if a is None else a[index] for a in arrays)
        return
    for index in batches(len(arrays[0]), batch_size, order):
        # take, not x[index]: the same rows, copied, for a third of fancy indexing's fixed cost (0.46 against
        # 1.35 us for a batch of the document's model; a shuffled epoch of it gathers six times)
        yield tuple(None if a is None else a.take(index, axis=0) for a in arrays)


class ArrayEpochs:
    """The batches of arrays ((x, y, weights or None), or (x,) to predict), epoch after epoch, as Keras's epoch
    iterator gives them.

    Without ``steps`` an epoch is one pass over the arrays (in a new order each time with ``shuffle``). With
    ``steps`` (fit's steps_per_epoch, validation_steps, evaluate's and predict's steps) an epoch is that many
    batches and the pass goes on where the last epoch stopped; a new pass (and order) starts once one is used
    up. An epoch that asks for more batches than its pass has left ends early, with a warning, as in Keras.
    """

    def __init__(self, method, arrays, batch_size, shuffle=False, steps=None, steps_name="steps"):
        steps = checked_steps(method, steps, steps_name)
        self.method, self.arrays, self.batch_size, self.shuffle, self.steps = method, arrays, batch_size, shuffle, steps
        self.count = math.ceil(len(arrays[0]) / batch_size)
        self._pass, self._seen = None, 0

    @property
    def steps_per_epoch(self):
        """The batches an epoch asks for: ``steps``, or one pass."""
        return self.steps or self.count

    def epoch(self):
        """The batches of the next epoch: a tuple of the arrays' rows each."""
        if self._pass is None or self.steps is None:
            order = global_rng().permutation(len(self.arrays[0])) if self.shuffle else None
            self._pass, self._seen = rows_in_batches(self.arrays, self.batch_size, order), 0
        for taken in range(self.steps_per_epoch):
            if self._seen >= self.count:
                warnings.warn(f"{self.method}: the arrays ran out of batches after {taken} of the {self.steps} steps "
                              f"asked for ({self.count} batches of {self.batch_size} in a pass); the next epoch "
                              "starts a new pass", UserWarning, stacklevel=4)
                break
            self._seen += 1
            yield next(self._pass)
        if self._seen >= self.count:
            self._pass = None


class PendingBatches:
    """Steps whose loss and predictions are still on the device, recorded when they are read back.

    On a GPU a read waits for the device to finish its queue: reading each step's loss as it ends would
    put a host sync in every step and keep the GPU idle while the host prepares the next batch. When no
    callback needs every batch's logs (the progress bar shows the latest values only), the loops keep a
    copy of each step's outputs on the device (the compiled step's own arrays are overwritten by its next
    launch) and read them back, in order, every ``READ_INTERVAL_S`` seconds or ``MAX_PENDING_STEPS`` steps
    and at the end of the loop. Metrics, History and the NaN report see exactly the values of a read per
    step, later; the batch-end hook then gets the logs of the last batch read.
    """

    def __init__(self, trainer, backend, run, hook, epoch=None):
        self.trainer, self.backend, self.run, self.hook, self.epoch = trainer, backend, run, hook, epoch
        self.items = []
        self.last_read = time.perf_counter()

    @classmethod
    def for_loop(cls, trainer, run, hook, epoch=None):
        """The PendingBatches of one loop, or None where each step's results are read as it ends: on a device
        whose reads do not wait (host memory), or when a callback acting on ``hook`` needs every batch's logs."""
        backend = trainer._backend_of_model()
        if backend is None or not backend.reads_wait or (run is not None and run.needs_every_batch(hook)):
            return None
        return cls(trainer, backend, run, hook, epoch)

    def add(self, batch, y, w, loss, extras, compared):
        """Keep step ``batch``'s outputs (device copies), its host targets and weights (copies too: a generator may
        refill the same arrays for its next batch); read them all when due. ``extras`` and ``compared``: as
        ``Trainer._step`` returns them."""
        copy = self.backend.copy
        kept = [None if extra is None else copy(extra) for extra in extras]
        targets, weights = (None if a is None else a.copy() if isinstance(a, SampleArrays) else np.array(a, copy=True)
                            for a in (y, w))
        self.items.append((batch, targets, weights, copy(loss), kept, compared))
        if len(self.items) >= MAX_PENDING_STEPS or time.perf_counter() - self.last_read >= READ_INTERVAL_S:
            self.read()

    def read(self):
        """Read every kept step back in order and record it; then the batch-end hook, once, with the logs."""
        if not self.items:
            return
        to_host = self.backend.to_numpy
        for batch, y, w, loss, extras, compared in self.items:
            loss_value = to_host(loss).reshape(()).item()
            if self.epoch is not None:
                self.trainer._check_finite(loss_value, self.epoch, batch)
            self.trainer._record(loss_value, y, [None if extra is None else to_host(extra) for extra in extras],
                                 compared, w)
        last = self.items[-1][0]
        self.items.clear()
        self.last_read = time.perf_counter()
        if self.run is not None and self.run.wants(self.hook):
            self.run.call(self.hook, last, self.trainer._logs())


class BatchLoops:
    """The loops over batches, the batch-source entry points and the validation split of a Trainer."""

    def _train_epoch(self, batches, run, epoch, prepare=None):
        """Training steps over ``batches`` of (x, y, weights), each made ready by ``prepare`` when given
        (batches from a generator); returns how many batches there were."""
        self._reset_metrics()
        pending = PendingBatches.for_loop(self, run, "on_train_batch_end", epoch)
        seen = 0
        for batch, item in enumerate(batches):
            run.call("on_train_batch_begin", batch, {})
            x, y, w = item if prepare is None else prepare(*item)
            seen = batch + 1
            if pending is not None:
                pending.add(batch, y, w, *self._step(x, y, True, w, on_device=True))
            else:
                loss_value, extras, compared = self._step(x, y, True, w)
                self._check_finite(loss_value, epoch, batch)
                self._record(loss_value, y, extras, compared, w)
                if run.wants("on_train_batch_end"):
                    run.call("on_train_batch_end", batch, self._logs())
            if self.stop_training:
                break
        if pending is not None:
            pending.read()
        return seen

    def _check_finite(self, loss_value, epoch, batch):
        """Report (once per fit) a NaN or infinite loss instead of training through it silently."""
        if not math.isfinite(loss_value) and not self._nan_reported:
            self._nan_reported = True
            warnings.warn(f"fit: the loss is {loss_value} at epoch {epoch + 1}, batch {batch}; the weights are "
                          "no longer finite. Lower the learning rate, check the data, or add "
                          "callbacks.TerminateOnNaN() to stop.", RuntimeWarning, stacklevel=3)

    def _backend_of_model(self):
        """The backend the model's weights live on (its first layer's device), or None for a model without layers
        (whose first batch then gets the error that says so)."""
        return get_backend(self._layers[0].device) if self._layers else None

    def _evaluate_epochs(self, epochs, run=None):
        """Loss and metrics over the next epoch of an ``ArrayEpochs``."""
        return self._evaluate_over(epochs.epoch(), run)

    def _evaluate_over(self, batches, run=None, prepare=None):
        """Loss and metrics over ``batches`` of (x, y, weights), each made ready by ``prepare`` when given."""
        self._reset_metrics()
        pending = PendingBatches.for_loop(self, run, "on_test_batch_end")
        for batch, item in enumerate(batches):
            if run is not None:
                run.call("on_test_batch_begin", batch, {})
            x, y, w = item if prepare is None else prepare(*item)
            if pending is not None:
                pending.add(batch, y, w, *self._step(x, y, False, w, on_device=True))
                continue
            loss_value, extras, compared = self._step(x, y, False, w)
            self._record(loss_value, y, extras, compared, w)
            if run is not None and run.wants("on_test_batch_end"):
                run.call("on_test_batch_end", batch, self._logs())
        if pending is not None:
            pending.read()
        return self._logs()


    def _split_validation(self, x, y, w, validation_split, validation_data):
        """Keras: validation_data (x, y) or (x, y, sample_weight) wins; otherwise the LAST fraction of the
        samples (and of their weights), taken before shuffling."""
        if validation_data is not None:
            if is_batch_source(validation_data):
                return x, y, w, validation_data
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
            x_val, y_val = self._prepare_xy(*validation_data[:2], "fit (validation_data)")
            weights = validation_data[2] if len(validation_data) == 3 else None
            return x, y, w, (x_val, y_val, self._sample_weights("fit (validation_data)", weights, None, y_val,
                                                                len(x_val)))
        if not validation_split:
            return x, y, w, None
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0 or split_at == len(x):
            raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples leaves "
                             f"{split_at} for training and {len(x) - split_at} for validation; both need at least 1")
        w_train, w_val = (None, None) if w is None else (w[:split_at], w[split_at:])
        return x[:split_at], y[:split_at], w_train, (x[split_at:], y[split_at:], w_val)

    def _fit_batches(self, data, epochs, initial_epoch, verbose, verbose_argument, callbacks, shuffle, options):
        """fit over a batch source; ``options``: steps_per_epoch, validation_data, validation_steps,
        validation_freq, validation_batch_size, class_weight, validation_split."""
        if options["validation_split"]:
            raise ValueError("fit: validation_split needs arrays; with a generator or PyDataset pass "
                             "validation_data")
        source = BatchSource("fit", data, options["steps_per_epoch"])
        validation = options["validation_data"]
        if validation is not None and not is_batch_source(validation):   # arrays: checked and cast once, up front
            arrays = self._split_validation(None, None, None, 0, validation)[3]
            options["validation_data"] = ArrayEpochs("fit", arrays, options["validation_batch_size"],
                                                     steps=options["validation_steps"], steps_name="validation_steps")
        history = callbacks_module.History()
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks, history], self,
                                            {"verbose": verbose_argument, "epochs": epochs,
                                             "steps": source.known_steps})
        self.stop_training, self._nan_reported = False, False
        run.call("on_train_begin", {})
        for epoch in range(self._starting_epoch(initial_epoch), epochs):
            run.call("on_epoch_begin", epoch, {})
            seen = self._train_epoch(source.epoch(shuffle, global_rng()), run, epoch,
                                     self._batch_preparer("fit", options["class_weight"]))
            if not seen:
                break
            logs = self._logs()
            validation = options["validation_data"]
            if validation is not None and (epoch + 1) % options["validation_freq"] == 0:
                logs.update({f"val_{k}": v for k, v in self._validate(validation, options).items()})
            run.call("on_epoch_end", epoch, logs)
            if self.stop_training or source.ran_out:
                break
        run.call("on_train_end", {})
        self.history = history
        history.model = self
        return history

    def _batch_preparer(self, method, class_weight=None):
        """A function that checks and casts one batch from a source as array input is, and weights it."""
        def prepare(x, y, w):
            x, y = self._prepare_xy(x, y, method)
            self._resolve_metrics(y)
            return x, y, self._sample_weights(method, w, class_weight, y, len(x))
        return prepare

    def _validate(self, validation, options):
        """Validation logs from the ArrayEpochs of arrays, or from a batch source (validation_steps either way)."""
        if is_batch_source(validation):
            return self._evaluate_source(BatchSource("fit (validation_data)", validation, options["validation_steps"]))
        return self._evaluate_epochs(validation)

    def _evaluate_source(self, source, run=None):
        """Loss and metrics over one pass of ``source``."""
        return self._evaluate_over(source.epoch(), run, self._batch_preparer(source.method))

    def _evaluate_batches(self, data, steps, verbose, callbacks, return_dict):
        """evaluate over a batch source."""
        source = BatchSource("evaluate", data, steps)
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks], self,
                                            {"verbose": verbose, "steps": source.known_steps, "mode": "test"})
        run.call("on_test_begin", {})
        logs = self._evaluate_source(source, run)
        run.call("on_test_end", logs)
        return logs if return_dict else self._ordered(logs)

    def _predict_batches(self, data, steps, verbose, callbacks):
        """predict over a batch source (each item x, or a tuple whose first part is x)."""
        source = BatchSource("predict", data, steps)
        progbar = [callbacks_module.ProgbarLogger(verbose)] if verbose else []
        run = callbacks_module.CallbackList([*progbar, *callbacks], self,
                                            {"verbose": verbose, "steps": source.known_steps})
        run.call("on_predict_begin", {})
        outputs = []
        for batch, (x, _, _) in enumerate(source.epoch()):
            run.call("on_predict_batch_begin", batch, {})
            outputs.append(self._predict_batch(self._prepare_x(x, "predict")))
            run.call("on_predict_batch_end", batch, {"outputs": outputs[-1]})
        run.call("on_predict_end", {})
        if not outputs:
            raise ValueError("predict: the input yielded no batches")
        return joined(outputs)
