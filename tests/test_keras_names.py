"""The names Keras programs use for nnengine's classes and helpers: lower-case aliases, short layer names,
the constraints and the data helpers of ``keras.utils``; each behaves as Keras's does."""
import numpy as np
import pytest

import nnengine as nn
from nnengine import keras

ALIASES = [   # (Keras's other name, the class it names)
    (keras.layers.Convolution1D, keras.layers.Conv1D), (keras.layers.Convolution2D, keras.layers.Conv2D),
    (keras.layers.MaxPool1D, keras.layers.MaxPooling1D), (keras.layers.MaxPool2D, keras.layers.MaxPooling2D),
    (keras.layers.AvgPool1D, keras.layers.AveragePooling1D), (keras.layers.AvgPool2D, keras.layers.AveragePooling2D),
    (keras.layers.GlobalAvgPool1D, keras.layers.GlobalAveragePooling1D),
    (keras.layers.GlobalAvgPool2D, keras.layers.GlobalAveragePooling2D),
    (keras.layers.GlobalMaxPool1D, keras.layers.GlobalMaxPooling1D),
    (keras.layers.GlobalMaxPool2D, keras.layers.GlobalMaxPooling2D),
    (keras.regularizers.l1, keras.regularizers.L1), (keras.regularizers.l2, keras.regularizers.L2),
    (keras.regularizers.l1_l2, keras.regularizers.L1L2),
    (keras.initializers.he_normal, keras.initializers.HeNormal),
    (keras.initializers.glorot_uniform, keras.initializers.GlorotUniform),
    (keras.initializers.lecun_normal, keras.initializers.LecunNormal),
    (keras.initializers.OrthogonalInitializer, keras.initializers.Orthogonal),
    (keras.constraints.max_norm, keras.constraints.MaxNorm), (keras.constraints.unit_norm, keras.constraints.UnitNorm),
    (keras.constraints.min_max_norm, keras.constraints.MinMaxNorm), (keras.constraints.non_neg, keras.constraints.NonNeg),
]


@pytest.mark.parametrize("alias, cls", ALIASES, ids=[alias.__name__ for alias, _ in ALIASES])
def test_keras_aliases_name_the_same_class(alias, cls):
    assert alias is cls


def test_aliased_layers_are_saved_under_their_class_name(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Convolution2D(2, 3), keras.layers.MaxPool2D(),
                              keras.layers.GlobalAvgPool2D(), keras.layers.Dense(2, kernel_regularizer=
                                                                                 keras.regularizers.l2(0.01))])
    model.compile("adam", "mse")
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [type(layer).__name__ for layer in loaded.layers] == ["Conv2D", "MaxPooling2D", "GlobalAveragePooling2D",
                                                                 "Dense"]
    assert loaded.layers[-1].kernel_regularizer.get_config() == {"l2": 0.01}


def _norms(w, axis):
    return np.sqrt((w * w).sum(axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=True))


@pytest.mark.parametrize("axis", [0, 1, [0, 1]])
def test_unit_and_min_max_norm_formulas(axis):
    w = np.random.default_rng(0).standard_normal((4, 5)) * np.array([0.01, 0.5, 1, 3, 10])
    w[:, 2] = 0                                         # a zero slice stays zero: no division by 0
    norms = _norms(w, axis)
    unit = keras.constraints.UnitNorm(axis=axis)(nn.tensor(w)).numpy()
    np.testing.assert_allclose(unit, w / (norms + 1e-7), rtol=1e-12)
    for rate in (1.0, 0.3):
        constraint = keras.constraints.MinMaxNorm(0.5, 2.0, rate=rate, axis=axis)
        desired = rate * np.clip(norms, 0.5, 2.0) + (1 - rate) * norms
        np.testing.assert_allclose(constraint(nn.tensor(w)).numpy(), w * desired / (norms + 1e-7), rtol=1e-12)


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "eager"])
def test_a_conv_kernel_keeps_each_filter_within_its_norm(jit, tmp_path):
    """Keras's conv idiom: max_norm over axes [0, 1, 2], the kernel's (rows, cols, channels) of each filter."""
    nn.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(
        3, 3, kernel_constraint=keras.constraints.max_norm(0.5, axis=[0, 1, 2]),
        bias_constraint=keras.constraints.unit_norm()), keras.layers.Flatten(), keras.layers.Dense(
        2, kernel_constraint=keras.constraints.MinMaxNorm(0.2, 0.4))])
    model.compile(keras.optimizers.Adam(0.1), "mse", jit_compile=jit)
    rng = np.random.default_rng(1)
    model.fit(rng.standard_normal((16, 6, 6, 2)), rng.standard_normal((16, 2)), epochs=2, batch_size=8, verbose=0)
    kernel, bias, dense, _ = model.get_weights()
    assert np.all(_norms(kernel, [0, 1, 2]) <= 0.5 + 1e-5)
    assert np.linalg.norm(bias) == pytest.approx(1.0, abs=1e-5)
    assert np.all((_norms(dense, 0) >= 0.2 - 1e-5) & (_norms(dense, 0) <= 0.4 + 1e-5))
    model.save(tmp_path / "model.h5")
    loaded = keras.models.load_model(tmp_path / "model.h5")
    assert loaded.layers[0].kernel_constraint.get_config() == {"max_value": 0.5, "axis": [0, 1, 2]}
    assert loaded.layers[2].kernel_constraint.get_config() == {"min_value": 0.2, "max_value": 0.4, "rate": 1.0,
                                                               "axis": 0}


def test_constraint_arguments_are_checked():
    with pytest.raises(ValueError, match="MinMaxNorm: max_value must be a finite number >= 2.0"):
        keras.constraints.MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match="UnitNorm: axis must be an int or a list of distinct ints"):
        keras.constraints.UnitNorm(axis=[0, 0])
    with pytest.raises(TypeError, match="MaxNorm: axis must be an int"):
        keras.constraints.MaxNorm(axis="0")


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [[0, 1, 2, 3], [0, 0, 0, 4], [0, 0, 0, 0], [5, 6, 7, 8]]),
    ({"maxlen": 2}, [[2, 3], [0, 4], [0, 0], [7, 8]]),
    ({"maxlen": 2, "truncating": "post"}, [[1, 2], [0, 4], [0, 0], [5, 6]]),
    ({"maxlen": 5, "padding": "post", "value": -1}, [[1, 2, 3, -1, -1], [4, -1, -1, -1, -1], [-1] * 5,
                                                     [5, 6, 7, 8, -1]]),
    ({"maxlen": 0}, np.zeros((4, 0))),
])
def test_pad_sequences(kwargs, expected):
    padded = keras.utils.pad_sequences([[1, 2, 3], [4], [], [5, 6, 7, 8]], **kwargs)
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(padded, expected)


def test_pad_sequences_of_vectors_and_floats():
    padded = keras.utils.pad_sequences([np.ones((2, 3)), np.full((1, 3), 2.0)], dtype="float32", value=0.5)
    assert padded.shape == (2, 2, 3) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[1], [[0.5] * 3, [2.0] * 3])
    with pytest.raises(ValueError, match=r"sequences\[1\] has items of shape \(2,\), the others \(3,\)"):
        keras.utils.pad_sequences([np.ones((2, 3)), np.ones((1, 2))])
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post'"):
        keras.utils.pad_sequences([[1]], padding="left")
    with pytest.raises(ValueError, match=r"sequences\[0\] is not a sequence"):
        keras.utils.pad_sequences([3])


def test_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(keras.utils.normalize(x), [[0.6, 0.8], [0, 0], [0.5 ** 0.5, -0.5 ** 0.5]])
    np.testing.assert_allclose(keras.utils.normalize(x, axis=0, order=1)[:, 0], [0.75, 0, 0.25])


def test_save_model_is_model_save(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    keras.models.save_model(model, tmp_path / "model.h5")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "model.h5").get_weights()[0],
                                  model.get_weights()[0])
    with pytest.raises(TypeError, match="save_model: expected a Sequential or functional model"):
        keras.models.save_model("model", tmp_path / "x.h5")
