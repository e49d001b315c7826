"""Models used as layers of other models (model_parts.py): ``Sequential([base, Dense(3)])`` and ``base(inputs)``
in a functional model, as Keras nests them. Their structure and summary, training that equals the same layers
unnested, freezing a nested model, sharing one between two calls, the files in Keras 3.15's layout (its own
files of such models load, predict and resume training to Keras's weights), and what cannot be nested."""
import numpy as np
import pytest

import nnengine as nn
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, make_keras_files, run_guide_snippet

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"
FILES = make_keras_files()


def _data(samples=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, 6)).astype(np.float32), rng.integers(0, 3, samples)


def _nested_and_flat(seed=3, **dense_arguments):
    """A Sequential [Sequential [d1, d2], d3] and a Sequential [d1', d2', d3'] with the same weights."""
    nn.utils.set_random_seed(seed)

    def dense_layers():
        return [layers.Dense(8, activation="relu", **dense_arguments), layers.Dense(5, activation="tanh"),
                layers.Dense(3, activation="softmax")]
    first, second, last = dense_layers()
    nested = keras.Sequential([keras.Input((6,)), keras.Sequential([first, second], name="inner"), last])
    flat = keras.Sequential([keras.Input((6,)), *dense_layers()])
    flat.set_weights(nested.get_weights())
    return nested, flat


# ---------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------
def test_a_nested_model_is_one_layer_of_the_outer_model_and_its_weights_are_its_layers():
    stacked, transfer = FILES.nested_models(keras)
    base, block = stacked.layers[0], stacked.layers[1]
    assert [layer.name for layer in stacked.layers] == ["base", "block", stacked.layers[2].name]
    assert isinstance(base, keras.Model) and isinstance(block, keras.Sequential)
    assert [layer.name for layer in transfer.layers][1:] == ["base", "block", "classes"]
    expected = [*base.weights, *block.weights, *stacked.layers[2].weights]
    assert [id(w) for w in stacked.weights] == [id(w) for w in expected]
    assert stacked.count_params() == 128 + 75 + 18
    assert stacked.output_shape == (None, 3) and block.output_shape == (None, 5)     # block was built in stacked
    assert stacked.get_layer("block") is block
    assert block.weight_names == [f"{layer.name}/{name}" for layer in block.layers for name in ("kernel", "bias")]


def test_the_summary_lists_a_nested_model_as_one_row_with_its_parameters():
    stacked, transfer = FILES.nested_models(keras)
    lines = []
    stacked.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "│ base (Functional)" in text and "│ block (Sequential)" in text
    base_row = next(line for line in lines if "base (Functional)" in line)
    assert "(None, 8)" in base_row and base_row.rstrip(" │").endswith("128")
    lines = []
    transfer.summary(print_fn=lines.append)          # its base is frozen
    assert " Trainable params: 93 " in "\n".join(lines) and " Non-trainable params: 128 " in "\n".join(lines)


def test_setting_trainable_on_a_nested_model_sets_its_layers_as_keras_does():
    stacked, _ = FILES.nested_models(keras)
    base = stacked.get_layer("base")
    base.trainable = False
    assert not any(layer.trainable for layer in base.layers)
    assert len(stacked.trainable_weights) == 6 and len(stacked.non_trainable_weights) == 4
    x, y = _data()
    frozen = base.get_weights()
    stacked.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    stacked.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for before, after in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(before, after)
    base.trainable = True                       # the compiled step sees the change: the base trains again
    stacked.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not np.array_equal(frozen[0], base.get_weights()[0])


# ---------------------------------------------------------------------------------------------
# Training: nesting changes nothing in the numbers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("dense_arguments", [{}, {"activity_regularizer": "l2", "kernel_regularizer": "l1"}],
                         ids=["plain", "regularized"])
def test_a_nested_model_trains_bitwise_as_its_layers_unnested(jit, dense_arguments):
    x, y = _data()
    nested, flat = _nested_and_flat(**dense_arguments)
    histories = []
    for model in (nested, flat):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit)
        histories.append(model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, shuffle=False,
                                   verbose=0).history)
    assert histories[0] == histories[1]
    for ours, unnested in zip(nested.get_weights(), flat.get_weights()):
        np.testing.assert_array_equal(ours, unnested)
    np.testing.assert_array_equal(nested.predict(x, verbose=0), flat.predict(x, verbose=0))


def test_a_nested_last_model_keeps_its_softmax_fused_into_the_loss():
    inner = keras.Sequential([layers.Dense(4, activation="relu"), layers.Dense(3, activation="softmax")])
    outer = keras.Sequential([keras.Input((6,)), inner])
    assert outer._output_layers == [inner.layers[-1]]         # the loss reads the logits of inner's last layer
    x, y = _data()
    outer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    logits = outer._forward(nn.Tensor(x), return_logits=True).numpy()
    probabilities = outer.predict(x, verbose=0)
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), probabilities,
                               rtol=1e-5)


def test_the_compiled_step_of_a_model_of_nested_models_is_the_eager_one():
    def transfer():
        nn.utils.set_random_seed(5)
        return FILES.nested_models(keras)[1]
    x, y = _data(50)
    report = compiled_and_eager_runs(transfer, x, y)
    assert report["captured"]["train"] >= 1 and report["fallback_reason"] is None


def test_one_model_called_twice_shares_its_weights_as_layers_called_twice_do():
    nn.utils.set_random_seed(4)
    encoder = keras.Sequential([keras.Input((6,)), layers.Dense(4, activation="relu")], name="encoder")
    left, right = keras.Input((6,)), keras.Input((6,))
    joined = layers.Concatenate()([encoder(left), encoder(right)])
    siamese = keras.Model([left, right], layers.Dense(1, activation="sigmoid")(joined))
    twin_dense = layers.Dense(4, activation="relu")
    left2, right2 = keras.Input((6,)), keras.Input((6,))
    twin = keras.Model([left2, right2], layers.Dense(1, activation="sigmoid")(
        layers.Concatenate()([twin_dense(left2), twin_dense(right2)])))
    twin.set_weights(siamese.get_weights())
    assert len(siamese.weights) == 4 and siamese.summary_connections()[encoder].count("[0][0]") == 2
    x, labels = _data()
    y = (labels > 0).astype(np.float32)
    for model in (siamese, twin):
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit([x, x[::-1]], y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for ours, flat in zip(siamese.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(ours, flat)


def test_an_unbuilt_sequential_builds_when_a_model_calls_or_stacks_it():
    block = keras.Sequential([layers.Dense(5), layers.Dense(2)])
    assert not block.built
    inputs = keras.Input((7,))
    model = keras.Model(inputs, block(inputs))
    assert block.built and block.input_shape == (None, 7) and model.output_shape == (None, 2)
    deferred = keras.Sequential([keras.Sequential([layers.Dense(3)]), layers.Dense(1)])
    deferred.compile(optimizer="sgd", loss="mse")
    deferred.fit(np.ones((4, 5), np.float32), np.zeros((4, 1), np.float32), verbose=0)  # built by its first batch
    assert deferred.layers[0].input_shape == (None, 5) and deferred.output_shape == (None, 1)


def test_an_embedding_inside_a_nested_model_still_checks_its_indices_on_the_host():
    tokens = keras.Sequential([keras.Input((3,), dtype="int32"), layers.Embedding(10, 4), layers.Flatten()])
    model = keras.Sequential([tokens, layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"Embedding '.*': indices must be in \[0, 10\), got values in \[1, 12\]"):
        model.fit(np.array([[1, 2, 12]]), np.zeros((1, 2), np.float32), verbose=0)


# ---------------------------------------------------------------------------------------------
# Files: Keras 3.15's and nnengine's
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["stacked", "transfer"])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_of_nested_models_load_predict_and_resume_training_as_keras(name, suffix):
    """make_keras_files.py nested: Keras trained each model 2 epochs, saved it, and trained one more epoch; the
    loaded model (its optimizer state too: Keras's slot names of nested weights) reaches Keras's weights."""
    data = np.load(DATA / f"keras3_nested_{name}.npz")
    model = nn.load_model(DATA / f"keras3_nested_{name}{suffix}")
    assert isinstance(model.get_layer("base"), keras.Model) and isinstance(model.get_layer("block"), keras.Sequential)
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-6)
    assert len(model.trainable_weights) == (6 if name == "transfer" else 10)     # transfer's base is frozen
    model.fit(data["x_fit"], data["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, data[f"after_{index}"], atol=2e-6)


@pytest.mark.parametrize("name", ["stacked", "transfer"])
def test_keras_weights_files_of_nested_models_load_into_the_same_models_built_here(name):
    data = np.load(DATA / f"keras3_nested_{name}.npz")
    model = dict(zip(["stacked", "transfer"], FILES.nested_models(keras)))[name]
    model.load_weights(DATA / f"keras3_nested_{name}.weights.h5")
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-6)


@pytest.mark.parametrize("which", [0, 1], ids=["stacked", "transfer"])
def test_nested_models_round_trip_through_every_file_with_their_optimizer_state(which, tmp_path):
    model = FILES.nested_models(keras)[which]
    x, y = _data()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert_files_round_trip(model, x, tmp_path, (None, 6))
    for suffix in (".keras", ".h5"):            # the optimizer's state too: training on gives the same weights
        restored = nn.load_model(tmp_path / f"model{suffix}")
        assert [type(layer).__name__ for layer in restored.layers] == [type(layer).__name__ for layer in model.layers]
        restored.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
        model_copy = nn.load_model(tmp_path / "model.keras")
        model_copy.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
        for ours, theirs in zip(restored.get_weights(), model_copy.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_a_file_whose_nested_model_lacks_its_weights_is_refused_naming_it(tmp_path):
    import h5py
    import zipfile
    with zipfile.ZipFile(DATA / "keras3_nested_stacked.keras") as archive:
        archive.extractall(tmp_path / "parts")
    with h5py.File(tmp_path / "parts" / "model.weights.h5", "a") as weights:
        del weights["layers/sequential/layers/dense_1"]
    with zipfile.ZipFile(tmp_path / "broken.keras", "w") as archive:
        for member in ("config.json", "metadata.json", "model.weights.h5"):
            archive.write(tmp_path / "parts" / member, member)
    with pytest.raises(nn.models.ModelFileError, match="layers/sequential/layers/dense_1"):
        nn.load_model(tmp_path / "broken.keras")


# ---------------------------------------------------------------------------------------------
# What cannot be nested
# ---------------------------------------------------------------------------------------------
def test_what_cannot_be_a_layer_is_refused_with_the_reason():
    class Tower(keras.Model):
        def __init__(self):
            super().__init__(name="tower")
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    inputs = keras.Input((4,))
    with pytest.raises(TypeError, match="'tower' is a subclassed model, which nnengine cannot use as a layer"):
        Tower()(inputs)
    with pytest.raises(TypeError, match="Sequential.add: 'tower' is a subclassed model"):
        keras.Sequential([Tower()])
    with pytest.raises(TypeError, match="model 'empty' has no layers"):
        keras.Sequential([keras.Sequential(name="empty")])
    built = keras.Sequential([keras.Input((5,)), layers.Dense(2)], name="five")
    with pytest.raises(ValueError, match=r"model 'five' takes inputs of shape \(None, 5\) and cannot be called on "
                                         r"inputs of shape \(None, 4\)"):
        built(inputs)
    outer = keras.Sequential([keras.Input((5,)), built])
    with pytest.raises(ValueError, match="model '.*' is this model or holds it: a model cannot be a layer of itself"):
        outer.add(outer)
    with pytest.raises(ValueError, match="model '.*' is this model or holds it"):
        built.add(keras.Sequential([outer]))        # a cycle through a model that holds this one
    with pytest.raises(ValueError, match="already in the model"):
        outer.add(built)


def test_a_config_that_nests_models_too_deep_is_refused_as_a_bad_file(tmp_path):
    import json
    from nnengine.model_parts import MAX_NESTING
    entry = {"class_name": "Dense", "config": {"name": "dense_in", "units": 2}}
    for depth in range(MAX_NESTING + 1):
        entry = {"class_name": "Sequential", "config": {"name": f"level_{depth}", "layers": [entry]}}
    config = {"class_name": "Sequential", "config": {"name": "outer", "layers": [entry]}}
    with pytest.raises(ValueError, match=f"nests models more than {MAX_NESTING} deep"):
        keras.models.model_from_json(json.dumps(config))
    entry["config"]["layers"] = entry["config"]["layers"][0]["config"]["layers"]      # one level less: it loads
    assert keras.models.model_from_json(json.dumps(config)).layers[0].name == f"level_{MAX_NESTING}"


def test_the_guide_snippet_of_models_as_layers_runs_and_keeps_the_frozen_base():
    namespace = run_guide_snippet(3)
    base, transfer, pretrain, x = (namespace[name] for name in ("base", "transfer", "pretrain", "x"))
    assert pretrain.evaluate(x, namespace["y"], verbose=0)[1] > 0.75       # chance: 1/3
    assert transfer.layers[1] is base and base.count_params() == 416
    assert len(transfer.trainable_weights) == 2 and len(transfer.non_trainable_weights) == 4
    assert transfer.evaluate(x, (x[:, 0] > x[:, 1]).astype("int64"), verbose=0)[1] > 0.75     # chance: 1/2
