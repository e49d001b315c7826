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
