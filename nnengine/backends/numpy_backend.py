"""The numpy reference backend: every primitive in the plainest numpy.

This backend is the executable specification of ``Backend``: other backends are
tested against it, so clarity wins over speed here. Each method's contract is
the docstring of the same method in ``base.py``. The fused primitives (dense
layer, softmax family, cross-entropy, optimizer updates) are not here: this
backend inherits their reference defaults from ``base.py``, written with the
general primitives below.
"""
import math

import numpy as np

from .base import Backend
from .layout import take_axis


_ERF = np.vectorize(math.erf, otypes=[np.float64])


class NumpyBackend(Backend):
    """Reference implementation of every primitive with plain numpy."""

    name = "numpy"

    # transfers, creation, copies, casts
    def from_numpy(self, array):
        return np.array(array, copy=True, order="C")

    def to_numpy(self, x):
        return np.array(x, copy=True)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def copy(self, x):
        return np.array(x, copy=True, order="C")

    def astype(self, x, dtype):
        return x.astype(dtype)

    def ascontiguous(self, x):
        # not np.ascontiguousarray, which turns a 0-d array into a 1-d one
        return x if x.flags.c_contiguous else np.array(x, order="C")

    # views and indexing
    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def transpose(self, x, axes):
        return np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def getitem(self, x, index):
        axis = take_axis(x, index)
        if axis is not None:        # x[:, rows, :] as np.take: the same values, written C-contiguous
            return np.take(x, index[axis] if isinstance(index, tuple) else index, axis=axis)
        return x[index]

    def index_add(self, target, index, values):
        np.add.at(target, index, values)

    def assign(self, target, value):
        target[...] = value

    # elementwise unary
    def neg(self, x):
        return np.negative(x)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def sqrt(self, x):
        return np.sqrt(x)

    def tanh(self, x):
        return np.tanh(x)

    def sigmoid(self, x):
        # stable: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) for x < 0 (e^-|x| never overflows)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)

    def relu(self, x):
        return np.maximum(x, 0).astype(x.dtype)

    def erf(self, x):
        # numpy has no erf; math.erf is exact to double precision, which is what a reference needs.
        return _ERF(x).astype(x.dtype)

    # elementwise binary
    def add(self, a, b):
        return np.add(a, b)

    def sub(self, a, b):
        return np.subtract(a, b)

    def mul(self, a, b):
        return np.multiply(a, b)

    def div(self, a, b):
        return np.divide(a, b)

    def power(self, a, b):
        return np.power(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    # comparisons and selection
    def equal(self, a, b):
        return np.equal(a, b)

    def not_equal(self, a, b):
        return np.not_equal(a, b)

    def less(self, a, b):
        return np.less(a, b)

    def less_equal(self, a, b):
        return np.less_equal(a, b)

    def greater(self, a, b):
        return np.greater(a, b)

    def greater_equal(self, a, b):
        return np.greater_equal(a, b)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    # reductions
    def sum(self, x, axes, keepdims):
        return np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)

    def max(self, x, axes, keepdims):
        return np.max(x, axis=axes, keepdims=keepdims)

    def argmax(self, x, axis):
        return np.argmax(x, axis=axis).astype(np.int64)

    # products
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        if transpose_a:
            a = np.swapaxes(a, -1, -2)
        if transpose_b:
            b = np.swapaxes(b, -1, -2)
        return np.matmul(a, b)
