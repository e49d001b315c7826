"""Keras's ELU, PReLU, UnitNormalization, ActivityRegularization, SpatialDropout1D/2D, GaussianNoise, GaussianDropout
and Dropout's noise_shape: against Keras 3.15's file and results, their formulas, finite differences, and the
compiled step (their random numbers are drawn before each step: dropout_masks.py)."""
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, make_keras_files

import nnengine as nn
from nnengine import keras

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_noise_layers.npz")
FILES = make_keras_files()
layers = keras.layers


def test_keras_file_loads_and_predicts_and_evaluates_as_keras(tmp_path):
    model = keras.models.load_model(DATA / "keras3_noise_layers.keras")
    assert [type(layer).__name__ for layer in model.layers[1:]] == [type(layer).__name__ for layer in
                                                                    FILES.noise_layer_model(keras).layers[1:]]
    np.testing.assert_allclose(model.predict(RECORD["x"], verbose=0), RECORD["predictions"], atol=2e-7)
    np.testing.assert_allclose(model.evaluate(RECORD["x"], RECORD["y"], verbose=0), RECORD["evaluate"], rtol=1e-6)
    prelu = model.get_layer("p_re_lu")
    assert prelu.get_weights()[0].shape == (1, 5) and prelu.shared_axes == [1]
    assert model.get_layer("dropout").noise_shape == (None, 1, 5)
    assert_files_round_trip(model, RECORD["x"], tmp_path, (6, 4))


def test_the_compiled_step_with_noise_layers_is_the_eager_one():
    def make_model():
        nn.utils.set_random_seed(4)
        return FILES.noise_layer_model(keras)
    report = compiled_and_eager_runs(make_model, RECORD["x"], RECORD["y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


def _seeded(layer_class, *args, **kwargs):
    return layer_class(*args, seed=5, **kwargs), np.random.default_rng(5)


def test_training_draws_as_the_formulas_say():
    x = np.random.default_rng(0).standard_normal((4, 3, 6))
    layer, rng = _seeded(layers.SpatialDropout1D, 0.4, dtype="float64")
    mask = (rng.random((4, 1, 6)) >= 0.4) / 0.6                  # one value per sample and channel
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x * mask)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    layer, rng = _seeded(layers.GaussianNoise, 0.3, dtype="float64")
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x + rng.normal(0.0, 0.3, x.shape))
    layer, rng = _seeded(layers.GaussianDropout, 0.2, dtype="float64")
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x * rng.normal(1.0, 0.5, x.shape))
    layer, rng = _seeded(layers.Dropout, 0.5, noise_shape=(None, 1, None), dtype="float64")
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x * (rng.random((4, 1, 6)) >= 0.5) / 0.5)
    images = np.ones((2, 3, 3, 4))
    layer, rng = _seeded(layers.SpatialDropout2D, 0.5, dtype="float64")
    np.testing.assert_array_equal(layer(images, training=True).numpy(),
                                  images * (rng.random((2, 1, 1, 4)) >= 0.5) / 0.5)


def test_prelu_and_its_gradients():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2))
    x[np.abs(x) < 1e-3] = 0.5
    layer = layers.PReLU(alpha_initializer=keras.initializers.RandomNormal(seed=2), shared_axes=1, dtype="float64")
    out = layer(x).numpy()
    (alpha,) = layer.get_weights()
    assert alpha.shape == (1, 2)
    np.testing.assert_allclose(out, np.where(x > 0, x, alpha * x), rtol=1e-12)
    report = nn.gradcheck(lambda t: layer(t).sum() * 1.0, nn.tensor(x, requires_grad=True))
    assert report.passed, report
    weights = nn.gradcheck(lambda a: (nn.functional.relu(nn.tensor(x)) - a * nn.functional.relu(-nn.tensor(x))).sum(),
                           nn.tensor(alpha, requires_grad=True))
    assert weights.passed, weights
    with pytest.raises(ValueError, match="PReLU 'p': every axis it does not share needs a known size"):
        layers.PReLU(name="p").build((None, None, 3))


def test_unit_normalization_is_finite_at_zero():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    t = nn.tensor(x, requires_grad=True)
    out = layers.UnitNormalization(dtype="float64")(t)
    np.testing.assert_allclose(out.numpy(), [[0.6, 0.8], [0.0, 0.0]])
    out.sum().backward()
    assert np.all(np.isfinite(t.grad.numpy()))
    report = nn.gradcheck(lambda v: layers.UnitNormalization(axis=[1, 2], dtype="float64")(v),
                          nn.tensor(np.random.default_rng(3).standard_normal((2, 3, 4)), requires_grad=True))
    assert report.passed, report


def test_elu_and_activity_regularization():
    x = np.linspace(-3, 3, 12).reshape(2, 6)
    np.testing.assert_allclose(layers.ELU(alpha=0.5, dtype="float64")(x).numpy(), np.where(x > 0, x, 0.5 * np.expm1(x)))
    model = keras.Sequential([keras.Input((6,)), layers.ActivityRegularization(l1=0.1, l2=0.2)])
    model.compile("sgd", "mse")
    penalty = (0.1 * np.abs(x).sum() + 0.2 * (x * x).sum()) / 2          # divided by the batch size, as Keras
    assert model.evaluate(x, x, verbose=0) == pytest.approx(penalty)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="SpatialDropout1D 's' expects inputs of rank 3"):
        layers.SpatialDropout1D(0.2, name="s")(np.ones((2, 3)), training=True)
    with pytest.raises(ValueError, match="noise_shape \\(None, 2\\) does not fit inputs of shape \\(4, 3\\)"):
        layers.Dropout(0.2, noise_shape=(None, 2))(np.ones((4, 3)), training=True)
    with pytest.raises(ValueError, match="rate must be a finite number in \\[0, 1\\)"):
        layers.GaussianDropout(1.0)
    with pytest.raises(ValueError, match="stddev must be a finite number >= 0"):
        layers.GaussianNoise(-0.1)
    with pytest.raises(ValueError, match="data_format must be 'channels_last'"):
        layers.SpatialDropout2D(0.1, data_format="channels_first")
