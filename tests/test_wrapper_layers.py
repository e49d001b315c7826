"""TimeDistributed (nnengine/layers.py) and the wrapper base (wrapper_layers.py): the layer applied at every step
with the same weights, Keras's names and files (fixtures written by Keras 3.15), gradients, errors."""
import pathlib

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip

import nnengine as nn

L = nn.keras.layers
DATA = pathlib.Path(__file__).parent / "data"


@pytest.mark.parametrize("make, shape", [
    (lambda: L.Dense(4, activation="relu"), (3, 5, 6)),
    (lambda: L.Conv2D(2, 3, padding="same"), (2, 4, 5, 5, 1)),
    (lambda: L.Flatten(), (2, 4, 3, 3, 2)),
    (lambda: L.LSTM(3), (2, 4, 6, 2)),                  # a sequence at every step: (n, T, steps, features)
], ids=["dense", "conv2d", "flatten", "lstm"])
def test_the_layer_runs_at_every_step_with_the_same_weights(make, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    wrapper = L.TimeDistributed(make())
    out = wrapper(x).numpy()
    each_step = np.stack([wrapper.layer(x[:, t]).numpy() for t in range(shape[1])], axis=1)
    np.testing.assert_allclose(out, each_step, rtol=1e-6, atol=1e-6)
    assert out.shape == (shape[0], *wrapper.compute_output_shape((None, *shape[1:]))[1:])
    assert [w is v for w, v in zip(wrapper.weights, wrapper.layer.weights)] == [True] * len(wrapper.layer.weights)
    assert wrapper.weight_names == [f"{wrapper.layer.name}/{name}" for name in wrapper.layer.weight_names]


def test_gradients_and_config():
    nn.utils.set_random_seed(1)
    wrapper = L.TimeDistributed(L.Dense(3, activation="tanh", dtype="float64"), dtype="float64")
    x = nn.tensor(np.random.default_rng(1).standard_normal((2, 4, 5)), dtype="float64", requires_grad=True)
    assert nn.gradcheck(lambda v: (wrapper(v) ** 2).sum(), x).passed
    assert nn.gradcheck(lambda k: (wrapper(x) ** 2).sum(), wrapper.weights[0]).passed
    config = wrapper.get_config()
    assert list(config) == ["name", "trainable", "dtype", "layer"] and config["layer"]["class_name"] == "Dense"
    assert L.TimeDistributed.from_config(config).get_config() == config


def test_a_video_like_model_trains_saves_and_loads_in_every_format(tmp_path):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 4, 5, 5, 1)).astype(np.float32), rng.integers(0, 3, 16)
    nn.utils.set_random_seed(2)
    model = nn.Sequential([nn.Input((4, 5, 5, 1)), L.TimeDistributed(L.Conv2D(2, 3, activation="relu")),
                           L.TimeDistributed(L.Flatten()), L.LSTM(3), L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert model.jit_report()["fallback_reason"] is None
    assert_files_round_trip(model, x, tmp_path, (None, 4, 5, 5, 1))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_files_keras_wrote_load_predict_and_resume_as_keras_did(suffix):
    reference = np.load(DATA / "keras3_time_distributed.npz")
    model = nn.load_model(DATA / f"keras3_time_distributed{suffix}")
    assert [type(layer).__name__ for layer in model.layers] == ["TimeDistributed"] * 3 + ["LSTM", "Dense"]
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    model.fit(reference["x_fit"], reference["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for i, ours in enumerate(model.get_weights()):
        np.testing.assert_allclose(ours, reference[f"after_{i}"], rtol=1e-4, atol=1e-5)


def test_bad_layers_inputs_and_configs_are_refused_clearly():
    with pytest.raises(TypeError, match="TimeDistributed 'td': layer must be a Layer, got int"):
        L.TimeDistributed(3, name="td")
    wrapper = L.TimeDistributed(L.Dense(2), name="td")
    with pytest.raises(ValueError, match=r"'td' expects inputs \(batch, steps, \.\.\.\) of rank 3 .*\(None, 4\)"):
        nn.Sequential([nn.Input((4,)), wrapper])
    with pytest.raises(ValueError, match="'layer' must be the config of one of nnengine's layers"):
        L.TimeDistributed.from_config({"name": "td", "layer": {"class_name": "os.system", "config": {}}})
