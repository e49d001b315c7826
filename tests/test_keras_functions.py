"""Keras 3's activations and its hinge, focal, MAPE and MSLE losses against Keras 3.15 itself.

``tests/data/keras3_functions.npz`` (``make_keras_files.py functions``) holds what Keras computed: every
activation on a grid, each loss on a batch (reduced, per sample and sample-weighted), and one epoch of small
models trained with those activations and losses. The derivatives are checked by finite differences in
float64, and the compiled step against the eager one.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import assert_one_epoch_as_recorded, compiled_and_eager_runs, make_keras_files

import nnengine as nn

RECORD = np.load(Path(__file__).parent / "data" / "keras3_functions.npz")
FILES = make_keras_files()
LOSS_CASES = json.loads(str(RECORD["loss_cases"]))
DEVICES = ["numpy", "cpu"]


@pytest.mark.parametrize("name", FILES.ACTIVATION_NAMES)
def test_activation_as_keras_computes_it(name):
    grid = RECORD["grid"]
    ours = nn.activations.get(name)(nn.tensor(grid)).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, RECORD[f"activation_{name}"], rtol=2e-6, atol=2e-6)


def _batch(kind):
    return RECORD[f"batch_{kind}_0"], RECORD[f"batch_{kind}_1"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, config, kind", LOSS_CASES, ids=[case[0] for case in LOSS_CASES])
def test_loss_as_keras_computes_it(name, config, kind, device):
    y_true, y_pred = _batch(kind)
    loss = nn.keras.losses.get(config)
    prediction = nn.tensor(y_pred, device=device)
    reduced, weighted = RECORD[f"loss_{name}"]
    assert loss(y_true, prediction).item() == pytest.approx(reduced, rel=2e-6)
    assert loss(y_true, prediction, sample_weight=RECORD["loss_weights"]).item() == pytest.approx(weighted, rel=2e-6)
    per_sample = nn.keras.losses.get({**config, "config": {**config["config"], "reduction": "none"}})
    np.testing.assert_allclose(per_sample(y_true, prediction).numpy(), RECORD[f"loss_{name}_none"], rtol=2e-6,
                               atol=1e-7)


@pytest.mark.parametrize("name, config, kind", LOSS_CASES, ids=[case[0] for case in LOSS_CASES])
def test_loss_gradient_by_finite_differences(name, config, kind):
    y_true, y_pred = (part.astype(np.float64) for part in _batch(kind))
    if kind in ("binary_scores", "signed_scores", "class_scores"):
        y_pred = y_pred + 0.013          # off the hinge's kink at a margin of exactly 1 (and no tie in a max)
    rows = [1, 2, 3, 4, 6, 7]    # no zero targets: MAPE's 1 / max(|t|, 1e-7) would drown finite differences
    loss = nn.keras.losses.get(config)
    report = nn.gradcheck(lambda p: loss(y_true[rows], p), nn.tensor(y_pred[rows], requires_grad=True))
    assert report.passed, report


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "categorical_hinge", "categorical_focal", "binary_focal",
                                  "msle", "adamax", "nadam", "lion", "adadelta", "ftrl"])
@pytest.mark.parametrize("jit_compile", [True, False])
def test_one_epoch_as_keras_trains_it(name, jit_compile):
    model = FILES.function_models(nn.keras)[name][0]
    assert_one_epoch_as_recorded(model, RECORD["x"], RECORD, name, jit_compile=jit_compile)


def test_hinge_reads_0_1_targets_as_minus_1_plus_1_per_batch():
    scores = nn.tensor(np.array([[0.5], [-2.0], [0.2]]))
    zero_one = nn.losses.hinge(np.array([1.0, 0.0, 0.0]), scores).numpy()
    np.testing.assert_allclose(zero_one, [0.5, 0.0, 1.2])             # t = +1, -1, -1
    signed = nn.losses.hinge(np.array([1.0, -1.0, -1.0]), scores).numpy()
    np.testing.assert_array_equal(signed, zero_one)
    halves = nn.losses.hinge(np.array([0.5, 0.0, 1.0]), scores).numpy()  # not all 0/1: taken as they are
    np.testing.assert_allclose(halves, [0.75, 1.0, 0.8])


def test_the_compiled_step_reads_hinge_labels_per_batch_as_the_eager_one():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 5)).astype("float32")
    y = rng.integers(0, 2, (40, 1)).astype("float32")
    y[20:] = 2 * y[20:] - 1        # the last batches hold -1/+1 labels: each batch decides on its own

    def make():
        nn.utils.set_random_seed(0)
        return nn.keras.Sequential([nn.keras.Input((5,)), nn.keras.layers.Dense(4, activation="selu"),
                                    nn.keras.layers.Dense(1)])
    report = compiled_and_eager_runs(make, x, y, epochs=2, batch_size=10, loss="hinge", metrics=["hinge"])
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1, report


@pytest.mark.parametrize("loss", ["binary_focal_crossentropy", "categorical_focal_crossentropy", "mape", "msle",
                                  "squared_hinge", "categorical_hinge"])
def test_compiled_models_keep_their_loss_in_files(loss, tmp_path):
    model = nn.keras.Sequential([nn.keras.Input((4,)), nn.keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", loss)
    model.save(tmp_path / "model.h5")
    loaded = nn.keras.models.load_model(tmp_path / "model.h5")
    assert type(loaded.loss) is type(nn.keras.losses.get(loss))


def test_focal_loss_arguments_are_checked():
    with pytest.raises(ValueError, match="binary_focal_crossentropy: gamma must be a finite number >= 0"):
        nn.keras.losses.BinaryFocalCrossentropy(gamma=-1)
    with pytest.raises(ValueError, match="categorical_focal_crossentropy: alpha must be"):
        nn.keras.losses.CategoricalFocalCrossentropy(alpha=2.0)
    with pytest.raises(TypeError, match="apply_class_balancing must be True or False"):
        nn.keras.losses.BinaryFocalCrossentropy(apply_class_balancing="yes")
    config = nn.keras.losses.BinaryFocalCrossentropy(alpha=0.3, gamma=1.0).get_config()
    assert nn.keras.losses.get({"class_name": "BinaryFocalCrossentropy", "config": config}).get_config() == config


def test_upper_case_aliases_as_in_keras():
    assert isinstance(nn.keras.losses.get("MSLE"), nn.keras.losses.MeanSquaredLogarithmicError)
    assert isinstance(nn.keras.losses.get("BCE"), nn.keras.losses.BinaryCrossentropy)
