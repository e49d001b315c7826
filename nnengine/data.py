"""Batches from Python: generators, iterators and ``PyDataset`` (Keras 3's ``utils.PyDataset``), for fit/evaluate/predict.

Each item a source yields is one batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``.

* A ``PyDataset`` knows its length: one epoch is ``len(dataset)`` batches (or ``steps_per_epoch``),
  read by index, in a new random order every epoch when fit's ``shuffle`` is True;
  ``on_epoch_end()`` is called after each epoch.
* A generator or iterator is read on: each epoch takes ``steps_per_epoch`` batches from it, or all
  that remain when that is None. When it runs dry before an epoch is complete, training stops with a
  warning, as Keras's does ("ran out of data").
"""
import warnings

import numpy as np

from .tensor import Tensor

__all__ = ["PyDataset", "is_batch_source", "BatchSource", "split_batch", "checked_steps", "TimeseriesDataset",
           "timeseries_dataset_from_array"]


class PyDataset:
    """Keras 3's base class of indexable datasets: implement ``__len__`` (batches) and ``__getitem__(i)``.

    ``workers``, ``use_multiprocessing`` and ``max_queue_size`` are accepted for Keras compatibility;
    nnengine reads batches in the training thread.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing, self.max_queue_size = workers, use_multiprocessing, max_queue_size

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (the number of batches)")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) (one batch)")

    def on_epoch_end(self):
        """Called after every epoch (override to reshuffle or augment)."""

    @property
    def num_batches(self):
        """The number of batches, ``len(self)``."""
        return len(self)


class TimeseriesDataset(PyDataset):
    """Sliding windows over a time series, in batches (``timeseries_dataset_from_array`` makes one).

    Window j starts at step p_j = start_index + j * sequence_stride and holds the steps p_j, p_j + r, ...,
    p_j + (sequence_length - 1) r (r the sampling rate); its target is targets[p_j]. Each item is one batch,
    (windows, targets), or the windows alone without targets.
    """

    def __init__(self, data, targets, sequence_length, sequence_stride=1, sampling_rate=1, batch_size=128,
                 shuffle=False, seed=None, start_index=None, end_index=None):
        super().__init__()
        owner = "timeseries_dataset_from_array"
        self.data = np.asarray(data)
        self.targets = None if targets is None else np.asarray(targets)
        length = len(self.data)
        for name, value in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                            ("sampling_rate", sampling_rate)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
        for name, value in (("sequence_stride", sequence_stride), ("sampling_rate", sampling_rate)):
            if value >= length:
                raise ValueError(f"{owner}: {name} must be lower than the length of the data ({length}), got {value}")
        start = 0 if start_index is None else int(start_index)
        end = length if end_index is None else int(end_index)
        if not 0 <= start < length or not start < end <= length or (end_index is not None and end >= length):
            raise ValueError(f"{owner}: start_index and end_index must satisfy 0 <= start_index < end_index < "
                             f"{length} (the data's length; Keras's rule), got {start_index!r} and {end_index!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"{owner}: batch_size must be a positive integer or None, got {batch_size!r}")
        count = end - start - (sequence_length - 1) * sampling_rate
        if self.targets is not None:
            count = min(count, len(self.targets))          # Keras's rule
        positions = np.arange(0, max(count, 0), sequence_stride)
        if shuffle:
            np.random.RandomState(np.random.randint(1e6) if seed is None else seed).shuffle(positions)
        self.positions = positions + start
        self.offsets = np.arange(sequence_length) * sampling_rate
        self.batch_size = batch_size

    def __len__(self):
        """The number of batches (windows, without a batch size)."""
        if self.batch_size is None:
            return len(self.positions)
        return -(-len(self.positions) // self.batch_size)

    def __getitem__(self, index):
        """Batch ``index``: (windows, targets) or the windows."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"TimeseriesDataset: batch {index} is out of range ({len(self)} batches)")
        index %= len(self)
        if self.batch_size is None:
            starts = self.positions[index]
            windows = self.data[starts + self.offsets]
        else:
            starts = self.positions[index * self.batch_size:(index + 1) * self.batch_size]
            windows = self.data[starts[:, None] + self.offsets]
        return windows if self.targets is None else (windows, self.targets[starts])


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Keras's ``keras.utils.timeseries_dataset_from_array``: sliding windows of ``data`` (each with the target at
    its first step), in batches, as a ``TimeseriesDataset`` that fit, evaluate and predict take. With ``shuffle``
    the windows' order is shuffled once (numpy's RandomState(seed), as Keras does first; Keras's tf.data buffer
    shuffle after it is not reproduced)."""
    return TimeseriesDataset(data, targets, sequence_length, sequence_stride, sampling_rate, batch_size, shuffle,
                             seed, start_index, end_index)


def is_batch_source(data):
    """True for a PyDataset, a generator or iterator, or another iterable that is not array-like data."""
    if isinstance(data, PyDataset):
        return True
    if data is None or isinstance(data, (np.ndarray, Tensor, list, tuple, dict, str, bytes)):
        return False
    return hasattr(data, "__next__") or hasattr(data, "__iter__")


def split_batch(method, item):
    """One batch as (x, y or None, sample_weight or None), with a clear error for anything else."""
    if isinstance(item, tuple):
        if not 1 <= len(item) <= 3:
            raise ValueError(f"{method}: a batch must be x, (x,), (x, y) or (x, y, sample_weight), got a tuple of "
                             f"{len(item)} items")
        return (*item, *([None] * (3 - len(item))))
    if isinstance(item, list) and len(item) in (2, 3) and all(hasattr(part, "__len__") for part in item):
        return (*item, *([None] * (3 - len(item))))
    return item, None, None


def checked_steps(method, steps, name="steps"):
    """``steps`` (fit's steps_per_epoch, evaluate's steps, ...): None or a positive int; ValueError otherwise."""
    if steps is not None and (isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or
                              steps < 1):
        raise ValueError(f"{method}: {name} must be a positive int or None, got {steps!r}")
    return steps


class BatchSource:
    """The batches of one fit/evaluate/predict call, epoch by epoch."""

    def __init__(self, method, data, steps=None):
        self.method, self.data, self.steps = method, data, checked_steps(method, steps)
        self.indexed = isinstance(data, PyDataset)
        self._iterator = None if self.indexed else iter(data)
        self.ran_out = False

    @property
    def known_steps(self):
        """Batches per epoch when known in advance, else None (a generator without steps)."""
        if self.indexed:
            return min(len(self.data), self.steps) if self.steps else len(self.data)
        return self.steps

    def epoch(self, shuffle=False, rng=None):
        """The batches of one epoch, each as (x, y, sample_weight); ``rng`` shuffles a PyDataset's batch order."""
        if self.indexed:
            order = np.arange(len(self.data))
            if shuffle:
                order = (rng or np.random.default_rng()).permutation(order)
            for index in order[:self.known_steps]:
                yield split_batch(self.method, self.data[int(index)])
            self.data.on_epoch_end()
            return
        taken = 0
        while self.steps is None or taken < self.steps:
            try:
                item = next(self._iterator)
            except StopIteration:
                if self.steps is not None or taken == 0:
                    self.ran_out = True
                    warnings.warn(f"{self.method}: your input ran out of data after {taken} batches of this epoch; "
                                  "training stops (give steps_per_epoch no larger than the generator yields, or "
                                  "repeat it)", UserWarning, stacklevel=4)
                return
            taken += 1
            yield split_batch(self.method, item)
