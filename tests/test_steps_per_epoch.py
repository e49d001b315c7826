"""``steps_per_epoch``, ``validation_steps`` and the ``steps`` of evaluate and predict on arrays, as Keras 3's
epoch iterator takes them: an epoch of that many batches, the pass over the arrays going on across epochs,
and an epoch cut short (with a warning) when its pass runs out."""
import warnings

import numpy as np
import pytest

import nnengine as nn
from nnengine import keras

X = np.arange(40, dtype="float32").reshape(10, 4)
Y = np.arange(10) % 3


def _model():
    nn.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def _rows_trained(model, **fit_options):
    """The first feature of every row of every training batch, batch by batch (that feature is 4 * row)."""
    seen, step = [], model._step

    def listening(x, y, training, w=None, on_device=False):
        if training:
            seen.append((x[:, 0] // 4).astype(int).tolist())
        return step(x, y, training, w, on_device)
    model._step = listening
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(X, Y, verbose=0, **fit_options)
    return seen, [str(w.message) for w in caught if "ran out of batches" in str(w.message)], history


def test_an_epoch_takes_its_steps_and_the_next_goes_on_where_it_stopped():
    """The sequence Keras 3.15 gives (10 rows in 3 batches of 4, 2 steps an epoch): the third epoch finds one
    batch left in its pass, warns and ends; the fourth starts a new pass."""
    seen, warned, history = _rows_trained(_model(), batch_size=4, epochs=4, steps_per_epoch=2, shuffle=False)
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(warned) == 2 and "after 1 of the 2 steps asked for (3 batches of 4 in a pass)" in warned[0]
    assert history.params["steps"] == 2 and len(history.history["loss"]) == 4


def test_more_steps_than_a_pass_holds_train_one_pass_an_epoch():
    seen, warned, _ = _rows_trained(_model(), batch_size=4, epochs=2, steps_per_epoch=5, shuffle=False)
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2 and len(warned) == 2


def test_a_shuffled_pass_goes_on_across_epochs_and_reshuffles_when_used_up():
    seen, warned, _ = _rows_trained(_model(), batch_size=2, epochs=4, steps_per_epoch=3)
    first_pass, second_pass = sum(seen[:5], []), sum(seen[5:10], [])
    assert sorted(first_pass) == sorted(second_pass) == list(range(10)) and first_pass != second_pass
    assert [len(batch) for batch in seen] == [2] * 10 and len(warned) == 2     # epochs 2, 4: 2 of their 3 steps


def test_without_steps_nothing_changes():
    seen, warned, _ = _rows_trained(_model(), batch_size=4, epochs=2, shuffle=False)
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2 and not warned


def _training_batches():
    """The training data as a generator of batches of 5, forever (fit then takes steps_per_epoch of them)."""
    while True:
        yield X[:5], Y[:5]
        yield X[5:], Y[5:]


@pytest.mark.parametrize("training", ["arrays", "generator"])
def test_validation_steps_go_on_across_epochs(training):
    """Validation arrays take validation_steps whether the training data are arrays or a generator."""
    model = _model()
    data = dict(x=X, y=Y, batch_size=5) if training == "arrays" else dict(x=_training_batches(), steps_per_epoch=2)
    x_val, y_val = X[::-1].copy(), Y[::-1].copy()
    expected = []

    class Check(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rows = [slice(0, 6), slice(6, 10), slice(0, 6)][epoch]          # 2 batches of 3, then what is left
            expected.append((model.evaluate(x_val[rows], y_val[rows], batch_size=3, verbose=0), logs["val_loss"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(**data, epochs=3, validation_data=(x_val, y_val), validation_batch_size=3, validation_steps=2,
                  callbacks=[Check()], verbose=0)
    assert len(expected) == 3
    for evaluated, logged in expected:
        assert logged == pytest.approx(evaluated, rel=1e-6)


def test_evaluate_and_predict_take_their_first_steps():
    model = _model()
    assert model.evaluate(X, Y, batch_size=4, steps=2, verbose=0) == pytest.approx(
        model.evaluate(X[:8], Y[:8], batch_size=4, verbose=0), rel=1e-6)
    np.testing.assert_array_equal(model.predict(X, batch_size=3, steps=2, verbose=0),
                                  model.predict(X[:6], batch_size=3, verbose=0))
    with pytest.warns(UserWarning, match="predict: the arrays ran out of batches after 4 of the 9 steps"):
        assert model.predict(X, batch_size=3, steps=9, verbose=0).shape == (10, 3)


def test_compiled_steps_with_steps_per_epoch_are_the_eager_ones():
    runs = []
    for jit in (True, False):
        model = _model()
        model.compile("adam", "sparse_categorical_crossentropy", jit_compile=jit)
        nn.utils.set_random_seed(3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = model.fit(X, Y, epochs=5, batch_size=3, steps_per_epoch=3, verbose=0).history
        runs.append((history, model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for compiled, eager in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(compiled, eager)
