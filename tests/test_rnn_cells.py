"""RNN(cell) and the cells (rnn_cells.py): Keras 3.15's saved models (an LSTMCell, a masked backwards stack, a
GRUCell's returned state, the guide's custom cell) load, predict, evaluate and train as Keras trains them; the
cells against the fused layers; finite differences; compiled == eager with cell dropout; bad input by name."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, make_keras_files

keras = nn.keras
layers = keras.layers
DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_rnn_cells.npz")
FILES = make_keras_files()
MinimalRNNCell = FILES.minimal_cell_class(keras)          # registered as Keras registered it: the file names it


@pytest.mark.parametrize("name, kind", [("lstm", "floats"), ("masked", "tokens"), ("with_state", "floats"),
                                        ("custom", "floats")])
def test_keras_models_load_predict_evaluate_and_train_as_keras(name, kind, tmp_path):
    model = keras.models.load_model(DATA / f"keras3_rnn_{name}.keras")
    x, y = RECORD[kind], RECORD["y"]
    np.testing.assert_allclose(model.predict(x, verbose=0), RECORD[f"{name}_predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), RECORD[f"{name}_evaluate"], rtol=1e-5)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, RECORD[f"{name}_trained_{index}"], rtol=5e-5, atol=5e-6)
    assert_files_round_trip(model, x, tmp_path, (16, *x.shape[1:]))


FUSED = {"simple": (layers.SimpleRNN, layers.SimpleRNNCell, {}), "lstm": (layers.LSTM, layers.LSTMCell, {}),
         "gru": (layers.GRU, layers.GRUCell, {}), "gru_before": (layers.GRU, layers.GRUCell, {"reset_after": False})}


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(sorted(FUSED)), steps=st.integers(1, 5), backwards=st.booleans(),
       sequences=st.booleans(), masked=st.booleans(), zero_output=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_each_cell_in_an_rnn_is_its_fused_layer(kind, steps, backwards, sequences, masked, zero_output, seed):
    rng = np.random.default_rng(seed)
    layer_class, cell_class, options = FUSED[kind]
    x = rng.standard_normal((3, steps, 4))
    mask = nn.Tensor(rng.random((3, steps)) < 0.7) if masked else None
    common = dict(go_backwards=backwards, return_sequences=sequences, return_state=True,
                  zero_output_for_mask=zero_output, dtype="float64")
    fused = layer_class(5, **options, **common)
    wrapped = layers.RNN(cell_class(5, **options, dtype="float64"), **common)
    fused.build((None, steps, 4))
    wrapped.build((None, steps, 4))
    wrapped.set_weights(fused.get_weights())
    expected, got = fused(x, mask=mask), wrapped(x, mask=mask)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_a_stack_is_its_layers_one_after_the_other_and_starts_from_the_states_given():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3))
    first, second = layers.LSTM(5, return_sequences=True, dtype="float64"), layers.GRU(2, dtype="float64")
    stacked = layers.RNN([layers.LSTMCell(5, dtype="float64"), layers.GRUCell(2, dtype="float64")],
                         return_state=True, dtype="float64")
    first.build((None, 4, 3))
    second.build((None, 4, 5))
    stacked.build((None, 4, 3))
    stacked.set_weights(first.get_weights() + second.get_weights())
    h, c, g = rng.standard_normal((2, 5)), rng.standard_normal((2, 5)), rng.standard_normal((2, 2))
    expected = second(first(x, initial_state=[nn.Tensor(h), nn.Tensor(c)]), initial_state=[nn.Tensor(g)])
    out, *states = stacked(x, initial_state=[nn.Tensor(h), nn.Tensor(c), nn.Tensor(g)])
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-10)
    assert [s.shape for s in states] == [(2, 5), (2, 5), (2, 2)]
    np.testing.assert_allclose(states[-1].numpy(), expected.numpy(), rtol=1e-10)


@pytest.mark.parametrize("make", [lambda: layers.LSTMCell(3, dtype="float64"),
                                  lambda: layers.GRUCell(3, reset_after=False, dtype="float64"),
                                  lambda: MinimalRNNCell(3, dtype="float64")])
def test_gradients_through_time_by_finite_differences(make):
    rng = np.random.default_rng(2)
    rnn = layers.RNN(make(), return_sequences=True, dtype="float64")
    rnn.build((None, 4, 2))
    rnn.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in rnn.weights])
    mask = nn.Tensor(np.array([[True, True, False, True], [True, False, True, True]]))
    assert nn.gradcheck(lambda x: rnn(x, mask=mask), rng.standard_normal((2, 4, 2)))


def cell_model(dropout):
    nn.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((5, 3)), layers.RNN([
        layers.LSTMCell(4, dropout=dropout, recurrent_dropout=dropout, seed=1),
        layers.GRUCell(3, dropout=dropout, recurrent_dropout=dropout)], return_sequences=True),
        layers.RNN(MinimalRNNCell(2)), layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_an_rnn_model_trains_compiled_bitwise_as_eagerly(dropout):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20, 5, 3)).astype(np.float32), rng.integers(0, 3, 20)
    report = compiled_and_eager_runs(lambda: cell_model(dropout), x, y, batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


def test_lstm_cell_dropout_draws_one_mask_per_gate_with_recurrent_dropout_else_one_as_keras():
    x = np.ones((2, 3, 5), np.float32)
    for recurrent, counts in ((0.0, (1, None)), (0.2, (4, 4))):
        cell = layers.LSTMCell(4, dropout=0.3, recurrent_dropout=recurrent, seed=2)
        layers.RNN(cell)(x, training=True)
        assert [None if m is None else m.shape[0] for m in cell._masks] == list(counts)


def test_cell_dropout_masks_each_gate_once_per_sequence():
    cell = layers.SimpleRNNCell(4, dropout=0.5, recurrent_dropout=0.5, seed=7)
    rnn = layers.RNN(cell, return_sequences=True)
    x = np.ones((6, 5, 3), np.float32)
    inference = rnn(x).numpy()
    assert not np.array_equal(rnn(x, training=True).numpy(), inference)
    drawn = cell._masks
    assert drawn[0].shape == (1, 6, 3) and drawn[1].shape == (1, 6, 4)
    np.testing.assert_array_equal(rnn(x).numpy(), inference)             # inference: no dropout


@pytest.mark.parametrize("make, error, message", [
    (lambda: layers.RNN(layers.Dense(3)), ValueError, r"must have a state_size"),
    (lambda: layers.RNN("lstm"), TypeError, r"cell must be a layer with call\(inputs, states\)"),
    (lambda: layers.RNN(layers.LSTMCell(3), stateful=True), ValueError, r"stateful=True is not supported"),
    (lambda: layers.RNN([]), ValueError, r"cells must be a non-empty list"),
    (lambda: layers.LSTMCell(0), ValueError, r"units"),
    (lambda: layers.GRUCell(3, dropout=1.0), ValueError, r"dropout"),
])
def test_bad_arguments_are_refused_by_name(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_calls_are_refused_by_name():
    rnn = layers.RNN(layers.LSTMCell(3), name="loop")
    x = np.ones((2, 4, 5), np.float32)
    with pytest.raises(ValueError, match=r"RNN 'loop': initial_state must hold 2 state\(s\)"):
        rnn(x, initial_state=[np.zeros((2, 3), np.float32)])
    with pytest.raises(ValueError, match=r"initial_state\[1\] must be a Tensor of shape \(batch, 3\)"):
        rnn(x, initial_state=[nn.Tensor(np.zeros((2, 3), np.float32)), nn.Tensor(np.zeros((2, 4), np.float32))])
    with pytest.raises(ValueError, match=r"Input of layer 'loop' is incompatible"):
        rnn(np.ones((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"expects inputs \(batch, steps, features\)"):
        layers.RNN(layers.GRUCell(2))(np.ones((2, 4), np.float32))


def test_a_cell_that_returns_the_wrong_states_is_named():
    class Broken(keras.layers.Layer):
        state_size = [2, 2]

        def call(self, inputs, states):
            return states[0], [states[0]]
    with pytest.raises(ValueError, match=r"the cell returned 1 state\(s\), its state_size says 2"):
        layers.RNN(Broken())(np.ones((1, 3, 2), np.float32))
