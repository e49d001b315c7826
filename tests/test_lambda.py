"""Keras's Lambda layer: a function of Tensors as a layer, its output shape traced or given, compiled like any
layer, and refused by model files (nnengine writes no code into a file and runs none from one)."""
import numpy as np
import pytest
from keras_helpers import compiled_and_eager_runs

import nnengine as nn
from nnengine import keras

ops, layers = keras.ops, keras.layers


def _pooled_model():
    nn.utils.set_random_seed(0)
    inputs = keras.Input((None, 4))
    pooled = layers.Lambda(lambda t: ops.mean(t, axis=1), name="mean")(inputs)
    scaled = layers.Lambda(lambda t, k: t * k, arguments={"k": 0.5})(layers.Dense(3, activation="tanh")(pooled))
    return keras.Model(inputs, layers.Dense(2, activation="softmax")(scaled))


def test_a_lambda_traces_its_shape_trains_compiled_as_eagerly_and_gradchecks():
    model = _pooled_model()
    assert model.get_layer("mean").compute_output_shape((None, None, 4)) == (None, 4)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 5, 4)).astype("float32")
    report = compiled_and_eager_runs(_pooled_model, x, np.arange(24) % 2, epochs=2, batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1
    layer = layers.Lambda(lambda t: ops.sum(t * t, axis=-1, keepdims=True) + t, dtype="float64")
    assert nn.gradcheck(lambda t: layer(t), nn.tensor(rng.standard_normal((3, 4)), requires_grad=True)).passed


def test_unknown_sizes_stay_unknown_where_the_output_follows_them():
    assert layers.Lambda(lambda t: t * 2).compute_output_shape((None, None, 3)) == (None, None, 3)
    assert layers.Lambda(lambda t: t[:, :1]).compute_output_shape((None, None, 3)) == (None, 1, 3)
    assert layers.Lambda(lambda t: t, output_shape=(7,)).compute_output_shape((None, 3)) == (None, 7)
    assert layers.Lambda(lambda t: t, output_shape=lambda s: (s[0], 9)).compute_output_shape((None, 3)) == (None, 9)


def test_a_lambda_gives_the_mask_it_is_told():
    keep = np.array([[True, False]])
    masked = layers.Lambda(lambda t: t, mask=lambda inputs, mask: nn.tensor(keep))(nn.tensor(np.ones((1, 2, 3))))
    np.testing.assert_array_equal(masked._keras_mask.numpy(), keep)
    assert layers.Lambda(lambda t: t)(nn.tensor(np.ones((1, 2))))._keras_mask is None


def test_files_refuse_a_lambda_and_its_weights_still_save(tmp_path):
    model = _pooled_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    for name in ("model.keras", "model.h5"):
        with pytest.raises(ValueError, match="Lambda 'mean' holds Python code, which nnengine does not write"):
            model.save(tmp_path / name)
        assert not (tmp_path / name).exists()
    model.save_weights(tmp_path / "model.weights.h5")
    again = _pooled_model()
    again.load_weights(tmp_path / "model.weights.h5")
    x = np.ones((2, 3, 4), np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_functions_are_named():
    with pytest.raises(TypeError, match="Lambda 'f': function must be callable"):
        layers.Lambda(3, name="f")
    with pytest.raises(TypeError, match="Lambda 'g': the function must return a Tensor"):
        layers.Lambda(lambda t: 3.0, name="g")(np.ones((2, 2)))
