"""Grouped convolutions (Conv2D/Conv1D ``groups``): Keras 3.15's saved models load, predict, evaluate and train as
Keras trains them; each group is the convolution of its channels alone; finite differences; the compiled step;
channel counts that do not divide refused by name."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, make_keras_files

keras = nn.keras
layers = keras.layers
DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_conv_groups.npz")


@pytest.mark.parametrize("name", ["images", "sequences"])
def test_keras_models_load_predict_evaluate_and_train_as_keras(name, tmp_path):
    model = keras.models.load_model(DATA / f"keras3_conv_groups_{name}.keras")
    assert [getattr(layer, "groups", None) for layer in model.layers][:2] in ([2, 3], [3, 2])
    x, y = RECORD[f"{name}_x"], RECORD["y"]
    np.testing.assert_allclose(model.predict(x, verbose=0), RECORD[f"{name}_predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), RECORD[f"{name}_evaluate"], rtol=1e-5)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, RECORD[f"{name}_trained_{index}"], rtol=5e-5, atol=5e-6)
    assert_files_round_trip(model, x, tmp_path, x.shape)


@settings(max_examples=20, deadline=None)
@given(groups=st.sampled_from([1, 2, 3]), per_group=st.integers(1, 3), filters_per_group=st.integers(1, 3),
       rank=st.sampled_from([1, 2]), padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2 ** 16))
def test_each_group_is_the_convolution_of_its_own_channels(groups, per_group, filters_per_group, rank, padding,
                                                           seed):
    rng = np.random.default_rng(seed)
    conv_class = layers.Conv2D if rank == 2 else layers.Conv1D
    shape = (2, 5, 5, groups * per_group) if rank == 2 else (2, 6, groups * per_group)
    x = rng.standard_normal(shape)
    grouped = conv_class(groups * filters_per_group, 3, padding=padding, groups=groups, dtype="float64")
    out = grouped(x).numpy()
    kernel, bias = grouped.get_weights()
    for group in range(groups):
        single = conv_class(filters_per_group, 3, padding=padding, dtype="float64")
        channels = slice(group * per_group, (group + 1) * per_group)
        filters = slice(group * filters_per_group, (group + 1) * filters_per_group)
        single.build((None, *shape[1:-1], per_group))
        single.set_weights([kernel[..., filters], bias[filters]])
        np.testing.assert_allclose(out[..., filters], single(x[..., channels]).numpy(), rtol=1e-12, atol=1e-12)


def test_gradients_by_finite_differences():
    rng = np.random.default_rng(1)
    conv = layers.Conv2D(4, 2, groups=2, dtype="float64")
    conv.build((None, 3, 3, 4))
    conv.set_weights([rng.standard_normal(w.shape) for w in conv.weights])

    def output(x, kernel):
        kept = conv.kernel
        conv.kernel = kernel
        try:
            return conv(x)
        finally:
            conv.kernel = kept
    assert nn.gradcheck(output, rng.standard_normal((2, 3, 3, 4)), conv.kernel.numpy())


def test_a_grouped_model_trains_compiled_bitwise_as_eagerly():
    files = make_keras_files()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 7, 7, 4)).astype(np.float32), rng.integers(0, 3, 16)

    def make_model():
        nn.utils.set_random_seed(3)
        return files.grouped_conv_models(keras)["images"][0]
    assert compiled_and_eager_runs(make_model, x, y, batch_size=8)["fallback_reason"] is None


@pytest.mark.parametrize("make, shape, message", [
    (lambda: layers.Conv2D(5, 3, groups=2), None, r"filters \(5\) must be a multiple of groups \(2\)"),
    (lambda: layers.Conv2D(4, 3, groups=2), (None, 5, 5, 3), r"the input's 3 channels must be a multiple of groups"),
    (lambda: layers.Conv1D(4, 3, groups=0), None, r"groups"),
])
def test_counts_that_do_not_divide_are_refused_by_name(make, shape, message):
    with pytest.raises((ValueError, TypeError), match=message):
        layer = make()
        layer.build(shape)
