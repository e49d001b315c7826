"""Custom loss and metric functions written with ``nnengine.keras.ops``, against a fit recorded from Keras 3.

tests/data/keras3_schedules.json's "custom" entry comes from tests/data/make_schedule_references.py:
the same two functions, written with ``keras.ops``, compiled into a model and fitted for 3 epochs.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn
from nnengine import keras
from nnengine.keras import ops

REFERENCE = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["custom"]


def scaled_huber(y_true, y_pred):
    error = ops.abs(y_pred - y_true)
    quadratic = ops.minimum(error, 0.5)
    return ops.mean(0.5 * ops.square(quadratic) + 0.5 * (error - quadratic), axis=-1) * 3.0


def rms_error(y_true, y_pred):
    return ops.sqrt(ops.mean(ops.square(y_pred - y_true), axis=-1))


def reference_model():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(2)])
    model.set_weights([np.array(w, np.float32) for w in REFERENCE["start"]])
    return model


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
def test_a_custom_loss_and_metric_train_as_in_keras(jit):
    model = reference_model()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=scaled_huber, metrics=[rms_error], jit_compile=jit)
    x, y = np.array(REFERENCE["x"], np.float32), np.array(REFERENCE["y"], np.float32)
    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    for key in ("loss", "rms_error"):
        np.testing.assert_allclose(history.history[key], REFERENCE["history"][key], rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), REFERENCE["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), REFERENCE["evaluate"], rtol=1e-5)
    assert model.metrics_names == ["loss", "rms_error"]
    if jit:
        assert model.jit_report()["fallback_reason"] is None and model.jit_report()["captured"]["train"] >= 1


def test_a_loss_function_gets_gradients_by_finite_differences():
    w = nn.tensor(np.random.default_rng(0).standard_normal((3, 2)), dtype="float64", requires_grad=True)
    x = nn.tensor(np.random.default_rng(1).standard_normal((4, 3)), dtype="float64")
    y = nn.tensor(np.random.default_rng(2).standard_normal((4, 2)), dtype="float64")
    assert nn.gradcheck(lambda w: keras.losses.get(scaled_huber)(y, x @ w), w)


@pytest.mark.parametrize("name, fn, expected", [
    ("var", lambda x: ops.var(x, axis=0), lambda a: a.var(axis=0)),
    ("std", lambda x: ops.std(x), lambda a: a.std()),
    ("min", lambda x: ops.min(x, axis=1, keepdims=True), lambda a: a.min(axis=1, keepdims=True)),
    ("abs", ops.abs, np.abs),
    ("squeeze", lambda x: ops.squeeze(ops.expand_dims(x, 1), 1), lambda a: a),
    ("expand_dims", lambda x: ops.expand_dims(x, -1), lambda a: a[..., None]),
    ("clip", lambda x: ops.clip(x, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5)),
    ("where", lambda x: ops.where(ops.greater(x, 0), x, ops.zeros_like(x)), lambda a: np.where(a > 0, a, 0)),
    ("softmax", ops.softmax, lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
    ("ones_like", ops.ones_like, np.ones_like),
])
def test_keras_ops_match_numpy(name, fn, expected):
    a = np.random.default_rng(3).standard_normal((4, 3))
    np.testing.assert_allclose(fn(nn.tensor(a, dtype="float64")).numpy(), expected(a), rtol=1e-12, atol=1e-12)


def test_bad_loss_functions_get_clear_errors():
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: ops.mean(ops.square(y_pred - y_true)))
    with pytest.raises(ValueError, match=r"loss function '<lambda>' must return per-sample values, shape \(4,\) or "
                                         r"\(4, \.\.\.\), got shape \(\)"):
        model.fit(x, y, verbose=0)

    def numpy_loss(y_true, y_pred):
        return np.zeros(4)
    model.compile(optimizer="sgd", loss=numpy_loss)
    with pytest.raises(TypeError, match="loss function 'numpy_loss' must return a Tensor"):
        model.fit(x, y, verbose=0)
    model.compile(optimizer="sgd", loss="mse", metrics=[lambda y_true, y_pred: ops.sum(y_pred)])
    with pytest.raises(ValueError, match=r"metric function '<lambda>' must return per-sample values"):
        model.fit(x, y, verbose=0)


def test_a_model_with_a_custom_loss_saves_and_loads_uncompiled_with_a_warning(tmp_path):
    model = reference_model()
    model.compile(optimizer="adam", loss=scaled_huber, metrics=[rms_error])
    model.save(tmp_path / "m.h5")
    with pytest.warns(UserWarning, match="Unknown loss 'scaled_huber'"):
        loaded = nn.load_model(tmp_path / "m.h5")
    assert not loaded.compiled
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


MORE_LOSSES = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["losses"]


@pytest.mark.parametrize("case", MORE_LOSSES, ids=[case["class_name"] for case in MORE_LOSSES])
def test_more_losses_match_keras(case):
    loss = getattr(keras.losses, case["class_name"])(**case["arguments"])
    assert loss.name == case["name"] and isinstance(keras.losses.get(case["name"]), type(loss))
    y_true, y_pred = np.array(case["y_true"], np.float32), np.array(case["y_pred"], np.float32)
    np.testing.assert_allclose(loss(y_true, y_pred).numpy(), case["value"], rtol=2e-6)
    per_sample = getattr(keras.losses, case["class_name"])(reduction="none", **case["arguments"])
    np.testing.assert_allclose(per_sample(y_true, y_pred).numpy(), case["per_sample"], rtol=2e-6, atol=1e-7)
    wide = [nn.tensor(y_true, dtype="float64"), nn.tensor(y_pred, dtype="float64", requires_grad=True)]
    assert nn.gradcheck(lambda p: loss(wide[0], p), wide[1])


def test_more_losses_train_and_save(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss=keras.losses.Huber(delta=0.5), metrics=["mae"])
    x, y = np.random.default_rng(0).random((16, 4)).astype("float32"), np.eye(3, dtype="float32")[np.arange(16) % 3]
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = nn.load_model(tmp_path / "m.h5")
    assert isinstance(loaded.loss, keras.losses.Huber) and loaded.loss.delta == 0.5


def test_sequential_pop():
    model = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), keras.layers.Dense(2)])
    last = model.pop()
    assert isinstance(last, keras.layers.Dense) and last.units == 2 and len(model.layers) == 1
    assert model.output_shape == (None, 4) and model.predict(np.ones((2, 3)), verbose=0).shape == (2, 4)
    model.pop()
    with pytest.raises(TypeError, match="Sequential.pop: model .* has no layers to remove"):
        model.pop()


def test_a_model_subclass_without_call_is_refused_clearly():
    class Subclassed(keras.Model):
        pass
    with pytest.raises(TypeError, match="keras.Model: subclass Subclassed must define call"):
        Subclassed()
    with pytest.raises(TypeError, match=r"keras.Model\(\) needs inputs and outputs"):
        keras.Model()


METRICS = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["metrics"]


@pytest.mark.parametrize("case", METRICS["metrics"], ids=[f"{c['class_name']}-{i}" for i, c in
                                                          enumerate(METRICS["metrics"])])
def test_more_metrics_match_keras(case):
    metric = getattr(keras.metrics, case["class_name"])(**case["arguments"])
    assert metric.name == re.sub(r"_\d+$", "", case["name"])     # Keras numbered its second 'precision' etc.
    for y_true, y_pred, labels, weight in METRICS["batches"]:
        target = np.array(labels) if case["class_name"].startswith("Sparse") else np.array(y_true, np.float32)
        metric.update_state(target, np.array(y_pred, np.float32), sample_weight=weight)
    np.testing.assert_allclose(metric.result(), case["result"], rtol=2e-5, atol=1e-7)
    metric.reset_state()
    assert np.all(np.asarray(metric.result()) == 0)


def test_new_metrics_by_name_in_fit():
    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["precision", "recall", "auc"])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)).astype("float32"), (rng.random(64) > 0.5).astype("float32")
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
    assert {"precision", "recall", "auc", "val_auc"} <= set(history.history)
    assert all(0 <= value <= 1 for value in history.history["auc"])


REGULARIZED = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["regularized"]


def regularized_model():
    return keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(6, activation="relu", kernel_regularizer=keras.regularizers.L2(0.05),
                           bias_regularizer=keras.regularizers.L1(0.02)),
        keras.layers.Dense(4, activation="tanh", activity_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.03)),
        keras.layers.Dense(3, activation="softmax", kernel_regularizer="l1")])


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
def test_regularizers_train_as_in_keras(jit):
    model = regularized_model()
    model.set_weights([np.array(w, np.float32) for w in REGULARIZED["start"]])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5), loss="sparse_categorical_crossentropy",
                  jit_compile=jit)
    x, y = np.array(REGULARIZED["x"], np.float32), np.array(REGULARIZED["y"])
    history = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], REGULARIZED["loss"], rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), REGULARIZED["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), REGULARIZED["evaluate"], rtol=1e-5)


def test_regularizers_save_load_and_errors(tmp_path):
    model = regularized_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.h5")
    loaded = nn.load_model(tmp_path / "m.h5")
    first, second, third = loaded.layers
    assert isinstance(first.kernel_regularizer, keras.regularizers.L2) and first.kernel_regularizer.l2 == 0.05
    assert isinstance(second.activity_regularizer, keras.regularizers.L1L2) and second.activity_regularizer.l2 == 0.03
    assert isinstance(third.kernel_regularizer, keras.regularizers.L1) and third.kernel_regularizer.l1 == 0.01
    assert keras.regularizers.L2(0.5)(nn.tensor([3.0, -4.0])).item() == pytest.approx(12.5)
    # Keras's base Regularizer penalises nothing (its __call__ returns 0): a model with it trains as without
    penalty = keras.regularizers.Regularizer()(nn.tensor([3.0, -4.0], dtype="float64"))
    assert penalty.shape == () and penalty.dtype == np.float64 and penalty.item() == 0.0
    losses = []
    for regularizer in (None, keras.regularizers.Regularizer()):
        nn.utils.set_random_seed(0)
        plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_regularizer=regularizer)])
        plain.compile(optimizer="sgd", loss="mse")
        losses.append(plain.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=2, verbose=0).history["loss"])
    assert losses[0] == losses[1]
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'"):
        keras.layers.Dense(2, kernel_regularizer="l3")
    with pytest.raises(TypeError, match="L2: l2 must be a number, got '0.1'"):
        keras.regularizers.L2("0.1")


@pytest.mark.parametrize("method, expected", [
    (lambda t: t.abs(), np.abs), (lambda t: t.min(axis=0), lambda a: a.min(axis=0)),
    (lambda t: t.var(axis=1, keepdims=True), lambda a: a.var(axis=1, keepdims=True)),
    (lambda t: t.std(), lambda a: a.std()), (lambda t: t.expand_dims(0).squeeze(0), lambda a: a),
])
def test_tensor_methods_for_custom_functions_match_numpy_and_gradcheck(method, expected):
    a = np.random.default_rng(4).standard_normal((3, 4)) + 0.1
    np.testing.assert_allclose(method(nn.tensor(a, dtype="float64")).numpy(), expected(a), rtol=1e-12, atol=1e-12)
    assert nn.gradcheck(lambda t: method(t), nn.tensor(a, dtype="float64", requires_grad=True))


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack_match_numpy_and_gradcheck(device, axis):
    rng = np.random.default_rng(5)
    parts = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    tensors = [nn.tensor(p, dtype="float64", device=device, requires_grad=True) for p in parts]
    np.testing.assert_array_equal(ops.concatenate(tensors, axis=axis).numpy(), np.concatenate(parts, axis=axis))
    np.testing.assert_array_equal(ops.stack(tensors, axis=axis).numpy(), np.stack(parts, axis=axis))
    assert nn.gradcheck(lambda a, b, c: ops.concatenate([a, b * 2.0, c], axis=axis).exp(), *tensors)
    assert nn.gradcheck(lambda a, b: ops.stack([a, b], axis=axis) ** 2, *tensors[:2])
    with pytest.raises(ValueError, match="cannot be joined along axis"):
        ops.concatenate([tensors[0], nn.tensor(np.ones((3, 3)), dtype="float64", device=device)], axis=1)
