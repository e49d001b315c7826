"""fit, evaluate and predict on generators, iterators and PyDataset (Keras 3's utils.PyDataset)."""
import contextlib

import numpy as np
import pytest
from keras_helpers import FakeTerminal

from nnengine import keras

RNG = np.random.default_rng(0)
X = RNG.standard_normal((60, 4)).astype("float32")
Y = RNG.integers(0, 3, 60)


def model(seed=0):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(4,)),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def batches(weights=None):
    while True:
        for start in range(0, 60, 15):
            part = slice(start, start + 15)
            yield (X[part], Y[part]) if weights is None else (X[part], Y[part], weights[part])


class Batches(keras.utils.PyDataset):
    def __init__(self):
        super().__init__(workers=1)
        self.epochs_ended = 0

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return X[index * 15:(index + 1) * 15], Y[index * 15:(index + 1) * 15]

    def on_epoch_end(self):
        self.epochs_ended += 1


@pytest.mark.parametrize("source", ["generator", "pydataset"])
def test_a_generator_fit_is_the_array_fit_with_the_same_batches(source):
    arrays, streamed = model(), model()
    reference = arrays.fit(X, Y, batch_size=15, epochs=3, shuffle=False, verbose=0, validation_data=(X[:30], Y[:30]))
    data = batches() if source == "generator" else Batches()
    history = streamed.fit(data, steps_per_epoch=4 if source == "generator" else None, epochs=3, shuffle=False,
                           verbose=0, validation_data=(X[:30], Y[:30]), validation_batch_size=15)
    assert history.history == reference.history
    for a, b in zip(arrays.get_weights(), streamed.get_weights()):
        np.testing.assert_array_equal(a, b)
    if source == "pydataset":
        assert data.epochs_ended == 3


def test_weighted_batches_and_evaluate_predict_on_sources():
    weights = np.linspace(0.5, 2.0, 60)
    a, b = model(), model()
    a.fit(X, Y, sample_weight=weights, batch_size=15, epochs=2, shuffle=False, verbose=0)
    b.fit(batches(weights), steps_per_epoch=4, epochs=2, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert b.evaluate(Batches(), verbose=0) == b.evaluate(X, Y, batch_size=15, verbose=0)
    assert b.evaluate(batches(), steps=2, verbose=0) == b.evaluate(X[:30], Y[:30], batch_size=15, verbose=0)
    np.testing.assert_array_equal(b.predict((x for x, _ in [(X[:15], 0), (X[15:30], 0)]), verbose=0),
                                  b.predict(X[:30], batch_size=15, verbose=0))


def test_a_pydataset_is_shuffled_by_batch_with_fits_seed():
    first, second = model(), model()
    keras.utils.set_random_seed(3)
    first.fit(Batches(), epochs=2, verbose=0)
    keras.utils.set_random_seed(3)
    second.fit(Batches(), epochs=2, verbose=0)
    for u, v in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_a_generator_that_runs_dry_stops_training_with_a_warning():
    short = iter([(X[:15], Y[:15]), (X[15:30], Y[15:30])])
    with pytest.warns(UserWarning, match="fit: your input ran out of data after 0 batches of this epoch"):
        history = model().fit(short, epochs=3, verbose=0)
    assert history.epoch == [0]


def test_unknown_length_progress_bar():
    out = FakeTerminal()
    with contextlib.redirect_stdout(out):
        model().fit(iter([(X[:15], Y[:15]), (X[15:30], Y[15:30])]), epochs=1, verbose=1)
    text = out.getvalue()
    assert "1/Unknown" in text and "2/2" in text


@pytest.mark.parametrize("bad, kind, message", [
    (iter([(X[:15], Y[:15]), (X[:15, :3], Y[:15])]), ValueError, r"fit: input of shape \(15, 3\) does not fit layer"),
    (iter([(X[:15], Y[:15], np.ones(15), 1)]), ValueError, "a batch must be x, .* got a tuple of 4 items"),
    (iter([(X[:15], Y[:14])]), ValueError, "x and y must have the same number of samples"),
    (iter([X[:15]]), ValueError, "fit: y is required"),
])
def test_inconsistent_batches_get_clear_errors(bad, kind, message):
    with pytest.raises(kind, match=message):
        model().fit(bad, epochs=1, verbose=0)


def test_arguments_that_do_not_go_with_a_generator():
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        model().fit(batches(), Y, steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match="validation_split needs arrays"):
        model().fit(batches(), steps_per_epoch=2, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="steps must be a positive int or None, got 0"):
        model().fit(batches(), steps_per_epoch=0, verbose=0)


def test_a_pydataset_fit_matches_keras():
    import json
    from pathlib import Path
    run = json.loads((Path(__file__).parent / "data" / "keras3_schedules.json").read_text())["pydataset"]
    x, y = np.array(run["x"], np.float32), np.array(run["y"])

    class Recorded(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return x[index * 10:(index + 1) * 10], y[index * 10:(index + 1) * 10]

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.set_weights([np.array(w, np.float32) for w in run["start"]])
    m.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = m.fit(Recorded(), epochs=2, shuffle=False, verbose=0)
    for key, values in run["history"].items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-5, err_msg=key)
    for ours, theirs in zip(m.get_weights(), run["final"]):
        np.testing.assert_allclose(ours, np.array(theirs, np.float32), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.evaluate(Recorded(), verbose=0), run["evaluate"], rtol=1e-5)


def test_a_pydataset_must_implement_its_two_methods():
    class Unfinished(keras.utils.PyDataset):       # the abstract methods of Keras's base class, not given
        pass
    with pytest.raises(NotImplementedError, match=r"Unfinished must implement __len__ \(the number of batches\)"):
        model().fit(Unfinished(), epochs=1, verbose=0)
    with pytest.raises(NotImplementedError, match=r"Unfinished must implement __getitem__\(index\) \(one batch\)"):
        Unfinished()[0]


@pytest.mark.parametrize("with_weights", [False, True])
@pytest.mark.parametrize("shuffled", [False, True])
def test_array_batches_are_the_rows_of_the_order_in_batches(shuffled, with_weights):
    from nnengine.batch_loops import array_batches
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((23, 4)).astype(np.float32), rng.integers(0, 5, 23)
    w = rng.random(23) if with_weights else None
    order = rng.permutation(23) if shuffled else None
    rows = np.arange(23) if order is None else order
    got = list(array_batches(x, y, w, 8, order))
    assert [len(b[0]) for b in got] == [8, 8, 7]
    for k, (xb, yb, wb) in enumerate(got):
        index = rows[8 * k: 8 * k + 8]
        np.testing.assert_array_equal(xb, x[index])
        np.testing.assert_array_equal(yb, y[index])
        assert (wb is None) == (w is None) and (w is None or np.array_equal(wb, w[index]))
        assert xb.dtype == x.dtype and yb.dtype == y.dtype
