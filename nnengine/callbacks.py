"""Callbacks with Keras's hook names: History, ProgbarLogger, EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, TerminateOnNaN, CSVLogger and LambdaCallback (and BackupAndRestore, from backup.py).

``fit`` calls, in order: on_train_begin; per epoch on_epoch_begin, per batch
on_train_batch_begin / on_train_batch_end (logs hold the running epoch means),
then validation (on_test_begin ... on_test_end) and on_epoch_end with the
epoch's logs (loss, metrics, val_loss, val_metrics); finally on_train_end.
``evaluate`` and ``predict`` call the on_test_* and on_predict_* hooks.
A callback stops training by setting ``self.model.stop_training = True``.
"""
import csv
import inspect
import math
import os
import warnings

import numpy as np

from . import arguments
from .callback_base import HOOKS, Callback, CallbackList, noop_hook, check_verbose, is_secondary_process, \
    set_secondary_process
from .backup import BackupAndRestore
from .progress import Progbar

__all__ = ["set_secondary_process", "Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
           "BackupAndRestore"]

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

    needs_every_batch = False      # the bar shows the latest values: on a GPU, fit reads them a few times a second

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = 0 if is_secondary_process() else verbose
        self.bar = self.bar_test = self.bar_predict = None
        self.epochs = 0

    def __getattribute__(self, name):
        """Every hook does nothing when verbose is 0 (a secondary process of a distributed run)."""
        if name.startswith("on_") and object.__getattribute__(self, "verbose") == 0:
            return noop_hook.__get__(self)
        return object.__getattribute__(self, name)

    def on_train_begin(self, logs=None):
        """Note the number of epochs."""
        self.epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        """Print 'Epoch i/n' and start a bar over the epoch's steps (their number may be unknown: None)."""
        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.bar = Progbar(self.params["steps"], self.verbose)
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        """Redraw the bar (a terminal only; piped output waits for the end)."""
        self.seen = batch + 1
        if self.params["steps"] is None or batch + 1 < self.params["steps"]:
            self.bar.update(batch + 1, logs, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        """Finish the line with the epoch's values, validation included."""
        self.bar.update(self.params["steps"] or self.seen, logs, finalize=True)

    def on_test_begin(self, logs=None):
        """evaluate() on its own gets a bar; validation inside fit does not."""
        self.bar_test = Progbar(self.params["steps"], self.verbose) if self.params.get("mode") == "test" else None

    def on_test_batch_end(self, batch, logs=None):
        """Advance evaluate()'s bar."""
        if self.bar_test is not None:
            self.bar_test.update(batch + 1, logs)
            self.test_seen = batch + 1

    def on_test_end(self, logs=None):
        """Finish evaluate()'s bar when its length was unknown."""
        if self.bar_test is not None and self.params.get("steps") is None:
            self.bar_test.update(getattr(self, "test_seen", 0), logs, finalize=True)

    def on_predict_begin(self, logs=None):
        """predict() gets a bar."""
        self.bar_predict = Progbar(self.params["steps"], self.verbose)

    def on_predict_batch_end(self, batch, logs=None):
        """Advance predict()'s bar."""
        self.bar_predict.update(batch + 1, {})


class _Monitor(Callback):
    """Shared by callbacks that watch a logged quantity: decide 'better' by mode and min_delta.

    NaN and infinity are never better: an epoch whose monitored value is not finite is skipped with a
    warning (it cannot become the best epoch, and counts as an epoch without improvement).
    """

    def __init__(self, monitor, mode, min_delta, verbose=0):
        super().__init__()
        owner = type(self).__name__
        self.monitor = arguments.text(owner, "monitor", monitor)
        mode = arguments.choice(owner, "mode", mode, ("auto", "min", "max"))
        min_delta = arguments.number(owner, "min_delta", min_delta)
        self.verbose = check_verbose(owner, verbose)
        if mode == "auto":
            # Keras: quantities whose name says accuracy (or AUC) grow; everything else shrinks.
            mode = "max" if any(key in monitor for key in ("acc", "auc")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)

    def is_better(self, current, reference):
        """True when ``current`` improves on ``reference`` by more than min_delta; never for NaN or infinity."""
        if not math.isfinite(current):
            return False
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
        elif not math.isfinite(value):
            warnings.warn(f"{type(self).__name__}: {self.monitor} is {value} this epoch; a value that is not "
                          "finite is never an improvement, so this epoch is skipped", RuntimeWarning, stacklevel=3)
        return value


class EarlyStopping(_Monitor):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs (Keras semantics).

    With ``restore_best_weights=True`` the model gets back the weights of the best epoch when it stops
    (or at the end of training, when the best epoch was not the last).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta, verbose)
        self.patience = arguments.integer("EarlyStopping", "patience", patience, minimum=0)
        self.baseline = None if baseline is None else arguments.number("EarlyStopping", "baseline", baseline)
        self.restore_best_weights = arguments.boolean("EarlyStopping", "restore_best_weights", restore_best_weights)
        self.start_from_epoch = arguments.integer("EarlyStopping", "start_from_epoch", start_from_epoch, minimum=0)

    def on_train_begin(self, logs=None):
        """Reset the state."""
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        """Compare with the best so far; stop after ``patience`` epochs without improvement."""
        current = self.current_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self._keep_weights_if_finite()
        self.wait += 1
        if self.is_better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self._keep_weights_if_finite()
            if self.baseline is None or self.is_better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _keep_weights_if_finite(self):
        """Remember the model's weights as the ones to restore, unless any of them is NaN or infinite."""
        weights = self.model.get_weights()
        if all(np.isfinite(w).all() for w in weights):
            self.best_weights = weights

    def on_train_end(self, logs=None):
        """Report the stop and restore the best weights when asked (never weights that are not finite)."""
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
        super().__init__(monitor, mode, 0, verbose)
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: only save_freq='epoch' is supported, got {save_freq!r}")
        self.filepath = arguments.path("ModelCheckpoint", "filepath", filepath)
        self.save_best_only = arguments.boolean("ModelCheckpoint", "save_best_only", save_best_only)
        self.save_weights_only = arguments.boolean("ModelCheckpoint", "save_weights_only", save_weights_only)
        self.best = None if initial_value_threshold is None else \
            arguments.number("ModelCheckpoint", "initial_value_threshold", initial_value_threshold)
        suffixes = (".weights.h5",) if self.save_weights_only else (".h5", ".hdf5")
        if not self.filepath.endswith(suffixes):
            raise ValueError(f"ModelCheckpoint: filepath must end in {' or '.join(suffixes)} "
                             f"(save_weights_only={self.save_weights_only}), got {self.filepath!r}")

    def on_epoch_end(self, epoch, logs=None):
        """Save when due (never on a secondary process of a distributed run)."""
        if is_secondary_process():
            return
        path = self._path(epoch, logs or {})
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


    def _path(self, epoch, logs):
        """filepath with its fields filled from the epoch (1-based) and the logs, or a clear error."""
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as error:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} names {error.args[0]!r}, which epoch "
                             f"{epoch + 1} did not log (logged: epoch, {', '.join(logs)}); validation values "
                             "need validation_data or validation_split") from None
        except (ValueError, IndexError, AttributeError, TypeError) as error:
            raise ValueError(f"ModelCheckpoint: cannot fill filepath {self.filepath!r}: {error}") from None


class ReduceLROnPlateau(_Monitor):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta, verbose)
        owner = "ReduceLROnPlateau"
        self.factor = arguments.number(owner, "factor", factor, 0, 1, low_open=True, high_open=True)
        self.patience = arguments.integer(owner, "patience", patience, minimum=0)
        self.cooldown = arguments.integer(owner, "cooldown", cooldown, minimum=0)
        self.min_lr = arguments.number(owner, "min_lr", min_lr, low=0)

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


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (or ``schedule(epoch)``).

    ``epoch`` counts from 0 and ``lr`` is the current rate, as in Keras; the epoch's logs get
    ``learning_rate``. The optimizer's rate must be a float, not a schedule.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function of (epoch, lr), got "
                            f"{type(schedule).__name__}")
        self.schedule, self.verbose = schedule, check_verbose("LearningRateScheduler", verbose)

    def on_epoch_begin(self, epoch, logs=None):
        """Ask the schedule for this epoch's rate and set it."""
        rate = self._call_schedule(epoch, float(self.model.optimizer.learning_rate))
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.floating, np.integer)):
            raise ValueError(f'LearningRateScheduler: the output of the "schedule" function should be a float, got '
                             f"{rate!r} ({type(rate).__name__}) at epoch {epoch}")
        self.model.optimizer.learning_rate = float(rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(rate)}.")

    def _call_schedule(self, epoch, rate):
        """schedule(epoch, lr) when it takes two arguments, schedule(epoch) when it takes one (Keras's old API)."""
        try:
            parameters = inspect.signature(self.schedule).parameters.values()
        except (TypeError, ValueError):            # a builtin without a signature: try the two-argument form
            return self.schedule(epoch, rate)
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes_many = any(p.kind == p.VAR_POSITIONAL for p in parameters)
        return self.schedule(epoch, rate) if takes_many or len(positional) >= 2 else self.schedule(epoch)

    def on_epoch_end(self, epoch, logs=None):
        """Log the rate the epoch ran with."""
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


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
        self.filename = arguments.path("CSVLogger", "filename", filename)
        self.separator = arguments.text("CSVLogger", "separator", separator)
        self.append = arguments.boolean("CSVLogger", "append", append)
        self.keys, self.file, self.writer = None, None, None

    def on_train_begin(self, logs=None):
        """Open the file (appending when asked and it exists); a secondary process of a distributed run writes none."""
        if is_secondary_process():
            self.file = None
            return
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        """Write one row."""
        if self.file is None:
            return
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
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be a function, got {type(function).__name__}")
            setattr(self, hook, function)
