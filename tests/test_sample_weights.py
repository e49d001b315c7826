"""sample_weight and class_weight in fit, evaluate and *_on_batch, against fits recorded from Keras 3.15.

tests/data/keras3_schedules.json's "weighted" entries come from tests/data/make_schedule_references.py:
a sample-weighted fit with weighted validation data, a class-weighted fit (softmax and sigmoid outputs),
and a sample-weighted evaluate after each.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from nnengine import keras

WEIGHTED = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["weighted"]


def recorded_model(run, jit):
    binary = run["kind"] == "binary_class_weight"
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu"),
                              keras.layers.Dense(1 if binary else 3, activation="sigmoid" if binary else "softmax")])
    model.set_weights([np.array(w, np.float32) for w in run["start"]])
    model.compile(optimizer=keras.optimizers.Adam(0.03), jit_compile=jit, metrics=["accuracy"],
                  loss="binary_crossentropy" if binary else "categorical_crossentropy")
    return model


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
@pytest.mark.parametrize("run", WEIGHTED, ids=[run["kind"] for run in WEIGHTED])
def test_weighted_fits_match_keras(run, jit):
    model = recorded_model(run, jit)
    x, y, weights = (np.array(run[key], np.float32) for key in ("x", "y", "weights"))
    if run["kind"] == "sample_weight":
        history = model.fit(x[:30], y[:30], sample_weight=weights[:30], epochs=3, batch_size=8, shuffle=False,
                            verbose=0, validation_data=(x[30:], y[30:], weights[30:]))
    else:
        class_weight = {int(k): v for k, v in run["class_weight"].items()}
        history = model.fit(x, y, class_weight=class_weight, validation_split=1 / 6, epochs=3, batch_size=8,
                            shuffle=False, verbose=0)
    for key, values in run["history"].items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    for ours, theirs in zip(model.get_weights(), run["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=weights, verbose=0), run["evaluate"], rtol=1e-5)


def test_weights_of_one_equal_no_weights_and_zero_weights_drop_samples():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 5)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 10)]
    model = recorded_model({"kind": "class_weight", "start": [w.tolist() for w in recorded_model(
        WEIGHTED[1], False).get_weights()]}, False)
    plain = model.evaluate(x, y, verbose=0)[0]
    assert model.evaluate(x, y, sample_weight=np.ones(10), verbose=0)[0] == pytest.approx(plain, rel=1e-6)
    mask = np.r_[np.ones(5), np.zeros(5)]
    half = model.evaluate(x[:5], y[:5], verbose=0)[0]
    assert model.evaluate(x, y, sample_weight=mask, verbose=0)[0] == pytest.approx(half / 2, rel=1e-5)  # / n
    before = model.get_weights()
    model.train_on_batch(x, y, sample_weight=np.zeros(10))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))     # Adam: zero gradient
    assert model.test_on_batch(x, y, sample_weight=mask)[0] == pytest.approx(half / 2, rel=1e-5)


@pytest.mark.parametrize("kwargs, kind, message", [
    (dict(sample_weight=np.ones(3)), ValueError, r"fit: sample_weight must have one weight per sample, shape \(10,\)"),
    (dict(sample_weight=np.array([np.nan] * 10)), ValueError, "sample_weight holds NaN or infinite values"),
    (dict(sample_weight=np.array(["a"] * 10)), TypeError, "sample_weight must hold numbers"),
    (dict(class_weight=[1, 2, 3]), TypeError, "class_weight must be a dict"),
    (dict(class_weight={"a": 1.0}), TypeError, "class_weight must map int class indices to finite numbers"),
    (dict(sample_weight=np.ones(10), class_weight={0: 1.0}), ValueError, "give sample_weight or class_weight"),
])
def test_bad_weights(kwargs, kind, message):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 5)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 10)]
    model = recorded_model(WEIGHTED[1], False)
    with pytest.raises(kind, match=message):
        model.fit(x, y, verbose=0, **kwargs)


def test_a_loss_object_takes_sample_weight():
    loss = keras.losses.MeanSquaredError()
    y_true, y_pred = np.zeros((4, 2), np.float32), np.ones((4, 2), np.float32)
    assert loss(y_true, y_pred, sample_weight=np.array([1.0, 0.0, 2.0, 1.0])).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sample_weight has 3 values for 4 samples"):
        loss(y_true, y_pred, sample_weight=np.ones(3))


def test_the_keras_features_run_on_the_numpy_reference_backend_too():
    """The same recorded weighted fit on the "numpy" device (every feature is device-agnostic: its math is
    functional ops, so each backend computes it; CI runs the rest on "cpu")."""
    import nnengine as nn
    with nn.device("numpy"):
        test_weighted_fits_match_keras(WEIGHTED[0], True)
        test_weighted_fits_match_keras(WEIGHTED[1], False)
