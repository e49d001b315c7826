"""PearsonCorrelation, ConcordanceCorrelation (correlation_metrics.py) and Sum (metric_base.py) against Keras
3.15's results over three batches (tests/data/keras3_correlation_metrics.json, make_keras_files.py
correlation_metrics), against their definitions, by name in compile, and on a constant row."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn

keras = nn.keras
REFERENCE = json.loads((Path(__file__).parent / "data" / "keras3_correlation_metrics.json").read_text())


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=[f"{c['class_name']}-{c['kind']}-{i}"
                                                          for i, c in enumerate(REFERENCE["cases"])])
def test_each_metric_matches_keras(case):
    metric = getattr(keras.metrics, case["class_name"])(**case["arguments"])
    per_sample = case["class_name"] == "Sum" or (case["kind"] == "rows" and "axis" not in case["arguments"])
    for y_true, y_pred, weight in REFERENCE["batches"][case["kind"]]:
        weight = weight if per_sample else None
        if case["class_name"] == "Sum":
            metric.update_state(np.array(y_pred, np.float32), sample_weight=weight)
        else:
            metric.update_state(np.array(y_true, np.float32), np.array(y_pred, np.float32), sample_weight=weight)
    assert metric.name == case["name"]
    assert metric.result() == pytest.approx(case["result"], rel=2e-6, abs=1e-6)
    metric.reset_state()
    assert metric.result() == 0


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 6), columns=st.integers(2, 6), seed=st.integers(0, 2 ** 16))
def test_pearson_is_the_correlation_coefficient_of_each_row(rows, columns, seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.standard_normal((rows, columns)), rng.standard_normal((rows, columns))
    metric = keras.metrics.PearsonCorrelation()
    metric.update_state(y_true, y_pred)
    expected = np.mean([np.corrcoef(t, p)[0, 1] for t, p in zip(y_true, y_pred)])
    assert metric.result() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_constant_row_correlates_zero_not_nan():
    metric = keras.metrics.PearsonCorrelation()
    metric.update_state(np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]), np.array([[0.0, 1.0, 2.0], [2.0, 4.0, 6.0]]))
    assert metric.result() == pytest.approx(0.5)


def test_the_correlations_train_in_fit_under_their_names():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = x @ rng.standard_normal((4, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse", metrics=["pearson_correlation", keras.metrics.ConcordanceCorrelation()])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    predictions = model.predict(x, verbose=0)
    expected = np.mean([np.corrcoef(t, p)[0, 1] for t, p in zip(y, predictions)])
    assert logs["pearson_correlation"] == pytest.approx(expected, rel=1e-5)
    assert -1 <= logs["concordance_correlation"] <= 1


def test_sum_refuses_weights_that_do_not_fit():
    with pytest.raises(ValueError, match=r"Sum 'sum': sample_weight of shape \(3,\) does not fit"):
        keras.metrics.Sum().update_state(np.ones((2, 4)), sample_weight=np.ones(3))
