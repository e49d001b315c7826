"""DepthwiseConv2D/1D and SeparableConv2D/1D against Keras 3.15 (tests/data/keras3_separable_conv.npz, made by
make_keras_files.py separable): each configuration's output for Keras's weights, a MobileNet-style image model and
a text model trained one epoch to Keras's weights (compiled and eager), Keras's file; and the derivatives by finite
differences in float64."""
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip, assert_keras_file_as_built, assert_layer_case_as_recorded, \
    assert_one_epoch_as_recorded, compiled_and_eager_runs, make_keras_files

import nnengine as nn
from nnengine import keras

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_separable_conv.npz")
FILES = make_keras_files()
CASES = FILES.SEPARABLE_CASES


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{name}-{options}" for name, options in CASES])
@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_each_configuration_computes_what_keras_computes(index, device):
    class_name, options = CASES[index]
    with nn.device(device):
        layer = getattr(keras.layers, class_name)(**options)
    assert_layer_case_as_recorded(layer, RECORD, index, RECORD["case_x1" if "1D" in class_name else "case_x"], device)


@pytest.mark.parametrize("name", ["mobile", "text"])
@pytest.mark.parametrize("jit_compile", [True, False])
def test_models_train_one_epoch_as_keras_did(name, jit_compile):
    model, names, _ = FILES.separable_models(keras)[name]
    assert_one_epoch_as_recorded(model, RECORD[names[0]], RECORD, name, 3e-5, jit_compile=jit_compile)


def test_keras_file_loads_predicts_and_round_trips(tmp_path):
    model = assert_keras_file_as_built(DATA / "keras3_separable_conv.keras", FILES.separable_models(keras)["mobile"][0],
                                       RECORD["images"])
    separable = model.layers[3]
    assert [w.shape for w in separable.get_weights()] == [(3, 3, 4, 2), (1, 1, 8, 6), (6,)]
    assert_files_round_trip(model, RECORD["images"], tmp_path, (None, 8, 8, 3))


def test_compiled_steps_are_the_eager_ones():
    def make_model():
        nn.utils.set_random_seed(6)
        return FILES.separable_models(keras)["mobile"][0]
    report = compiled_and_eager_runs(make_model, RECORD["images"], RECORD["mobile_y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


@pytest.mark.parametrize("class_name, options, shape", [
    ("DepthwiseConv2D", {"kernel_size": 2, "strides": 2, "padding": "same", "depth_multiplier": 2}, (2, 3, 4, 2)),
    ("SeparableConv2D", {"filters": 2, "kernel_size": 2, "dilation_rate": 2}, (2, 4, 3, 2)),
    ("SeparableConv1D", {"filters": 3, "kernel_size": 3, "padding": "same", "depth_multiplier": 2}, (2, 4, 2))])
def test_derivatives_match_finite_differences(class_name, options, shape):
    rng = np.random.default_rng(7)
    layer = getattr(keras.layers, class_name)(**options, dtype="float64", activation="tanh",
                                               bias_initializer="random_normal")
    layer.build(shape)
    assert nn.gradcheck(lambda t: layer(t), nn.tensor(rng.standard_normal(shape), requires_grad=True)).passed
    weights = [nn.tensor(w, requires_grad=True) for w in layer.get_weights()]
    names = ["kernel", "bias"] if class_name.startswith("Depthwise") else ["depthwise_kernel", "pointwise_kernel",
                                                                             "bias"]
    x = rng.standard_normal(shape)

    def through_weights(*values):
        for name, value in zip(names, values):
            setattr(layer, name, value)
        return layer(nn.tensor(x))
    assert nn.gradcheck(through_weights, *weights).passed


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="DepthwiseConv2D 'd': depth_multiplier must be an int >= 1"):
        keras.layers.DepthwiseConv2D(3, depth_multiplier=0, name="d")
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer = keras.layers.SeparableConv2D(2, 3)
        layer.build((None, 5, 5, 3))
        layer(np.ones((1, 5, 5, 2)))
