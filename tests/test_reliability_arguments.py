"""Every bad argument of the public API gets a clear TypeError or ValueError naming the argument,
what was expected and what came; degenerate values Keras accepts are accepted and warned about (issue 12).
"""
import warnings

import numpy as np
import pytest
from keras_helpers import classification_data, small_model

import nnengine as nn
from nnengine import keras


def compiled():
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


X, Y = classification_data(20)


def fit(**kwargs):
    return lambda: compiled().fit(X, Y, **{"verbose": 0, **kwargs})


def evaluate(**kwargs):
    return lambda: compiled().evaluate(X, Y, **{"verbose": 0, **kwargs})


def predict(**kwargs):
    return lambda: compiled().predict(X, **{"verbose": 0, **kwargs})


CASES = [
    # fit / evaluate / predict
    ("fit epochs=2.5", fit(epochs=2.5), TypeError, "fit: epochs must be an int, got 2.5"),
    ("fit epochs='3'", fit(epochs="3"), TypeError, "fit: epochs must be an int, got '3'"),
    ("fit epochs=-1", fit(epochs=-1), ValueError, "fit: epochs must be an int >= 0, got -1"),
    ("fit initial_epoch=-1", fit(initial_epoch=-1), ValueError, "fit: initial_epoch must be an int >= 0"),
    ("fit validation_split='0.2'", fit(validation_split="0.2"), TypeError,
     "fit: validation_split must be a number, got '0.2'"),
    ("fit validation_split=nan", fit(validation_split=float("nan")), ValueError,
     r"fit: validation_split must be a finite number in \[0, 1\), got nan"),
    ("fit validation_freq=0", fit(validation_split=0.2, validation_freq=0), ValueError,
     "fit: validation_freq must be an int >= 1, got 0"),
    ("fit callbacks=EarlyStopping()", fit(callbacks=keras.callbacks.EarlyStopping()), TypeError,
     r"fit: callbacks must be a list of callbacks, got one EarlyStopping; put it in a list: "
     r"callbacks=\[EarlyStopping\(\)\]"),
    ("fit callbacks=[print]", fit(callbacks=[print]), TypeError, r"fit: callbacks\[0\] must be a callback"),
    ("fit shuffle='yes'", fit(shuffle="yes"), TypeError, "fit: shuffle must be True or False, got 'yes'"),
    ("fit batch_size='32'", fit(batch_size="32"), TypeError, "fit: batch_size must be an int, got '32'"),
    ("fit validation_batch_size=0", fit(validation_split=0.2, validation_batch_size=0), ValueError,
     "fit: validation_batch_size must be an int >= 1, got 0"),
    ("fit verbose=3", fit(verbose=3), ValueError, "fit: verbose must be 'auto', 0, 1 or 2, got 3"),
    ("fit steps_per_epoch=0", fit(steps_per_epoch=0), ValueError,
     "fit: steps_per_epoch must be a positive int or None, got 0"),
    ("fit validation_steps=1.5", fit(validation_split=0.2, validation_steps=1.5), ValueError,
     "fit: validation_steps must be a positive int or None, got 1.5"),
    ("fit validation_data=(x,)", fit(validation_data=(X,)), ValueError,
     r"fit: validation_data must be \(x_val, y_val\) or \(x_val, y_val, sample_weight\)"),
    ("evaluate batch_size=0", evaluate(batch_size=0), ValueError, "evaluate: batch_size must be an int >= 1"),
    ("evaluate return_dict='no'", evaluate(return_dict="no"), TypeError,
     "evaluate: return_dict must be True or False"),
    ("evaluate callbacks=History()", evaluate(callbacks=keras.callbacks.History()), TypeError,
     "evaluate: callbacks must be a list of callbacks, got one History"),
    ("predict verbose=-1", predict(verbose=-1), ValueError, "predict: verbose must be 'auto', 0, 1 or 2"),
    ("predict steps=True", predict(steps=True), ValueError, "predict: steps must be a positive int or None"),
    ("predict uint64 beyond int64", lambda: keras.Sequential([keras.Input((1,), dtype="int64"), keras.layers.Dense(1)])
     .predict(np.array([[2 ** 64 - 1]], np.uint64), verbose=0), ValueError,
     r"predict: x: values in \[18446744073709551615, 18446744073709551615\] do not fit int64"),
    ("fit NaN labels", lambda: compiled().fit(X, np.full(len(X), np.nan), verbose=0), ValueError,
     "y_true must hold integer class labels"),
    # compile
    ("compile loss=3", lambda: compiled().compile(optimizer="adam", loss=3), TypeError,
     "loss must be a name, a config dict or a Loss object, got 3"),
    ("compile metrics='accuracy'", lambda: compiled().compile(loss="mse", metrics="accuracy"), TypeError,
     "compile: metrics must be a list"),
    ("compile run_eagerly='no'", lambda: compiled().compile(loss="mse", run_eagerly="no"), TypeError,
     "compile: run_eagerly must be True or False"),
    ("compile steps_per_execution=0", lambda: compiled().compile(loss="mse", steps_per_execution=0), ValueError,
     "compile: steps_per_execution must be an int >= 1"),
    ("compile jit_compile='yes'", lambda: compiled().compile(loss="mse", jit_compile="yes"), ValueError,
     "compile: jit_compile must be 'auto', True or False"),
    # models and layers
    ("Sequential(Dense(3))", lambda: keras.Sequential(keras.layers.Dense(3)), TypeError,
     r"Sequential: layers must be a list of layers, got one Dense; put it in a list"),
    ("Sequential(name=5)", lambda: keras.Sequential(name=5), TypeError, "Sequential: name must be a string, got 5"),
    ("build((None, 0))", lambda: keras.Sequential([keras.layers.Dense(3)]).build((None, 0)), ValueError,
     r"build: input_shape must hold positive sizes, got \(None, 0\)"),
    ("build('10')", lambda: keras.Sequential([keras.layers.Dense(3)]).build("10"), TypeError,
     "build: input_shape must be a tuple"),
    ("Dropout('0.5')", lambda: keras.layers.Dropout("0.5"), TypeError, "Dropout 'dropout.*': rate must be a number"),
    ("Dropout(1.5)", lambda: keras.layers.Dropout(1.5), ValueError, r"rate must be a finite number in \[0, 1\)"),
    ("Dropout(seed=-1)", lambda: keras.layers.Dropout(0.5, seed=-1), ValueError, "seed must be an int >= 0"),
    ("Dense(3.0)", lambda: keras.layers.Dense(3.0), TypeError, "units must be an int, got 3.0"),
    ("Dense(use_bias='no')", lambda: keras.layers.Dense(3, use_bias="no"), TypeError,
     "use_bias must be True or False, got 'no'"),
    ("Dense(name=5)", lambda: keras.layers.Dense(3, name=5), TypeError, "Dense: name must be a string, got 5"),
    ("Dense(input_shape=(-1,))", lambda: keras.layers.Dense(3, input_shape=(-1,)), ValueError,
     "input_shape must hold positive sizes"),
    ("Dense(input_dim='4')", lambda: keras.layers.Dense(3, input_dim="4"), TypeError, "input_dim must be an int"),
    ("Dense(trainable='yes')", lambda: keras.layers.Dense(3, trainable="yes"), TypeError,
     "trainable must be True or False"),
    ("Input(shape=(0,))", lambda: keras.Input(shape=(0,)), ValueError, "InputLayer: shape must hold positive sizes"),
    ("Input(batch_size=0)", lambda: keras.Input(shape=(3,), batch_size=0), ValueError,
     "InputLayer: batch_size must be an int >= 1"),
    ("summary(print_fn=3)", lambda: compiled().summary(print_fn=3), TypeError, "summary: print_fn must be a function"),
    ("set_weights(None)", lambda: compiled().set_weights(None), TypeError, "set_weights: expected a list of arrays"),
    ("Flatten(data_format='channels_first')", lambda: keras.layers.Flatten(data_format="channels_first"), ValueError,
     "data_format must be None or 'channels_last'"),
    ("set_random_seed(-1)", lambda: keras.utils.set_random_seed(-1), ValueError, "seed must be >= 0, got -1"),
    # callbacks
    ("EarlyStopping(patience='2')", lambda: keras.callbacks.EarlyStopping(patience="2"), TypeError,
     "EarlyStopping: patience must be an int, got '2'"),
    ("EarlyStopping(monitor=3)", lambda: keras.callbacks.EarlyStopping(monitor=3), TypeError,
     "EarlyStopping: monitor must be a string"),
    ("EarlyStopping(mode='up')", lambda: keras.callbacks.EarlyStopping(mode="up"), ValueError,
     "EarlyStopping: mode must be one of 'auto', 'min', 'max', got 'up'"),
    ("EarlyStopping(restore_best_weights=1)", lambda: keras.callbacks.EarlyStopping(restore_best_weights=1),
     TypeError, "restore_best_weights must be True or False"),
    ("ModelCheckpoint(3)", lambda: keras.callbacks.ModelCheckpoint(3), TypeError,
     "ModelCheckpoint: filepath must be a file path"),
    ("ModelCheckpoint('m.keras')", lambda: keras.callbacks.ModelCheckpoint("m.keras"), ValueError,
     r"ModelCheckpoint: filepath must end in .h5 or .hdf5"),
    ("ReduceLROnPlateau(factor='0.5')", lambda: keras.callbacks.ReduceLROnPlateau(factor="0.5"), TypeError,
     "ReduceLROnPlateau: factor must be a number"),
    ("ReduceLROnPlateau(factor=1)", lambda: keras.callbacks.ReduceLROnPlateau(factor=1), ValueError,
     r"factor must be a finite number in \(0, 1\)"),
    ("CSVLogger(3)", lambda: keras.callbacks.CSVLogger(3), TypeError, "CSVLogger: filename must be a file path"),
    ("LambdaCallback(on_epoch_end=3)", lambda: keras.callbacks.LambdaCallback(on_epoch_end=3), TypeError,
     "LambdaCallback: on_epoch_end must be a function"),
    # optimizers
    ("Adam(learning_rate='0.1')", lambda: keras.optimizers.Adam(learning_rate="0.1"), TypeError,
     "adam: learning_rate must be a number, got '0.1'"),
    ("Adam(beta_1=1)", lambda: keras.optimizers.Adam(beta_1=1), ValueError, r"beta_1 must be a finite number in \[0, 1\)"),
    ("Adam(epsilon=0)", lambda: keras.optimizers.Adam(epsilon=0), ValueError, "epsilon must be a finite number > 0"),
    ("Adam(amsgrad='no')", lambda: keras.optimizers.Adam(amsgrad="no"), TypeError, "amsgrad must be True or False"),
    ("SGD(nesterov='y')", lambda: keras.optimizers.SGD(nesterov="y"), TypeError, "sgd: nesterov must be True or False"),
    ("SGD(momentum=inf)", lambda: keras.optimizers.SGD(momentum=float("inf")), ValueError,
     r"momentum must be a finite number in \[0, 1\], got inf"),
    ("RMSprop(rho=True)", lambda: keras.optimizers.RMSprop(rho=True), TypeError, "rho must be a number, got True"),
    # files and utilities
    ("save(3)", lambda: compiled().save(3), TypeError, "save: filepath must be a file path"),
    ("save(overwrite='no')", lambda: compiled().save("m.h5", overwrite="no"), TypeError,
     "save: overwrite must be True or False"),
    ("load_model(3)", lambda: keras.models.load_model(3), TypeError, "load_model: filepath must be a file path"),
    ("to_categorical(num_classes='3')", lambda: keras.utils.to_categorical([1], num_classes="3"), TypeError,
     "to_categorical: num_classes must be a positive int or None"),
    ("Tensor(uint64 max)", lambda: nn.Tensor(np.array([2 ** 64 - 1], np.uint64)), ValueError,
     "Tensor: values in .* do not fit int64"),
    ("Tensor(nan, dtype=int64)", lambda: nn.Tensor(np.array([np.nan]), dtype="int64"), ValueError,
     "Tensor: cannot cast NaN or infinite values to int64"),
]


@pytest.mark.parametrize("name, call, kind, message", CASES, ids=[case[0] for case in CASES])
def test_bad_arguments_raise_clear_errors(name, call, kind, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kind, match=message) as raised:
        call()
    assert type(raised.value) is kind or kind is ValueError and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("epochs, initial_epoch", [(0, 0), (1, 3), (2, 2)])
def test_nothing_to_train_returns_an_empty_history_and_warns(epochs, initial_epoch):
    model = compiled()
    before = model.get_weights()
    with pytest.warns(UserWarning, match=rf"fit: epochs={epochs} with initial_epoch={initial_epoch} trains nothing"):
        history = model.fit(X, Y, epochs=epochs, initial_epoch=initial_epoch, verbose=0)
    assert history.history == {} and history.epoch == []
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_good_values_of_each_kind_still_pass():
    model = compiled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(X, Y, epochs=np.int64(2), batch_size=np.int32(8), verbose=False, shuffle=np.bool_(True),
                            validation_split=np.float32(0.25), callbacks=(keras.callbacks.History(),),
                            initial_epoch=1)
    assert history.epoch == [1]
    keras.optimizers.Adam(learning_rate=np.float32(0.01), beta_1=0, amsgrad=np.bool_(False))
    keras.layers.Dense(np.int64(3), input_shape=[4])
    keras.callbacks.EarlyStopping(patience=np.int64(2), verbose=1)
    keras.layers.Flatten(data_format="channels_last")
