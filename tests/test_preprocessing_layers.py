"""Keras's Normalization layer (nnengine/preprocessing_layers.py): adapt, the formula, configs and files.

Expected values are Keras 3's formula written in numpy: y = (x - mean) / max(sqrt(variance), 1e-7) with the
population variance over every axis not in ``axis`` (the layer matched Keras 3.15 itself to 1e-6 in float32,
adapted on one array or on batches, and files moved both ways, when this was written).
"""
import numpy as np
import pytest

import nnengine as nn

Normalization = nn.keras.layers.Normalization


def _x(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((40, 4, 3)) * np.array([1.0, 2.0, 3.0]) + np.array([5.0, 0.0, -2.0])


def _keras(x, keep, invert=False):
    reduce = tuple(a for a in range(x.ndim) if a not in keep)
    mean, variance = x.mean(axis=reduce, keepdims=True), x.var(axis=reduce, keepdims=True)
    scale = np.maximum(np.sqrt(variance), 1e-7)
    return mean + x * scale if invert else (x - mean) / scale


@pytest.mark.parametrize("axis, keep", [(-1, (2,)), (None, ()), ((1, 2), (1, 2)), (1, (1,))])
@pytest.mark.parametrize("invert", [False, True])
def test_adapt_then_normalize_as_keras(axis, keep, invert):
    x = _x()
    layer = Normalization(axis=axis, invert=invert, dtype="float64")
    layer.adapt(x)
    np.testing.assert_allclose(layer(x).numpy(), _keras(x, keep, invert), rtol=1e-10, atol=1e-10)
    mean, variance, count = layer.get_weights()
    assert mean.shape == tuple(x.shape[a] for a in keep) and int(count) == x.size // max(mean.size, 1)
    assert not layer.trainable_weights


def test_adapting_on_batches_merges_them_exactly():
    x = _x(1)
    whole, batched = Normalization(dtype="float64"), Normalization(dtype="float64")
    whole.adapt(x)
    batched.adapt([x[:7], x[7:30], x[30:]])
    for a, b in zip(whole.get_weights(), batched.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_given_mean_and_variance_broadcast_and_live_in_the_config():
    x = _x()
    layer = Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.25])
    np.testing.assert_allclose(layer(x.astype(np.float32)).numpy(),
                               (x - [1.0, 2.0, 3.0]) / np.sqrt([4.0, 1.0, 0.25]), rtol=1e-5, atol=1e-5)
    config = layer.get_config()
    assert config["mean"] == [1.0, 2.0, 3.0] and config["axis"] == [-1] and not layer.weights
    assert Normalization.from_config(config).get_config() == config
    scalar = Normalization(mean=3.0, variance=4.0)
    np.testing.assert_allclose(scalar(np.full((2, 3), 5.0)).numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_model_with_an_adapted_normalization_trains_and_saves(tmp_path, suffix):
    x = _x(2).reshape(40, -1).astype(np.float32)
    y = x[:, :1] * 0.1
    normalizer = Normalization()
    normalizer.adapt(x)
    model = nn.Sequential([nn.Input((12,)), normalizer, nn.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / f"model{suffix}")
    restored = nn.load_model(tmp_path / f"model{suffix}")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(restored.layers[0].get_weights()[0], normalizer.get_weights()[0])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match="one shape"):
        Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="was given its mean and variance"):
        Normalization(mean=1.0, variance=1.0).adapt(_x())
    with pytest.raises(ValueError, match="out of range"):
        Normalization(axis=5).adapt(_x())
    with pytest.raises(ValueError, match="no data"):
        Normalization().adapt([])
    with pytest.raises(TypeError, match="an array or an iterable"):
        Normalization().adapt(3.0)
