"""Keras's metrics that are losses' running means, and RootMeanSquaredError (nnengine/loss_metrics.py), the confusion
counts and FBetaScore (nnengine/metrics.py), against Keras 3.15's results over three batches, one of them
sample-weighted (tests/data/keras3_loss_metrics.json,
written by make_keras_files.py loss_metrics); by name in compile too."""
import json
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn

keras = nn.keras
REFERENCE = json.loads((Path(__file__).parent / "data" / "keras3_loss_metrics.json").read_text())


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=[f"{c['class_name']}-{c['kind']}-{i}"
                                                          for i, c in enumerate(REFERENCE["cases"])])
def test_each_metric_matches_keras_over_weighted_and_plain_batches(case):
    metric = getattr(keras.metrics, case["class_name"])(**case["arguments"])
    assert metric.name == case["name"]
    for y_true, y_pred, weight, labels in REFERENCE["batches"][case["kind"]]:
        target = np.array(labels) if case["class_name"].startswith("Sparse") else np.array(y_true, np.float32)
        metric.update_state(target, np.array(y_pred, np.float32), sample_weight=weight)
    assert metric.result() == pytest.approx(case["result"], rel=1e-5, abs=1e-7)
    metric.reset_state()
    assert metric.result() == 0


def test_the_metrics_are_known_by_keras_names_in_compile_and_log_under_them():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    names = ["categorical_crossentropy", "kl_divergence", "categorical_hinge", "cosine_similarity",
             "root_mean_squared_error", "mape", "msle", "hinge", "squared_hinge", "bce", "poisson", "log_cosh_error"]
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=names)
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert set(logs) == {"loss", *names}
    # the cross-entropy metric is the loss (no penalties), here from the probabilities rather than the logits
    assert logs["categorical_crossentropy"] == pytest.approx(logs["loss"], rel=1e-5)
    assert logs["kl_divergence"] == pytest.approx(logs["loss"], rel=1e-4)          # one-hot targets: KL == CE
    predictions = model.predict(x, verbose=0)
    assert logs["root_mean_squared_error"] == pytest.approx(np.sqrt(np.mean((predictions - y) ** 2)), rel=1e-5)


def test_r2_score_of_targets_that_do_not_vary_is_zero_not_nan_and_bad_arguments_are_refused():
    metric = keras.metrics.R2Score(class_aggregation=None)
    metric.update_state(np.array([[1.0, 0.0], [1.0, 2.0]]), np.array([[0.5, 0.0], [1.5, 2.0]]))
    np.testing.assert_array_equal(metric.result(), [0.0, 1.0])       # column 0 constant; column 1 exact
    assert keras.metrics.R2Score().result() == 0.0
    with pytest.raises(ValueError, match="class_aggregation must be one of"):
        keras.metrics.R2Score(class_aggregation="median")
    with pytest.raises(ValueError, match="num_regressors must be an int >= 0"):
        keras.metrics.R2Score(num_regressors=-1)
    with pytest.raises(ValueError, match=r"R2Score expects targets and predictions of one shape"):
        keras.metrics.R2Score().update_state(np.zeros((4, 2)), np.zeros((4, 3)))


def test_confusion_counts_at_several_thresholds_and_fbeta_arguments():
    metric = keras.metrics.TruePositives(thresholds=[0.2, 0.5, 0.9])
    metric.update_state(np.array([1, 0, 1, 1]), np.array([0.3, 0.6, 0.95, 0.1]), sample_weight=[1, 1, 2, 1])
    np.testing.assert_array_equal(metric.result(), [3.0, 2.0, 2.0])      # positives above each threshold
    negatives = keras.metrics.TrueNegatives()
    negatives.update_state(np.array([0, 0, 1]), np.array([0.1, 0.7, 0.2]))
    assert negatives.result() == 1.0 and negatives.name == "true_negatives"
    with pytest.raises(ValueError, match="FBetaScore: beta must be a finite number > 0"):
        keras.metrics.FBetaScore(beta=0)
    with pytest.raises(ValueError, match=r"FalsePositives: each threshold must be a number in \[0, 1\]"):
        keras.metrics.FalsePositives(thresholds=[0.5, 2.0])
    assert keras.metrics.F1Score(average="macro").get_config() == {"name": "f1_score", "average": "macro",
                                                                   "threshold": None}
