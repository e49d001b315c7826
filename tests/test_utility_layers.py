"""ReLU, LeakyReLU, Softmax, Rescaling, Permute, RepeatVector, Identity (nnengine/utility_layers.py).

The expected values are Keras 3's formulas written out in numpy (the layers matched Keras 3.15 itself
exactly, softmax to 6e-8, when this was written); every gradient is checked by finite differences in
float64; configs carry Keras's keys, and the layers save, load and train inside a compiled step.
"""
import numpy as np
import pytest

import nnengine as nn

L = nn.keras.layers


def _x(shape=(4, 3, 5), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x.reshape(-1)[:4] = [0.5, 2.0, -0.0, 6.0]            # values on the thresholds and limits used below
    return x


def _keras_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """Keras 3's relu: x * (x > threshold) (max(x, 0) when threshold is 0), clipped, minus the leak."""
    kept = np.maximum(x, 0) if threshold == 0 else x * (x > threshold)
    if max_value is not None:
        kept = np.minimum(kept, max_value)
    return kept - negative_slope * np.maximum(threshold - x, 0)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CASES = [
    (L.ReLU(), lambda x: _keras_relu(x)),
    (L.ReLU(max_value=2.0), lambda x: _keras_relu(x, max_value=2.0)),
    (L.ReLU(negative_slope=0.1), lambda x: _keras_relu(x, negative_slope=0.1)),
    (L.ReLU(threshold=0.5), lambda x: _keras_relu(x, threshold=0.5)),
    (L.ReLU(max_value=6.0, negative_slope=0.2, threshold=0.5),
     lambda x: _keras_relu(x, max_value=6.0, negative_slope=0.2, threshold=0.5)),
    (L.LeakyReLU(), lambda x: np.where(x > 0, x, 0.3 * x)),
    (L.LeakyReLU(negative_slope=0.01), lambda x: np.where(x > 0, x, 0.01 * x)),
    (L.Softmax(), lambda x: _softmax(x, -1)),
    (L.Softmax(axis=1), lambda x: _softmax(x, 1)),
    (L.Rescaling(1 / 255, offset=-1.0), lambda x: x / 255 - 1.0),
    (L.Permute((2, 1)), lambda x: x.transpose(0, 2, 1)),
    (L.Identity(), lambda x: x),
]


@pytest.mark.parametrize("layer, expected", CASES, ids=lambda c: c.name if hasattr(c, "name") else "")
def test_values_follow_keras_and_gradients_check(layer, expected):
    x = _x()
    np.testing.assert_allclose(layer(x.astype(np.float32)).numpy(), expected(x.astype(np.float32)), rtol=1e-6,
                               atol=1e-7)
    smooth = _x(seed=1) + 0.05                              # away from the kinks, for finite differences
    fresh = type(layer).from_config({**layer.get_config(), "dtype": "float64"})
    assert nn.gradcheck(lambda t: fresh(t), nn.tensor(smooth, requires_grad=True)).passed
    assert fresh.compute_output_shape((None, 3, 5)) == (None, *expected(x).shape[1:])


def test_repeat_vector():
    x = _x((4, 5)).astype(np.float32)
    layer = L.RepeatVector(3)
    np.testing.assert_array_equal(layer(x).numpy(), np.repeat(x[:, None, :], 3, axis=1))
    assert layer.compute_output_shape((None, 5)) == (None, 3, 5)
    double = L.RepeatVector(3, dtype="float64")
    assert nn.gradcheck(lambda t: double(t), nn.tensor(_x((4, 5)), requires_grad=True)).passed
    with pytest.raises(ValueError, match=r"expects \(batch, features\) inputs"):
        layer(_x())


@pytest.mark.parametrize("layer, keys", [
    (L.ReLU(), {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}),
    (L.LeakyReLU(), {"negative_slope": 0.3}), (L.Softmax(), {"axis": -1}),
    (L.Rescaling(0.5), {"scale": 0.5, "offset": 0.0}), (L.Permute((2, 1)), {"dims": [2, 1]}),
    (L.RepeatVector(3), {"n": 3}), (L.Identity(), {}),
])
def test_configs_have_keras_keys_and_defaults(layer, keys):
    config = layer.get_config()
    assert {key: config[key] for key in keys} == keys
    assert type(layer).from_config(config).get_config() == config


def test_automatic_names_are_keras_names():
    assert L.ReLU().name.startswith("re_lu") and L.LeakyReLU().name.startswith("leaky_re_lu")
    assert L.RepeatVector(2).name.startswith("repeat_vector")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_model_of_them_trains_compiled_and_saves(tmp_path, suffix):
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 256, (32, 4, 3)).astype(np.uint8), rng.integers(0, 3, 32)
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.Input((4, 3)), L.Rescaling(1 / 255), L.Permute((2, 1)), L.Flatten(),
                           L.Dense(8), L.LeakyReLU(0.1), L.Dense(8), L.ReLU(max_value=6.0), L.RepeatVector(2),
                           L.Flatten(), L.Identity(), L.Dense(3), L.Softmax()])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert model.jit_report()["fallback_reason"] is None and model.jit_report()["captured"]["train"] >= 1
    model.save(tmp_path / f"model{suffix}")
    np.testing.assert_array_equal(nn.load_model(tmp_path / f"model{suffix}").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_bad_arguments_are_refused_naming_the_layer():
    with pytest.raises(ValueError, match="ReLU .*max_value"):
        L.ReLU(max_value=-1)
    with pytest.raises(ValueError, match="LeakyReLU .*negative_slope"):
        L.LeakyReLU(negative_slope=-0.5)
    with pytest.raises(ValueError, match="Permute .*permutation of 1..2"):
        L.Permute((0, 1))
    with pytest.raises(ValueError, match=r"Permute .*need inputs of rank 3"):
        L.Permute((2, 1))(_x((2, 3)))
    with pytest.raises(ValueError, match="RepeatVector .*n"):
        L.RepeatVector(0)
    with pytest.raises(TypeError, match="Rescaling .*scale"):
        L.Rescaling("big")


def test_a_model_without_trainable_weights_fits_with_keras_warning():
    model = nn.Sequential([nn.Input((3,)), L.ReLU()])
    model.compile(optimizer="adam", loss="mse")
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        history = model.fit(np.ones((4, 3)), np.zeros((4, 3)), epochs=2, verbose=0).history
    assert history["loss"] == [1.0, 1.0]
