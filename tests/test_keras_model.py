"""Sequential's Keras semantics: fit/History, validation, evaluate, predict, batches, weights, summary."""
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import FakeTerminal, classification_data, numpy_forward, small_model

import nnengine as nn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def one_hot(labels, classes=3):
    return np.eye(classes, dtype=np.float32)[labels]


def numpy_loss(weights, x, y_one_hot):
    p = numpy_forward(weights, x, ["relu", "softmax"])
    return float(np.mean(-np.sum(y_one_hot * np.log(p), axis=1)))


def numpy_sgd_epoch(weights, x, y, lr, batch_size):
    """One epoch of plain SGD on relu -> softmax cross-entropy, in float64 numpy, batches in order."""
    w1, b1, w2, b2 = [w.astype(np.float64) for w in weights]
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size].astype(np.float64), y[start:start + batch_size]
        z1 = xb @ w1 + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ w2 + b2
        p = np.exp(z2 - z2.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz2 = (p - yb) / len(xb)                       # d mean(CE) / d logits
        dz1 = (dz2 @ w2.T) * (z1 > 0)
        w2, b2 = w2 - lr * a1.T @ dz2, b2 - lr * dz2.sum(0)
        w1, b1 = w1 - lr * xb.T @ dz1, b1 - lr * dz1.sum(0)
    return [w1, b1, w2, b2]


def test_one_sgd_epoch_matches_a_numpy_reimplementation():
    x, labels = classification_data(70)
    model = small_model()
    start = model.get_weights()
    model.compile(optimizer=nn.optimizers.SGD(0.1), loss="categorical_crossentropy")
    model.fit(x, one_hot(labels), batch_size=16, epochs=1, shuffle=False, verbose=0)
    for got, expected in zip(model.get_weights(), numpy_sgd_epoch(start, x, one_hot(labels), 0.1, 16)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_epoch_loss_is_the_batch_size_weighted_mean_of_pre_update_losses():
    x, labels = classification_data(70)                # batches of 32, 32 and 6
    model = small_model()
    weights = model.get_weights()
    model.compile(optimizer=nn.optimizers.SGD(0.0), loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, one_hot(labels), batch_size=32, epochs=1, verbose=0)
    # lr = 0: every batch sees the same weights, so the weighted mean is the full-data loss
    assert history.history["loss"][0] == pytest.approx(numpy_loss(weights, x, one_hot(labels)), rel=1e-5)
    unweighted = np.mean([numpy_loss(weights, x[s:s + 32], one_hot(labels[s:s + 32])) for s in (0, 32, 64)])
    assert not math.isclose(history.history["loss"][0], unweighted, rel_tol=1e-4)


def test_first_batch_loss_is_measured_before_the_update():
    x, labels = classification_data(64)
    model = small_model()
    weights = model.get_weights()
    seen = []
    model.compile(optimizer=nn.optimizers.SGD(0.5), loss="categorical_crossentropy")
    model.fit(x, one_hot(labels), batch_size=16, epochs=1, shuffle=False, verbose=0,
              callbacks=[nn.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["loss"]))])
    assert seen[0] == pytest.approx(numpy_loss(weights, x[:16], one_hot(labels[:16])), rel=1e-5)
    assert len(seen) == 4


def test_validation_split_holds_out_the_last_fraction_before_shuffling():
    x, labels = classification_data(50)
    y = one_hot(labels)
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    val_loss, val_accuracy = model.evaluate(x[40:], y[40:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(val_accuracy)
    assert history.params == {"verbose": 0, "epochs": 1, "steps": 2}   # 40 training samples, batch 32


def test_validation_data_takes_precedence_over_validation_split():
    x, labels = classification_data(60)
    y = one_hot(labels)
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(x, y, epochs=1, validation_data=(x[:10], y[:10]), validation_split=0.5, verbose=0)
    assert history.params["steps"] == 2                # all 60 samples train
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[:10], y[:10], verbose=0), rel=1e-6)


def test_history_keys_epochs_and_initial_epoch():
    x, labels = classification_data(40)
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", "mse"])
    history = model.fit(x, one_hot(labels), epochs=5, initial_epoch=2, validation_split=0.25, verbose=0)
    assert list(history.history) == ["accuracy", "loss", "mse", "val_accuracy", "val_loss", "val_mse"]
    assert history.epoch == [2, 3, 4]
    assert all(len(values) == 3 for values in history.history.values())
    assert model.history is history


def test_shuffle_changes_the_batches_and_no_shuffle_repeats():
    x, labels = classification_data(64)

    def train(shuffle, seed):
        model = small_model(seed=0)
        model.compile(optimizer=nn.optimizers.SGD(0.1), loss="categorical_crossentropy")
        nn.utils.set_random_seed(seed)
        model.fit(x, one_hot(labels), batch_size=8, epochs=1, shuffle=shuffle, verbose=0)
        return model.get_weights()[0]

    np.testing.assert_array_equal(train(False, 1), train(False, 2))
    assert not np.allclose(train(True, 1), train(True, 2))
    np.testing.assert_array_equal(train(True, 3), train(True, 3))


def test_training_learns_and_evaluate_returns_loss_then_metrics():
    x, labels = classification_data(300)
    model = small_model(hidden=32)
    model.compile(optimizer=nn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    loss, accuracy = model.evaluate(x, labels, verbose=0)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    assert accuracy == pytest.approx(np.mean(predicted == labels)) and accuracy > 0.85
    assert model.evaluate(x, labels, verbose=0, return_dict=True) == {"accuracy": accuracy, "loss": loss}


def test_evaluate_without_metrics_returns_a_float():
    x, labels = classification_data(20)
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, labels, verbose=0), float)


def test_predict_works_in_batches_and_matches_a_numpy_forward_pass():
    x, _ = classification_data(70)
    model = small_model()
    whole = numpy_forward(model.get_weights(), x, ["relu", "softmax"])
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x), whole, rtol=1e-5, atol=1e-6)
    assert model.predict(x, verbose=0).dtype == np.float32
    np.testing.assert_allclose(model(x).numpy(), whole, rtol=1e-5, atol=1e-6)


def test_train_and_test_on_batch_report_that_batch_only():
    x, labels = classification_data(32)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.test_on_batch(x, labels)
    assert before[0] == pytest.approx(model.evaluate(x, labels, verbose=0)[0], rel=1e-6)
    trained = model.train_on_batch(x, labels)
    assert trained[0] == pytest.approx(before[0], rel=1e-6)          # measured before the update
    assert model.test_on_batch(x, labels)[0] < before[0]
    assert set(model.train_on_batch(x, labels, return_dict=True)) == {"loss", "accuracy"}


@pytest.mark.parametrize("loss, targets, expected", [
    ("categorical_crossentropy", "one_hot", nn.metrics.CategoricalAccuracy),
    ("sparse_categorical_crossentropy", "labels", nn.metrics.SparseCategoricalAccuracy),
    ("sparse_categorical_crossentropy", "column", nn.metrics.SparseCategoricalAccuracy),
])
def test_accuracy_resolves_as_keras_does(loss, targets, expected):
    x, labels = classification_data(20)
    y = {"one_hot": one_hot(labels), "labels": labels, "column": labels[:, None]}[targets]
    model = small_model()
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.evaluate(x, y, verbose=0)
    assert type(model._metrics[0]) is expected and model._metrics[0].name == "accuracy"


def test_binary_accuracy_for_one_sigmoid_output():
    x, labels = classification_data(40, classes=2)
    model = small_model(classes=1, output_activation="sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    _, accuracy = model.evaluate(x, labels, verbose=0)
    p = model.predict(x, verbose=0)[:, 0]
    assert type(model._metrics[0]) is nn.metrics.BinaryAccuracy
    assert accuracy == pytest.approx(np.mean((p > 0.5) == labels))


def test_inputs_of_any_numeric_dtype_and_lists_are_cast_to_the_model_dtype():
    x, labels = classification_data(16)
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    expected = model.evaluate(x, labels, verbose=0)
    assert model.evaluate(x.astype(np.float64).tolist(), labels.tolist(), verbose=0) == pytest.approx(expected)
    ints = np.round(x * 3).astype(np.int16)
    assert model.predict(ints, verbose=0).dtype == np.float32
    np.testing.assert_allclose(model.predict(ints, verbose=0), model.predict(ints.astype(np.float32), verbose=0))


def test_a_float64_model_computes_in_float64():
    x, labels = classification_data(16)
    model = small_model(dtype="float64")
    assert all(w.dtype == np.float64 for w in model.weights)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=1, verbose=0)
    out = model.predict(x, verbose=0)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, numpy_forward(model.get_weights(), x, ["relu", "softmax"]), rtol=1e-12)


def test_weights_are_keras_ordered_and_settable():
    model = small_model(features=6, classes=3, hidden=8)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(6, 8), (8,), (8, 3), (3,)]            # kernel (in, out) before bias
    assert model.count_params() == 6 * 8 + 8 + 8 * 3 + 3
    assert len(model.trainable_weights) == 4 and len(model.layers) == 2
    new = [np.full(s, i, np.float32) for i, s in enumerate(shapes)]
    model.set_weights(new)
    for got, expected in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"weight 'kernel' has shape \(6, 8\), got an array of shape \(8, 6\)"):
        model.layers[0].set_weights([np.zeros((8, 6)), np.zeros(8)])
    with pytest.raises(ValueError, match="has 4 weight arrays, set_weights got 3"):
        model.set_weights(new[:3])


def test_layers_build_lazily_without_an_input_shape():
    model = nn.Sequential([nn.layers.Dense(4, activation="tanh"), nn.layers.Dense(2)])
    assert not model.built
    out = model.predict(np.ones((3, 5)), verbose=0)
    assert out.shape == (3, 2) and model.built and model.input_shape == (None, 5)
    model.add(nn.layers.Dense(7))
    assert model.predict(np.ones((3, 5)), verbose=0).shape == (3, 7)


def test_input_and_add_build_the_model_at_once():
    model = nn.Sequential()
    model.add(nn.Input(shape=(4,)))
    model.add(nn.layers.Dense(3))
    assert model.built and model.output_shape == (None, 3)
    assert nn.Input(shape=(4,)).shape == (None, 4)


def test_dropout_is_active_only_in_training():
    nn.utils.set_random_seed(0)
    layer = nn.layers.Dropout(0.5)
    x = nn.ones((200, 50))
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    dropped = layer(x, training=True).numpy()
    assert set(np.unique(dropped)) == {0.0, 2.0}                 # kept values scaled by 1 / (1 - rate)
    assert 0.45 < np.mean(dropped == 0) < 0.55
    model = nn.Sequential([nn.Input(shape=(50,)), nn.layers.Dropout(0.5), nn.layers.Dense(2)])
    np.testing.assert_array_equal(model.predict(x.numpy(), verbose=0), model.predict(x.numpy(), verbose=0))


def test_flatten_and_activation_layers():
    model = nn.Sequential([nn.Input(shape=(2, 3)), nn.layers.Flatten(), nn.layers.Dense(4),
                           nn.layers.Activation("softmax")])
    assert model.output_shape == (None, 4) and model.layers[1].input_shape == (None, 6)
    out = model.predict(np.random.default_rng(0).standard_normal((5, 2, 3)), verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)


def test_dense_on_inputs_with_more_axes_works_on_the_last():
    layer = nn.layers.Dense(3, input_shape=(4, 5))
    x = np.random.default_rng(0).standard_normal((2, 4, 5)).astype(np.float32)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(layer(x).numpy(), x @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_a_softmax_output_with_cross_entropy_trains_through_the_fused_loss():
    model = small_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert model.trains_on_logits()
    model.compile(optimizer="adam", loss=nn.losses.CategoricalCrossentropy(from_logits=True))
    assert not model.trains_on_logits()                       # the model's output is already a probability
    model.compile(optimizer="adam", loss="mse")
    assert not model.trains_on_logits()


def test_model_to_device_moves_weights_and_optimizer_state(device):
    x, labels = classification_data(32)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=1, verbose=0)
    model.to(device)
    assert all(w.device == nn.get_backend(device).device for w in model.weights)
    model.fit(x, labels, epochs=1, verbose=0)
    assert model.evaluate(x, labels, verbose=0) > 0


SUMMARY_FROM_KERAS_3_15 = """\
Model: "{name}"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 64)             │           704 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 32)             │         2,080 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_2 (Dense)                 │ (None, 10)             │           330 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 3,114 (12.16 KB)
 Trainable params: 3,114 (12.16 KB)
 Non-trainable params: 0 (0.00 B)
"""


def test_summary_prints_the_table_keras_prints(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")                 # Keras's table fits the terminal: this is an 80-column one
    model = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(10,), name="dense"),
                           nn.layers.Dense(32, activation="relu", name="dense_1"),
                           nn.layers.Dense(10, activation="softmax", name="dense_2")], name="doc")
    model.summary()
    assert capsys.readouterr().out == SUMMARY_FROM_KERAS_3_15.format(name="doc")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.train_on_batch(np.ones((2, 10)), np.eye(10)[:2])
    model.summary()
    out = capsys.readouterr().out
    # Keras 3.15 after training: slots m and v for each weight, plus the iteration and the learning rate
    assert " Total params: 9,344 (36.50 KB)\n" in out and " Optimizer params: 6,230 (24.34 KB)\n" in out


def test_summary_of_an_unbuilt_model_marks_layers_unbuilt(capsys):
    nn.Sequential([nn.layers.Dense(3, name="lazy")]).summary()
    assert re.search(r"│ lazy \(Dense\) +│ \? +│ +0 \(unbuilt\) │", capsys.readouterr().out)


def test_document_example_runs_with_progress_and_accuracy(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(EXAMPLES))
    import document_model
    loss, accuracy = document_model.main(["--samples", "400", "--epochs", "10"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/10" and out[18] == "Epoch 10/10"
    assert re.fullmatch(r"10/10 ━{20} \d+s \d+[mu]?s/step - accuracy: \d\.\d{4} - loss: \d\.\d{4} - "
                        r"val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}", out[1]), out[1]
    assert out[-1] == f"Accuracy: {accuracy}" and accuracy > 0.5
    assert (tmp_path / "model.h5").exists()
    restored = nn.load_model(tmp_path / "model.h5")
    assert restored.evaluate(*document_model.make_data(400), verbose=0) == pytest.approx([loss, accuracy])


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_inputs_are_accepted_as_keras_accepts_them(dtype, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (24, 6))
    y = rng.integers(0, 3, 24)
    model = nn.Sequential([nn.Input(shape=(6,), dtype=dtype), nn.layers.Dense(4, activation="relu"),
                           nn.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.input_dtype == dtype and model.dtype == "float32"
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    # the integers reach the first Dense as the same floats a float input would give
    as_float = nn.Sequential([nn.Input(shape=(6,)), *[nn.layers.Dense(4, activation="relu"),
                                                     nn.layers.Dense(3, activation="softmax")]])
    as_float.build((None, 6))
    as_float.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), as_float.predict(x.astype("float32"), verbose=0))
    model.save(tmp_path / "int.h5")
    assert nn.load_model(tmp_path / "int.h5").input_dtype == dtype


def test_a_layer_with_weights_refuses_an_integer_dtype():
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int64"):
        nn.layers.Dense(3, dtype="int64")
    with pytest.raises(TypeError, match="float32, float64, int32 or int64, got bool"):
        nn.Input(shape=(2,), dtype="bool")
