"""keras.utils.timeseries_dataset_from_array (data.py): the windows and targets of Keras's documented rule,
strides, sampling rates, index ranges, shuffling, unbatched items, fit on it, and bad arguments refused."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn

utils = nn.keras.utils


def windows_by_definition(data, targets, length, stride, rate, start, end):
    """Every window [p, p + rate, ..., p + (length - 1) rate] with p = start, start + stride, ... while the window
    ends before ``end`` (and, with targets, p - start < len(targets)), and the target at p."""
    count = end - start - (length - 1) * rate
    if targets is not None:
        count = min(count, len(targets))
    starts = [start + j for j in range(0, max(count, 0), stride)]
    return [data[p:p + (length - 1) * rate + 1:rate] for p in starts], [None if targets is None else targets[p]
                                                                       for p in starts]


@settings(max_examples=40, deadline=None)
@given(size=st.integers(6, 40), length=st.integers(1, 5), stride=st.integers(1, 4), rate=st.integers(1, 3),
       batch=st.sampled_from([None, 1, 3, 128]), with_targets=st.booleans(), seed=st.integers(0, 99))
def test_windows_and_targets_follow_keras_rule(size, length, stride, rate, batch, with_targets, seed):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((size, 2))
    targets = np.arange(size) * 10 if with_targets else None
    start = int(rng.integers(0, 3))
    end = int(rng.integers(start + 1, size)) if rng.random() < 0.5 else None
    dataset = utils.timeseries_dataset_from_array(data, targets, length, sequence_stride=stride, sampling_rate=rate,
                                                  batch_size=batch, start_index=start, end_index=end)
    expected_x, expected_y = windows_by_definition(data, targets, length, stride, rate, start,
                                                   size if end is None else end)
    items = [dataset[i] for i in range(len(dataset))]
    if batch is not None:
        items = [(x[k], y[k]) if with_targets else x[k] for x, y in
                 [(item if with_targets else (item, None)) for item in items] for k in range(len(x))]
    got_x = [item[0] if with_targets else item for item in items]
    assert len(got_x) == len(expected_x)
    for got, want in zip(got_x, expected_x):
        np.testing.assert_array_equal(got, want)
    if with_targets:
        assert [int(item[1]) for item in items] == expected_y


def test_shuffle_reorders_the_windows_as_numpys_random_state_does():
    data = np.arange(20)
    plain = utils.timeseries_dataset_from_array(data, None, 3, batch_size=None)
    shuffled = utils.timeseries_dataset_from_array(data, None, 3, batch_size=None, shuffle=True, seed=4)
    order = np.arange(18)
    np.random.RandomState(4).shuffle(order)
    np.testing.assert_array_equal([shuffled[i][0] for i in range(len(shuffled))], order)
    assert sorted(shuffled[i][0] for i in range(18)) == [plain[i][0] for i in range(18)]


def test_a_model_trains_on_the_windows():
    series = np.sin(np.arange(200) / 5).astype(np.float32)[:, None]
    dataset = utils.timeseries_dataset_from_array(series[:-1], series[5:, 0], 5, batch_size=16)
    model = nn.keras.Sequential([nn.keras.Input((5, 1)), nn.keras.layers.Flatten(), nn.keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(dataset, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert model.predict(dataset, verbose=0).shape == (sum(len(dataset[i][0]) for i in range(len(dataset))), 1)


@pytest.mark.parametrize("arguments, message", [
    (dict(sequence_length=0), r"sequence_length must be a positive integer"),
    (dict(sequence_length=3, sampling_rate=10), r"sampling_rate must be lower than the length of the data \(10\)"),
    (dict(sequence_length=3, sequence_stride=0), r"sequence_stride must be a positive integer"),
    (dict(sequence_length=3, start_index=10), r"start_index and end_index must satisfy"),
    (dict(sequence_length=3, start_index=4, end_index=2), r"start_index and end_index must satisfy"),
    (dict(sequence_length=3, end_index=10), r"end_index < 10"),
    (dict(sequence_length=3, batch_size=0), r"batch_size must be a positive integer or None"),
])
def test_bad_arguments_are_refused_by_name(arguments, message):
    with pytest.raises(ValueError, match=message):
        utils.timeseries_dataset_from_array(np.arange(10), None, **arguments)
    with pytest.raises(IndexError, match="out of range"):
        utils.timeseries_dataset_from_array(np.arange(10), None, 3, batch_size=4)[3]
