"""A model's input data as the trainer takes it: arrays of numbers (``as_array``), and for a model with several
inputs, ``fit([x_text, x_numbers], y)`` or ``fit({"text": ..., ...}, y)`` (several outputs' targets, the same way).

Keras takes one array per input, as a list in the order of ``Model(inputs=[...])`` or as a dict keyed by the
inputs' names (``by_name``). ``SampleArrays`` holds them, each checked and cast to its input's dtype, and behaves as one
array does for the training loops: ``len``, indexing and ``take`` along the sample axis apply to every
array, so batching, shuffling and ``validation_split`` work unchanged. A batch becomes one Tensor per input.
"""
import numpy as np

from .dtypes import checked_cast
from .tensor import Tensor

__all__ = ["SampleArrays", "prepare_inputs", "by_name", "as_array", "input_key", "input_arrays", "joined"]


class SampleArrays:
    """Numpy arrays that share their sample axis: one per model input (or per output: targets and weights, with
    None for an output that needs none), all with the same number of samples."""

    def __init__(self, arrays):
        self.arrays = tuple(arrays)

    def __len__(self):
        return next(len(array) for array in self.arrays if array is not None)

    def __getitem__(self, index):
        return SampleArrays(None if array is None else array[index] for array in self.arrays)

    def take(self, index, axis=0):
        """The samples at ``index`` of every array (numpy's ``take``)."""
        return SampleArrays(None if array is None else array.take(index, axis=axis) for array in self.arrays)

    def copy(self):
        """A copy of every array (a generator may refill its arrays for the next batch)."""
        return SampleArrays(None if array is None else np.array(array, copy=True) for array in self.arrays)

    def __repr__(self):
        return f"<SampleArrays {[array.shape for array in self.arrays]}>"


def prepare_inputs(x, inputs, method):
    """``x`` (a list or tuple with one array per input, or a dict by input name) as SampleArrays, each array made
    by ``as_array``, checked against its input's shape and cast to its dtype. ``inputs``: the
    model's InputLayers in order. ValueError or TypeError naming the input that does not fit."""
    names = [layer.name for layer in inputs]
    values = by_name(method, "x", x, names, "inputs")
    arrays = []
    for name, layer, value in zip(names, inputs, values):
        array = as_array(f"{method}: x[{name!r}]", value)
        _check_shape(f"{method}: x[{name!r}]", array, layer.batch_input_shape)
        arrays.append(checked_cast(array, layer.dtype, f"{method}: x[{name!r}]"))
    counts = [len(array) for array in arrays]
    if len(set(counts)) > 1:
        raise ValueError(f"{method}: the inputs must have the same number of samples, got {dict(zip(names, counts))}")
    if counts[0] == 0:
        raise ValueError(f"{method}: x is empty (0 samples)")
    return SampleArrays(arrays)


def by_name(method, what, value, names, kind, required=None, items="arrays"):
    """``value`` (a list or tuple with one item per name, or a dict by name) as a list in the order of ``names``.
    A dict must hold the ``required`` names (all by default); the others are None. ``kind``: what the names name
    ('inputs', 'outputs'), and ``items`` what the values are, for the errors."""
    required = names if required is None else required
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names), key=str)
        missing = [name for name in required if name not in value]
        if unknown or missing:
            raise ValueError(f"{method}: {what} is a dict by {kind[:-1]} name; the model's {kind} are {names}, "
                             + (f"missing {missing}" if missing else f"unknown keys {unknown}"))
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{method}: the model has {len(names)} {kind} {names}; {what} must be a list of "
                             f"{len(names)} {items} (or a dict by {kind[:-1]} name), got {len(value)} items")
        return list(value)
    raise TypeError(f"{method}: the model has {len(names)} {kind} {names}; {what} must be a list of "
                    f"{len(names)} {items} or a dict by {kind[:-1]} name, got {type(value).__name__}")


def _check_shape(what, array, expected):
    if array.ndim != len(expected) or any(e is not None and e != got for e, got in zip(expected[1:], array.shape[1:])):
        raise ValueError(f"{what}: an array of shape {array.shape} does not fit that input, of shape {expected} "
                         "(None is the batch axis)")


def as_array(name, value):
    """Array-like model input or target as a numpy array of numbers, with a clear error."""
    if isinstance(value, Tensor):
        return value.numpy()
    try:
        array = np.asarray(value)
    except ValueError as error:
        raise ValueError(f"{name}: cannot make an array from this data: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers (an int or float array), got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{name}: expected an array with a batch axis, got a scalar")
    return array


def input_key(x):
    """What a plan depends on in the inputs: (shape, dtype) of the input Tensor, or (the shapes, the dtypes) of
    a model's several inputs (a list)."""
    if not isinstance(x, list):
        return x.shape, x.dtype.str
    return tuple(t.shape for t in x), tuple(t.dtype.str for t in x)


def input_arrays(x):
    """The backend arrays of the input Tensor(s), in input order."""
    return [t._data for t in (x if isinstance(x, list) else [x])]


def joined(batches):
    """The predictions of consecutive batches joined along the sample axis: one array, or (for several outputs,
    whose batches are lists) a list with one array per output."""
    if isinstance(batches[0], list):
        return [np.concatenate(parts) for parts in zip(*batches)]
    return np.concatenate(batches)
