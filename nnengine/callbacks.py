"""Callbacks with Keras's hook names: History, ProgbarLogger, EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, TerminateOnNaN, CSVLogger and LambdaCallback.

``fit`` calls, in order: on_train_begin; per epoch on_epoch_begin, per batch
on_train_batch_begin / on_train_batch_end (logs hold the running epoch means),
then validation (on_test_begin ... on_test_end) and on_epoch_end with the
epoch's logs (loss, metrics, val_loss, val_metrics); finally on_train_end.
``evaluate`` and ``predict`` call the on_test_* and on_predict_* hooks.
A callback stops training by setting ``self.model.stop_training = True``.
"""
import csv
import math
import os
import warnings

from .progress import Progbar

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger", "LambdaCallback"]

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class: every hook does nothing; ``model`` and ``params`` are set before training."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        """Attach the model being trained."""
        self.model = model

    def set_params(self, params):
        """Receive fit's parameters: {'verbose', 'epochs', 'steps'}."""
        self.params = params


def _noop(self, *args, **kwargs):
    """Does nothing (override to act)."""


for _hook in HOOKS:
    setattr(Callback, _hook, _noop)


class CallbackList:
    """Calls a hook on each callback in order."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)

    def call(self, hook, *args):
        """Run ``hook`` on every callback."""
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


class History(Callback):
    """Records each epoch's logs: ``history.history['loss']`` is the list of epoch losses; ``epoch`` their indices."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        """Keep earlier epochs when fit continues the same model (Keras does the same)."""
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        """Append this epoch's values."""
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)


class ProgbarLogger(Callback):
    """Prints 'Epoch i/n' and a progress bar (verbose=1) or one line per epoch (verbose=2)."""

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose
        self.bar = self.bar_test = self.bar_predict = None
        self.epochs = 0

    def on_train_begin(self, logs=None):
        """Note the number of epochs."""
        self.epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        """Print 'Epoch i/n' and start a bar over the epoch's steps."""
        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.bar = Progbar(self.params["steps"], self.verbose)

    def on_train_batch_end(self, batch, logs=None):
        """Redraw the bar (a terminal only; piped output waits for the end)."""
        if batch + 1 < self.params["steps"]:
            self.bar.update(batch + 1, logs, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        """Finish the line with the epoch's values, validation included."""
        self.bar.update(self.params["steps"], logs, finalize=True)

    def on_test_begin(self, logs=None):
        """evaluate() on its own gets a bar; validation inside fit does not."""
        self.bar_test = Progbar(self.params["steps"], self.verbose) if self.params.get("mode") == "test" else None

    def on_test_batch_end(self, batch, logs=None):
        """Advance evaluate()'s bar."""
        if self.bar_test is not None:
            self.bar_test.update(batch + 1, logs)

    def on_predict_begin(self, logs=None):
        """predict() gets a bar."""
        self.bar_predict = Progbar(self.params["steps"], self.verbose)

    def on_predict_batch_end(self, batch, logs=None):
        """Advance predict()'s bar."""
        self.bar_predict.update(batch + 1, {})


class _Monitor(Callback):
    """Shared by callbacks that watch a logged quantity: decide 'better' by mode and min_delta."""

    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        if mode == "auto":
            # Keras: quantities whose name says accuracy (or AUC) grow; everything else shrinks.
            mode = "max" if any(key in monitor for key in ("acc", "auc")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)

    def is_better(self, current, reference):
        """True when ``current`` improves on ``reference`` by more than min_delta."""
        if reference is None:
            return True
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def current_value(self, logs):
        """The monitored value, or None with a warning that lists the available keys."""
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: the monitored metric {self.monitor!r} is not available; "
                          f"available metrics: {', '.join(logs or {})}", stacklevel=3)
        return value


class EarlyStopping(_Monitor):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs (Keras semantics).

    With ``restore_best_weights=True`` the model gets back the weights of the best epoch when it stops
    (or at the end of training, when the best epoch was not the last).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def on_train_begin(self, logs=None):
        """Reset the state."""
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        """Compare with the best so far; stop after ``patience`` epochs without improvement."""
        current = self.current_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self.is_better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.is_better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        """Report the stop and restore the best weights when asked."""
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Saves the model (or its weights) after each epoch; with ``save_best_only`` only when ``monitor`` improves.

    ``filepath`` may hold format fields filled from the epoch (1-based) and the logs,
    e.g. ``"model-{epoch:02d}-{val_loss:.2f}.h5"``.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, 0)
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: only save_freq='epoch' is supported, got {save_freq!r}")
        self.filepath, self.verbose = os.fspath(filepath), verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        """Save when due."""
        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        if self.save_best_only:
            current = self.current_value(logs)
            if current is None or not self.is_better(current, self.best):
                if self.verbose > 0 and current is not None:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(_Monitor):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr

    def on_train_begin(self, logs=None):
        """Reset the state."""
        self.wait, self.cooldown_counter, self.best = 0, 0, None

    def on_epoch_end(self, epoch, logs=None):
        """Lower the rate after ``patience`` epochs without improvement, then wait ``cooldown`` epochs."""
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate
        current = self.current_value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_better(current, self.best):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = self.model.optimizer.learning_rate
            if old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                self.model.optimizer.learning_rate = new
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        """Check the loss of this batch."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Writes each epoch's logs as a row of a CSV file (columns: epoch, then the log keys sorted)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys, self.file, self.writer = None, None, None

    def on_train_begin(self, logs=None):
        """Open the file (appending when asked and it exists)."""
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        """Write one row."""
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self.writer = csv.DictWriter(self.file, fieldnames=["epoch", *self.keys], delimiter=self.separator)
            if not self.header_written:
                self.writer.writeheader()
        self.writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self.file.flush()

    def on_train_end(self, logs=None):
        """Close the file."""
        if self.file is not None:
            self.file.close()
            self.file, self.keys = None, None


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks):
        super().__init__()
        for name, function in hooks.items():
            hook = name if name in HOOKS else {"on_batch_begin": "on_train_batch_begin",
                                               "on_batch_end": "on_train_batch_end"}.get(name)
            if hook is None:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; valid: {', '.join(HOOKS)}")
            setattr(self, hook, function)
