"""Keras's Functional API (nnengine/functional_model.py, symbolic.py): models whose layers branch, merge and are
shared, against Keras 3.15's own files and numbers, trained eagerly and compiled, saved and loaded both ways."""
import json

import numpy as np
import pytest

import nnengine as nn
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, run_guide_snippet

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"


def _graph(seed=0):
    """Two branches from the input, a layer shared by both, a merge of them, a skip connection."""
    nn.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(6,), name="x")
    left = layers.Dense(8, activation="relu", name="left")(inputs)
    right = layers.Dense(8, activation="tanh", name="right")(inputs)
    shared = layers.Dense(8, activation="relu", name="shared")
    joined = layers.Concatenate(name="joined")([shared(left), shared(right)])
    skip = layers.Add(name="skip")([layers.Dense(8, name="project")(joined), left])
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(skip), name="graph")


def _data(samples=40):
    rng = np.random.default_rng(1)
    return rng.standard_normal((samples, 6)).astype(np.float32), rng.integers(0, 3, samples)


def test_model_of_inputs_and_outputs_is_a_functional_model_with_keras_layer_order():
    model = _graph()
    assert isinstance(model, keras.Model) and type(model).__name__ == "Functional"
    assert not isinstance(model, keras.Sequential) and isinstance(keras.Sequential(), keras.Model)
    # Keras 3.15 lists this graph's layers in this order (by depth from the output, ties by first visit)
    assert [layer.name for layer in model.layers] == ["x", "left", "right", "shared", "joined", "project", "skip",
                                                      "out"]
    assert model.output_shape == (None, 3) and model.input_shape == (None, 6)
    assert model.get_layer("shared") is model.get_layer(index=3)
    assert len(model.weights) == 10            # the shared layer's two weights once
    assert model.inputs[0].shape == (None, 6) and model.output.layer is model.get_layer("out")


def test_a_shared_layer_adds_the_gradients_of_its_calls():
    model = _graph()
    x, _ = _data(5)
    shared = model.get_layer("shared")
    out = model(x)
    out.sum().backward()
    # the same computation written out by hand, each call of the shared layer with its own copy of the kernel
    left, right = model.get_layer("left")(x), model.get_layer("right")(x)
    kernels = [nn.Tensor(shared.kernel.numpy(), requires_grad=True) for _ in range(2)]
    halves = [nn.functional.relu(nn.functional.matmul(branch, kernel) + shared.bias)
              for branch, kernel in zip((left, right), kernels)]
    joined = nn.functional.concatenate(halves, axis=1)
    skip = model.get_layer("project")(joined) + left
    model.get_layer("out")(skip).sum().backward()
    np.testing.assert_allclose(shared.kernel.grad.numpy(), (kernels[0].grad + kernels[1].grad).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_a_shared_embedding_and_dense_read_sequences_of_different_lengths_as_in_keras():
    query, document = keras.Input((7,), dtype="int32"), keras.Input((5,), dtype="int32")
    embed, project = layers.Embedding(12, 4), layers.Dense(3)
    pooled = [layers.GlobalAveragePooling1D()(project(embed(tokens))) for tokens in (query, document)]
    model = keras.Model([query, document], layers.Dense(2)(layers.Concatenate()(pooled)))
    rng = np.random.default_rng(0)
    tokens = [rng.integers(0, 12, (4, 7)), rng.integers(0, 12, (4, 5))]
    table, (kernel, bias) = embed.get_weights()[0], project.get_weights()
    expected = [(table[t] @ kernel + bias).mean(axis=1) for t in tokens]
    head_kernel, head_bias = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict(tokens, verbose=0),
                               np.concatenate(expected, axis=1) @ head_kernel + head_bias, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"layer 'dense.*' was built for inputs \(None, 7, 4\).*\(None, 5, 6\)"):
        project(keras.Input((5, 6)))           # a different feature size is still refused
    conv = layers.Conv1D(2, 3)
    conv(keras.Input((7, 4)))
    with pytest.raises(ValueError, match=r"was built for inputs \(None, 7, 4\)"):
        conv(keras.Input((5, 4)))              # other layers keep the strict check


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_compiled_and_eager_training_agree_bitwise(device):
    def on_device():
        with nn.device(device):
            return _graph()
    x, y = _data(45)                                        # a last partial batch, and validation
    report = compiled_and_eager_runs(on_device, x, y)
    assert report["captured"]["train"] == 2 and report["fallback_reason"] is None


def test_a_functional_chain_trains_as_the_sequential_of_its_layers():
    def functional():
        nn.utils.set_random_seed(0)
        inputs = keras.Input(shape=(6,))
        hidden = layers.Dropout(0.0)(layers.Dense(8, activation="relu")(inputs))
        return keras.Model(inputs=inputs, outputs=layers.Dense(3, activation="softmax")(hidden), name="chain")

    def sequential():
        nn.utils.set_random_seed(0)
        return keras.Sequential([keras.Input(shape=(6,)), layers.Dense(8, activation="relu"), layers.Dropout(0.0),
                                 layers.Dense(3, activation="softmax")])
    x, y = _data()
    histories = []
    for model in (functional(), sequential()):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        nn.utils.set_random_seed(2)
        histories.append((model.fit(x, y, epochs=3, batch_size=16, verbose=0).history, model.predict(x, verbose=0)))
    assert histories[0][0] == histories[1][0]
    np.testing.assert_array_equal(histories[0][1], histories[1][1])


def test_files_round_trip_and_the_config_is_keras_3s(tmp_path):
    model = _graph()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    assert_files_round_trip(model, x, tmp_path, (None, 6))
    config = model.get_config()
    assert config["input_layers"] == ["x", 0, 0] and config["output_layers"] == ["out", 0, 0]
    shared = next(entry for entry in config["layers"] if entry["name"] == "shared")
    sources = [node["args"][0]["config"]["keras_history"] for node in shared["inbound_nodes"]]
    assert sources == [["left", 0, 0], ["right", 0, 0]]
    joined = next(entry for entry in config["layers"] if entry["name"] == "joined")
    assert [t["config"]["keras_history"] for t in joined["inbound_nodes"][0]["args"][0]] == [["shared", 0, 0],
                                                                                             ["shared", 1, 0]]
    native = json.loads(model.to_json())
    assert native["class_name"] == "Functional" and native["registered_name"] == "Functional"
    entry = next(entry for entry in native["config"]["layers"] if entry["name"] == "joined")
    assert entry["build_config"] == {"input_shape": [[None, 8], [None, 8]]}
    rebuilt = keras.models.model_from_json(model.to_json())
    assert rebuilt.get_config() == model.get_config()
    clone = keras.models.clone_model(model)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert not any(np.array_equal(a, b) for a, b in zip(clone.get_weights()[:2], model.get_weights()[:2]))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_saved_graph_loads_predicts_and_resumes_as_keras_did(suffix):
    """Written by Keras 3.15 (make_keras_files.py functional_graph): branches, every merge layer, a shared layer,
    BatchNormalization and a residual Add, trained with Adam."""
    reference = np.load(DATA / "keras3_graph.npz")
    model = nn.load_model(DATA / f"keras3_graph{suffix}")
    assert type(model).__name__ == "Functional" and model.optimizer.iterations == 8
    assert [type(layer).__name__ for layer in model.layers][:4] == ["InputLayer", "Dense", "Dense", "Dense"]
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    model.fit(reference["x_fit"], reference["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    weights = model.get_weights()
    assert len(weights) == len([key for key in reference.files if key.startswith("after_")])
    for position, ours in enumerate(weights):
        np.testing.assert_allclose(ours, reference[f"after_{position}"], rtol=1e-4, atol=1e-5)


def test_keras_weights_file_of_a_graph_loads_by_position():
    reference = np.load(DATA / "keras3_graph.npz")
    model = nn.load_model(DATA / "keras3_graph.keras")
    expected = model.predict(reference["x"], verbose=0)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(DATA / "keras3_graph.weights.h5")
    np.testing.assert_array_equal(model.predict(reference["x"], verbose=0), expected)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_functional_chain_keras_saved_loads_predicts_and_resumes_as_keras_did(suffix):
    """Written by Keras 3.15 (make_keras_files.py archives): Input -> Conv1D -> GlobalAveragePooling1D -> Dense."""
    reference = np.load(DATA / "keras3_functional.npz")
    model = nn.load_model(DATA / f"keras3_functional{suffix}")
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Conv1D", "GlobalAveragePooling1D",
                                                                "Dense"]
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == 6
    model.fit(reference["x_fit"], reference["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for ours, keras_weights in zip(model.get_weights(), [reference[f"after_{i}"] for i in range(3)]):
        np.testing.assert_allclose(ours, keras_weights, rtol=1e-4, atol=1e-5)


def test_the_keras_file_with_two_branches_now_loads():
    model = nn.load_model(DATA / "keras3_functional_branches.keras", compile=False)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    first, second = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    expected = x @ first.kernel.numpy() + first.bias.numpy() + x @ second.kernel.numpy() + second.bias.numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_a_tf_keras_2_config_loads():
    """tf.keras 2.x wrote each call as [[layer, node, tensor, kwargs], ...] and the endpoints as nested lists."""
    config = {"name": "model", "input_layers": [["input_1", 0, 0]], "output_layers": [["add", 0, 0]], "layers": [
        {"class_name": "InputLayer", "name": "input_1", "config": {"batch_input_shape": [None, 3], "name": "input_1"},
         "inbound_nodes": []},
        {"class_name": "Dense", "name": "d1", "config": {"units": 2, "name": "d1"},
         "inbound_nodes": [[["input_1", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "d2", "config": {"units": 2, "name": "d2"},
         "inbound_nodes": [[["input_1", 0, 0, {}]]]},
        {"class_name": "Add", "name": "add", "config": {"name": "add"},
         "inbound_nodes": [[["d1", 0, 0, {}], ["d2", 0, 0, {}]]]}]}
    model = keras.Model.from_config(config)
    assert [layer.name for layer in model.layers] == ["input_1", "d1", "d2", "add"] and model.output_shape == (None, 2)


def test_config_nodes_are_called_once_their_inputs_exist():
    """A config may list a layer before the layers it reads (Keras loads it by passes over the list)."""
    config = _graph().get_config()
    config["layers"] = config["layers"][::-1]
    model = keras.Model.from_config(config)
    assert [layer.name for layer in model.layers] == ["x", "left", "right", "shared", "joined", "project", "skip",
                                                      "out"]


@pytest.mark.parametrize("damage, message", [
    (lambda c: c["layers"][1].update(inbound_nodes=[[["nowhere", 0, 0, {}]]]), "not a layer of the model"),
    (lambda c: c["layers"][1].update(inbound_nodes=[[["d", 0, 0, {}]]]), "no call makes"),
    (lambda c: c["layers"][1].update(inbound_nodes=[[["x", 0, 1, {}]]]),
     "layer 'd' reads output 1 of call 0 of layer 'x', which has 1 output"),
    (lambda c: c["layers"][1].update(inbound_nodes=[[["x", "0", 0, {}]]]), r"\[layer name, node index, tensor"),
    (lambda c: c["layers"][1].update(inbound_nodes=[{"args": [], "kwargs": {}}]), "one argument"),
    (lambda c: c["layers"][1].update(inbound_nodes="x"), "must be a list"),
    (lambda c: c.update(output_layers=["d", 3, 0]), "output_layers reads output 0 of call 3 of layer 'd'"),
    (lambda c: c.update(output_layers=[["d", 0, 0], ["d", 0, 0]]), "two outputs come from one layer"),
    (lambda c: c["layers"].append(dict(c["layers"][1])), "two layers are named 'd'"),
    (lambda c: c.update(layers="not a list"), "list of layer objects"),
])
def test_damaged_functional_configs_are_refused_with_the_reason(damage, message):
    config = {"name": "f", "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]], "layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [None, 3], "name": "x"},
         "inbound_nodes": []},
        {"class_name": "Dense", "name": "d", "config": {"units": 2, "name": "d"},
         "inbound_nodes": [[["x", 0, 0, {}]]]}]}
    assert keras.Model.from_config(config).output_shape == (None, 2)
    damage(config)
    with pytest.raises((ValueError, TypeError), match=message):
        keras.Model.from_config(config)


def test_what_nnengine_cannot_build_is_refused_with_the_reason():
    inputs, other = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    outputs = layers.Dense(2)(inputs)
    with pytest.raises(ValueError, match=r"two outputs come from one layer \(\['dense.*'\]\)"):
        keras.Model(inputs, [outputs, outputs])
    with pytest.raises(TypeError, match="a dict of outputs is not supported"):
        keras.Model(inputs, {"a": outputs})
    two_outputs = keras.Model(other, [layers.Dense(2)(other), layers.Dense(3)(other)], name="two_outputs")
    with pytest.raises(TypeError, match="model 'two_outputs' has 2 outputs; a model used as a layer needs one"):
        two_outputs(inputs)
    with pytest.raises(TypeError, match="Sequential.add: model 'two_outputs' has 2 outputs"):
        keras.Sequential([two_outputs])
    with pytest.raises(ValueError, match="an Input is given twice"):
        keras.Model([inputs, inputs], outputs)
    with pytest.raises(ValueError, match="Graph disconnected: .*not among the model's inputs"):
        keras.Model(other, outputs)
    with pytest.raises(ValueError, match="inputs must be keras.Input tensors, got the output of layer"):
        keras.Model(outputs, layers.Dense(2)(outputs))
    with pytest.raises(ValueError, match="an output is an input itself"):
        keras.Model(inputs, inputs)
    with pytest.raises(ValueError, match="The name 'twin' is used 2 times"):
        keras.Model(inputs, layers.Add()([layers.Dense(2, name="twin")(inputs), layers.Dense(2, name="twin")(inputs)]))
    with pytest.raises(TypeError, match="expected what calling layers on a keras.Input gave"):
        keras.Model(inputs, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="was called on layer"):
        layers.Dense(2)(layers.Dense(3))
    with pytest.raises(ValueError, match="jit_compile is not supported by nnengine yet"):
        keras.Model(inputs, outputs, jit_compile=True)
    with pytest.raises(TypeError, match="needs inputs and outputs"):
        keras.Model()


def test_a_layer_called_again_must_get_inputs_it_was_built_for():
    shared = layers.Dense(3)
    shared(keras.Input(shape=(4,)))
    with pytest.raises(ValueError, match=r"was built for inputs \(None, 4\) and cannot be called on inputs of "
                                         r"shape \(None, 5\)"):
        shared(keras.Input(shape=(5,)))
    variable = layers.LSTM(3)
    variable(keras.Input(shape=(None, 2)))
    assert variable(keras.Input(shape=(7, 2))).shape == (None, 3)      # None fits any length


# Keras 3.15's summary of this model (KERAS_BACKEND=torch, an 80-column terminal)
GRAPH_SUMMARY_FROM_KERAS = """\
Model: "functional"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ x (InputLayer)      │ (None, 6)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ d1 (Dense)          │ (None, 8)         │         56 │ x[0][0]           │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ d2 (Dense)          │ (None, 8)         │         56 │ x[0][0]           │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add (Add)           │ (None, 8)         │          0 │ d1[0][0],         │
│                     │                   │            │ d2[0][0]          │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ cat (Concatenate)   │ (None, 16)        │          0 │ add[0][0],        │
│                     │                   │            │ d1[0][0]          │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ d3 (Dense)          │ (None, 16)        │        112 │ x[0][0]           │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ shared (Dense)      │ (None, 4)         │         68 │ cat[0][0],        │
│                     │                   │            │ d3[0][0]          │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ concatenate         │ (None, 8)         │          0 │ shared[0][0],     │
│ (Concatenate)       │                   │            │ shared[1][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ out (Dense)         │ (None, 3)         │         27 │ concatenate[0][0] │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 319 (1.25 KB)
 Trainable params: 319 (1.25 KB)
 Non-trainable params: 0 (0.00 B)
"""


def test_summary_has_keras_connected_to_column(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    inputs = keras.Input(shape=(6,), name="x")
    d1 = layers.Dense(8, activation="relu", name="d1")(inputs)
    d2 = layers.Dense(8, activation="tanh", name="d2")(inputs)
    cat = layers.Concatenate(name="cat")([layers.Add(name="add")([d1, d2]), d1])
    shared = layers.Dense(4, name="shared")
    both = layers.Concatenate(name="concatenate")([shared(cat), shared(layers.Dense(16, name="d3")(inputs))])
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(both), name="functional")
    lines = []
    model.summary(print_fn=lines.append)
    assert "\n".join(lines) + "\n" == GRAPH_SUMMARY_FROM_KERAS


def test_summary_of_a_chain_has_no_connected_to_column_and_wraps_long_names(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    inputs = keras.Input(shape=(6,), name="x")
    model = keras.Model(inputs, layers.Dense(3, name="a_rather_long_dense_layer_name_indeed")(inputs))
    lines = []
    model.summary(print_fn=lines.append)
    assert lines[2] == "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃"
    assert lines[4] == "│ x (InputLayer)                  │ (None, 6)              │             0 │"
    assert lines[6] == "│ a_rather_long_dense_layer_name… │ (None, 3)              │            21 │"
    assert lines[7] == "│ (Dense)                         │                        │               │"
    monkeypatch.setenv("COLUMNS", "200")                    # Keras's widest: 88 characters, 108 with connections
    model.summary(print_fn=lines.append)
    assert len(lines[-8]) == 88


def test_the_guide_snippet_runs_and_trains(capsys, monkeypatch):
    import re
    monkeypatch.setenv("COLUMNS", "80")
    namespace = run_guide_snippet(0)
    loss, accuracy = namespace["model"].evaluate(namespace["x"], namespace["y"], verbose=0)
    assert accuracy > 0.6                              # three classes: chance is 1/3
    out = capsys.readouterr().out
    assert "Connected to" in out and re.search(r"│ add(_\d+)? \(Add\) ", out)


# ---------------------------------------------------------------------------------------------
# Several inputs: one array per input, as a list in input order or a dict by input name
# ---------------------------------------------------------------------------------------------
def _two_inputs(seed=0):
    nn.utils.set_random_seed(seed)
    numbers, tokens = keras.Input(shape=(5,), name="numbers"), keras.Input(shape=(7,), dtype="int32", name="tokens")
    embedded = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(tokens))
    joined = layers.Concatenate()([layers.Dense(6, activation="relu")(numbers), embedded])
    return keras.Model([numbers, tokens], layers.Dense(3, activation="softmax")(joined))


def _two_input_data(samples=40):
    rng = np.random.default_rng(3)
    return (rng.standard_normal((samples, 5)).astype(np.float32), rng.integers(0, 20, (samples, 7)),
            rng.integers(0, 3, samples))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_saved_two_input_model_loads_predicts_and_resumes_as_keras_did(suffix):
    """Written by Keras 3.15 (make_keras_files.py functional_graph): numbers and int tokens, Adam."""
    reference = np.load(DATA / "keras3_two_inputs.npz")
    model = nn.load_model(DATA / f"keras3_two_inputs{suffix}")
    assert [layer.name for layer in model.layers][:2] == ["tokens", "numbers"]          # Keras's order
    assert model.input_shape == [(None, 5), (None, 7)] and model.optimizer.iterations == 10
    x = [reference["numbers"], reference["tokens"]]
    np.testing.assert_allclose(model.predict(x, verbose=0), reference["predictions"], rtol=1e-5, atol=1e-6)
    model.fit({"numbers": x[0], "tokens": x[1]}, reference["y"], epochs=1, batch_size=8, shuffle=False, verbose=0)
    for position, ours in enumerate(model.get_weights()):
        np.testing.assert_allclose(ours, reference[f"after_{position}"], rtol=1e-4, atol=1e-5)


def _two_float_inputs(seed=0):
    nn.utils.set_random_seed(seed)
    wide, deep = keras.Input(shape=(5,), name="wide"), keras.Input(shape=(7,), name="deep")
    hidden = layers.Dense(6, activation="relu")(layers.Dense(8, activation="relu")(deep))
    return keras.Model([wide, deep], layers.Dense(3, activation="softmax")(layers.Concatenate()([wide, hidden])))


def test_two_inputs_as_a_list_or_a_dict_train_alike_and_compiled_equals_eager():
    numbers, tokens, y = _two_input_data(45)
    tokens = tokens.astype(np.float32)
    runs = []
    for x, jit in (([numbers, tokens], True), ({"deep": tokens, "wide": numbers}, True),
                   ((numbers, tokens), False)):
        model = _two_float_inputs()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit)
        nn.utils.set_random_seed(2)
        history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0).history
        runs.append((history, model.get_weights(), model.predict(x, verbose=0), model.evaluate(x, y, verbose=0)))
        assert model.jit_report()["captured"].get("train", 0) == (2 if jit else 0)
    for history, weights, predictions, evaluation in runs[1:]:
        assert history == runs[0][0] and evaluation == runs[0][3]
        for ours, first in zip(weights, runs[0][1]):
            np.testing.assert_array_equal(ours, first)
        np.testing.assert_array_equal(predictions, runs[0][2])


def test_two_input_files_round_trip(tmp_path):
    numbers, tokens, y = _two_input_data()
    model = _two_inputs()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit([numbers, tokens], y, epochs=1, verbose=0)
    assert_files_round_trip(model, [numbers, tokens], tmp_path, None)
    assert model.get_config()["input_layers"] == [["numbers", 0, 0], ["tokens", 0, 0]]


def test_a_two_input_model_is_differentiable_on_tensors():
    model = _two_inputs()
    numbers, tokens, _ = _two_input_data(4)
    x = nn.Tensor(numbers, requires_grad=True)
    model([x, nn.Tensor(tokens)]).sum().backward()
    assert x.grad is not None and x.grad.shape == (4, 5)


@pytest.mark.parametrize("make_x, error, message", [
    (lambda n, t: n, TypeError, r"the model has 2 inputs \['numbers', 'tokens'\]; x must be a list of 2 arrays"),
    (lambda n, t: [n], ValueError, "x must be a list of 2 arrays .* got 1 items"),
    (lambda n, t: {"numbers": n}, ValueError, r"missing \['tokens'\]"),
    (lambda n, t: {"numbers": n, "tokens": t, "extra": t}, ValueError, r"unknown keys \['extra'\]"),
    (lambda n, t: [n, t[:5]], ValueError, "the same number of samples, got {'numbers': 40, 'tokens': 5}"),
    (lambda n, t: [n, t[:, :3]], ValueError, r"x\['tokens'\]: an array of shape \(40, 3\) does not fit that input, "
                                             r"of shape \(None, 7\)"),
    (lambda n, t: [n, t + 1e12], ValueError, r"x\['tokens'\]: .*int32"),
    (lambda n, t: [n[:0], t[:0]], ValueError, "x is empty"),
])
def test_inputs_that_do_not_fit_a_two_input_model_are_refused_naming_the_input(make_x, error, message):
    numbers, tokens, y = _two_input_data()
    model = _two_inputs()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(error, match=message):
        model.fit(make_x(numbers, tokens), y, verbose=0)


def test_an_input_the_output_does_not_need_is_still_an_input():
    used, unused = keras.Input(shape=(3,), name="used"), keras.Input(shape=(2,), name="unused")
    model = keras.Model([used, unused], layers.Dense(1, name="d")(used))
    assert [layer.name for layer in model.layers] == ["used", "unused", "d"]
    prediction = model.predict([np.ones((2, 3)), np.zeros((2, 2))], verbose=0)
    assert prediction.shape == (2, 1)
    assert keras.Model.from_config(model.get_config()).input_shape == [(None, 3), (None, 2)]


def test_generators_and_datasets_feed_several_inputs():
    numbers, tokens, y = _two_input_data(16)
    model = _two_inputs()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            rows = slice(8 * index, 8 * index + 8)
            return {"numbers": numbers[rows], "tokens": tokens[rows]}, y[rows]

    def generator():
        while True:
            yield [numbers, tokens], y
    model.fit(generator(), steps_per_epoch=2, epochs=1, verbose=0)
    assert model.evaluate(Batches(), verbose=0) == pytest.approx(model.evaluate([numbers, tokens], y, verbose=0,
                                                                                batch_size=8))
    np.testing.assert_allclose(model.predict(Batches(), verbose=0), model.predict([numbers, tokens], verbose=0))


def test_the_guide_subclassed_model_runs_and_round_trips(tmp_path):
    namespace = run_guide_snippet(1, {"keras": keras})
    residual = namespace["Residual"]
    model = residual(units=16)
    x = np.random.default_rng(0).standard_normal((64, 12)).astype(np.float32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, np.arange(64) % 10, epochs=1, verbose=0)
    model.save(tmp_path / "residual.keras")
    restored = nn.load_model(tmp_path / "residual.keras", custom_objects={"Residual": residual})
    assert restored.units == 16
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_layer_outputs_make_feature_extractors_and_new_heads():
    """Keras's transfer-learning idiom: Model(model.input, model.get_layer(name).output), and a new head on it."""
    model = _graph()
    x, y = _data()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    features = keras.Model(model.input, model.get_layer("skip").output)
    assert [layer.name for layer in features.layers][-1] == "skip" and features.output_shape == (None, 8)
    skip = model.get_layer("skip")
    expected = (model.get_layer("project")(model.get_layer("joined")(
        [model.get_layer("shared")(model.get_layer(side)(x)) for side in ("left", "right")])) +
        model.get_layer("left")(x)).numpy()
    np.testing.assert_allclose(features.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    assert skip.input[1] is model.get_layer("left").output and model.get_layer("x").output is model.input
    for layer in model.layers:
        layer.trainable = False
    head = keras.Model(model.input, layers.Dense(2, name="head")(skip.output))
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    frozen = [w.numpy() for w in model.weights]
    head.fit(x, y % 2, epochs=2, verbose=0)
    assert [w.shape for w in head.trainable_weights] == [(8, 2), (2,)]
    for before, after in zip(frozen, model.weights):
        np.testing.assert_array_equal(before, after.numpy())
    shared = model.get_layer("shared")                  # a layer called twice: its first call's, as in Keras
    assert shared.output is model.get_layer("joined").input[0] and shared.input is model.get_layer("left").output
    with pytest.raises(AttributeError, match="layer 'lonely' has never been called on symbolic inputs"):
        layers.Dense(2, name="lonely").output


def test_a_built_sequential_has_symbolic_inputs_and_outputs_for_feature_extractors():
    """Keras's Sequential is a functional model once built: keras.Model(seq.inputs, seq.layers[-2].output)."""
    nn.utils.set_random_seed(0)
    sequential = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu", name="hidden"),
                                   layers.Dense(3, activation="softmax")])
    x, y = _data()
    sequential.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    sequential.fit(x, y, epochs=1, verbose=0)
    hidden = sequential.get_layer("hidden").output            # asked for first: the stack is made then
    features = keras.Model(sequential.inputs, hidden)
    np.testing.assert_array_equal(features.predict(x, verbose=0), sequential.layers[0](x).numpy())
    assert sequential.output.shape == (None, 3) and sequential.input is sequential.inputs[0]
    sequential.pop()
    assert sequential.output.shape == (None, 8)               # made again for the new structure
    with pytest.raises(AttributeError, match="is not built yet"):
        keras.Sequential([layers.Dense(2)]).outputs


def test_a_graph_deeper_than_the_recursion_limit_builds_and_loads_in_any_order():
    import sys
    inputs = keras.Input(shape=(3,))
    hidden = inputs
    for _ in range(sys.getrecursionlimit() + 500):
        hidden = layers.Identity()(hidden)
    model = keras.Model(inputs, layers.Dense(2)(hidden))
    config = model.get_config()
    config["layers"] = config["layers"][::-1]          # every call listed before the call it reads
    rebuilt = keras.Model.from_config(config)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    x = np.ones((2, 3), np.float32)
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))
