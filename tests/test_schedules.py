"""Learning-rate schedules and gradient clipping, against values and training runs recorded from Keras 3.

tests/data/keras3_schedules.json comes from tests/data/make_schedule_references.py (Keras 3.15, torch
backend): every schedule's value at steps 0..59, and four 4-epoch fits with schedules and clipping from
the same starting weights, with Keras's per-epoch losses and final weights.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn
from nnengine import keras
from nnengine.optimizers import schedules

REFERENCE = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())


@pytest.mark.parametrize("case", REFERENCE["schedules"],
                         ids=[f"{c['class_name']}-{i}" for i, c in enumerate(REFERENCE["schedules"])])
def test_schedules_match_keras_step_by_step(case):
    schedule = getattr(schedules, case["class_name"])(**case["arguments"])
    ours = [schedule(step) for step in range(len(case["values"]))]
    np.testing.assert_allclose(ours, case["values"], rtol=2e-6, atol=1e-9)     # Keras computes in float32
    assert schedules.serialize(schedule)["config"] == case["config"]["config"]
    again = schedules.deserialize(case["config"])
    assert [again(step) for step in range(10)] == ours[:10]


def _optimizer(name, config):
    config = dict(config)
    if isinstance(config["learning_rate"], list):
        kind, arguments = config["learning_rate"]
        config["learning_rate"] = getattr(schedules, kind)(**arguments)
    return getattr(keras.optimizers, name)(**config)


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
@pytest.mark.parametrize("run", REFERENCE["runs"], ids=[f"{r['optimizer']}-{i}" for i, r in enumerate(REFERENCE["runs"])])
def test_training_with_schedules_and_clipping_matches_keras(run, jit):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.set_weights([np.array(w, np.float32) for w in run["start"]])
    model.compile(optimizer=_optimizer(run["optimizer"], run["config"]), loss="sparse_categorical_crossentropy",
                  jit_compile=jit)
    x, y = np.array(run["x"], np.float32), np.array(run["y"])
    history = model.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], run["loss"], rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), run["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)
    if jit:
        assert model.jit_report()["captured"].get("train", 0) >= 1 and model.jit_report()["fallback_reason"] is None


def test_a_schedule_is_evaluated_at_the_completed_step_count():
    schedule = schedules.PiecewiseConstantDecay([0, 1], [1.0, 0.5, 0.25])
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    param = nn.tensor([0.0], requires_grad=True)
    seen = []
    for _ in range(3):
        seen.append(optimizer.learning_rate)                 # the rate the next step will use
        before = param.numpy().copy()
        optimizer.apply_gradients([(nn.tensor([1.0]), param)])
        assert param.numpy() == pytest.approx(before - seen[-1])
    assert seen == [1.0, 0.5, 0.25]


def test_schedules_and_clipping_survive_save_and_load(tmp_path):
    schedule = schedules.CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=5)
    model = keras.Sequential([keras.layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=1.5), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 4)).astype("float32"), keras.utils.to_categorical(rng.integers(0, 3, 32), 3)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = nn.load_model(tmp_path / "m.h5")
    assert isinstance(loaded.optimizer.schedule, schedules.CosineDecay)
    assert loaded.optimizer.global_clipnorm == 1.5 and loaded.optimizer.iterations == 4
    assert loaded.optimizer.learning_rate == schedule(4)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_callback():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[halve])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    by_epoch = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))     # Keras's one-argument form
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[by_epoch])
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.02])


@pytest.mark.parametrize("returned", ["0.1", None, np.array([0.1, 0.2])])
def test_learning_rate_scheduler_refuses_what_is_not_a_number(returned):
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    bad = keras.callbacks.LearningRateScheduler(lambda epoch, lr: returned)
    with pytest.raises(ValueError, match=r'LearningRateScheduler: the output of the "schedule" function should be '
                                         "a float"):
        model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, callbacks=[bad])


def test_schedule_errors():
    with pytest.raises(TypeError, match="the learning rate comes from a ExponentialDecay schedule, so it cannot be set"):
        keras.optimizers.Adam(schedules.ExponentialDecay(0.1, 10, 0.9)).learning_rate = 0.5
    with pytest.raises(ValueError, match="values must have one more entry than boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="decay_steps must be a finite number > 0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="give clipnorm or global_clipnorm, not both"):
        keras.optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'Exotic'"):
        schedules.deserialize({"class_name": "Exotic", "config": {}})

    class Wordy(schedules.LearningRateSchedule):
        name = "wordy"

        def value(self, step):
            return "0.1"
    with pytest.raises(TypeError, match="Wordy: a schedule must return a number, got '0.1'"):
        keras.optimizers.SGD(Wordy()).learning_rate

    class Broken(schedules.LearningRateSchedule):
        def value(self, step):
            return math.nan
    broken = Broken()
    broken.name = "broken"
    optimizer = keras.optimizers.SGD(broken)
    with pytest.raises(ValueError, match="the Broken schedule gave learning rate nan at step 0"):
        optimizer.apply_gradients([(nn.tensor([1.0]), nn.tensor([0.0], requires_grad=True))])


@pytest.mark.parametrize("clip, expected", [
    (dict(clipnorm=1.0), [[0.6, 0.8], [0.0, 0.5]]),                 # [3, 4] -> norm 1; [0, 0.5] unchanged
    (dict(global_clipnorm=1.0), [[3 / 5.025, 4 / 5.025], [0.0, 0.5 / 5.025]]),   # sqrt(25 + 0.25) = 5.025
    (dict(clipvalue=0.4), [[0.4, 0.4], [0.0, 0.4]]),
])
def test_clipping_formulas(clip, expected):
    params = [nn.tensor([0.0, 0.0], requires_grad=True), nn.tensor([0.0, 0.0], requires_grad=True)]
    grads = [nn.tensor([3.0, 4.0]), nn.tensor([0.0, 0.5])]
    keras.optimizers.SGD(learning_rate=1.0, **clip).apply_gradients(zip(grads, params))
    for param, want in zip(params, expected):
        np.testing.assert_allclose(-param.numpy(), want, rtol=2e-3)


def test_a_learning_rate_function_of_no_arguments_is_read_every_step():
    rates = iter([0.5, 0.25])
    optimizer = keras.optimizers.SGD(learning_rate=lambda: next(rates))
    param = nn.tensor([0.0], requires_grad=True)
    optimizer.apply_gradients([(nn.tensor([1.0]), param)])
    optimizer.apply_gradients([(nn.tensor([1.0]), param)])
    assert param.numpy() == pytest.approx([-0.75])
    assert keras.optimizers.SGD(learning_rate=lambda: 0.1).get_config()["learning_rate"] == pytest.approx(0.1)


def test_a_schedule_must_implement_value():
    class Unfinished(schedules.LearningRateSchedule):     # LearningRateSchedule is abstract, as in Keras
        pass
    with pytest.raises(NotImplementedError, match="Unfinished must implement value"):
        Unfinished()(0)
