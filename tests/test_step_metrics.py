"""Accuracies counted inside the step (``Backend.argmax_matches``, ``Metric.add_hits``).

The count must be the one the host metric computes from the predictions (argmax's first maximum, the
first NaN winning), for one-hot and soft rows and for integer labels; fit, evaluate and *_on_batch must
give exactly the results of the host path, compiled or eager; and anything the count does not cover
(another metric beside it, a metric that overrides update_state) must keep the host path.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn
from nnengine import metrics as metrics_module
from nnengine.backends import NumpyBackend

REFERENCE = NumpyBackend("numpy")


def _predictions(rng, rows, classes, nan_share):
    """Rounded values (ties are common) with some NaN."""
    values = np.round(rng.standard_normal((rows, classes)) * 2).astype(np.float32)
    values[rng.random(values.shape) < nan_share] = np.nan
    return values


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), classes=st.integers(1, 6), nan_share=st.sampled_from([0.0, 0.1, 0.5]),
       seed=st.integers(0, 2**31))
def test_the_count_is_the_host_metrics_count(device, rows, classes, nan_share, seed):
    """argmax_matches on every backend counts what CategoricalAccuracy and SparseCategoricalAccuracy add."""
    rng = np.random.default_rng(seed)
    backend = nn.get_backend(device)
    predictions = _predictions(rng, rows, classes, nan_share)
    target_rows = _predictions(rng, rows, classes, nan_share)
    labels = rng.integers(0, classes, rows)
    on_device = backend.from_numpy
    hits_rows = backend.to_numpy(backend.argmax_matches(on_device(predictions), on_device(target_rows)))
    hits_labels = backend.to_numpy(backend.argmax_matches(on_device(predictions), on_device(labels)))
    assert hits_rows.shape == hits_labels.shape == () and hits_rows.dtype == hits_labels.dtype == np.int64
    assert int(hits_rows) == np.count_nonzero(metrics_module._categorical_hits(target_rows, predictions))
    assert int(hits_labels) == np.count_nonzero(metrics_module._sparse_categorical_hits(labels, predictions))


def test_the_count_takes_leading_axes_and_float_labels():
    rng = np.random.default_rng(1)
    predictions = rng.standard_normal((3, 5, 4))
    labels = rng.integers(0, 4, (3, 5))
    expected = np.count_nonzero(predictions.argmax(-1) == labels)
    for device in ("numpy", "cpu"):
        backend = nn.get_backend(device)
        assert int(backend.argmax_matches(predictions, labels)) == expected
        assert int(backend.argmax_matches(predictions, labels.astype(np.float64))) == expected
        assert int(backend.argmax_matches(predictions, np.eye(4)[labels])) == expected


class HostCategoricalAccuracy(nn.metrics.CategoricalAccuracy):
    """The same metric, but its own update_state: the trainer must keep the host path for it."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(y_true, y_pred, sample_weight)


class HostSparseCategoricalAccuracy(nn.metrics.SparseCategoricalAccuracy):
    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(y_true, y_pred, sample_weight)


def _data(sparse, samples=70):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 6)).astype(np.float32)
    labels = rng.integers(0, 4, samples)
    return x, (labels if sparse else np.eye(4, dtype=np.float32)[labels])


def _model(device, loss, metrics, jit_compile="auto"):
    nn.utils.set_random_seed(3)
    model = nn.Sequential([nn.Input((6,)), nn.layers.Dense(8, activation="tanh"),
                           nn.layers.Dense(4, activation="softmax")]).to(device)
    model.compile(optimizer="adam", loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model


def _metric_outputs(model):
    return {head[3] for key in model._compiler.plans() for head in key[3]}     # each output's metric output


CASES = [  # loss, in-step metric, the same metric on the host path
    ("categorical_crossentropy", "accuracy", HostCategoricalAccuracy(name="accuracy")),
    ("sparse_categorical_crossentropy", "accuracy", HostSparseCategoricalAccuracy(name="accuracy")),
    ("mse", "categorical_accuracy", HostCategoricalAccuracy()),
]


@pytest.mark.parametrize("jit_compile", ["auto", False])
@pytest.mark.parametrize("loss, counted, hosted", CASES, ids=[case[0] for case in CASES])
def test_fit_and_evaluate_match_the_host_path_exactly(device, loss, counted, hosted, jit_compile):
    x, y = _data(loss.startswith("sparse"))
    in_step, on_host = _model(device, loss, [counted], jit_compile), _model(device, loss, [hosted], jit_compile)
    histories = []
    for model in (in_step, on_host):
        nn.utils.set_random_seed(5)           # the same shuffles
        histories.append(model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0).history)
    assert histories[0] == histories[1]
    assert 0 < histories[0][hosted.name][-1] < 1
    assert in_step.evaluate(x, y, batch_size=32, verbose=0) == on_host.evaluate(x, y, batch_size=32, verbose=0)
    assert in_step.test_on_batch(x[:9], y[:9]) == on_host.test_on_batch(x[:9], y[:9])
    assert in_step.train_on_batch(x[:9], y[:9]) == on_host.train_on_batch(x[:9], y[:9])
    if jit_compile == "auto":
        assert _metric_outputs(in_step) == {"hits"} and _metric_outputs(on_host) == {"predictions"}
    accuracy = np.mean(in_step.predict(x, verbose=0).argmax(-1) == (y if y.ndim == 1 else y.argmax(-1)))
    assert in_step.evaluate(x, y, verbose=0)[1] == pytest.approx(accuracy)


def test_another_metric_beside_the_accuracy_keeps_the_host_path():
    x, y = _data(False)
    model = _model("cpu", "categorical_crossentropy", ["accuracy", "mse"])
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    assert _metric_outputs(model) == {"predictions"}
    assert set(history) == {"loss", "accuracy", "mse"}


def test_two_accuracies_share_one_count():
    x, y = _data(False)
    model = _model("cpu", "categorical_crossentropy", ["accuracy", "categorical_accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    assert _metric_outputs(model) == {"hits"}
    assert history["accuracy"] == history["categorical_accuracy"]


def test_the_compiled_step_returns_two_numbers_not_the_predictions():
    x, y = _data(False)
    model = _model("cpu", "categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    (plan, *_), = [[p for k, p in model._compiler.plans().items() if k[0] == "train" and k[1][0] == 16]]
    outputs = plan.run([x[:16], y[:16]])
    assert [np.shape(output) for output in outputs] == [(), ()]
    assert outputs[1].dtype == np.int64 and 0 <= int(outputs[1]) <= 16


def test_add_hits_is_update_state_on_the_same_hits():
    hits = np.array([True, False, True, True])
    counted, updated = nn.metrics.CategoricalAccuracy(), nn.metrics.CategoricalAccuracy()
    counted.add_hits(np.int64(3), 4)
    updated.update_state(np.eye(2)[[0, 1, 1, 0]], np.eye(2)[[0, 0, 1, 0]])
    assert counted.result() == updated.result() == np.mean(hits)


def test_sequence_outputs_count_every_position_as_the_host_does():
    """Predictions (n, t, classes) against one-hot targets (n, t, classes): n * t rows compared."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 5, 3)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (40, 5))]
    histories, models = [], []
    for metric in ("accuracy", HostCategoricalAccuracy(name="accuracy")):
        nn.utils.set_random_seed(3)
        model = nn.Sequential([nn.Input((5, 3)), nn.layers.Dense(4, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=[metric])
        histories.append(model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0).history)
        models.append(model)
    assert histories[0] == histories[1]
    assert _metric_outputs(models[0]) == {"hits"} and _metric_outputs(models[1]) == {"predictions"}
    predictions = models[0].predict(x, verbose=0)
    assert models[0].evaluate(x, y, verbose=0)[1] == pytest.approx(np.mean(predictions.argmax(-1) == y.argmax(-1)))
