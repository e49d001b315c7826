"""The numba backend's window, normalization and metric primitives (im2col, col2im, pooling, moments,
normalize, the hits of an accuracy).

A base class of ``NumbaBackend`` (which adds every other primitive): each primitive prepares its
arguments (contiguity, typed scalars, zeroed outputs, serial or parallel variant) and runs one kernel of
``kernels/cpu/windows.py``, ``kernels/cpu/norm.py`` or ``kernels/cpu/reduce.py``. The contracts are the
docstrings in ``base.py``; ``tests/test_backends.py`` compares every one with the reference default there.
"""
import numpy as np

from ..kernels.cpu import config
from ..kernels.cpu.aot import kernel_modules
from . import host_buffers
from .layout import contiguous
from .numba_recurrent import NumbaRecurrentPrimitives

norm, reduce, windows = kernel_modules("norm", "reduce", "windows")     # imported at first use (kernels/cpu/aot.py)

#: the parallel kernels, each launched by one Python thread at a time (numba_backend's docstring says why)
_PARALLEL = {name: config.OneThreadAtATime(module, name) for module, names in (
    (windows, ("window_gather_parallel", "window_scatter_parallel", "max_pool_parallel",
               "max_pool_backward_parallel", "average_pool_parallel", "average_pool_backward_parallel")),
    (norm, ("moments_columns_parallel", "moments_rows_parallel", "normalize_parallel",
            "normalize_backward_columns_parallel", "normalize_backward_rows_parallel"))) for name in names}


def _kernel(module, name, elements):
    """The serial kernel, or its parallel variant from config.PARALLEL_MIN_ELEMENTS elements up."""
    if elements >= config.PARALLEL_MIN_ELEMENTS:
        return _PARALLEL[name + "_parallel"]
    return getattr(module, name)


def _contiguous(*arrays):
    return tuple(None if a is None else contiguous(a) for a in arrays)


def _typed(dtype, *values):
    return tuple(dtype.type(v) for v in values)


class NumbaLayerPrimitives(NumbaRecurrentPrimitives):
    """The numpy reference with window_gather, window_scatter, max/average pooling, the normalization
    primitives and argmax_matches on numba kernels (NumbaBackend builds on it)."""

    def argmax_matches(self, predictions, targets):
        classes = predictions.shape[-1]
        rows = np.ascontiguousarray(predictions).reshape(-1, classes)
        out = np.empty(1, np.int64)
        if targets.ndim == predictions.ndim - 1:
            reduce.argmax_matches_labels(rows, np.ascontiguousarray(targets, np.int64).reshape(-1), out)
        else:
            reduce.argmax_matches_rows(rows, np.ascontiguousarray(targets).reshape(-1, classes), out)
        return out.reshape(())

    def window_gather(self, x, positions, fill):
        x, positions = _contiguous(x, positions)
        out = host_buffers.empty((x.shape[0], positions.size, x.shape[2]), x.dtype)
        _kernel(windows, "window_gather", out.size)(x, positions, x.dtype.type(fill), out)
        return out

    def window_scatter(self, grad, positions, size):
        grad, positions = _contiguous(grad, positions)
        out = host_buffers.empty((grad.shape[0], size, grad.shape[2]), grad.dtype)   # the kernel zeroes it
        _kernel(windows, "window_scatter", grad.size)(grad, positions, out)
        return out

    def max_pool(self, x, positions, window):
        x, positions = _contiguous(x, positions)
        shape = (x.shape[0], positions.size // window, x.shape[2])
        out, chosen = host_buffers.empty(shape, x.dtype), host_buffers.empty(shape, np.int64)
        _kernel(windows, "max_pool", x.size)(x, positions, window, out, chosen)
        return out, chosen

    def max_pool_backward(self, grad, chosen, positions, window, size):
        grad, chosen = _contiguous(grad, chosen)
        out = host_buffers.empty((grad.shape[0], size, grad.shape[2]), grad.dtype)   # the kernel zeroes it
        _kernel(windows, "max_pool_backward", grad.size)(grad, chosen, out)
        return out

    def _counts(self, positions, window, size, dtype):
        counts = host_buffers.empty(positions.size // window, dtype)
        windows.window_counts(positions, window, size, counts)
        return counts

    def average_pool(self, x, positions, window):
        x, positions = _contiguous(x, positions)
        counts = self._counts(positions, window, x.shape[1], x.dtype)
        out = host_buffers.empty((x.shape[0], counts.size, x.shape[2]), x.dtype)
        _kernel(windows, "average_pool", x.size)(x, positions, window, counts, out)
        return out

    def average_pool_backward(self, grad, positions, window, size):
        grad, positions = _contiguous(grad, positions)
        counts = self._counts(positions, window, size, grad.dtype)
        out = host_buffers.empty((grad.shape[0], size, grad.shape[2]), grad.dtype)   # the kernel zeroes it
        _kernel(windows, "average_pool_backward", grad.size)(grad, positions, window, counts, out)
        return out

    def moments(self, x, axis):
        if x.shape[axis] == 0:                       # no samples: the reference's NaN statistics
            return super().moments(x, axis)
        (x,) = _contiguous(x)
        out = host_buffers.empty((2, x.shape[1 - axis]), x.dtype)
        if axis == 0:
            # measured on 86528 x 32 float32: under workqueue the parallel form is slower than the serial one
            # (0.88 against 0.74 ms); under OpenMP it takes 0.36 ms
            kernel = norm.moments_columns if config.workqueue_layer() else _kernel(norm, "moments_columns", x.size)
            kernel(x, out, x.dtype == np.float32)
        else:
            _kernel(norm, "moments_rows", x.size)(x, out)
        return out

    def normalize(self, x, mean, variance, gamma, beta, epsilon, axis):
        x, mean, variance, gamma, beta = _contiguous(x, mean, variance, gamma, beta)
        out = host_buffers.empty_like(x)
        _kernel(norm, "normalize", x.size)(x, mean, variance, mean if gamma is None else gamma,
                                           mean if beta is None else beta, gamma is not None, beta is not None,
                                           *_typed(x.dtype, epsilon, 1), axis == 1, out)
        return out

    def normalize_backward(self, x, mean, variance, gamma, grad, epsilon, axis, through_statistics):
        if x.size == 0 or (axis == 1 and not through_statistics):     # nothing to do, or no layer's case
            return super().normalize_backward(x, mean, variance, gamma, grad, epsilon, axis, through_statistics)
        x, mean, variance, gamma, grad = _contiguous(x, mean, variance, gamma, grad)
        dx, dgamma, dbeta = host_buffers.empty_like(x), np.empty(x.shape[1], x.dtype), np.empty(x.shape[1], x.dtype)
        scale = mean if gamma is None else gamma          # a stand-in the kernel never reads
        constants = _typed(x.dtype, epsilon, 1)
        if axis == 0:
            _kernel(norm, "normalize_backward_columns", x.size)(x, grad, mean, variance, scale, gamma is not None,
                                                                *constants, through_statistics, dx, dgamma, dbeta)
        else:
            _kernel(norm, "normalize_backward_rows", x.size)(x, grad, mean, variance, scale, gamma is not None,
                                                             *constants, dx, dgamma, dbeta)
        return dx, dgamma, dbeta
