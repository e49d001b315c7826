"""SimpleRNN, LSTM and GRU (nnengine/recurrent_layers.py, recurrent_ops.py): outputs against a plain numpy loop of
Keras 3's cell formulas, derivatives against finite differences, files against files Keras 3.15 wrote, and
configs with Keras's keys."""
import pathlib
import re

import numpy as np
import pytest
from keras_helpers import assert_files_round_trip

import nnengine as nn
import nnengine.functional as F

L = nn.keras.layers
DATA = pathlib.Path(__file__).parent / "data"


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _relu(z):
    return np.maximum(z, 0)


def reference(layer, x, input_masks=None, state_masks=None):
    """Keras 3's cells step by step in float64 numpy, from the layer's weights (written from Keras's formulas).

    With dropout masks (one (n, features) mask per gate for the inputs, one (n, units) per gate for the state:
    Keras's implementation 1, which recurrent dropout selects), each gate's products use its own masked copies.
    """
    w = [v.astype(np.float64) for v in layer.get_weights()]
    kernel, recurrent = w[0], w[1]
    bias = w[2] if len(w) > 2 else np.zeros((2, kernel.shape[1]) if getattr(layer, "reset_after", False)
                                            else kernel.shape[1])
    act = {"tanh": np.tanh, "relu": _relu, "sigmoid": _sigmoid, "linear": lambda z: z}
    a = act[nn.activations.serialize(layer.activation)]
    s = act[nn.activations.serialize(layer.recurrent_activation)] if layer.recurrent_activation else None
    u = layer.units
    steps = range(x.shape[1] - 1, -1, -1) if layer.go_backwards else range(x.shape[1])
    h, c, outputs = np.zeros((x.shape[0], u)), np.zeros((x.shape[0], u)), []
    gates = kernel.shape[1] // u

    def per_gate(values, masks, weights):         # [values * masks[g] @ weights_g for each gate]
        if masks is None:
            return values @ weights
        return np.concatenate([(values * masks[g]) @ weights[:, g * u:(g + 1) * u] for g in range(gates)], axis=1)
    for t in steps:
        xt = x[:, t].astype(np.float64)
        if isinstance(layer, L.LSTM):
            z = per_gate(xt, input_masks, kernel) + per_gate(h, state_masks, recurrent) + bias
            i, f, g, o = s(z[:, :u]), s(z[:, u:2 * u]), a(z[:, 2 * u:3 * u]), s(z[:, 3 * u:])
            c = f * c + i * g
            h = o * a(c)
        elif isinstance(layer, L.GRU):
            if layer.reset_after:
                xz = per_gate(xt, input_masks, kernel) + bias[0]
                q = per_gate(h, state_masks, recurrent) + bias[1]
                z, r = s(xz[:, :u] + q[:, :u]), s(xz[:, u:2 * u] + q[:, u:2 * u])
                candidate = a(xz[:, 2 * u:] + r * q[:, 2 * u:])
            else:
                xz = per_gate(xt, input_masks, kernel) + bias
                q = per_gate(h, state_masks, recurrent)[:, :2 * u]
                z, r = s(xz[:, :u] + q[:, :u]), s(xz[:, u:2 * u] + q[:, u:2 * u])
                reset_input = h if state_masks is None else h * state_masks[2]
                candidate = a(xz[:, 2 * u:] + (r * reset_input) @ recurrent[:, 2 * u:])
            h = z * h + (1 - z) * candidate
        else:
            h = a(per_gate(xt, input_masks, kernel) + bias + per_gate(h, state_masks, recurrent))
        outputs.append(h)
    return np.stack(outputs, axis=1) if layer.return_sequences else h


LAYERS = [
    lambda: L.SimpleRNN(5),
    lambda: L.SimpleRNN(4, activation="relu", return_sequences=True, go_backwards=True),
    lambda: L.LSTM(5),
    lambda: L.LSTM(3, return_sequences=True, go_backwards=True, use_bias=False),
    lambda: L.LSTM(4, activation="relu", recurrent_activation="tanh", return_sequences=True),
    lambda: L.GRU(5),
    lambda: L.GRU(4, return_sequences=True, go_backwards=True),
    lambda: L.GRU(4, reset_after=False, return_sequences=True),
    lambda: L.GRU(3, use_bias=False, activation="linear"),
]


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("make", LAYERS, ids=range(len(LAYERS)))
def test_outputs_follow_keras_cell_formulas(make, device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 7, 3)).astype(np.float32)
    with nn.device(device):
        layer = make()
        out = layer(x)
    expected = reference(layer, x)
    assert out.shape == expected.shape == layer.compute_output_shape((6, 7, 3))
    np.testing.assert_allclose(out.numpy(), expected, rtol=2e-5, atol=2e-6)


CELLS = [("simple_rnn", 1, {}), ("simple_rnn", 1, {"activation": "relu", "reverse": True}), ("lstm", 4, {}),
         ("lstm", 4, {"reverse": True, "activation": "relu", "recurrent_activation": "tanh"}),
         ("gru", 3, {}), ("gru", 3, {"reverse": True}), ("gru", 3, {"reset_after": False}),
         ("gru", 3, {"reset_after": False, "reverse": True})]


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("name, gates, options", CELLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CELLS)])
def test_backward_through_time_matches_finite_differences(name, gates, options, device):
    rng = np.random.default_rng(1)
    steps, samples, units = 4, 3, 2

    def t(shape, scale=1.0):
        return nn.tensor(rng.standard_normal(shape) * scale, dtype="float64", device=device, requires_grad=True)
    operands = [t((steps, samples, gates * units)), t((units, gates * units), 0.6)]
    if name == "gru" and options.get("reset_after", True):
        operands.append(t((2, gates * units)))
    for sequences in (True, False):
        shape = (steps, samples, units) if sequences else (samples, units)
        weights = nn.tensor(rng.standard_normal(shape), dtype="float64", device=device)
        result = nn.gradcheck(lambda *a: (getattr(F, name)(*a, **options, return_sequences=sequences) * weights).sum(),
                              *operands)
        assert result.passed, result


def test_a_whole_layer_and_the_layers_below_it_get_exact_gradients():
    rng = np.random.default_rng(2)
    model = nn.Sequential([nn.Input((5, 2), dtype="float64"), L.GRU(3, return_sequences=True, dtype="float64"),
                           L.LSTM(2, dtype="float64", go_backwards=True)])
    x = nn.tensor(rng.standard_normal((4, 5, 2)), dtype="float64", requires_grad=True)
    assert nn.gradcheck(lambda v: (model(v) ** 2).sum(), x).passed
    kernel = model.layers[0].weights[0]
    assert nn.gradcheck(lambda k: (model(x) ** 2).sum(), kernel).passed


def test_weights_are_named_shaped_and_initialized_as_keras_does():
    nn.utils.set_random_seed(0)
    lstm, gru, gru_before = L.LSTM(4), L.GRU(3), L.GRU(3, reset_after=False)
    for layer in (lstm, gru, gru_before):
        layer.build((None, 5, 2))
    assert lstm.weight_names == ["lstm_cell/kernel", "lstm_cell/recurrent_kernel", "lstm_cell/bias"]
    assert [w.shape for w in lstm.weights] == [(2, 16), (4, 16), (16,)]
    assert [w.shape for w in gru.weights] == [(2, 9), (3, 9), (2, 9)]
    assert gru_before.weights[2].shape == (9,)
    np.testing.assert_array_equal(lstm.get_weights()[2], np.repeat([0.0, 1.0, 0.0, 0.0], 4))   # unit_forget_bias
    recurrent = lstm.get_weights()[1].astype(np.float64)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(4), atol=1e-6)       # orthogonal rows
    plain = L.LSTM(4, unit_forget_bias=False)
    plain.build((None, 5, 2))
    np.testing.assert_array_equal(plain.get_weights()[2], np.zeros(16))


KERAS_KEYS = {
    "SimpleRNN": ["name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards", "stateful",
                  "unroll", "zero_output_for_mask", "units", "activation", "use_bias", "kernel_initializer",
                  "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
                  "bias_regularizer", "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                  "bias_constraint", "dropout", "recurrent_dropout"],
}
KERAS_KEYS["LSTM"] = [*KERAS_KEYS["SimpleRNN"][:11], "recurrent_activation", *KERAS_KEYS["SimpleRNN"][11:15],
                      "unit_forget_bias", *KERAS_KEYS["SimpleRNN"][15:], "seed"]
KERAS_KEYS["GRU"] = [*KERAS_KEYS["SimpleRNN"][:11], "recurrent_activation", *KERAS_KEYS["SimpleRNN"][11:],
                     "reset_after", "seed"]


@pytest.mark.parametrize("cls", [L.SimpleRNN, L.LSTM, L.GRU], ids=lambda c: c.__name__)
def test_configs_have_keras_keys_in_keras_order_and_round_trip(cls):
    layer = cls(3, return_sequences=True, go_backwards=True, dropout=0.25, kernel_regularizer="l2")
    config = layer.get_config()
    assert list(config) == KERAS_KEYS[cls.__name__]
    assert config["recurrent_initializer"]["class_name"] == "Orthogonal"
    again = cls.from_config(config)
    assert again.get_config() == config
    masked_output = cls(2, zero_output_for_mask=True)          # Keras's Bidirectional sets it; no masks here
    assert cls.from_config(masked_output.get_config()).zero_output_for_mask is True


def test_the_keras_layer_names_and_files_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((24, 6, 3)).astype(np.float32), rng.integers(0, 3, 24)
    nn.utils.set_random_seed(4)
    model = nn.Sequential([nn.Input((6, 3)), L.LSTM(4, return_sequences=True), L.GRU(3, go_backwards=True,
                                                                                   return_sequences=True),
                           L.Bidirectional(L.SimpleRNN(2)), L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert [layer.name.split("_")[0] for layer in model.layers] == ["lstm", "gru", "bidirectional", "dense"]
    assert L.SimpleRNN(2).name.startswith("simple_rnn")               # Keras's snake case
    assert_files_round_trip(model, x, tmp_path, (None, 6, 3))
    resumed = nn.load_model(tmp_path / "model.keras")
    for m in (model, resumed):
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_files_keras_wrote_load_predict_and_resume_as_keras_did(suffix):
    reference_data = np.load(DATA / "keras3_rnn_adam.npz")
    model = nn.load_model(DATA / f"keras3_rnn_adam{suffix}")
    assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "GRU", "SimpleRNN", "Dense"]
    assert model.layers[1].go_backwards and model.layers[1].return_sequences
    np.testing.assert_allclose(model.predict(reference_data["x"], verbose=0), reference_data["y"], rtol=1e-5,
                               atol=1e-6)
    model.fit(reference_data["x_fit"], reference_data["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for i, ours in enumerate(model.get_weights()):
        np.testing.assert_allclose(ours, reference_data[f"after_{i}"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("make", [lambda: L.LSTM(4, return_sequences=True), lambda: L.GRU(3),
                                  lambda: L.SimpleRNN(3, return_sequences=True, go_backwards=True)], ids=range(3))
def test_bidirectional_merges_the_layer_forwards_and_backwards_in_time_order(make, merge_mode):
    x = np.random.default_rng(6).standard_normal((4, 5, 2)).astype(np.float32)
    layer = L.Bidirectional(make(), merge_mode=merge_mode)
    out = layer(x).numpy()
    forward, backward = reference(layer.forward_layer, x), reference(layer.backward_layer, x)
    if layer.return_sequences:
        backward = backward[:, ::-1]
    expected = {"concat": lambda: np.concatenate([forward, backward], -1), "sum": lambda: forward + backward,
                "mul": lambda: forward * backward, "ave": lambda: (forward + backward) / 2}[merge_mode]()
    assert out.shape == expected.shape == layer.compute_output_shape((4, 5, 2))
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=2e-6)
    assert layer.backward_layer.go_backwards != layer.forward_layer.go_backwards
    assert layer.weight_names[0] == f"{layer.forward_layer.name}/{layer.forward_layer.cell_name}/kernel"
    assert len(layer.weights) == 2 * len(layer.forward_layer.weights)


def test_bidirectional_gradients_config_and_files(tmp_path):
    nn.utils.set_random_seed(7)
    layer = L.Bidirectional(L.LSTM(2, return_sequences=True, dtype="float64"), dtype="float64")
    x = nn.tensor(np.random.default_rng(7).standard_normal((3, 4, 2)), dtype="float64", requires_grad=True)
    assert nn.gradcheck(lambda v: (layer(v) ** 2).sum(), x).passed
    assert nn.gradcheck(lambda k: (layer(x) ** 2).sum(), layer.weights[4]).passed        # the backward layer's
    config = layer.get_config()
    assert list(config) == ["name", "trainable", "dtype", "merge_mode", "layer", "backward_layer"]
    assert config["layer"]["class_name"] == "LSTM" and config["layer"]["config"]["name"].startswith("forward_")
    assert L.Bidirectional.from_config(config).get_config() == config
    with pytest.raises(TypeError, match="must be a SimpleRNN, LSTM or GRU, got Dense"):
        L.Bidirectional(L.Dense(3))
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        L.Bidirectional(L.GRU(2), merge_mode=None)
    with pytest.raises(ValueError, match="go_backwards opposite"):
        L.Bidirectional(L.GRU(2), backward_layer=L.GRU(2))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_bidirectional_files_keras_wrote_load_predict_and_resume_as_keras_did(suffix):
    reference_data = np.load(DATA / "keras3_bidirectional.npz")
    model = nn.load_model(DATA / f"keras3_bidirectional{suffix}")
    assert [layer.merge_mode for layer in model.layers[:3]] == ["concat", "ave", "sum"]
    np.testing.assert_allclose(model.predict(reference_data["x"], verbose=0), reference_data["y"], rtol=1e-5,
                               atol=1e-6)
    model.fit(reference_data["x_fit"], reference_data["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for i, ours in enumerate(model.get_weights()):
        np.testing.assert_allclose(ours, reference_data[f"after_{i}"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("make", [lambda: L.LSTM(3, dropout=0.3, recurrent_dropout=0.4, seed=2),
                                  lambda: L.GRU(3, recurrent_dropout=0.4, seed=2, return_sequences=True),
                                  lambda: L.GRU(3, dropout=0.2, recurrent_dropout=0.4, reset_after=False, seed=2),
                                  lambda: L.SimpleRNN(3, dropout=0.3, recurrent_dropout=0.5, seed=2,
                                                      go_backwards=True)], ids=range(4))
def test_recurrent_dropout_masks_each_gates_state_as_keras(make, device):
    """Keras's implementation 1: a state mask per gate and, with input dropout, an input mask per gate; the
    layer draws (gates, n, units) state masks, then (gates, n, 1, features) input masks, from its seed."""
    x = np.random.default_rng(8).standard_normal((5, 4, 2)).astype(np.float32)
    with nn.device(device):
        layer = make()
        np.testing.assert_allclose(layer(x).numpy(), reference(layer, x), rtol=2e-5, atol=2e-6)   # inference
        trained = layer(x, training=True).numpy()
    draws = np.random.default_rng(2)
    gates = layer.gates
    state_masks = (draws.random((gates, 5, 3)) >= layer.recurrent_dropout) / (1 - layer.recurrent_dropout)
    input_masks = None
    if layer.dropout:
        input_masks = (draws.random((gates, 5, 1, 2)) >= layer.dropout)[:, :, 0] / (1 - layer.dropout)
    np.testing.assert_allclose(trained, reference(layer, x, input_masks, state_masks), rtol=2e-5, atol=2e-6)
    assert layer.draws_dropout_masks(True) and layer.capture_blocker(True) is None


@pytest.mark.parametrize("name, gates, options", [("lstm", 4, {}), ("gru", 3, {}), ("gru", 3, {"reset_after": False}),
                                                  ("simple_rnn", 1, {"reverse": True})])
def test_backward_through_time_with_state_masks_matches_finite_differences(name, gates, options):
    rng = np.random.default_rng(9)
    steps, samples, units = 4, 3, 2

    def t(shape, scale=1.0):
        return nn.tensor(rng.standard_normal(shape) * scale, dtype="float64", requires_grad=True)
    operands = [t((steps, samples, gates * units)), t((units, gates * units), 0.6)]
    if name == "gru" and options.get("reset_after", True):
        operands.append(t((2, gates * units)))
    masks = nn.tensor((rng.random((gates, samples, units)) > 0.4) / 0.6, dtype="float64")
    weights = nn.tensor(rng.standard_normal((steps, samples, units)), dtype="float64")
    result = nn.gradcheck(lambda *a: (getattr(F, name)(*a, **options, recurrent_masks=masks) * weights).sum(),
                          *operands)
    assert result.passed, result


def test_dropout_masks_inputs_once_per_sequence_in_training_only():
    layer = L.SimpleRNN(2, activation="linear", dropout=0.5, seed=3, use_bias=False, return_sequences=True)
    x = np.ones((64, 4, 3), np.float32)
    layer.build((None, 4, 3))
    layer.set_weights([np.eye(3, 2, dtype=np.float32), np.zeros((2, 2), np.float32)])
    np.testing.assert_array_equal(layer(x).numpy(), np.ones((64, 4, 2)))      # inference: no dropout
    trained = layer(x, training=True).numpy()
    assert set(np.unique(trained)) <= {0.0, 2.0} and 0 < (trained == 0).mean() < 1
    np.testing.assert_array_equal(trained, np.repeat(trained[:, :1], 4, axis=1))   # the same mask at every step
    assert layer.draws_dropout_masks(True) and not layer.draws_dropout_masks(False)


def test_a_sequence_task_is_learned_compiled():
    """The sign of a sequence's sum, which no single step tells."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((512, 8, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    nn.utils.set_random_seed(5)
    model = nn.Sequential([nn.Input((8, 1)), L.LSTM(8), L.Dense(2, activation="softmax")])
    model.compile(optimizer=nn.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0).history
    assert history["accuracy"][-1] > 0.9
    assert model.jit_report()["fallback_reason"] is None


def test_bad_arguments_and_inputs_are_refused_naming_the_layer():
    with pytest.raises(ValueError, match="LSTM 'mem'.*recurrent_dropout"):
        L.LSTM(3, recurrent_dropout=1.0, name="mem")
    with pytest.raises(ValueError, match="Sequential.add: layer 'states' has return_state=True"):
        nn.Sequential([nn.Input((4, 2)), L.GRU(3, return_state=True, name="states")])
    with pytest.raises(ValueError, match="backward_layer must be a recurrent layer of the layer's class"):
        L.Bidirectional(L.GRU(3, return_state=True), backward_layer=L.GRU(3, go_backwards=True))
    with pytest.raises(ValueError, match="stateful=True is not supported"):
        L.SimpleRNN(3, stateful=True)
    with pytest.raises(ValueError, match="activation must be 'tanh', 'sigmoid', 'relu' or 'linear'.*softmax"):
        L.GRU(3, activation="softmax")
    with pytest.raises(ValueError, match="units must be"):
        L.LSTM(0)
    with pytest.raises(TypeError):
        L.SimpleRNN(3, recurrent_activation="sigmoid")           # as in Keras: SimpleRNN has none
    layer = L.LSTM(3, name="mem")
    with pytest.raises(ValueError, match=r"'mem'.*\(batch, steps, features\).*\(None, 4\)"):
        nn.Sequential([nn.Input((4,)), layer])
    layer(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match=r"layer 'mem'.*expected inputs \(batch, steps >= 1, 4\).*\(2, 5, 3\)"):
        layer(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"steps >= 1.*\(2, 0, 4\)"):
        layer(np.zeros((2, 0, 4), np.float32))
    with pytest.raises(ValueError, match=r"gru: the recurrent kernel must be \(units, 3 \* units\)"):
        F.gru(nn.zeros((2, 1, 6)), nn.zeros((2, 5)))
    with pytest.raises(TypeError, match="dtype"):
        F.lstm(nn.zeros((2, 1, 8)), nn.zeros((2, 8), dtype="float64"))
    with pytest.raises(ValueError, match=r"recurrent_masks must have shape \(4, 1, 2\)"):
        F.lstm(nn.zeros((2, 1, 8)), nn.zeros((2, 8)), recurrent_masks=nn.ones((1, 1, 2)))


def test_orthogonal_and_identity_initializers():
    for shape in ((6, 3), (3, 6), (2, 3, 4)):
        q = nn.initializers.Orthogonal(gain=2.0, seed=1)(shape).astype(np.float64).reshape(-1, shape[-1])
        small = min(q.shape)
        gram = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
        np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)
    np.testing.assert_array_equal(nn.initializers.get("orthogonal")((3, 3)).shape, (3, 3))
    np.testing.assert_array_equal(nn.initializers.get({"class_name": "Identity", "config": {"gain": 0.5}})((2, 3)),
                                  0.5 * np.eye(2, 3))
    with pytest.raises(ValueError, match="at least 2 axes"):
        nn.initializers.Orthogonal()((3,))


def test_the_snippets_of_docs_recurrent_md_run_as_pasted(capsys):
    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "recurrent.md").read_text(encoding="utf-8")
    first, bidirectional, padded, states, cell = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace = {}
    exec(compile(first, "docs/recurrent.md snippet", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["model"].output_shape == (None, 10)
    assert "Epoch 2/2" in capsys.readouterr().out
    namespace = {}
    exec(compile(bidirectional, "docs/recurrent.md Bidirectional snippet", "exec"), namespace)  # noqa: S102
    assert namespace["model"].predict(namespace["x"], verbose=0).shape == (64, 10, 5)
    namespace = {}
    exec(compile(padded, "docs/recurrent.md masks snippet", "exec"), namespace)  # noqa: S102 - our own docs
    model, tokens = namespace["model"], namespace["tokens"]
    np.testing.assert_array_equal(model.layers[0](tokens)._keras_mask.numpy(), tokens != 0)
    padded_before = model.predict(np.array([[0, 0, 0, 7, 3]]), verbose=0)      # [7, 3] padded the other way
    np.testing.assert_allclose(model.predict(tokens, verbose=0)[1:], padded_before, atol=1e-6)
    namespace = {}
    exec(compile(states, "docs/recurrent.md states snippet", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["model"].predict(namespace["x"], verbose=0).shape == (64, 7, 6)
    assert namespace["h"].shape == namespace["c"].shape == (64, 32)
    namespace = {}
    exec(compile(cell, "docs/recurrent.md custom cell snippet", "exec"), namespace)  # noqa: S102 - our own docs
    model = namespace["model"]
    assert model.output_shape == (None, 32) and model.predict(np.ones((2, 10, 5)), verbose=0).shape == (2, 32)


def test_a_long_sequences_arrays_are_reused_from_the_pool_and_its_plan_replays_in_python(monkeypatch):
    """Every step makes the same medium-size sequence arrays; fresh ones page-faulted in anew each step (2.46 ms
    against 1.08 ms for an LSTM(64) step over 20 steps of 32 samples), so they come from host_buffers' pool, and
    the lowered tier (which would make them anew) leaves such plans to their Python replay."""
    from nnengine import capture
    from nnengine.backends import host_buffers, numba_recurrent
    backend = nn.get_backend("cpu")
    rng = np.random.default_rng(10)
    p = rng.standard_normal((20, 32, 4 * 64)).astype(np.float32)
    kernel = (0.1 * rng.standard_normal((64, 4 * 64))).astype(np.float32)
    assert p.nbytes >= numba_recurrent.SEQUENCE_MIN_POOLED_BYTES
    states, last, cache = backend.recurrent_forward("lstm", p, kernel, None, "tanh", "sigmoid", False, True)
    assert states.base is not None and cache.base is not None and last.base is None       # pooled views
    dp, d_kernel, *_ = backend.recurrent_backward("lstm", kernel, None, states, cache, last, "tanh", "sigmoid", False,
                                                  True)
    assert dp.base is not None and d_kernel.base is None     # a weight's gradient is numpy's own: never copied
    assert host_buffers.held_bytes() >= states.nbytes + cache.nbytes + dp.nbytes
    reference = nn.backends.NumpyBackend("numpy").recurrent_forward("lstm", p, kernel, None, "tanh", "sigmoid",
                                                                      False, True)
    np.testing.assert_allclose(states, reference[0], rtol=1e-5, atol=1e-6)

    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 1)
    model = nn.Sequential([nn.Input((20, 16)), L.GRU(64), L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = rng.standard_normal((32, 20, 16)).astype(np.float32), rng.integers(0, 3, 32)
    for _ in range(4):
        model.train_on_batch(x, y)
    (plan,) = model._compiler.plans().values()
    assert not plan.is_lowered and "reused pool" in plan.lowering_reason
