"""Keras's CategoryEncoding (preprocessing_layers.py): each mode against Keras 3.15's outputs, Keras's saved model,
the compiled step, and categories out of range refused by name."""
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs

import nnengine as nn
from nnengine import keras

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_category_encoding.npz")
layers = keras.layers


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("mode, x, out", [("multi_hot", "multi_hot_x", "multi_hot_out"),
                                          ("one_hot", "one_hot_x", "one_hot_out"), ("count", "count_x", "count_out"),
                                          ("one_hot", "count_x", "one_hot_many_out")])
def test_each_mode_gives_keras_output_and_shape(mode, x, out, device):
    layer = layers.CategoryEncoding(num_tokens=5, output_mode=mode)
    got = layer(nn.Tensor(RECORD[x], device=device)).numpy()
    np.testing.assert_array_equal(got, RECORD[out])
    assert got.shape == layer.compute_output_shape(RECORD[x].shape)


def test_a_rank_one_input_is_one_samples_set_as_in_keras():
    np.testing.assert_array_equal(layers.CategoryEncoding(4)(np.array([1, 3, 3])).numpy(), [0, 1, 0, 1])
    np.testing.assert_array_equal(layers.CategoryEncoding(4, output_mode="count")(np.array([3, 3])).numpy(),
                                  [0, 0, 0, 2])


def test_keras_file_loads_predicts_evaluates_and_trains_compiled_as_eagerly(tmp_path):
    model = keras.models.load_model(DATA / "keras3_category_encoding.keras")
    assert model.layers[0].num_tokens == 5 and model.layers[0].output_mode == "count"
    np.testing.assert_allclose(model.predict(RECORD["x"], verbose=0), RECORD["predictions"], atol=1e-6)
    np.testing.assert_allclose(model.evaluate(RECORD["x"], RECORD["y"], verbose=0), RECORD["evaluate"], rtol=1e-5)
    assert_files_round_trip(model, RECORD["x"], tmp_path, (16, 6))

    def make_model():
        nn.utils.set_random_seed(3)
        return keras.Sequential([keras.Input((6,), dtype="int64"), layers.CategoryEncoding(5),
                                 layers.Dense(3, activation="softmax")])
    report = compiled_and_eager_runs(make_model, RECORD["x"], RECORD["y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


@pytest.mark.parametrize("values, message", [
    (np.array([[0, 5]]), r"CategoryEncoding 'category_encoding\w*': indices must be in \[0, 5\), got values in "
                         r"\[0, 5\]"),
    (np.array([[-1, 2]]), r"indices must be in \[0, 5\), got values in \[-1, 2\]"),
    (np.array([[0.5, 2.0]]), r"inputs must be integer indices, got non-integer values such as \[0.5\]"),
])
def test_categories_out_of_range_are_refused_by_name(values, message):
    with pytest.raises(ValueError, match=message):
        layers.CategoryEncoding(5)(values)
    model = keras.Sequential([keras.Input((2,)), layers.CategoryEncoding(5), layers.Dense(2)])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=message):          # checked on the host before the batch is uploaded
        model.fit(values, np.zeros((1, 2)), verbose=0)


@pytest.mark.parametrize("make, message", [
    (lambda: layers.CategoryEncoding(), r"num_tokens must be set"),
    (lambda: layers.CategoryEncoding(0), r"num_tokens must be"),
    (lambda: layers.CategoryEncoding(3, output_mode="tf_idf"), r"output_mode must be one of 'multi_hot', 'count'"),
    (lambda: layers.CategoryEncoding(3, sparse=True), r"sparse=True is not supported"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
