"""Recurrent layers that hand their states on: Keras's ``return_state`` and ``initial_state`` (the encoder and
decoder of a sequence-to-sequence model), and the functional graph's layers with several outputs.

Keras 3.15 trained three models (tests/data/keras3_states.npz, made by make_keras_files.py states): an LSTM
encoder whose last state and carry start an LSTM decoder; a GRU over padded tokens (Keras's mask) whose state
starts a backwards SimpleRNN; a GRU whose sequence and last state both feed a Dense layer. nnengine predicts,
evaluates and trains them as Keras did, reads Keras's file, and the recurrent op's derivatives with respect to the
initial state and through the last carry match finite differences in float64 on every CPU device."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnengine as nn
from nnengine import functional as F
from keras_helpers import assert_files_round_trip, assert_one_epoch_as_recorded, compiled_and_eager_runs, \
    make_keras_files

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"
FILES = make_keras_files()
RECORD = np.load(DATA / "keras3_states.npz")


def _inputs(names):
    arrays = [RECORD[name] for name in names]
    return arrays if len(arrays) > 1 else arrays[0]


# ---------------------------------------------------------------------------------------------
# As Keras 3.15 computes and trains them
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["seq2seq", "padded", "pooled"])
def test_models_that_pass_states_predict_evaluate_and_train_as_keras_did(name):
    model, names, _ = FILES.state_models(keras)[name]
    assert_one_epoch_as_recorded(model, _inputs(names), RECORD, name, 3e-5)


def test_keras_seq2seq_file_loads_with_its_graph_and_predicts_as_keras_did():
    model = keras.models.load_model(DATA / "keras3_seq2seq.keras")
    decoder = model.get_layer("decoder")
    node = decoder.__dict__["_symbolic_nodes"][0]
    assert node.named_inputs()["initial_state"] == model.get_layer("encoder").output[1:]
    np.testing.assert_allclose(model.get_weights()[0], RECORD["seq2seq_after_0"])
    x = _inputs(["source", "target"])
    expected, _, _ = FILES.state_models(keras)["seq2seq"]
    expected.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected.predict(x, verbose=0))


def test_the_config_of_a_call_with_an_initial_state_is_the_one_keras_writes():
    model, _, _ = FILES.state_models(keras)["seq2seq"]
    config = model.get_config()
    decoder = next(entry for entry in config["layers"] if entry["name"] == "decoder")
    call, = decoder["inbound_nodes"]
    assert call["args"][0]["config"]["keras_history"] == ["input_layer_1", 0, 0] or \
        call["args"][0]["config"]["keras_history"][1:] == [0, 0]
    assert [t["config"]["keras_history"] for t in call["kwargs"]["initial_state"]] == \
        [["encoder", 0, 1], ["encoder", 0, 2]]
    assert decoder["config"]["return_state"] is True
    rebuilt = keras.Model.from_config(json.loads(json.dumps(config)))
    rebuilt.set_weights(model.get_weights())
    x = _inputs(["source", "target"])
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_tf_keras_2_config_with_an_initial_state_loads_the_same_graph():
    """tf.keras 2.x writes a call as [[name, node, tensor, kwargs]], the states in kwargs['initial_state']."""
    model, _, _ = FILES.state_models(keras)["seq2seq"]
    config = json.loads(json.dumps(model.get_config()))
    for entry in config["layers"]:
        legacy = []
        for call in entry["inbound_nodes"]:
            history = call["args"][0]["config"]["keras_history"]
            states = [t["config"]["keras_history"] for t in call["kwargs"].get("initial_state", [])]
            legacy.append([[*history, {"initial_state": states} if states else {}]])
        entry["inbound_nodes"] = legacy
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    x = _inputs(["source", "target"])
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))
    config["layers"][-1]["inbound_nodes"] = [[["decoder", 0, 0, {"initial_state": [["encoder", 0, 1]]}]]]
    with pytest.raises(ValueError, match="does not take"):
        keras.Model.from_config(config)


def test_an_encoder_model_outputs_the_states_named_after_their_layer_as_in_keras():
    model, _, _ = FILES.state_models(keras)["seq2seq"]
    encoder = model.get_layer("encoder")
    states = keras.Model(model.inputs[0], encoder.output[1:])
    assert states.output_names == ["encoder", "encoder"]
    assert states.get_config()["output_layers"] == [["encoder", 0, 1], ["encoder", 0, 2]]
    h, c = states.predict(RECORD["source"], verbose=0)
    assert h.shape == c.shape == (24, 6)
    assert not np.allclose(h, c)
    with pytest.raises(ValueError, match="share a name"):
        states.compile(optimizer="adam", loss="mse")
    assert model.summary_shapes()[model.layers.index(encoder)] == [(None, 6)] * 3
    assert "│ encoder (LSTM)      │ [(None, 6),       │" in _summary(model)      # wrapped as Keras wraps it


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The math: the recurrent op from a given state, and through the last carry
# ---------------------------------------------------------------------------------------------
_CELLS = {"simple_rnn": (1, {}), "lstm": (4, {}), "gru": (3, {}), "gru_reset_before": (3, {"reset_after": False})}


def _run(cell, p, kernel, bias, states, **options):
    name = "gru" if cell.startswith("gru") else cell
    extra = dict(_CELLS[cell][1])
    if name == "gru" and extra.get("reset_after", True):
        extra["bias"] = bias
    return getattr(F, name)(p, kernel, initial_state=states, return_state=True, **extra, **options)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("cell", list(_CELLS))
@pytest.mark.parametrize("options", [{}, {"reverse": True, "return_sequences": False}, {"step_mask": "padded"},
                                     {"recurrent_masks": "dropout"}], ids=["plain", "reverse-last", "masked",
                                                                           "dropout"])
def test_gradients_through_the_initial_state_and_the_last_state_match_finite_differences(device, cell, options):
    rng = np.random.default_rng(5)
    gates = _CELLS[cell][0]
    steps, n, units = 4, 3, 2
    options = dict(options)
    if options.get("step_mask") == "padded":
        options["step_mask"] = np.array([[1, 1, 0], [0, 1, 1], [1, 1, 0], [1, 0, 0]])
    if options.get("recurrent_masks") == "dropout":
        options["recurrent_masks"] = nn.tensor((rng.random((gates, n, units)) > 0.3) / 0.7, dtype="float64",
                                               device=device)
    arrays = [rng.standard_normal((steps, n, gates * units)), 0.6 * rng.standard_normal((units, gates * units)),
              rng.standard_normal((2, gates * units))] + [rng.standard_normal((n, units)) for _ in range(2)]
    count = 2 if cell == "lstm" else 1
    outputs = [rng.standard_normal((steps, n, units) if options.get("return_sequences", True) else (n, units))] + \
        [rng.standard_normal((n, units)) for _ in range(count)]

    def loss(p, kernel, bias, *states):
        results = _run(cell, p, kernel, bias, list(states[:count]), **options)
        return sum((result * nn.tensor(weights, dtype="float64", device=device)).sum()
                   for result, weights in zip(results, outputs))
    tensors = [nn.tensor(a, dtype="float64", device=device, requires_grad=True) for a in arrays]
    assert nn.gradcheck(loss, *tensors)


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(list(_CELLS)), steps=st.integers(1, 5), n=st.integers(1, 4), units=st.integers(1, 4),
       seed=st.integers(0, 2 ** 16))
def test_the_cpu_kernels_match_the_reference_from_a_given_state(cell, steps, n, units, seed):
    """Outputs, the last carry and every gradient (the initial state's too) of the numba kernels against the numpy
    reference, in float64."""
    rng = np.random.default_rng(seed)
    gates = _CELLS[cell][0]
    arrays = [rng.standard_normal((steps, n, gates * units)), 0.6 * rng.standard_normal((units, gates * units)),
              rng.standard_normal((2, gates * units))] + [rng.standard_normal((n, units)) for _ in range(2)]
    count = 2 if cell == "lstm" else 1
    results = {}
    for device in ("numpy", "cpu"):
        tensors = [nn.tensor(a, dtype="float64", device=device, requires_grad=True) for a in arrays]
        outputs = _run(cell, *tensors[:3], tensors[3:3 + count])
        sum(((k + 1.5) * out).sum() for k, out in enumerate(outputs)).backward()
        results[device] = [out.numpy() for out in outputs] + \
            [t.grad.numpy() for t in tensors if t.grad is not None]
    assert len(results["cpu"]) == len(results["numpy"])
    for got, expected in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_a_zero_initial_state_gives_what_no_initial_state_gives():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4, 3)).astype("float32")
    for layer_class in (layers.SimpleRNN, layers.GRU, layers.LSTM):
        nn.utils.set_random_seed(1)
        layer = layer_class(4, return_sequences=True, return_state=True)
        out, *states = layer(x)
        zeros = [np.zeros((5, 4), "float32")] * len(states)
        again, *states_again = layer(x, initial_state=zeros)
        np.testing.assert_array_equal(again.numpy(), out.numpy())
        for state, other in zip(states, states_again):
            np.testing.assert_array_equal(state.numpy(), other.numpy())
        np.testing.assert_array_equal(states[0].numpy(), out.numpy()[:, -1])      # h_T is the last output


# ---------------------------------------------------------------------------------------------
# Training: compiled as eager, files
# ---------------------------------------------------------------------------------------------
def test_a_seq2seq_model_trains_compiled_exactly_as_eagerly(tmp_path):
    x = _inputs(["source", "target"])
    y = np.random.default_rng(8).integers(0, 3, (24, 5))

    def make_model():
        nn.utils.set_random_seed(3)
        return FILES.state_models(keras)["seq2seq"][0]
    report = compiled_and_eager_runs(make_model, x, y, epochs=2, batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1
    model, _, _ = FILES.state_models(keras)["seq2seq"]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert_files_round_trip(model, x, tmp_path, [(None, 6, 5), (None, 5, 4)])


def test_variable_length_sequences_train_with_per_step_targets():
    """Input(shape=(None, features)): sequences of any length, one target per step."""
    source, target = keras.Input((None, 3)), keras.Input((None, 2))
    _, h, c = layers.LSTM(4, return_state=True)(source)
    decoded = layers.LSTM(4, return_sequences=True)(target, initial_state=[h, c])
    model = keras.Model([source, target], layers.Dense(3, activation="softmax")(decoded))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(9)
    for steps in (4, 6):
        x = [rng.standard_normal((16, 5, 3)).astype("float32"), rng.standard_normal((16, steps, 2)).astype("float32")]
        history = model.fit(x, rng.integers(0, 3, (16, steps)), epochs=2, batch_size=8, verbose=0).history
        assert np.isfinite(history["loss"]).all()
        assert model.predict(x, verbose=0).shape == (16, steps, 3)


def test_the_states_fixed_on_data_are_the_last_steps_and_gradients_reach_them():
    nn.utils.set_random_seed(4)
    lstm = layers.LSTM(3, return_state=True)
    x = nn.tensor(np.random.default_rng(1).standard_normal((2, 4, 5)), dtype="float32")
    h0 = nn.tensor(np.ones((2, 3)), dtype="float32", requires_grad=True)
    c0 = nn.tensor(np.ones((2, 3)), dtype="float32", requires_grad=True)
    out, h, c = lstm(x, initial_state=[h0, c0])
    np.testing.assert_array_equal(out.numpy(), h.numpy())            # without return_sequences, out is h_T
    (h.sum() + c.sum()).backward()
    assert np.abs(h0.grad.numpy()).sum() > 0 and np.abs(c0.grad.numpy()).sum() > 0


# ---------------------------------------------------------------------------------------------
# What is refused
# ---------------------------------------------------------------------------------------------
def test_bad_states_are_refused_naming_the_layer():
    lstm = layers.LSTM(3, name="enc")
    x = np.zeros((2, 4, 5), "float32")
    with pytest.raises(ValueError, match=r"LSTM 'enc': initial_state must be \[h, c\].*got 1"):
        lstm(x, initial_state=[np.zeros((2, 3), "float32")])
    with pytest.raises(ValueError, match=r"LSTM 'enc': initial_state\[1\] must be a Tensor of shape \(batch, "
                                         r"units\) = \(2, 3\), got \(2, 4\)"):
        lstm(x, initial_state=[np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32")])
    inputs = keras.Input((4, 5))
    with pytest.raises(ValueError, match=r"LSTM 'dec': each initial state must be \(batch, 3\), got \(None, 4\)"):
        _, h, c = layers.LSTM(4, return_state=True)(inputs)
        layers.LSTM(3, name="dec")(inputs, initial_state=[h, c])
    with pytest.raises(TypeError, match="GRU 'g': in a functional model the sequences and the initial_state"):
        layers.GRU(3, name="g")(inputs, initial_state=np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="Sequential.add: layer 's' has return_state=True"):
        keras.Sequential([keras.Input((4, 5)), layers.SimpleRNN(3, return_state=True, name="s")])


def test_a_plan_that_starts_a_sequence_from_given_states_lowers_and_stays_bitwise(monkeypatch, tmp_path):
    """An LSTM started from states that Dense layers make (an image captioner's decoder): the numba lowering
    passes the states to the kernels and takes their gradients back, as the eager step does."""
    from nnengine import capture
    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 1)
    monkeypatch.setenv("NNENGINE_PLAN_CACHE", str(tmp_path / "plans"))

    def make_model():
        nn.utils.set_random_seed(5)
        features, sequences = keras.Input((5,)), keras.Input((6, 3))
        states = [layers.Dense(4, activation="tanh")(features), layers.Dense(4)(features)]
        decoded = layers.LSTM(4)(sequences, initial_state=states)
        return keras.Model([features, sequences], layers.Dense(3, activation="softmax")(decoded))
    rng = np.random.default_rng(12)
    x = [rng.standard_normal((24, 5)).astype("float32"), rng.standard_normal((24, 6, 3)).astype("float32")]
    y = rng.integers(0, 3, 24)
    report = compiled_and_eager_runs(make_model, x, y, epochs=3, batch_size=8)     # bitwise, lowered or not
    assert report["plans_lowered"] == 3, report      # both train plans and evaluate's; predict ran once
    model = make_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for _ in range(3):                               # captured, replayed, then lowered
        model.predict(x, verbose=0)
    assert all(plan.is_lowered for plan in model._compiler.plans().values())
