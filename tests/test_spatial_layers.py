"""UpSampling, ZeroPadding and Cropping, 1-D and 2-D (nnengine/spatial_layers.py), against numpy's repeat, pad and
slicing (the layers matched Keras 3.15's outputs, shapes and configs exactly when this was written)."""
import numpy as np
import pytest

import nnengine as nn

L = nn.keras.layers


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


CASES = [
    (L.UpSampling2D(), (2, 5, 4, 3), lambda x: x.repeat(2, axis=1).repeat(2, axis=2)),
    (L.UpSampling2D(size=(3, 1)), (2, 5, 4, 3), lambda x: x.repeat(3, axis=1)),
    (L.UpSampling1D(size=3), (2, 7, 3), lambda x: x.repeat(3, axis=1)),
    (L.ZeroPadding2D(), (2, 5, 4, 3), lambda x: np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))),
    (L.ZeroPadding2D(padding=((1, 2), (0, 3))), (2, 5, 4, 3), lambda x: np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0)))),
    (L.ZeroPadding2D(padding=(2, 1)), (2, 5, 4, 3), lambda x: np.pad(x, ((0, 0), (2, 2), (1, 1), (0, 0)))),
    (L.ZeroPadding1D(padding=(2, 1)), (2, 7, 3), lambda x: np.pad(x, ((0, 0), (2, 1), (0, 0)))),
    (L.Cropping2D(cropping=((1, 2), (0, 1))), (2, 5, 4, 3), lambda x: x[:, 1:3, 0:3]),
    (L.Cropping2D(cropping=1), (2, 5, 4, 3), lambda x: x[:, 1:4, 1:3]),
    (L.Cropping1D(), (2, 7, 3), lambda x: x[:, 1:6]),
]


@pytest.mark.parametrize("layer, shape, expected", CASES, ids=lambda c: c.name if hasattr(c, "name") else "")
def test_values_shapes_gradients_and_configs(layer, shape, expected):
    x = _x(shape).astype(np.float32)
    np.testing.assert_array_equal(layer(x).numpy(), expected(x))
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *expected(x).shape[1:])
    double = type(layer).from_config({**layer.get_config(), "dtype": "float64"})
    assert double.get_config() == {**layer.get_config(), "name": double.name, "dtype": double.get_config()["dtype"]}
    assert nn.gradcheck(lambda t: double(t), nn.tensor(_x(shape), requires_grad=True)).passed


def test_configs_have_keras_keys():
    assert L.UpSampling2D().get_config()["size"] == [2, 2] and L.UpSampling1D().get_config()["size"] == 2
    assert L.ZeroPadding2D().get_config()["padding"] == [[1, 1], [1, 1]]
    assert L.ZeroPadding1D().get_config()["padding"] == [1, 1]
    assert L.Cropping2D().get_config()["cropping"] == [[0, 0], [0, 0]]
    assert L.Cropping1D().get_config()["cropping"] == [1, 1]
    assert "data_format" not in L.Cropping1D().get_config()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_an_image_to_image_model_trains_compiled_and_saves(tmp_path, suffix):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.Input((8, 8, 1)), L.Conv2D(4, 3, padding="same", activation="relu"),
                           L.MaxPooling2D(2), L.UpSampling2D(2), L.ZeroPadding2D(1), L.Cropping2D(1),
                           L.Conv2D(1, 3, padding="same")])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, x, epochs=3, batch_size=8, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] and model.output_shape == (None, 8, 8, 1)
    assert model.jit_report()["fallback_reason"] is None
    model.save(tmp_path / f"model{suffix}")
    np.testing.assert_array_equal(nn.load_model(tmp_path / f"model{suffix}").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_bad_arguments_and_inputs_are_refused():
    with pytest.raises(ValueError, match="bilinear is not supported"):
        L.UpSampling2D(interpolation="bilinear")
    with pytest.raises(ValueError, match="channels_last"):
        L.ZeroPadding2D(data_format="channels_first")
    with pytest.raises(ValueError, match="padding must be an int, 2 ints or 2"):
        L.ZeroPadding2D(padding=(1, 2, 3))
    with pytest.raises(ValueError, match="size must be an int or 2 ints"):
        L.UpSampling2D(size=(1, 2, 3))
    with pytest.raises(ValueError, match="expects inputs of rank 4"):
        L.Cropping2D()(_x((2, 5, 3)))
    with pytest.raises(ValueError, match="leaves nothing"):
        L.Cropping1D(cropping=(3, 4))(_x((2, 7, 3)))
