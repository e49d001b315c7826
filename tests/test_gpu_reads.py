"""fit and evaluate on a GPU read their results back rarely (batch_loops.PendingBatches), on the fake GPU.

A read of a device value waits for the GPU, so the loops keep each step's loss and predictions on the
device and read them in groups: no step syncs with the host, and the history is exactly that of reading
every step as it ends.
"""
import warnings

import cuda_fake
import numpy as np
import pytest
from test_cuda_backend import FakeGPU

import nnengine as nn
from nnengine import batch_loops


def _model():
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.layers.Dense(16, activation="relu", input_shape=(10,)),
                           nn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model.to("cuda")


def _data(samples=100):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 10)).astype(np.float32)
    return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, samples)]


class Reads:
    """Counts PendingBatches.read calls that read something, and the host syncs made inside steps."""

    def __init__(self, monkeypatch, model, log):
        self.groups, self.syncs_in_steps = [], []
        original = batch_loops.PendingBatches.read

        def read(pending):
            if pending.items:
                self.groups.append([item[0] for item in pending.items])
            original(pending)
        monkeypatch.setattr(batch_loops.PendingBatches, "read", read)
        run = model._compiler.run

        def step(*args, **kwargs):
            before = len(log.syncs)
            result = run(*args, **kwargs)
            self.syncs_in_steps += log.syncs[before:]
            return result
        model._compiler.run = step


def _fit(monkeypatch, defer=True, **options):
    log = cuda_fake.DeviceLog()
    if not defer:
        monkeypatch.setattr(batch_loops.PendingBatches, "for_loop", classmethod(lambda cls, *args: None))
    x, y = _data()
    with FakeGPU():
        cuda_fake._LOG["current"] = log
        model = _model()
        reads = Reads(monkeypatch, model, log)
        history = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.2, **options).history
        evaluation = model.evaluate(x, y, batch_size=10, verbose=0)
    return history, evaluation, reads


def test_no_step_syncs_and_results_are_read_once_per_loop(monkeypatch):
    monkeypatch.setattr(batch_loops, "READ_INTERVAL_S", 1e9)
    history, evaluation, reads = _fit(monkeypatch, verbose=0)
    assert reads.syncs_in_steps == []
    # per epoch: the 8 training steps in one read, the 2 validation steps in another; then evaluate's 10
    assert reads.groups == [list(range(8)), [0, 1]] * 3 + [list(range(10))]
    monkeypatch.undo()
    per_step, per_step_evaluation, per_step_reads = _fit(monkeypatch, defer=False, verbose=0)
    assert history == per_step and evaluation == per_step_evaluation and per_step_reads.groups == []


def test_reads_come_after_at_most_max_pending_steps(monkeypatch):
    monkeypatch.setattr(batch_loops, "READ_INTERVAL_S", 1e9)
    monkeypatch.setattr(batch_loops, "MAX_PENDING_STEPS", 3)
    _, _, reads = _fit(monkeypatch, verbose=0)
    assert reads.groups[:3] == [[0, 1, 2], [3, 4, 5], [6, 7]]


def test_the_progress_bar_is_drawn_from_the_reads(monkeypatch, capsys):
    monkeypatch.setattr(batch_loops, "READ_INTERVAL_S", 0.0)      # a read after every step
    history, _, reads = _fit(monkeypatch, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 3/3" in out and f"val_loss: {history['val_loss'][-1]:.4f}" in out
    assert reads.syncs_in_steps == [] and len(reads.groups) >= 24


def test_a_callback_that_needs_every_batch_gets_every_batch(monkeypatch):
    seen = []
    callback = nn.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append((batch, logs["loss"])))
    _, _, reads = _fit(monkeypatch, verbose=0, callbacks=[callback])
    assert [batch for batch, _ in seen] == list(range(8)) * 3
    # training reads every step as it ends; validation and evaluate (no batch callback there) still defer
    assert reads.groups == [[0, 1]] * 3 + [list(range(10))]


def test_a_nan_loss_is_reported_with_its_batch_when_it_is_read(monkeypatch):
    monkeypatch.setattr(batch_loops, "READ_INTERVAL_S", 1e9)
    x, y = _data(40)
    x[15] = np.nan                      # the second batch of 10
    with FakeGPU():
        model = _model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, epochs=1, batch_size=10, verbose=0, shuffle=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "the loss is nan at epoch 1, batch 1" in messages[0]


def test_a_generator_that_refills_its_arrays_gets_the_metrics_of_each_batch(monkeypatch):
    monkeypatch.setattr(batch_loops, "READ_INTERVAL_S", 1e9)
    x, y = _data(40)

    def refilled(xs, ys):                       # one pair of buffers, refilled for every batch
        x_buffer, y_buffer = np.empty((10, 10), np.float32), np.empty((10, 10), np.float32)
        for start in range(0, 40, 10):
            x_buffer[...], y_buffer[...] = xs[start:start + 10], ys[start:start + 10]
            yield x_buffer, y_buffer

    def accuracy(device):
        with FakeGPU():
            model = _model()
            if device == "numpy":
                model.to("numpy")
            return model.evaluate(refilled(x, y), verbose=0)
    assert accuracy("cuda") == accuracy("numpy")


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_host_devices_read_every_step_as_it_ends(device):
    model = nn.Sequential([nn.layers.Dense(3, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    model.to(device)
    assert batch_loops.PendingBatches.for_loop(model, None, "on_test_batch_end") is None


def test_a_model_without_layers_still_gets_the_error_that_says_so_from_a_generator():
    def batches():
        while True:
            yield np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model = nn.Sequential([])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="the model has no layers"):
        model.fit(batches(), steps_per_epoch=2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="the model has no layers"):
        model.evaluate(batches(), steps=2, verbose=0)


def _fit_two_outputs(monkeypatch, defer):
    """A model with two outputs trained on the fake GPU: (History, evaluate's list, Reads)."""
    if not defer:
        monkeypatch.setattr(batch_loops.PendingBatches, "for_loop", classmethod(lambda cls, *args: None))
    x, y = _data()
    log = cuda_fake.DeviceLog()
    with FakeGPU():
        cuda_fake._LOG["current"] = log
        nn.utils.set_random_seed(0)
        inputs = nn.keras.Input((10,))
        hidden = nn.layers.Dense(16, activation="relu")(inputs)
        model = nn.keras.Model(inputs, [nn.layers.Dense(10, activation="softmax", name="cls")(hidden),
                                        nn.layers.Dense(1, name="reg")(hidden)])
        model.compile(optimizer="adam", loss=["categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]],
                      weighted_metrics=[None, ["mae"]])
        model = model.to("cuda")
        reads = Reads(monkeypatch, model, log)
        history = model.fit(x, [y, x[:, :1]], sample_weight=np.linspace(0, 2, len(x)), epochs=2, batch_size=10,
                            validation_split=0.2, verbose=0).history
        evaluation = model.evaluate(x, {"cls": y, "reg": x[:, :1]}, batch_size=10, verbose=0)
    return history, evaluation, reads


def test_each_outputs_loss_and_metrics_are_read_later_as_they_would_be_at_once(monkeypatch):
    monkeypatch.setattr(batch_loops, "READ_INTERVAL_S", 1e9)
    history, evaluation, reads = _fit_two_outputs(monkeypatch, defer=True)
    assert reads.syncs_in_steps == [] and reads.groups[:2] == [list(range(8)), [0, 1]]
    assert sorted(history) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae", "reg_weighted_mae",
                               "val_cls_accuracy", "val_cls_loss", "val_loss", "val_reg_loss", "val_reg_mae",
                               "val_reg_weighted_mae"]
    assert history["reg_weighted_mae"] != history["reg_mae"]           # the weights reached the deferred reads
    monkeypatch.undo()
    per_step, per_step_evaluation, _ = _fit_two_outputs(monkeypatch, defer=False)
    assert history == per_step and evaluation == per_step_evaluation
