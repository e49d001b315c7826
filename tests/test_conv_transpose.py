"""Conv2DTranspose and Conv1DTranspose against Keras 3.15 (tests/data/keras3_conv_transpose.npz, made by
make_keras_files.py conv_transpose): each layer configuration's output for Keras's weights, a convolutional
autoencoder and a Conv1DTranspose classifier trained one epoch to Keras's weights (compiled and eager), Keras's
file; and the op's derivatives by finite differences in float64."""
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip, assert_keras_file_as_built, assert_layer_case_as_recorded, \
    assert_one_epoch_as_recorded, compiled_and_eager_runs, make_keras_files

import nnengine as nn
from nnengine import keras

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_conv_transpose.npz")
FILES = make_keras_files()
CASES = FILES.CONV_TRANSPOSE_CASES


def _layer(case, **extra):
    options = {key: value for key, value in case.items() if key != "rank"}
    cls = keras.layers.Conv1DTranspose if case.get("rank") == 1 else keras.layers.Conv2DTranspose
    return cls(**options, **extra)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[str(case) for case in CASES])
@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_each_configuration_computes_what_keras_computes(index, device):
    case = CASES[index]
    with nn.device(device):
        layer = _layer(case)
    assert_layer_case_as_recorded(layer, RECORD, index, RECORD["case_x1" if case.get("rank") == 1 else "case_x"],
                                  device)


@pytest.mark.parametrize("name", ["autoencoder", "classifier"])
@pytest.mark.parametrize("jit_compile", [True, False])
def test_models_train_one_epoch_as_keras_did(name, jit_compile):
    model, names, _ = FILES.conv_transpose_models(keras)[name]
    assert_one_epoch_as_recorded(model, RECORD[names[0]], RECORD, name, 3e-5, jit_compile=jit_compile)


def test_keras_file_loads_and_predicts_and_files_round_trip(tmp_path):
    model = assert_keras_file_as_built(DATA / "keras3_conv_transpose.keras",
                                       FILES.conv_transpose_models(keras)["autoencoder"][0], RECORD["images"])
    layer = model.layers[2]
    assert type(layer).__name__ == "Conv2DTranspose" and layer.get_weights()[0].shape == (3, 3, 4, 4)
    assert_files_round_trip(model, RECORD["images"], tmp_path, (None, 8, 8, 1))


def test_compiled_steps_are_the_eager_ones():
    def make_model():
        nn.utils.set_random_seed(5)
        return FILES.conv_transpose_models(keras)["autoencoder"][0]
    report = compiled_and_eager_runs(make_model, RECORD["images"], RECORD["autoencoder_y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


@pytest.mark.parametrize("case", [
    {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
    {"filters": 2, "kernel_size": 2, "strides": 3},
    {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1},
    {"filters": 2, "kernel_size": 3, "padding": "same", "dilation_rate": 2},
    {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "rank": 1}])
def test_derivatives_match_finite_differences(case):
    rng = np.random.default_rng(4)
    shape = (2, 4, 3) if case.get("rank") == 1 else (2, 3, 4, 3)
    layer = _layer(case, dtype="float64", activation="tanh", bias_initializer="random_normal")
    layer.build(shape)
    kernel, bias = layer.get_weights()
    x = nn.tensor(rng.standard_normal(shape), requires_grad=True)
    assert nn.gradcheck(lambda t: layer(t), x).passed
    weights = [nn.tensor(kernel, requires_grad=True), nn.tensor(bias, requires_grad=True)]

    def through_weights(k, b):
        layer.kernel, layer.bias = k, b
        return layer(nn.tensor(x.numpy()))
    assert nn.gradcheck(through_weights, *weights).passed


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Conv2DTranspose 't': output_padding must be smaller than strides"):
        keras.layers.Conv2DTranspose(2, 3, strides=2, output_padding=2, name="t")
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer = keras.layers.Conv2DTranspose(2, 3)
        layer.build((None, 4, 4, 3))
        layer(np.ones((1, 4, 4, 2)))
    with pytest.raises(ValueError, match="expected ndim=4"):
        keras.layers.Conv2DTranspose(2, 3)(np.ones((1, 4, 2)))
