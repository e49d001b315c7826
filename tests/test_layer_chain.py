"""Keras's Functional API for chains of layers (nnengine/layer_chain.py): Model(inputs, outputs) is the Sequential
of the layers called from the Input, and trains, saves and loads exactly as that Sequential does."""
import numpy as np
import pytest

import nnengine as nn

keras = nn.keras


def _functional(seed=0):
    nn.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.0)(hidden)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    return keras.Model(inputs=inputs, outputs=outputs, name="functional_chain")


def _sequential(seed=0):
    nn.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dropout(0.0), keras.layers.Dense(3, activation="softmax")])


def _data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)


def test_a_functional_chain_is_the_sequential_of_its_layers():
    functional, sequential = _functional(), _sequential()
    assert isinstance(functional, keras.Sequential) and functional.name == "functional_chain"
    assert [type(layer) for layer in functional.layers] == [type(layer) for layer in sequential.layers]
    assert functional.output_shape == (None, 3) and functional.count_params() == sequential.count_params()
    x, y = _data()
    histories = []
    for model in (functional, sequential):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        nn.utils.set_random_seed(2)
        histories.append(model.fit(x, y, epochs=3, batch_size=16, verbose=0).history)
    assert histories[0] == histories[1]
    np.testing.assert_array_equal(functional.predict(x, verbose=0), sequential.predict(x, verbose=0))


def test_the_symbolic_result_reports_its_shape_and_input():
    inputs = keras.Input(shape=(5, 3), name="tokens")
    conv = keras.layers.Conv1D(4, 2)(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(conv)
    assert conv.shape == (None, 4, 4) and pooled.shape == (None, 4) and pooled.input_layer is inputs
    assert "tokens" in repr(pooled) and pooled.dtype == "float32"
    unused = keras.layers.Dense(7)(conv)                     # a branch left unused is not part of the model
    model = keras.Model([inputs], [keras.layers.Dense(2)(pooled)])
    assert [type(layer).__name__ for layer in model.layers] == ["Conv1D", "GlobalAveragePooling1D", "Dense"]
    assert unused.shape == (None, 4, 7)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_functional_model_saves_and_loads(tmp_path, suffix):
    model = _functional()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / f"model{suffix}")
    restored = nn.load_model(tmp_path / f"model{suffix}")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_what_is_not_a_chain_is_refused_with_the_reason():
    inputs, other = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    outputs = keras.layers.Dense(2)(inputs)
    with pytest.raises(ValueError, match="one input and one output, got 2 inputs"):
        keras.Model([inputs, other], outputs)
    with pytest.raises(ValueError, match="one input and one output, got 2 outputs"):
        keras.Model(inputs, [outputs, outputs])
    with pytest.raises(ValueError, match="not computed from these inputs"):
        keras.Model(other, outputs)
    with pytest.raises(TypeError, match="outputs must be what calling layers on the Input gave"):
        keras.Model(inputs, inputs)
    shared = keras.layers.Dense(4)
    with pytest.raises(ValueError, match="called twice in one chain"):
        shared(shared(inputs))
    with pytest.raises(TypeError, match="was called on layer"):
        keras.layers.Dense(2)(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="not supported by nnengine yet"):
        keras.Model(inputs, outputs, jit_compile=True)


DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_functional_chain_keras_saved_loads_predicts_and_resumes_as_keras_did(suffix):
    """Written by Keras 3.15 (make_keras_files.py archives): Input -> Conv1D -> GlobalAveragePooling1D -> Dense."""
    reference = np.load(DATA / "keras3_functional.npz")
    model = nn.load_model(DATA / f"keras3_functional{suffix}")
    assert [type(layer).__name__ for layer in model.layers] == ["Conv1D", "GlobalAveragePooling1D", "Dense"]
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == 6                   # the optimizer state came back with the weights
    model.fit(reference["x_fit"], reference["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for ours, keras_weights in zip(model.get_weights(), [reference[f"after_{i}"] for i in range(3)]):
        np.testing.assert_allclose(ours, keras_weights, rtol=1e-4, atol=1e-5)


def test_a_functional_model_that_branches_is_refused_with_the_reason():
    with pytest.raises(nn.ModelFileError, match="a Functional model: .*takes 2 inputs|off the chain"):
        nn.load_model(DATA / "keras3_functional_branches.keras")


@pytest.mark.parametrize("damage, message", [
    (lambda c: c.update(input_layers=[["a", 0, 0], ["b", 0, 0]]), "one input and one output"),
    (lambda c: c["layers"][1].update(inbound_nodes=[]), "called 0 times"),
    (lambda c: c["layers"][1].update(inbound_nodes=[[["nowhere", 0, 0, {}]]]), "not on a path from input"),
    (lambda c: c.update(layers="not a list"), "must be a list"),
])
def test_functional_configs_that_are_not_chains_are_refused(damage, message):
    from nnengine.layer_chain import sequential_config
    config = {"name": "f", "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]], "layers": [
        {"class_name": "InputLayer", "name": "input_1", "config": {"batch_shape": [None, 3]}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "dense", "config": {"units": 2}, "inbound_nodes": [[["input_1", 0, 0, {}]]]}]}
    assert [entry["class_name"] for entry in sequential_config(config)["layers"]] == ["InputLayer", "Dense"]
    damage(config)
    with pytest.raises(ValueError, match=message):
        sequential_config(config)
