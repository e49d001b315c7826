"""Keras's metrics from confusion counts (confusion_metrics.py: thresholds, top_k and class_id for Precision and
Recall; SensitivityAtSpecificity and its kin) and the IoU metrics (iou_metrics.py), against Keras 3.15's results
over three batches, one sample-weighted (tests/data/keras3_confusion_metrics.json, written by make_keras_files.py
confusion_metrics); against their definitions on random data; in fit; bad arguments refused by name."""
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn

keras = nn.keras
REFERENCE = json.loads((Path(__file__).parent / "data" / "keras3_confusion_metrics.json").read_text())


def replay(case):
    """The case's metric after its three batches, as make_keras_files.py fed them to Keras."""
    metric = getattr(keras.metrics, case["class_name"])(**case["arguments"])
    for y_true, y_pred, weight in REFERENCE["batches"][case["kind"]]:
        y_pred = np.array(y_pred, np.float32)
        if case["kind"] in ("segmentation", "fractional") and case["arguments"].get("sparse_y_pred", True):
            y_pred = np.argmax(y_pred, -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # the truncated fractional weights warn, as in Keras
            metric.update_state(np.array(y_true, np.float32), y_pred, sample_weight=weight)
    return metric


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=[f"{c['class_name']}-{c['kind']}-{i}"
                                                          for i, c in enumerate(REFERENCE["cases"])])
def test_each_metric_matches_keras_over_weighted_and_plain_batches(case):
    metric = replay(case)
    assert metric.name == re.sub(r"_\d+$", "", case["name"])          # Keras numbers its later instances
    result = metric.result()
    if isinstance(case["result"], list):
        assert isinstance(result, np.ndarray) and result.shape == (len(case["result"]),)
    else:
        assert isinstance(result, float)                              # one threshold: one number, as Keras
    np.testing.assert_allclose(result, case["result"], rtol=2e-5, atol=1e-7)
    config = {key: value for key, value in metric.get_config().items() if key != "dtype"}
    assert config == {**case["config"], "name": metric.name}
    metric.reset_state()
    assert np.all(np.asarray(metric.result()) == 0)


def test_fractional_weights_are_truncated_with_a_warning_as_in_keras():
    metric = keras.metrics.MeanIoU(num_classes=2)
    with pytest.warns(UserWarning, match="truncated to integers"):
        metric.update_state([0, 1, 0, 1], [0, 1, 1, 1], sample_weight=[0.2, 1.3, 0.4, 2.9])
    np.testing.assert_array_equal(metric.total_cm, [[0, 0], [0, 3]])
    exact = keras.metrics.MeanIoU(num_classes=2, dtype="float32")
    exact.update_state([0, 1, 0, 1], [0, 1, 1, 1], sample_weight=[0.2, 1.3, 0.4, 2.9])
    np.testing.assert_allclose(exact.total_cm, [[0.2, 0.4], [0, 4.2]], rtol=1e-6)


def iou_by_definition(labels, predicted, classes, targets, ignore=None):
    """Mean IoU over the target classes that occur, from sets of positions (no epsilon)."""
    kept = (labels >= 0) & (labels < classes) & (predicted >= 0) & (predicted < classes)
    if ignore is not None:
        kept &= labels != ignore
    values = []
    for c in targets:
        intersection = np.sum(kept & (labels == c) & (predicted == c))
        union = np.sum(kept & ((labels == c) | (predicted == c)))
        if union:
            values.append(intersection / union)
    return float(np.mean(values)) if values else 0.0


@settings(max_examples=40, deadline=None)
@given(classes=st.integers(1, 5), size=st.integers(1, 60), seed=st.integers(0, 2 ** 16), ignore=st.booleans())
def test_mean_iou_is_intersection_over_union_of_each_class(classes, size, seed, ignore):
    rng = np.random.default_rng(seed)
    labels, predicted = rng.integers(-1, classes + 1, size), rng.integers(0, classes + 1, size)
    ignored = int(rng.integers(0, classes)) if ignore else None
    metric = keras.metrics.MeanIoU(num_classes=classes, ignore_class=ignored)
    metric.update_state(labels[: size // 2], predicted[: size // 2])          # two batches add up
    metric.update_state(labels[size // 2:], predicted[size // 2:])
    expected = iou_by_definition(labels, predicted, classes, range(classes), ignored)
    assert metric.result() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def counts_by_definition(y_true, y_pred, threshold):
    """(tp, fp, fn) of elements above ``threshold``."""
    positive, predicted = y_true != 0, y_pred > threshold
    return np.sum(positive & predicted), np.sum(~positive & predicted), np.sum(positive & ~predicted)


@settings(max_examples=40, deadline=None)
@given(samples=st.integers(1, 12), classes=st.integers(2, 6), seed=st.integers(0, 2 ** 16),
       top_k=st.one_of(st.none(), st.integers(1, 6)), class_id=st.one_of(st.none(), st.integers(0, 5)))
def test_precision_and_recall_with_top_k_and_class_id_are_their_definitions(samples, classes, seed, top_k,
                                                                            class_id):
    rng = np.random.default_rng(seed)
    class_id = None if class_id is None else class_id % classes
    y_true = (rng.random((samples, classes)) < 0.4).astype(np.float32)
    y_pred = rng.permutation(samples * classes).reshape(samples, classes).astype(np.float32) / (samples * classes)
    kept = y_pred
    if top_k is not None:                        # distinct scores: the k largest are unambiguous
        kth = np.sort(y_pred, axis=-1)[:, -min(top_k, classes)][:, None]
        kept = np.where(y_pred >= kth, y_pred, -np.inf)
    threshold = 0.5 if top_k is None else -1e10
    columns = slice(None) if class_id is None else slice(class_id, class_id + 1)
    tp, fp, fn = counts_by_definition(y_true[:, columns], kept[:, columns], threshold)
    precision = keras.metrics.Precision(top_k=top_k, class_id=class_id)
    recall = keras.metrics.Recall(top_k=top_k, class_id=class_id)
    for metric in (precision, recall):
        metric.update_state(y_true, y_pred)
    assert precision.result() == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
    assert recall.result() == pytest.approx(tp / (tp + fn) if tp + fn else 0.0)


def test_the_curve_points_are_the_best_rate_where_the_other_reaches_its_value():
    y_true = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    y_pred = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.6, 0.2, 0.05])
    metric = keras.metrics.PrecisionAtRecall(recall=0.75, num_thresholds=201)
    metric.update_state(y_true, y_pred)
    # recall >= 0.75 needs a threshold below 0.35: in [0.2, 0.35) 3 positives and 2 negatives (0.4, 0.6) are
    # above it, precision 3 / 5; in [0.1, 0.2) all 4 positives and the same 2 negatives, 4 / 6, the best
    assert metric.result() == pytest.approx(4 / 6)
    metric = keras.metrics.SensitivityAtSpecificity(specificity=1.0, num_thresholds=201)
    metric.update_state(y_true, y_pred)
    assert metric.result() == pytest.approx(0.5)              # above 0.6 no negative: 0.7 and 0.8 found


def test_the_new_metrics_train_in_fit_under_keras_names():
    rng = np.random.default_rng(2)
    x, labels = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    metrics = [keras.metrics.Precision(top_k=1), keras.metrics.Recall(class_id=1, thresholds=[0.3, 0.6]),
               keras.metrics.OneHotMeanIoU(num_classes=3), keras.metrics.PrecisionAtRecall(0.5)]
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=metrics)
    history = model.fit(x, np.eye(3)[labels], epochs=2, batch_size=16, verbose=0).history
    assert {"precision", "recall", "one_hot_mean_io_u", "precision_at_recall"} <= set(history)
    logs = model.evaluate(x, np.eye(3)[labels], verbose=0, return_dict=True)
    predictions = model.predict(x, verbose=0)
    assert logs["one_hot_mean_io_u"] == pytest.approx(
        iou_by_definition(labels, predictions.argmax(1), 3, range(3)), rel=1e-5)


@pytest.mark.parametrize("make, message", [
    (lambda: keras.metrics.Precision(thresholds=[]), r"Precision: thresholds must not be an empty list"),
    (lambda: keras.metrics.Recall(thresholds=[0.5, 1.5]), r"Recall: each threshold must be a number in \[0, 1\]"),
    (lambda: keras.metrics.Precision(top_k=0), r"Precision: top_k"),
    (lambda: keras.metrics.Recall(class_id=-1), r"Recall: class_id"),
    (lambda: keras.metrics.PrecisionAtRecall(1.5), r"PrecisionAtRecall: recall"),
    (lambda: keras.metrics.SensitivityAtSpecificity(0.5, num_thresholds=0), r"num_thresholds"),
    (lambda: keras.metrics.SensitivityAtSpecificity(0.5, num_thresholds=10 ** 9), r"at most 1,000,000"),
    (lambda: keras.metrics.AUC(num_thresholds=10 ** 9), r"AUC: num_thresholds must be at most 1,000,000"),
    (lambda: keras.metrics.IoU(num_classes=3, target_class_ids=[3]), r"IoU: target class id 3 is out of range"),
    (lambda: keras.metrics.IoU(num_classes=3, target_class_ids=[]), r"target_class_ids must be a non-empty"),
    (lambda: keras.metrics.MeanIoU(num_classes=0), r"MeanIoU: num_classes"),
    (lambda: keras.metrics.MeanIoU(num_classes=2, dtype="bool"), r"dtype must be an integer or float"),
])
def test_bad_arguments_are_refused_by_name(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


@pytest.mark.parametrize("update, message", [
    (lambda: keras.metrics.Precision(class_id=3).update_state(np.ones((2, 3)), np.ones((2, 3))),
     r"class_id=3 needs predictions \(samples, classes\) with more than 3 classes"),
    (lambda: keras.metrics.Recall(class_id=0).update_state(np.ones((2, 2)), np.ones((2, 3))),
     r"targets must have the predictions' shape"),
    (lambda: keras.metrics.MeanIoU(num_classes=2).update_state([0, 1], [0, 1, 1]),
     r"MeanIoU: targets and predictions must give one class each"),
    (lambda: keras.metrics.MeanIoU(num_classes=2).update_state([0, 1], [0, np.nan]),
     r"predictions must be class numbers"),
    (lambda: keras.metrics.MeanIoU(num_classes=2).update_state([0, 1, 1], [0, 1, 1], sample_weight=[1, 2]),
     r"sample_weight must have one weight per element \(3\)"),
])
def test_bad_batches_are_refused_by_name(update, message):
    with pytest.raises(ValueError, match=message):
        update()
