"""Keras's subclassed models (nnengine/subclassed.py, model_base.Model): a subclass of keras.Model that makes
its layers in __init__ and uses them in call, trained, compiled and saved as any model, against Keras 3.15."""
import importlib.util
import inspect
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import nnengine as nn
from keras_helpers import compiled_and_eager_runs

keras = nn.keras
DATA = Path(__file__).resolve().parent / "data"
_spec = importlib.util.spec_from_file_location("make_keras_files", DATA / "make_keras_files.py")
make_keras_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_keras_files)
#: the class Keras 3.15 saved in tests/data/keras3_subclassed.*, made over nnengine's keras
Tower = make_keras_files.tower_class(keras)


class Residual(keras.Model):
    """Layers in an attribute, a list and a dict; a skip connection written in Python."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.blocks = [keras.layers.Dense(units, activation="relu") for _ in range(2)]
        self.classes = keras.layers.Dense(3, activation="softmax")

    def call(self, x, training=False):
        h = self.hidden(x)
        for block in self.blocks:
            h = h + block(h)
        return self.classes(h)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _data(samples=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, 5)).astype(np.float32), rng.integers(0, 3, samples)


def _residual(seed=0, **kwargs):
    nn.utils.set_random_seed(seed)
    return Residual(**kwargs)


def test_a_subclassed_model_tracks_its_layers_and_builds_on_its_first_call():
    model = _residual()
    assert isinstance(model, keras.Model) and model.name.startswith("residual") and not model.built
    assert [type(layer).__name__ for layer in model.layers] == ["Dense"] * 4
    x, y = _data()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0).history
    assert model.built and model.input_shape == (None, 5) and model.output_shape == (None, 3)
    assert len(model.weights) == 8 and model.count_params() == 5 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 3 + 3
    assert history["loss"][-1] < history["loss"][0]
    model.blocks.append(keras.layers.Dense(8))          # a layer added to a tracked list is the model's too
    assert len(model.layers) == 5


def test_compiled_and_eager_training_agree_bitwise():
    x, y = _data(45)
    assert compiled_and_eager_runs(_residual, x, y)["captured"]["train"] == 2


class Branching(keras.Model):
    """A call that reads the data to choose its path: it cannot be captured once for every batch."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.up, self.down = keras.layers.Dense(1), keras.layers.Dense(1)

    def call(self, x):
        return self.up(x) if float(x.numpy().sum()) > 0 else self.down(x)


def test_a_call_that_branches_on_the_data_runs_eagerly_and_says_why():
    x = np.ones((4, 2), np.float32)
    model = Branching()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    assert "reads device values on the host" in model.jit_report()["fallback_reason"]
    strict = Branching()
    strict.compile(optimizer="sgd", loss="mse", jit_compile=True)
    with pytest.raises(nn.CaptureError, match="cannot be compiled"):
        strict.fit(x, x[:, :1], epochs=3, verbose=0)


def test_weights_file_is_keras_3s_layout_both_ways(tmp_path):
    x, y = _data()
    model = _residual()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "r.weights.h5")
    with h5py.File(tmp_path / "r.weights.h5") as f:
        groups = sorted(name for name in f["/"].keys())
        assert groups == ["blocks", "classes", "hidden", "optimizer", "vars"]
        assert sorted(f["blocks"].keys()) == ["dense", "dense_1"] and len(f["hidden/vars"]) == 2
    other = _residual(seed=5)
    other.build((None, 5))
    other.load_weights(tmp_path / "r.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_files_of_a_subclassed_model_load_predict_and_resume_as_keras_did():
    """Written by Keras 3.15 (make_keras_files.py subclassed): a nested Sequential, BatchNormalization, a private
    attribute, a dict of layers and a layer made in call; trained with Adam."""
    reference = np.load(DATA / "keras3_subclassed.npz")
    model = nn.load_model(DATA / "keras3_subclassed.keras", custom_objects={"Tower": Tower})
    assert type(model) is Tower and model.optimizer.iterations == 6
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    model.fit(reference["x_fit"], reference["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for position, ours in enumerate(model.get_weights()):
        np.testing.assert_allclose(ours, reference[f"after_{position}"], rtol=1e-3, atol=1e-4)
    fresh = Tower()
    fresh.build((None, 5))
    fresh.load_weights(DATA / "keras3_subclassed.weights.h5")
    np.testing.assert_allclose(fresh.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)


def test_keras_archive_round_trip_finds_the_class_by_custom_objects_or_registration(tmp_path):
    x, y = _data()
    model = _residual(units=6)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "r.keras")
    restored = nn.load_model(tmp_path / "r.keras", custom_objects={"Residual": Residual})
    assert type(restored) is Residual and restored.units == 6 and restored.optimizer.iterations == 4
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(nn.ModelFileError, match="subclassed models whose class is passed in custom_objects"):
        nn.load_model(tmp_path / "r.keras")
    config = json.loads(model.to_json())
    assert config["class_name"] == "Residual" and config["build_config"] == {"input_shape": [None, 5]}
    rebuilt = keras.models.model_from_json(model.to_json(), custom_objects={"Residual": Residual})
    assert type(rebuilt) is Residual and rebuilt.compiled and not rebuilt.built

    @keras.saving.register_keras_serializable(package="tests")
    class Registered(Residual):
        pass
    registered = Registered(units=4)
    registered.build((None, 5))
    registered.save(tmp_path / "registered.keras")
    assert type(nn.load_model(tmp_path / "registered.keras")) is Registered
    with pytest.raises(ValueError, match="subclassed model, which Keras's legacy .h5 file cannot describe"):
        model.save(tmp_path / "r.h5")


def test_a_subclassed_model_is_differentiable_and_clones():
    model = _residual()
    x = nn.Tensor(_data(4)[0], requires_grad=True)
    model(x).sum().backward()
    assert x.grad.shape == (4, 5) and model.built
    clone = keras.models.clone_model(model)
    assert type(clone) is Residual and clone.units == 8 and not clone.built


def test_summary_lists_the_tracked_layers(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    model = _residual()
    lines = []
    model.summary(print_fn=lines.append)
    assert "?" in lines[4] and "0 (unbuilt)" in lines[4]
    model.build((None, 5))
    lines.clear()
    model.summary(print_fn=lines.append)
    assert lines[0] == f'Model: "{model.name}"' and "(None, 8)" in lines[4] and "48" in lines[4]
    assert lines[-3] == " Total params: 219 (876.00 B)"


def test_what_a_subclassed_model_cannot_be_is_refused_with_the_reason():
    class NoCall(keras.Model):
        pass
    with pytest.raises(TypeError, match="subclass NoCall must define call"):
        NoCall()
    with pytest.raises(TypeError, match=r"keras.Model\(\) needs inputs and outputs .* or subclass it"):
        keras.Model()
    with pytest.raises(TypeError, match="takes name, trainable and dtype"):
        Residual(units=3, layers=4)

    class TwoOutputs(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x), self.dense(x)
    with pytest.raises(TypeError, match="call must return one Tensor, got tuple"):
        TwoOutputs().predict(np.ones((2, 3)), verbose=0)
    assert "training" in inspect.signature(Residual.call).parameters


@pytest.mark.parametrize("shape", [[None, 1 << 30], [None, -3], [None, "5"], None, [None]])
def test_a_keras_file_with_an_implausible_build_shape_is_refused_before_anything_is_built(tmp_path, shape):
    import zipfile
    model = _residual()
    model.build((None, 5))
    model.save(tmp_path / "r.keras")
    with zipfile.ZipFile(tmp_path / "r.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["build_config"]["input_shape"] = shape
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(nn.ModelFileError, match="input shape"):
        nn.load_model(tmp_path / "bad.keras", custom_objects={"Residual": Residual})


def test_layers_set_before_super_init_are_tracked_too():
    class LateSuper(keras.Model):
        def __init__(self):
            self.dense = keras.layers.Dense(2)             # before super().__init__(): still the model's
            super().__init__()

        def call(self, x):
            return self.dense(x)
    late = LateSuper()
    assert late.layers == [late.dense] and late.predict(np.ones((3, 4)), verbose=0).shape == (3, 2)


class Penalised(keras.Model):
    """A layer with an activity regularizer called directly, and another inside a held Sequential."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(6, activation="tanh", activity_regularizer=keras.regularizers.L2(0.3))
        self.inner = keras.Sequential([keras.layers.Dense(5, activity_regularizer=keras.regularizers.L1(0.2))])
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.inner(self.hidden(x)))


def test_activity_regularizers_of_the_layers_call_runs_join_the_loss_as_in_a_functional_twin():
    x = np.random.default_rng(4).standard_normal((24, 4)).astype(np.float32)
    y = np.arange(24) % 3
    nn.utils.set_random_seed(0)
    model = Penalised()
    model.build((None, 4))
    inputs = keras.Input((4,))
    twin = keras.Model(inputs, model.out(model.inner.layers[0](model.hidden(inputs))))     # the same layers
    for each in (model, twin):
        each.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    hidden = np.tanh(x @ model.hidden.get_weights()[0] + model.hidden.get_weights()[1])
    inner = hidden @ model.inner.layers[0].get_weights()[0] + model.inner.layers[0].get_weights()[1]
    penalty = (0.3 * np.sum(hidden ** 2) + 0.2 * np.sum(np.abs(inner))) / 24       # Keras: per batch, / its size
    plain = keras.losses.SparseCategoricalCrossentropy()(y, model.predict(x, verbose=0)).numpy()
    ours = model.evaluate(x, y, batch_size=24, verbose=0)
    assert ours == pytest.approx(plain + penalty, rel=1e-5)
    assert ours == pytest.approx(twin.evaluate(x, y, batch_size=24, verbose=0), rel=1e-6)
    assert model.predict(x, verbose=0).shape == (24, 3)       # predict collects nothing
    report = compiled_and_eager_runs(lambda: (nn.utils.set_random_seed(0), Penalised())[1], x, y, epochs=2,
                                     batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1
