"""Keras's image augmentation layers (image_augmentation.py) and Resizing, CenterCrop (image_resizing.py): against
Keras 3.15's outputs for known transforms and its saved model, the sampling table against an independent
pad-and-interpolate oracle, the draws against their formulas, the compiled step against the eager one, finite
differences, and their errors."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, make_keras_files

import nnengine as nn
from nnengine import keras
from nnengine.image_augmentation import FILL_MODES, sampling_table

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_augmentation.npz")
FILES = make_keras_files()
layers = keras.layers


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("index", range(len(FILES.AUGMENTATION_CASES)))
def test_a_known_transform_gives_keras_output(index, device):
    """Ranges of one value fix each image's transform: the output is Keras's (values up to 255, float32)."""
    class_name, options = FILES.AUGMENTATION_CASES[index]
    layer = getattr(layers, class_name)(**options)
    out = layer(nn.Tensor(RECORD["case_x"], device=device), training=True).numpy()
    np.testing.assert_allclose(out, RECORD[f"case{index}_out"], rtol=1e-6, atol=3e-4)


def test_keras_file_loads_predicts_and_evaluates_as_keras(tmp_path):
    model = keras.models.load_model(DATA / "keras3_augmentation.keras")
    assert [type(layer).__name__ for layer in model.layers[:6]] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness"]
    assert model.layers[4].factor == (0.0, 0.2) and model.layers[1].seed == 2
    np.testing.assert_allclose(model.predict(RECORD["x"], verbose=0), RECORD["predictions"], atol=1e-6)
    np.testing.assert_allclose(model.evaluate(RECORD["x"], RECORD["y"], verbose=0), RECORD["evaluate"], rtol=1e-5)
    assert_files_round_trip(model, RECORD["x"], tmp_path, (8, 8, 8, 3))


def _oracle(image, transform, fill_mode, interpolation, fill_value):
    """Keras's numpy backend's way: pad the image as fill_mode says, then read each output pixel's source point
    in the padded image, pixel by pixel."""
    height, width = image.shape[:2]
    pad = 3 * max(height, width)
    mode = {"reflect": "symmetric", "wrap": "wrap", "nearest": "edge", "constant": "constant"}[fill_mode]
    extra = {"constant_values": fill_value} if fill_mode == "constant" else {}
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=mode, **extra)
    a0, a1, a2, b0, b1, b2 = transform
    out = np.zeros_like(image)
    for row in range(height):
        for col in range(width):
            x, y = a0 * col + a1 * row + a2 + pad, b0 * col + b1 * row + b2 + pad
            if interpolation == "nearest":
                out[row, col] = padded[int(np.rint(y)), int(np.rint(x))]
                continue
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            dy, dx = y - y0, x - x0
            out[row, col] = ((1 - dy) * ((1 - dx) * padded[y0, x0] + dx * padded[y0, x0 + 1])
                             + dy * ((1 - dx) * padded[y0 + 1, x0] + dx * padded[y0 + 1, x0 + 1]))
    return out


@settings(max_examples=25, deadline=None)
@given(height=st.integers(1, 6), width=st.integers(1, 6), fill_mode=st.sampled_from(FILL_MODES),
       interpolation=st.sampled_from(["bilinear", "nearest"]), seed=st.integers(0, 2 ** 16))
def test_the_sampling_table_reads_what_padding_and_interpolating_reads(height, width, fill_mode, interpolation,
                                                                        seed):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((2, height, width, 2))
    transforms = rng.uniform(-1.5, 1.5, (2, 6)) * [1, 1, width, 1, 1, height]
    table = sampling_table(transforms, height, width, fill_mode, interpolation)
    source = np.concatenate([images.reshape(-1, 2), np.full((1, 2), 0.5)])        # the last row: fill_value
    reads = table.shape[1] // (2 * height * width)
    out = (source[table[0].astype(int)] * table[1][:, None]).reshape(2, height, width, reads, 2).sum(axis=3)
    for image, transform, result in zip(images, transforms, out):
        np.testing.assert_allclose(result, _oracle(image, transform, fill_mode, interpolation, 0.5), atol=1e-12)


@pytest.mark.parametrize("layer, tolerance", [
    (lambda: layers.RandomRotation(0.0), 0), (lambda: layers.RandomZoom(0.0, fill_mode="constant"), 0),
    (lambda: layers.RandomTranslation(0.0, 0.0, interpolation="nearest"), 0), (lambda: layers.RandomBrightness(0.0), 0),
    (lambda: layers.RandomContrast(0.0), 3e-5)])           # (x - mean) + mean rounds in float32
def test_a_range_of_zero_changes_nothing_and_inference_is_the_identity(layer, tolerance):
    """The geometric layers read each pixel with weight exactly 1 then: bitwise the input."""
    images = np.random.default_rng(1).uniform(0, 255, (3, 5, 4, 2))
    made = layer()
    np.testing.assert_allclose(made(images, training=True).numpy(), images.astype("float32"), rtol=0,
                               atol=tolerance * 255)
    np.testing.assert_array_equal(layer()(images).numpy(), images.astype("float32"))


def test_each_image_gets_its_own_draw_as_the_formulas_say():
    images = np.random.default_rng(2).uniform(0, 255, (64, 4, 5, 3))
    flipped = layers.RandomFlip("horizontal", seed=3, dtype="float64")(images, training=True).numpy()
    chosen = np.random.default_rng(3).random(64) <= 0.5                     # Keras: uniform <= 0.5 flips
    np.testing.assert_array_equal(flipped[chosen], images[chosen][:, :, ::-1])
    np.testing.assert_array_equal(flipped[~chosen], images[~chosen])
    both = layers.RandomFlip(seed=3, dtype="float64")(images, training=True).numpy()
    np.testing.assert_array_equal(both[chosen], images[chosen][:, ::-1, ::-1])   # both axes of the chosen ones
    contrast = layers.RandomContrast(0.5, seed=4, dtype="float64")(images, training=True).numpy()
    scale = np.random.default_rng(4).uniform(1.0, 1.5, (64, 1, 1, 1))         # Keras 3.15: [1 - 0, 1 + 0.5]
    mean = images.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(contrast, np.clip((images - mean) * scale + mean, 0, 255), rtol=1e-12, atol=1e-12)
    bright = layers.RandomBrightness((-0.2, 0.1), value_range=(0, 100), seed=5, dtype="float64")
    shift = np.random.default_rng(5).uniform(-0.2, 0.1, (64, 1, 1, 1)) * 100
    np.testing.assert_allclose(bright(images, training=True).numpy(), np.clip(images + shift, 0, 100), rtol=1e-12)


def test_rotation_angles_stay_within_the_factor():
    layer = layers.RandomRotation((0.05, 0.1), seed=6)
    law = None

    def capture(rng, shape, kind, bounds, *rest):
        nonlocal law
        law = (kind, bounds)
        return np.zeros(shape)
    from nnengine import image_augmentation
    original = image_augmentation._random_table
    image_augmentation._random_table = capture
    try:
        layer(np.zeros((2, 3, 3, 1)), training=True)
    finally:
        image_augmentation._random_table = original
    assert law == ("rotation", (0.05, 0.1))
    angles = np.random.default_rng(0).uniform(0.05 * 2 * np.pi, 0.1 * 2 * np.pi, 100)
    transforms = image_augmentation._rotations(np.random.default_rng(0), 100, 3, 3, (0.05, 0.1))
    np.testing.assert_allclose(np.arctan2(transforms[:, 3], transforms[:, 0]), angles)


def test_the_compiled_step_with_augmentation_is_the_eager_one():
    def make_model():
        nn.utils.set_random_seed(4)
        return FILES.augmentation_model(keras)
    report = compiled_and_eager_runs(make_model, RECORD["x"], RECORD["y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


def test_gradients_flow_through_a_resampling_layer_by_finite_differences():
    layer = layers.RandomRotation((0.07, 0.07), fill_mode="constant", fill_value=0.5, dtype="float64")
    assert nn.gradcheck(lambda x: (layer(x, training=True) ** 2).sum(),
                        nn.Tensor(np.random.default_rng(7).standard_normal((2, 4, 3, 2)), requires_grad=True))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.RandomRotation(1.5), r"RandomRotation 'random_rotation\w*': factor must be a finite number"),
    (lambda: layers.RandomZoom(-1.0), r"height_factor must be a finite number in \(-1, 1\]"),
    (lambda: layers.RandomZoom(0.1, fill_mode="mirror"), r"fill_mode must be one of 'reflect', 'wrap'"),
    (lambda: layers.RandomTranslation((0.1, 0.2, 0.3), 0.1), r"height_factor must be a number or a pair"),
    (lambda: layers.RandomFlip("diagonal"), r"mode must be one of 'horizontal', 'vertical'"),
    (lambda: layers.RandomContrast(0.1, value_range=5), r"value_range must be a pair of numbers"),
    (lambda: layers.RandomBrightness(0.1, data_format="channels_first"), r"data_format must be 'channels_last'"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_images_must_be_batches_of_images():
    with pytest.raises(ValueError, match=r"RandomZoom '\w+' expects images \(batch, height, width, channels\), "
                                         r"got shape \(4, 5, 3\)"):
        layers.RandomZoom(0.2)(np.zeros((4, 5, 3)), training=True)


# ---------------------------------------------------------------- Resizing, CenterCrop, RandomCrop (image_resizing.py)
@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("index", range(len(FILES.RESIZING_CASES)))
def test_resizing_and_center_crop_give_keras_output(index, device):
    """Up and down, cropped or padded to the aspect ratio, a crop and a crop that must resize: Keras 3.15's."""
    class_name, options = FILES.RESIZING_CASES[index]
    layer = getattr(layers, class_name)(**options)
    for training in (False, True):          # RandomCrop: these images are not larger than its box along both axes
        out = layer(nn.Tensor(RECORD["case_x"], device=device), training=training).numpy()
        np.testing.assert_allclose(out, RECORD[f"resizing{index}_out"], rtol=1e-6, atol=2e-4)


def test_random_crop_cuts_one_random_box_per_batch_in_training():
    images = np.random.default_rng(4).standard_normal((3, 8, 9, 2))
    layer = layers.RandomCrop(4, 5, seed=7, dtype="float64")
    rng = np.random.default_rng(7)
    for _ in range(3):
        top, left = int(rng.uniform(0, 5)), int(rng.uniform(0, 5))            # Keras: int(uniform(0, room + 1))
        np.testing.assert_array_equal(layer(images, training=True).numpy(), images[:, top:top + 4, left:left + 5])
    unseeded = layers.RandomCrop(2, 2, dtype="float64")                       # nnengine's generator
    corners = [unseeded(images, training=True).numpy()[0, 0, 0, 0] for _ in range(60)]
    places = {tuple(np.argwhere(images[0, :, :, 0] == corner)[0]) for corner in corners}
    assert places <= {(t, c) for t in range(7) for c in range(8)} and len(places) > 20


def test_nearest_resizing_takes_the_pixel_under_each_output_centre():
    images = np.random.default_rng(3).standard_normal((2, 7, 9, 1))
    out = layers.Resizing(3, 4, interpolation="nearest", dtype="float64")(images).numpy()
    rows, cols = np.floor((np.arange(3) + 0.5) * 7 / 3).astype(int), np.floor((np.arange(4) + 0.5) * 9 / 4).astype(int)
    np.testing.assert_array_equal(out, images[:, rows][:, :, cols])


def test_a_model_that_resizes_and_crops_trains_compiled_as_eagerly_and_saves(tmp_path):
    def make_model():
        nn.utils.set_random_seed(5)
        return keras.Sequential([keras.Input((8, 8, 3)), layers.Resizing(10, 6, crop_to_aspect_ratio=True),
                                 layers.RandomCrop(7, 5, seed=3), layers.CenterCrop(6, 4), layers.Rescaling(1 / 255),
                                 layers.Flatten(),
                                 layers.Dense(3, activation="softmax")])
    report = compiled_and_eager_runs(make_model, RECORD["x"], RECORD["y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1
    model = make_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    assert model.output_shape == (None, 3) and model.layers[2].compute_output_shape((None, 7, 5, 3)) == (None, 6, 4, 3)
    assert_files_round_trip(model, RECORD["x"], tmp_path, (8, 8, 8, 3))


def test_gradients_flow_through_resizing_by_finite_differences():
    layer = layers.Resizing(5, 3, pad_to_aspect_ratio=True, fill_value=0.25, dtype="float64")
    assert nn.gradcheck(lambda x: (layer(x) ** 2).sum(),
                        nn.Tensor(np.random.default_rng(8).standard_normal((2, 4, 4, 2)), requires_grad=True))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Resizing(4, 4, antialias=True), r"antialias=True is not supported"),
    (lambda: layers.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), r"not both"),
    (lambda: layers.Resizing(4, 4, interpolation="bicubic"), r"interpolation must be one of 'bilinear', 'nearest'"),
    (lambda: layers.Resizing(0, 4), r"height must be"),
    (lambda: layers.CenterCrop(4, 2.5), r"width must be"),
])
def test_bad_resizing_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
