"""Bad input to the Keras-style API gets a clear exception naming the argument or layer,
the expected and the received value (issue: Keras-style API, item 9)."""
import numpy as np
import pytest
from keras_helpers import classification_data, small_model

import nnengine as nn


@pytest.fixture
def model():
    m = small_model(features=6, classes=3)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_training_or_evaluating_before_compile(method):
    x, y = classification_data(8)
    with pytest.raises(RuntimeError, match=rf"You must call compile\(\) before using the model: {method}\(\)"):
        getattr(small_model(), method)(x, y)


def test_compile_without_a_loss_is_reported_at_fit():
    m = small_model()
    m.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"fit: the model was compiled without a loss"):
        m.fit(*classification_data(8))


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_wrong_feature_size(model, method):
    x = np.zeros((4, 5), np.float32)
    args = (x,) if method == "predict" else (x, np.zeros(4, int))
    with pytest.raises(ValueError, match=rf"{method}: input of shape \(4, 5\) does not fit layer '.+', which expects "
                                         r"inputs of shape \(None, 6\)"):
        getattr(model, method)(*args, verbose=0)


def test_wrong_feature_size_on_a_layer_call():
    layer = nn.layers.Dense(2, input_shape=(3,), name="probe")
    with pytest.raises(ValueError, match=r"layer 'probe' .* expected axis -1 of input shape to have value 3, but "
                                         r"received input with shape \(2, 4\)"):
        layer(np.zeros((2, 4)))


def test_targets_that_do_not_fit_the_loss(model):
    x, labels = classification_data(8)
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: expected integer labels of shape \(8,\) "
                                         r"for y_pred of shape \(8, 3\), got y_true of shape \(8, 3\)"):
        model.fit(x, np.eye(3)[labels], verbose=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y_true of shape \(8,\) does not fit y_pred of "
                                         r"shape \(8, 3\).*sparse_categorical_crossentropy"):
        model.fit(x, labels, verbose=0)
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true of shape \(8, 2\) does not fit y_pred of "
                                         r"shape \(8, 3\)"):
        model.fit(x, np.zeros((8, 2)), verbose=0)


def test_labels_out_of_range(model):
    x, _ = classification_data(4)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 7\]"):
        model.fit(x, np.array([0, 1, 7, 2]), verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="adum"), "Unknown optimizer 'adum'; valid names: adadelta, adagrad, adam, adamax, adamw, ftrl, "
                             "lion, nadam, rmsprop, sgd"),
    (dict(loss="crossentropy"), "Unknown loss 'crossentropy'; valid names: bce, binary_crossentropy"),
    (dict(metrics=["acuracy"]), "Unknown metric 'acuracy'; valid names: acc, accuracy"),
])
def test_unknown_names_at_compile(kwargs, message):
    arguments = dict(optimizer="adam", loss="mse", metrics=None)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        small_model().compile(**arguments)


def test_unknown_activation_and_bad_layer_arguments():
    with pytest.raises(ValueError, match="Unknown activation 'relu7'; valid names: celu, elu, exponential, gelu"):
        nn.layers.Dense(3, activation="relu7")
    with pytest.raises(ValueError, match="units must be an int >= 1, got 0"):
        nn.layers.Dense(0)
    with pytest.raises(ValueError, match=r"rate must be a finite number in \[0, 1\), got 1.0"):
        nn.layers.Dropout(1.0)
    with pytest.raises(TypeError, match="must be a tuple of ints"):
        nn.layers.Dense(3, input_shape=("ten",))


@pytest.mark.parametrize("batch_size", [0, -3])
def test_batch_size_below_one(model, batch_size):
    with pytest.raises(ValueError, match=rf"fit: batch_size must be an int >= 1, got {batch_size!r}"):
        model.fit(*classification_data(8), batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("batch_size", [2.5, True, "32"])
def test_batch_size_that_is_not_an_int(model, batch_size):
    with pytest.raises(TypeError, match=rf"fit: batch_size must be an int, got {batch_size!r}"):
        model.fit(*classification_data(8), batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("split", [-0.1, 1.0, 1.5])
def test_validation_split_outside_0_1(model, split):
    with pytest.raises(ValueError, match=rf"fit: validation_split must be a finite number in \[0, 1\), got {split}"):
        model.fit(*classification_data(8), validation_split=split, verbose=0)


def test_validation_split_that_leaves_no_samples(model):
    with pytest.raises(ValueError, match=r"leaves 0 for training and 2 for validation"):
        model.fit(*classification_data(2), validation_split=0.9, verbose=0)


def test_empty_x_and_mismatched_lengths(model):
    with pytest.raises(ValueError, match=r"fit: x is empty \(0 samples\)"):
        model.fit(np.zeros((0, 6)), np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match="fit: x and y must have the same number of samples, got 8 and 5"):
        model.fit(np.zeros((8, 6)), np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match="predict: x is empty"):
        model.predict(np.zeros((0, 6)))


def test_non_numeric_input(model):
    with pytest.raises(TypeError, match=r"fit: x: expected numbers \(an int or float array\), got dtype <U1"):
        model.fit([["a"] * 6], [0], verbose=0)


def test_bad_verbose_and_steps_arguments(model):
    with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2, got 3"):
        model.fit(*classification_data(8), verbose=3)
    with pytest.raises(ValueError, match="fit: steps_per_epoch must be a positive int or None, got 0"):
        model.fit(*classification_data(8), steps_per_epoch=0, verbose=0)


def test_adding_things_that_are_not_layers():
    with pytest.raises(TypeError, match=r"Sequential: layers\[0\] must be a layer, got 'dense'"):
        nn.Sequential(["dense"])
    with pytest.raises(TypeError, match="Sequential.add: expected a layer, got str"):
        nn.Sequential().add("dense")
    with pytest.raises(ValueError, match="an InputLayer can only be the first layer"):
        nn.Sequential([nn.layers.Dense(2, input_shape=(3,)), nn.Input(shape=(2,))])
