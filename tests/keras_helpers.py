"""Small models and data shared by the Keras-API tests."""
import importlib.util
import io
import json
import re
from pathlib import Path

import numpy as np

import nnengine as nn


def classification_data(samples=64, features=6, classes=3, seed=0):
    """x (float32) and integer labels from a random linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features)).astype(np.float32)
    labels = np.argmax(x @ rng.standard_normal((features, classes)), axis=1)
    return x, labels


def small_model(features=6, classes=3, hidden=8, output_activation="softmax", dtype=None, seed=0):
    """Dense(hidden, relu) -> Dense(classes, output_activation), built, with seeded weights."""
    nn.utils.set_random_seed(seed)
    return nn.Sequential([
        nn.layers.Dense(hidden, activation="relu", input_shape=(features,), dtype=dtype),
        nn.layers.Dense(classes, activation=output_activation, dtype=dtype),
    ])


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal (so progress bars redraw in place)."""

    def isatty(self):
        return True


def numpy_forward(weights, x, activations):
    """The reference forward pass of a stack of Dense layers, in float64 numpy."""
    out = x.astype(np.float64)
    for (kernel, bias), activation in zip(zip(weights[::2], weights[1::2]), activations):
        out = out @ kernel.astype(np.float64) + bias.astype(np.float64)
        if activation == "relu":
            out = np.maximum(out, 0)
        elif activation == "softmax":
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        elif activation == "sigmoid":
            out = 1 / (1 + np.exp(-out))
    return out


def strip_header(path):
    """Zero nnengine's whole-file checksum header, as a file edited by hand or by another tool would be.

    The edited file then loads through the checks a Keras-written file gets (the child-process probe,
    and the per-array and config checksums that are still in it).
    """
    with open(path, "r+b") as f:
        f.write(bytes(512))


def trained_model(optimizer="adam"):
    """small_model compiled with ``optimizer`` and sparse categorical cross-entropy, after two epochs on
    classification_data(48); returns (model, x, y)."""
    x, y = classification_data(48)
    model = small_model()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x, y


def assert_files_round_trip(model, x, folder, input_shape):
    """``model`` saved as .keras and .h5 loads back predicting bitwise the same, its optimizer's step count
    kept; its .weights.h5 loads into a clone built for ``input_shape`` (the batch shape) and predicts the same."""
    for suffix in (".keras", ".h5"):
        model.save(folder / f"model{suffix}")
        restored = nn.load_model(folder / f"model{suffix}")
        np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
        assert restored.optimizer.iterations == model.optimizer.iterations
    model.save_weights(folder / "model.weights.h5")
    clone = nn.models.clone_model(model)
    clone.build(input_shape)
    clone.load_weights(folder / "model.weights.h5")
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def compiled_and_eager_runs(make_model, x, y, epochs=3, batch_size=16, **compile_args):
    """Fit ``make_model()`` compiled and eagerly (``compile_args``, by default sparse cross-entropy and accuracy;
    Adam, validation_split=0.2, the same shuffles), assert that histories, weights and predictions (one array or
    one per output) agree bitwise; return the compiled model's jit_report()."""
    compile_args = compile_args or dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    runs = []
    for jit in (True, False):
        model = make_model()
        model.compile(optimizer="adam", jit_compile=jit, **compile_args)
        nn.utils.set_random_seed(2)
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.2, verbose=0).history
        predictions = model.predict(x, verbose=0)
        runs.append((history, model.get_weights(), predictions if isinstance(predictions, list) else [predictions],
                     model.jit_report()))
    (history, weights, predictions, report), (eager_history, eager_weights, eager_predictions, _) = runs
    assert history == eager_history
    for ours, eager in zip(weights + predictions, eager_weights + eager_predictions):
        np.testing.assert_array_equal(ours, eager)
    return report


def make_keras_files():
    """tests/data/make_keras_files.py as a module: its model builders take the keras module, so nnengine's keras
    builds the very models Keras built for the files there."""
    path = Path(__file__).resolve().parent / "data" / "make_keras_files.py"
    spec = importlib.util.spec_from_file_location("make_keras_files", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_guide_snippet(position, namespace=None):
    """Run the ``position``-th Python snippet of docs/functional.md as a reader pastes it; return its names."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "functional.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[position]
    namespace = {} if namespace is None else namespace
    exec(compile(code, f"docs/functional.md snippet {position}", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def assert_one_epoch_as_recorded(model, x, record, name, weight_tolerance=2e-5, **compile_options):
    """``model``, given ``record``'s first weights (``make_keras_files.record_one_epoch``), predicts, evaluates and
    trains one unshuffled epoch of Adam(0.01) as Keras did, with the loss and metric the record names (sparse
    categorical cross-entropy and accuracy by default). ``weight_tolerance``: an atol, or a function of the
    weight's index giving one. ``compile_options``: more arguments of compile (jit_compile, say)."""
    y = record[f"{name}_y"]
    model.set_weights([record[f"{name}_before_{i}"] for i in range(len(model.get_weights()))])
    spec = json.loads(str(record[f"{name}_compile"])) if f"{name}_compile" in record else \
        {"loss": "sparse_categorical_crossentropy", "metric": "accuracy"}
    optimizer = spec.get("optimizer")
    model.compile(optimizer=nn.keras.optimizers.Adam(0.01) if optimizer is None else
                  nn.keras.optimizers.get(optimizer), loss=nn.keras.losses.get(spec["loss"]), metrics=[spec["metric"]],
                  **compile_options)
    np.testing.assert_allclose(model.predict(x, verbose=0), record[f"{name}_predictions"], atol=2e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), record[f"{name}_evaluate"], rtol=1e-5)
    history = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history
    np.testing.assert_allclose([history["loss"][0], history[spec["metric"]][0]], record[f"{name}_history"],
                               rtol=1e-5)
    for i, weight in enumerate(model.get_weights()):
        atol = weight_tolerance(i) if callable(weight_tolerance) else weight_tolerance
        np.testing.assert_allclose(weight, record[f"{name}_after_{i}"], atol=atol, err_msg=f"weight {i}")


def assert_layer_case_as_recorded(layer, record, index, x, device):
    """``layer``, built for ``x`` on ``device`` with ``record``'s case{index} weights (make_keras_files'
    layer_case_outputs), gives the recorded output within 1e-6, and its compute_output_shape says its shape."""
    expected = record[f"case{index}_out"]
    with nn.device(device):
        layer.build(x.shape)
        layer.set_weights([record[f"case{index}_w{i}"] for i in range(len(layer.get_weights()))])
        out = layer(x).numpy()
    assert layer.compute_output_shape((None, *x.shape[1:])) == (None, *expected.shape[1:])
    np.testing.assert_allclose(out, expected, atol=1e-6)


def assert_keras_file_as_built(path, expected, x):
    """The model Keras saved at ``path`` loads and predicts bitwise as ``expected`` (the same model built here)
    does with its weights; returns the loaded model."""
    model = nn.keras.models.load_model(path)
    expected.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected.predict(x, verbose=0))
    return model

