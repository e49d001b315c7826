"""Bidirectional with Keras's ``return_state`` and ``initial_state``: a bidirectional encoder whose states start a
decoder, a Bidirectional GRU started from states made by Dense layers, and one over padded tokens whose last
states feed a Dense layer. Keras 3.15 trained the three (tests/data/keras3_bidirectional_states.npz, made by
make_keras_files.py bidirectional_states); nnengine predicts, evaluates and trains them as Keras did, reads
Keras's file, compiles them bitwise as it runs them eagerly, and its gradients through the given states match
finite differences."""
import json
import zipfile

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip, assert_keras_file_as_built, assert_one_epoch_as_recorded, \
    compiled_and_eager_runs, make_keras_files

import nnengine as nn

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"
FILES = make_keras_files()
RECORD = np.load(DATA / "keras3_bidirectional_states.npz")
NAMES = ["seq2seq", "started", "masked"]


def _inputs(names):
    arrays = [RECORD[name] for name in names]
    return arrays if len(arrays) > 1 else arrays[0]


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_models_with_states_predict_evaluate_and_train_as_keras_did(name):
    model, names, _ = FILES.bidirectional_state_models(keras)[name]
    assert_one_epoch_as_recorded(model, _inputs(names), RECORD, name, 3e-5)


def test_keras_file_loads_with_the_encoders_states_and_its_config_is_keras():
    path = DATA / "keras3_bidirectional_seq2seq.keras"
    model = assert_keras_file_as_built(path, FILES.bidirectional_state_models(keras)["seq2seq"][0],
                                       _inputs(["source", "target"]))
    encoder = model.get_layer("encoder")
    assert encoder.return_state and encoder.state_count == 4 and len(encoder.output) == 5
    with zipfile.ZipFile(path) as archive:
        theirs = json.loads(archive.read("config.json"))["config"]["layers"]
    ours = model.get_config()["layers"]
    for entry in ("encoder", "decoder"):
        mine, keras_entry = (next(e for e in layers_ if e["name"] == entry) for layers_ in (ours, theirs))
        (call,), (keras_call,) = mine["inbound_nodes"], keras_entry["inbound_nodes"]
        assert mine["class_name"] == keras_entry["class_name"] and call["args"] == keras_call["args"]
        assert call["kwargs"].get("initial_state") == keras_call["kwargs"].get("initial_state")
    assert next(e for e in ours if e["name"] == "encoder")["config"]["layer"]["config"]["return_state"] is True


@pytest.mark.parametrize("name", NAMES)
def test_compiled_steps_are_the_eager_ones_and_files_round_trip(name, tmp_path):
    _, names, _ = FILES.bidirectional_state_models(keras)[name]

    def make_model():
        nn.utils.set_random_seed(3)
        return FILES.bidirectional_state_models(keras)[name][0]
    report = compiled_and_eager_runs(make_model, _inputs(names), RECORD[f"{name}_y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1
    model = make_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert_files_round_trip(model, _inputs(names), tmp_path, None)


def test_on_data_the_states_are_each_directions_last_ones():
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    layer = layers.Bidirectional(layers.LSTM(4, return_state=True, dtype="float64"), dtype="float64")
    out, forward_h, forward_c, backward_h, backward_c = [t.numpy() for t in layer(x)]
    forward, backward = layer.forward_layer, layer.backward_layer
    np.testing.assert_array_equal(forward(x)[1].numpy(), forward_h)
    np.testing.assert_array_equal(out, np.concatenate([forward_h, backward_h], axis=-1))
    states = [np.full((3, 4), v) for v in (0.1, -0.2, 0.3, 0.4)]
    started = [t.numpy() for t in layer(x, initial_state=states)]
    np.testing.assert_array_equal(started[1], forward(x, initial_state=states[:2])[1].numpy())
    np.testing.assert_array_equal(started[3], backward(x, initial_state=states[2:])[1].numpy())
    with pytest.raises(ValueError, match="Bidirectional 'b': initial_state must be 4 states, the forward layer's "
                                         r"\[h, c\] then the backward layer's, got 2"):
        layers.Bidirectional(layers.LSTM(4), name="b")(x, initial_state=states[:2])


def test_gradients_through_the_given_states_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3))
    layer = layers.Bidirectional(layers.GRU(3, return_sequences=True, dtype="float64"), merge_mode="mul",
                                 dtype="float64")
    layer(x)
    weights = rng.standard_normal((2, 4, 3))

    def loss(forward_h, backward_h):
        return (layer(nn.tensor(x), initial_state=[forward_h, backward_h]) * nn.tensor(weights)).sum()
    report = nn.gradcheck(loss, nn.tensor(rng.standard_normal((2, 3)) * 0.5, requires_grad=True),
                          nn.tensor(rng.standard_normal((2, 3)) * 0.5, requires_grad=True))
    assert report.passed, report
