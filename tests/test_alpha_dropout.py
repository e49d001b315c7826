"""AlphaDropout (noise_layers.py): Keras 3.15's formula on the layer's own draws, SELU's self-normalization kept,
the identity at inference, noise_shape, Keras's config, and the compiled step fed with its draws."""
import numpy as np
import pytest

import nnengine as nn
from keras_helpers import compiled_and_eager_runs
from nnengine.noise_layers import SELU_ALPHA, SELU_SCALE

keras = nn.keras
layers = keras.layers


def test_training_applies_keras_formula_to_the_layers_own_draws():
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    rate, saturation = 0.3, -SELU_ALPHA * SELU_SCALE
    out = layers.AlphaDropout(rate, seed=4)(x, training=True).numpy().astype(np.float64)
    kept = np.random.default_rng(4).uniform(0.0, 1.0, x.shape) >= rate     # the same generator, drawn again
    a = ((1 - rate) * (1 + rate * saturation ** 2)) ** -0.5
    b = -a * saturation * rate
    np.testing.assert_allclose(out, a * np.where(kept, x, saturation) + b, rtol=1e-6, atol=1e-6)
    assert 0 < (~kept).sum() < kept.size


def test_selu_inputs_keep_zero_mean_and_unit_variance():
    x = np.random.default_rng(1).standard_normal((400, 500)).astype(np.float32)
    out = layers.AlphaDropout(0.2, seed=1)(x, training=True).numpy()
    assert abs(out.mean()) < 0.01 and abs(out.var() - 1) < 0.01
    np.testing.assert_array_equal(layers.AlphaDropout(0.2)(x).numpy(), x)      # inference: the identity


def test_noise_shape_shares_a_draw_along_its_ones_and_config_is_keras():
    layer = layers.AlphaDropout(0.5, noise_shape=(None, 1, 4), seed=2)
    out = layer(np.zeros((3, 5, 4), np.float32), training=True).numpy()
    assert np.all(out == out[:, :1, :])                                   # one draw for every step
    assert {k: v for k, v in layer.get_config().items() if k not in ("name", "dtype")} == {
        "trainable": True, "rate": 0.5, "seed": 2, "noise_shape": [None, 1, 4]}
    with pytest.raises(ValueError, match=r"noise_shape \(None, 1, 4\) does not fit inputs of shape \(3, 5, 3\)"):
        layer(np.zeros((3, 5, 3), np.float32), training=True)
    with pytest.raises(ValueError, match=r"AlphaDropout 'alpha_dropout.*': rate"):
        layers.AlphaDropout(1.0)


def test_a_selu_network_with_alpha_dropout_trains_compiled_bitwise_as_eagerly():
    def make_model():
        nn.utils.set_random_seed(6)
        return keras.Sequential([keras.Input((6,)), layers.Dense(16, activation="selu",
                                                                 kernel_initializer="lecun_normal"),
                                 layers.AlphaDropout(0.1), layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(7)
    report = compiled_and_eager_runs(make_model, rng.standard_normal((24, 6)).astype(np.float32),
                                     rng.integers(0, 3, 24), batch_size=8)
    assert report["fallback_reason"] is None
