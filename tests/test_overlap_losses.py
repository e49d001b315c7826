"""Dice and Tversky (overlap_losses.py): Keras 3.15's values and configs, weighted and not, per batch and per
image; a segmenter trained with Dice and scored with OneHotMeanIoU as Keras trains it; the formulas, finite
differences, the compiled step and bad arguments refused by name."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn
from keras_helpers import compiled_and_eager_runs, make_keras_files

keras = nn.keras
RECORD = np.load(Path(__file__).parent / "data" / "keras3_overlap_losses.npz")
CASES = make_keras_files().OVERLAP_LOSS_CASES


@pytest.mark.parametrize("case, name, arguments", CASES, ids=[case[0] for case in CASES])
def test_each_case_gives_keras_value_and_config(case, name, arguments):
    loss = getattr(keras.losses, name)(**arguments)
    y_true, y_pred = RECORD["y_true"], nn.Tensor(RECORD["y_pred"])
    np.testing.assert_allclose(loss(y_true, y_pred).numpy(), RECORD[f"{case}_plain"], rtol=2e-6)
    if f"{case}_weighted" in RECORD.files:
        np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=RECORD["weights"]).numpy(),
                                   RECORD[f"{case}_weighted"], rtol=2e-6)
    assert loss.get_config() == json.loads(str(RECORD[f"{case}_config"]))
    again = keras.losses.get({"class_name": name, "config": loss.get_config()})
    assert again.get_config() == loss.get_config()


def test_a_segmenter_trains_with_dice_as_keras_trains_it():
    keras_files = make_keras_files()
    model = keras_files.segmentation_model(keras)
    model.set_weights([RECORD[f"first_{i}"] for i in range(len(model.get_weights()))])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.Dice(axis=(1, 2, 3)),
                  metrics=[keras.metrics.OneHotMeanIoU(num_classes=3)])
    model.fit(RECORD["x"], RECORD["masks"], epochs=1, batch_size=4, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, RECORD[f"trained_{index}"], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(model.evaluate(RECORD["x"], RECORD["masks"], verbose=0), RECORD["evaluate"],
                               rtol=2e-5)


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0, 2), beta=st.floats(0, 2), per_image=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_tversky_is_its_formula_and_dice_its_half_half_case(alpha, beta, per_image, seed):
    rng = np.random.default_rng(seed)
    t = (rng.random((3, 4, 4, 2)) < 0.4).astype(np.float64)
    p = rng.random((3, 4, 4, 2))
    axes = (1, 2, 3) if per_image else None
    sums = (lambda x: x.sum(axis=axes)) if per_image else (lambda x: np.array([x.sum()]))
    expected = 1 - sums(t * p) / (sums(t * p) + alpha * sums(t * (1 - p)) + beta * sums((1 - t) * p) + 1e-7)
    got = keras.losses.Tversky(alpha, beta, reduction="none", axis=axes)(t, nn.Tensor(p)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    dice = keras.losses.Dice(reduction="none", axis=axes)(t, nn.Tensor(p)).numpy()
    half = keras.losses.Tversky(0.5, 0.5, reduction="none", axis=axes)(t, nn.Tensor(p)).numpy()
    np.testing.assert_allclose(dice, half, rtol=1e-6)     # equal but for where the 1e-7 sits


@pytest.mark.parametrize("loss", [keras.losses.Dice(axis=(1, 2)), keras.losses.Dice(),
                                  keras.losses.Tversky(0.3, 0.9, axis=(1, 2))])
def test_gradients_by_finite_differences(loss):
    rng = np.random.default_rng(1)
    t = (rng.random((2, 3, 4)) < 0.5).astype(np.float64)
    assert nn.gradcheck(lambda p: loss(t, p), rng.random((2, 3, 4)))


def test_the_function_forms_and_names():
    rng = np.random.default_rng(2)
    t, p = (rng.random((2, 3)) < 0.5).astype(np.float64), rng.random((2, 3))
    assert float(keras.losses.dice(t, nn.Tensor(p)).numpy()) == pytest.approx(
        1 - 2 * np.sum(t * p) / (t.sum() + p.sum() + 1e-7))
    assert keras.losses.tversky(t, nn.Tensor(p), axis=1).shape == (2,)
    assert isinstance(keras.losses.get("dice"), keras.losses.Dice)
    assert isinstance(keras.losses.get(keras.losses.tversky), keras.losses.Tversky)


def test_a_segmenter_trains_compiled_bitwise_as_eagerly():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 6, 6, 2)).astype(np.float32)
    masks = np.eye(3, dtype=np.float32)[(x[..., 0] > 0).astype(int)]

    def make_model():
        nn.utils.set_random_seed(4)
        return make_keras_files().segmentation_model(keras)
    report = compiled_and_eager_runs(make_model, x, masks, batch_size=4,
                                     loss=keras.losses.Tversky(0.7, 0.3, axis=(1, 2, 3)))
    assert report["fallback_reason"] is None


@pytest.mark.parametrize("make, message", [
    (lambda: keras.losses.Dice(axis=0), r"dice: axis must not include the batch axis"),
    (lambda: keras.losses.Dice(axis=[]), r"dice: axis must be None, an axis or a list of axes"),
    (lambda: keras.losses.Tversky(alpha=-1), r"tversky: alpha"),
    (lambda: keras.losses.Dice(reduction="mean"), r"dice: reduction must be one of"),
])
def test_bad_arguments_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_axis_beyond_the_predictions_is_refused_by_name():
    with pytest.raises(ValueError, match=r"dice: axis 3 is out of range for predictions of rank 3"):
        keras.losses.Dice(axis=(1, 3))(np.ones((2, 3, 4)), nn.Tensor(np.ones((2, 3, 4))))
