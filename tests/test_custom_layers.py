"""Custom layers written as Keras 3 documents them: they train, summarise, save and load like built-in ones.

tests/data/keras3_schedules.json's "custom_layer" entry is the same model fitted by Keras 3.15
(tests/data/make_schedule_references.py).
"""
import json
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn
from nnengine import keras

RUN = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["custom_layer"]


class Scale(keras.layers.Layer):
    """x * w * factor, one weight per feature (Keras 3's subclassing API, unchanged)."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="tests")
class Shift(keras.layers.Layer):
    """x + b, registered so that a file names it without custom_objects."""

    def build(self, input_shape):
        self.b = self.add_weight(shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs, training=None):
        return inputs + self.b


def model_with(layer):
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="tanh"), layer,
                             keras.layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
def test_a_custom_layer_trains_as_in_keras(jit):
    model = model_with(Scale(1.5))
    model.set_weights([np.array(w, np.float32) for w in RUN["start"]])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", jit_compile=jit)
    history = model.fit(np.array(RUN["x"], np.float32), np.array(RUN["y"]), epochs=3, batch_size=10, shuffle=False,
                        verbose=0)
    np.testing.assert_allclose(history.history["loss"], RUN["loss"], rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), RUN["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)


def test_custom_layers_summarise_save_and_load(tmp_path):
    model = model_with(Scale(1.5))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((8, 5)).astype("float32")
    model.fit(x, np.arange(8) % 3, verbose=0)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Scale" in line and "6" in line for line in lines)
    model.save(tmp_path / "m.h5")
    with pytest.raises(nn.ModelFileError, match="cannot load layer class 'Scale'.*custom_objects"):
        nn.load_model(tmp_path / "m.h5")
    loaded = nn.load_model(tmp_path / "m.h5", custom_objects={"Scale": Scale})
    assert isinstance(loaded.layers[1], Scale) and loaded.layers[1].factor == 1.5
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_a_registered_layer_loads_without_custom_objects(tmp_path):
    model = model_with(Shift())
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(np.ones((4, 5), np.float32), np.arange(4) % 3, verbose=0)
    model.save(tmp_path / "m.h5")
    config = json.loads(__import__("h5py").File(tmp_path / "m.h5", "r").attrs["model_config"])
    assert config["config"]["layers"][2]["registered_name"] == "tests>Shift"
    loaded = nn.load_model(tmp_path / "m.h5")
    assert isinstance(loaded.layers[1], Shift)
    np.testing.assert_array_equal(loaded.layers[1].b.numpy(), model.layers[1].b.numpy())


def test_add_weight_follows_keras_3():
    layer = Scale()
    layer.build((None, 4))
    extra = layer.add_weight((2, 2), initializer="zeros", trainable=False)
    assert layer.weight_names == ["w", "variable"] and not extra.requires_grad
    with pytest.raises(ValueError, match="already has a weight named 'w'"):
        layer.add_weight((1,), name="w")
    with pytest.raises(ValueError, match="Unknown constraint 'positive'"):
        layer.add_weight((1,), constraint="positive")
    with pytest.raises(ValueError, match="add_weight: shape must hold positive sizes"):
        layer.add_weight((0,), name="empty")
    with pytest.raises(ValueError, match="cannot load layer class 'Nope'.*register_keras_serializable"):
        keras.Sequential.from_config({"layers": [{"class_name": "Nope", "config": {}}]})


CONSTRAINED = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["constrained"]


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
def test_constraints_train_as_in_keras(jit, tmp_path):
    model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(6, activation="relu", kernel_constraint=keras.constraints.MaxNorm(0.8),
                           bias_constraint=keras.constraints.NonNeg()),
        keras.layers.Dense(3, activation="softmax", kernel_constraint=keras.constraints.MaxNorm(1.2, axis=1))])
    model.set_weights([np.array(w, np.float32) for w in CONSTRAINED["start"]])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", jit_compile=jit)
    history = model.fit(np.array(CONSTRAINED["x"], np.float32), np.array(CONSTRAINED["y"]), epochs=3, batch_size=10,
                        shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], CONSTRAINED["loss"], rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), CONSTRAINED["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)
    kernel, bias = model.layers[0].get_weights()
    assert np.all(np.sqrt((kernel ** 2).sum(axis=0)) <= 0.8 + 1e-5) and np.all(bias >= 0)
    if jit:
        assert model.jit_report()["fallback_reason"] is None
    model.save(tmp_path / "m.h5")
    loaded = nn.load_model(tmp_path / "m.h5")
    assert isinstance(loaded.layers[1].kernel_constraint, keras.constraints.MaxNorm)
    assert loaded.layers[1].kernel_constraint.axis == 1


class Project(keras.layers.Layer):
    """A custom layer that changes the shape and does not say how (no compute_output_shape)."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="glorot_uniform")

    def call(self, inputs):
        return inputs @ self.w


def test_a_custom_layer_that_changes_the_shape_is_traced():
    model = keras.Sequential([keras.Input((5,)), Project(), keras.layers.Dense(3)])
    assert model.output_shape == (None, 3) and model.layers[1].kernel.shape == (2, 3)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Project" in line and "(None, 2)" in line for line in lines)
    assert model.predict(np.ones((4, 5), np.float32), verbose=0).shape == (4, 3)
    calls = []
    original = Project.call
    Project.call = lambda self, inputs: calls.append(1) or original(self, inputs)
    try:
        model.compile(optimizer="sgd", loss="mse", jit_compile=False)
        model.fit(np.ones((16, 5), np.float32), np.zeros((16, 3), np.float32), batch_size=4, verbose=0)
    finally:
        Project.call = original
    assert len(calls) == 4                 # one call per batch: the output shape was traced once, not per step


def test_the_base_constraint_leaves_a_weight_unchanged_as_keras_does():
    w = nn.tensor([[-1.0, 2.0]])
    assert nn.constraints.Constraint()(w) is w
    assert nn.constraints.Constraint().get_config() == {}
