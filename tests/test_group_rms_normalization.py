"""GroupNormalization and RMSNormalization (norm_layers.py): Keras 3.15's outputs and configs, Keras's saved model
trained on as Keras trains it, the formulas on every backend, finite differences, the compiled step, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs

import nnengine as nn
from nnengine import keras

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_group_rms.npz")
layers = keras.layers
CASES = sorted({key[:-2] for key in RECORD.files if key.endswith("_x") and key != "x"})


def recorded_layer(case):
    """The case's layer from Keras's config, with Keras's weights."""
    config = json.loads(str(RECORD[f"{case}_config"]))
    cls = layers.GroupNormalization if case.startswith("group") else layers.RMSNormalization
    layer = cls.from_config(config)
    layer.build(RECORD[f"{case}_x"].shape)
    layer.set_weights([RECORD[f"{case}_w{i}"] for i in range(len(layer.weights))])
    return layer, config


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("case", CASES)
def test_each_case_gives_keras_output_and_config(case, device):
    assert len(CASES) == 9
    layer, config = recorded_layer(case)
    layer.to(device)
    got = layer(nn.Tensor(RECORD[f"{case}_x"], device=device)).numpy()
    np.testing.assert_allclose(got, RECORD[f"{case}_out"], rtol=1e-5, atol=2e-6)
    mine = layer.get_config()
    assert set(mine) >= set(config) - {"name"}
    assert {key: mine[key] for key in config if key not in ("name", "dtype")} == \
        {key: value for key, value in config.items() if key not in ("name", "dtype")}


def group_norm_reference(x, groups, axis, gamma, beta, epsilon):
    """GroupNormalization by its definition, in float64 numpy: each sample's group of channels normalized."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    n, channels = x.shape[0], x.shape[-1]
    grouped = x.reshape(n, -1, groups, channels // groups)
    mean = grouped.mean(axis=(1, 3), keepdims=True)
    variance = ((grouped - mean) ** 2).mean(axis=(1, 3), keepdims=True)
    out = ((grouped - mean) / np.sqrt(variance + epsilon)).reshape(x.shape) * gamma + beta
    return np.moveaxis(out, -1, axis)


@settings(max_examples=25, deadline=None)
@given(groups=st.sampled_from([1, 2, 3, 6]), rank=st.integers(2, 4), channels_first=st.booleans(),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2 ** 16))
def test_group_normalization_is_its_definition_on_both_backends(groups, rank, channels_first, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = [3] + list(rng.integers(1, 4, rank - 2)) + [6]
    axis = 1 if channels_first else -1
    if channels_first:
        shape[1], shape[-1] = 6, shape[1] if rank > 2 else 6
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, 6), rng.standard_normal(6)
    expected = group_norm_reference(x, groups, axis % rank, gamma, beta, 1e-3)
    for device in ("numpy", "cpu"):
        layer = layers.GroupNormalization(groups=groups, axis=axis, dtype=dtype)
        layer.build(x.shape)
        layer.set_weights([gamma.astype(dtype), beta.astype(dtype)])
        layer.to(device)
        got = layer(nn.Tensor(x, device=device)).numpy()
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10,
                                   atol=1e-4 if dtype == "float32" else 1e-10)


@settings(max_examples=25, deadline=None)
@given(rank=st.integers(2, 4), seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(["float32", "float64"]),
       last_two=st.booleans())
def test_rms_normalization_is_its_definition_on_both_backends(rank, seed, dtype, last_two):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([2] + list(rng.integers(1, 5, rank - 1))).astype(dtype)
    axes = (rank - 2, rank - 1) if last_two and rank > 2 else (rank - 1,)
    scale = rng.uniform(0.5, 1.5, [x.shape[a] for a in axes])
    x64 = x.astype(np.float64)
    shape = [1] * rank
    for a in axes:
        shape[a] = x.shape[a]
    expected = x64 / np.sqrt((x64 ** 2).mean(axis=axes, keepdims=True) + 1e-6) * scale.reshape(shape)
    for device in ("numpy", "cpu"):
        layer = layers.RMSNormalization(axis=list(axes), dtype=dtype)
        layer.build(x.shape)
        layer.set_weights([scale.astype(dtype)])
        layer.to(device)
        np.testing.assert_allclose(layer(nn.Tensor(x, device=device)).numpy(), expected,
                                   rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6 if dtype == "float32"
                                   else 1e-12)


def test_rms_normalization_over_a_middle_axis_scales_that_axis():
    """Keras 3.15 cannot broadcast its scale over a middle axis; here each step of axis 1 has its own scale."""
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer = layers.RMSNormalization(axis=1, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([np.array([1.0, 2.0, 3.0])])
    expected = x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + 1e-6) * np.array([1, 2, 3])[:, None]
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("make, shape, names", [
    (lambda: layers.GroupNormalization(groups=2, dtype="float64"), (2, 3, 4), ("gamma", "beta")),
    (lambda: layers.GroupNormalization(groups=-1, axis=1, dtype="float64"), (2, 3, 2, 2), ("gamma", "beta")),
    (lambda: layers.RMSNormalization(dtype="float64"), (3, 4), ("scale",)),
    (lambda: layers.RMSNormalization(axis=[1, 2], dtype="float64"), (2, 3, 4), ("scale",))])
def test_gradients_by_finite_differences(make, shape, names):
    """d/dx and d/dweights of the layer's output, against central differences in float64."""
    rng = np.random.default_rng(3)
    layer = make()
    layer.build(shape)
    weights = [rng.uniform(0.5, 1.5, getattr(layer, name).shape) for name in names]

    def output(x, *values):
        kept = [getattr(layer, name) for name in names]
        for name, value in zip(names, values):
            setattr(layer, name, value)          # the layer computes with the checked tensors
        try:
            return layer(x)
        finally:
            for name, value in zip(names, kept):
                setattr(layer, name, value)
    assert nn.gradcheck(output, rng.standard_normal(shape) * 2 + 0.5, *weights)


def test_keras_file_loads_predicts_evaluates_and_trains_as_keras(tmp_path):
    model = keras.models.load_model(DATA / "keras3_group_rms.keras")
    names = [type(layer).__name__ for layer in model.layers]
    assert (names[1], names[5]) == ("GroupNormalization", "RMSNormalization")
    np.testing.assert_allclose(model.predict(RECORD["x"], verbose=0), RECORD["predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(RECORD["x"], RECORD["y"], verbose=0), RECORD["evaluate"], rtol=1e-5)
    model.fit(RECORD["x"], RECORD["y"], epochs=1, batch_size=8, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, RECORD[f"trained_{index}"], rtol=2e-5, atol=2e-6)
    assert_files_round_trip(model, RECORD["x"], tmp_path, (16, 6, 6, 2))


def test_a_model_trains_compiled_bitwise_as_eagerly():
    def make_model():
        nn.utils.set_random_seed(5)
        return keras.Sequential([keras.Input((5, 5, 4)), layers.GroupNormalization(groups=2),
                                 layers.Conv2D(4, 3, activation="relu"), layers.GroupNormalization(groups=-1, axis=1),
                                 layers.Flatten(), layers.Dense(6), layers.RMSNormalization(),
                                 layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20, 5, 5, 4)).astype("float32"), rng.integers(0, 3, 20)
    report = compiled_and_eager_runs(make_model, x, y, batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


def test_gamma_and_beta_are_trained_per_channel():
    model = keras.Sequential([keras.Input((4, 6)), layers.GroupNormalization(groups=3), layers.Flatten(),
                              layers.Dense(1)])
    model.compile("sgd", "mse")
    before = [w.copy() for w in model.layers[0].get_weights()]
    rng = np.random.default_rng(6)
    model.fit(rng.standard_normal((8, 4, 6)), rng.standard_normal((8, 1)), epochs=1, verbose=0)
    after = model.layers[0].get_weights()
    assert [w.shape for w in after] == [(6,), (6,)]
    assert all(not np.array_equal(a, b) for a, b in zip(after, before))


@pytest.mark.parametrize("make, shape, error, message", [
    (lambda: layers.GroupNormalization(groups=4), (2, 6), ValueError, r"6 channels .* cannot be split into 4"),
    (lambda: layers.GroupNormalization(groups=0), None, ValueError, r"groups must be a positive number"),
    (lambda: layers.GroupNormalization(groups=-2), None, ValueError, r"groups must be a positive number"),
    (lambda: layers.GroupNormalization(groups=2.5), None, TypeError, r"groups"),
    (lambda: layers.GroupNormalization(axis=[1, 2]), None, TypeError, r"axis must be one int"),
    (lambda: layers.GroupNormalization(groups=2, axis=0), (2, 6), ValueError, r"batch axis"),
    (lambda: layers.GroupNormalization(groups=2, axis=3), (2, 6), ValueError, r"out of range"),
    (lambda: layers.RMSNormalization(epsilon=0), None, ValueError, r"epsilon"),
    (lambda: layers.RMSNormalization(axis="last"), None, TypeError, r"axis must be an int"),
    (lambda: layers.RMSNormalization(axis=[1, 5]), (2, 3, 4), ValueError, r"out of range"),
])
def test_bad_arguments_are_refused_by_name(make, shape, error, message):
    with pytest.raises(error, match=message):
        layer = make()
        layer.build(shape)


@pytest.mark.parametrize("layer", [layers.GroupNormalization(groups=2), layers.RMSNormalization()])
def test_an_input_of_another_shape_is_refused_by_name(layer):
    layer.build((None, 4))
    with pytest.raises(ValueError, match=f"layer {layer.name!r} is incompatible.*expected shape"):
        layer(np.ones((2, 6), np.float32))
