"""Callbacks: Keras's hook order and the behaviour of each built-in callback."""
import csv
import math

import numpy as np
import pytest
from keras_helpers import classification_data, small_model

import nnengine as nn


def compiled(optimizer="adam", metrics=("accuracy",)):
    model = small_model()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


class Recorder(nn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            return lambda *args: self.calls.append((name, *args[:1])) if args and isinstance(args[0], int) \
                else self.calls.append((name,))
        return super().__getattribute__(name)


def test_fit_calls_keras_hooks_in_order():
    x, y = classification_data(40)
    recorder = Recorder()
    compiled().fit(x, y, epochs=1, batch_size=16, validation_split=0.2, verbose=0, callbacks=[recorder])
    assert recorder.calls == [
        ("on_train_begin",), ("on_epoch_begin", 0),
        ("on_train_batch_begin", 0), ("on_train_batch_end", 0), ("on_train_batch_begin", 1),
        ("on_train_batch_end", 1), ("on_epoch_end", 0), ("on_train_end",)]
    assert recorder.params == {"verbose": 0, "epochs": 1, "steps": 2}


def test_evaluate_and_predict_call_their_hooks():
    x, y = classification_data(20)
    recorder = Recorder()
    model = compiled()
    model.evaluate(x, y, batch_size=10, verbose=0, callbacks=[recorder])
    model.predict(x, batch_size=10, verbose=0, callbacks=[recorder])
    names = [call[0] for call in recorder.calls]
    assert names == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_batch_begin",
                     "on_test_batch_end", "on_test_end", "on_predict_begin", "on_predict_batch_begin",
                     "on_predict_batch_end", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    x, y = classification_data(40)
    model = compiled()
    losses = iter([1.0, 0.5, 0.7, 0.6, 0.9, 0.2])
    snapshots = []

    class FakeValidation(nn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            snapshots.append(self.model.get_weights())

    stopper = nn.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[FakeValidation(), stopper])
    assert history.epoch == [0, 1, 2, 3]                  # best at epoch 1; epochs 2 and 3 do not improve
    assert stopper.stopped_epoch == 3 and stopper.best == 0.5
    for got, best in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(got, best)


def test_early_stopping_mode_auto_maximises_accuracy():
    stopper = nn.callbacks.EarlyStopping(monitor="val_accuracy", min_delta=0.01)
    assert stopper.mode == "max"
    assert stopper.is_better(0.52, 0.5) and not stopper.is_better(0.505, 0.5)


def test_model_checkpoint_saves_only_improvements(tmp_path):
    x, y = classification_data(40)
    model = compiled()
    values = iter([0.9, 0.5, 0.8])
    saved = []

    class FakeValidation(nn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)

    class Spy(nn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append(sorted(p.name for p in tmp_path.iterdir()))

    path = str(tmp_path / "best-{epoch:02d}.h5")
    model.fit(x, y, epochs=3, verbose=0,
              callbacks=[FakeValidation(), nn.callbacks.ModelCheckpoint(path, save_best_only=True), Spy()])
    assert saved == [["best-01.h5"], ["best-01.h5", "best-02.h5"], ["best-01.h5", "best-02.h5"]]
    restored = nn.load_model(tmp_path / "best-02.h5")
    assert [w.shape for w in restored.get_weights()] == [w.shape for w in model.get_weights()]


def test_model_checkpoint_weights_only(tmp_path):
    x, y = classification_data(40)
    model = compiled()
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[nn.callbacks.ModelCheckpoint(tmp_path / "w.weights.h5", save_weights_only=True)])
    other = small_model(seed=5)
    other.load_weights(tmp_path / "w.weights.h5")
    for got, expected in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_reduce_lr_on_plateau_lowers_the_rate_after_patience():
    x, y = classification_data(40)
    model = compiled(optimizer=nn.optimizers.Adam(0.01))
    values = iter([1.0, 1.0, 1.0, 1.0, 1.0])
    rates = []

    class FakeValidation(nn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)

    class Spy(nn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rates.append((self.model.optimizer.learning_rate, logs["learning_rate"]))

    model.fit(x, y, epochs=5, verbose=0, callbacks=[
        FakeValidation(), nn.callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.004), Spy()])
    assert [r[0] for r in rates] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.004])
    assert [r[1] for r in rates] == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005])


def test_terminate_on_nan_stops_and_fit_reports_a_nan_loss(capsys):
    x, y = classification_data(64)
    x[40] = np.nan
    model = compiled(metrics=())
    with pytest.warns(RuntimeWarning, match=r"the loss is nan at epoch 1, batch 2"):
        history = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0,
                            callbacks=[nn.callbacks.TerminateOnNaN()])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    assert history.epoch == [0] and math.isnan(history.history["loss"][0])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = classification_data(40)
    path = tmp_path / "log.csv"
    history = compiled().fit(x, y, epochs=3, verbose=0, validation_split=0.25,
                             callbacks=[nn.callbacks.CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == pytest.approx(history.history["loss"])
    compiled().fit(x, y, epochs=1, verbose=0, callbacks=[nn.callbacks.CSVLogger(path, append=True)])
    assert len(list(csv.DictReader(open(path)))) == 4


def test_lambda_callback_and_stop_training():
    x, y = classification_data(40)
    model = compiled()
    epochs = []

    def stop(epoch, logs):
        epochs.append(epoch)
        model.stop_training = epoch == 1

    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[nn.callbacks.LambdaCallback(on_epoch_end=stop)])
    assert epochs == [0, 1] and history.epoch == [0, 1]
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_finish'"):
        nn.callbacks.LambdaCallback(on_epoch_finish=print)


def test_a_missing_monitored_metric_warns_with_the_available_keys():
    x, y = classification_data(20)
    with pytest.warns(UserWarning, match="'val_loss' is not available; available metrics: accuracy, loss"):
        compiled().fit(x, y, epochs=1, verbose=0, callbacks=[nn.callbacks.EarlyStopping()])


# -- NaN and infinity are never "better" (issue 12) -------------------------------------------------
def _epochs(callback, model, values, key="val_loss"):
    """Drive a callback's epoch hooks with ``values`` of ``key``, changing the weights each epoch."""
    callback.set_model(model)
    callback.set_params({"epochs": len(values), "steps": 1, "verbose": 0})
    callback.on_train_begin({})
    for epoch, value in enumerate(values):
        model.set_weights([np.full_like(w, value) for w in model.get_weights()])
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            break
    callback.on_train_end({})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_early_stopping_never_takes_a_non_finite_epoch_as_best(bad):
    model = compiled()
    model.stop_training = False
    stopper = nn.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    with pytest.warns(RuntimeWarning, match=rf"EarlyStopping: val_loss is {bad} this epoch; a value that is not "
                                            "finite is never an improvement, so this epoch is skipped"):
        _epochs(stopper, model, [bad, 3.0, bad, bad])
    assert stopper.best == 3.0 and stopper.best_epoch == 1
    assert model.stop_training                              # two epochs without improvement after the best
    assert all(np.all(w == 3.0) for w in model.get_weights())


def test_early_stopping_never_restores_non_finite_weights():
    model = compiled()
    model.stop_training = False
    stopper = nn.callbacks.EarlyStopping(patience=0, restore_best_weights=True)
    with pytest.warns(RuntimeWarning, match="is never an improvement"):
        _epochs(stopper, model, [math.nan, math.nan])
    assert stopper.best is None and stopper.best_weights is None
    assert model.stop_training


def test_model_checkpoint_skips_non_finite_epochs(tmp_path):
    model = compiled()
    checkpoint = nn.callbacks.ModelCheckpoint(str(tmp_path / "best.h5"), save_best_only=True)
    with pytest.warns(RuntimeWarning, match="ModelCheckpoint: val_loss is nan this epoch"):
        _epochs(checkpoint, model, [math.nan])
    assert not (tmp_path / "best.h5").exists()
    _epochs(checkpoint, model, [2.0, math.nan, 1.5])
    assert checkpoint.best == 1.5
    assert all(np.all(w == 1.5) for w in nn.load_model(tmp_path / "best.h5").get_weights())


def test_reduce_lr_on_plateau_counts_a_nan_epoch_as_no_improvement():
    model = compiled()
    reducer = nn.callbacks.ReduceLROnPlateau(patience=1, factor=0.5)
    with pytest.warns(RuntimeWarning):
        _epochs(reducer, model, [1.0, math.nan])
    assert reducer.best == 1.0
    assert model.optimizer.learning_rate == pytest.approx(0.0005)


def test_model_checkpoint_names_a_field_the_logs_lack(tmp_path):
    model = compiled()
    x, y = classification_data(16)
    checkpoint = nn.callbacks.ModelCheckpoint(str(tmp_path / "m-{val_loss:.2f}.h5"))
    with pytest.raises(ValueError, match=r"ModelCheckpoint: filepath '.*m-\{val_loss:.2f\}.h5' names 'val_loss', "
                                         r"which epoch 1 did not log \(logged: epoch, accuracy, loss\); validation "
                                         "values need validation_data or validation_split"):
        model.fit(x, y, callbacks=[checkpoint], verbose=0)


def test_a_callback_list_knows_which_hooks_act_so_idle_ones_cost_nothing():
    from nnengine.callback_base import CallbackList

    class Counting(nn.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    seen = []
    lambda_callback = nn.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(logs))
    idle = CallbackList([nn.callbacks.Callback(), nn.callbacks.History()], None, {})
    assert not idle.wants("on_train_batch_end") and idle.wants("on_epoch_end")     # History records epochs
    counting = Counting()
    model = nn.Sequential([nn.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 2)), batch_size=4, epochs=2, verbose=0,
              callbacks=[counting, lambda_callback])
    assert counting.batches == 4 and len(seen) == 4 and all("loss" in logs for logs in seen)
