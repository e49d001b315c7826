"""The CUDA backend's window and normalization primitives (im2col, col2im, pooling, moments, normalize).

A base class of ``CupyBackend`` (which adds every other primitive and sets ``self.cupy``): each
primitive makes its operands contiguous, allocates outputs and launches the kernels of
``kernels/cuda/windows.cu`` or ``norm.cu`` (their launchers: ``windows.py``, ``norm.py``). None of them
uses atomics: the backward passes gather (see windows.cu), so every result is deterministic. The
contracts are the docstrings in ``base.py``.
"""
import numpy as np

from ..kernels.cuda import norm, windows
from .cupy_recurrent import CupyRecurrentPrimitives
from .layout import contiguous

#: window tables whose inverse (windows.inverse) a backend keeps
MAX_INVERSES = 64


class CupyLayerPrimitives(CupyRecurrentPrimitives):
    """window_gather, window_scatter, max/average pooling and the normalization primitives on our CUDA kernels."""

    # -- windows (im2col, pooling) and normalization: windows.cu and norm.cu ------------------------
    def _inverse(self, positions, size):
        """windows.inverse of a window table, made once per table (kept with the table, which stays alive)."""
        cache = self.__dict__.setdefault("_inverses", {})
        key = (id(positions), size)
        if key not in cache or cache[key][0] is not positions:
            if len(cache) >= MAX_INVERSES:
                cache.clear()
            cache[key] = (positions, *windows.inverse(positions, size))
        return cache[key][1:]

    def window_gather(self, x, positions, fill):
        x, positions = contiguous(x), contiguous(positions)
        out = self.cupy.empty((x.shape[0], positions.size, x.shape[2]), x.dtype)
        if out.size:
            windows.window_gather(x, positions, fill, out)
        return out

    def window_scatter(self, grad, positions, size):
        grad, positions = contiguous(grad), contiguous(positions)
        out = self.cupy.empty((grad.shape[0], size, grad.shape[2]), grad.dtype)     # the kernel writes each
        if out.size:
            windows.window_scatter(grad, *self._inverse(positions, size), out)
        return out

    def max_pool(self, x, positions, window):
        x, positions = contiguous(x), contiguous(positions)
        shape = (x.shape[0], positions.size // window, x.shape[2])
        out, chosen = self.cupy.empty(shape, x.dtype), self.cupy.empty(shape, np.int64)
        if out.size:
            windows.max_pool(x, positions, window, out, chosen)
        return out, chosen

    def max_pool_backward(self, grad, chosen, positions, window, size):
        grad, chosen, positions = contiguous(grad), contiguous(chosen), contiguous(positions)
        out = self.cupy.empty((grad.shape[0], size, grad.shape[2]), grad.dtype)     # the kernel writes each
        if out.size:
            windows.max_pool_backward(grad, chosen, *self._inverse(positions, size), window, out)
        return out

    def average_pool(self, x, positions, window):
        x, positions = contiguous(x), contiguous(positions)
        out = self.cupy.empty((x.shape[0], positions.size // window, x.shape[2]), x.dtype)
        if out.size:
            windows.average_pool(x, positions, window, out)
        return out

    def average_pool_backward(self, grad, positions, window, size):
        grad, positions = contiguous(grad), contiguous(positions)
        out = self.cupy.empty((grad.shape[0], size, grad.shape[2]), grad.dtype)     # the kernel writes each
        if out.size:
            windows.average_pool_backward(grad, positions, *self._inverse(positions, size), window, out)
        return out

    def moments(self, x, axis):
        if x.shape[axis] == 0 or x.size == 0:          # no samples (or nothing to describe): the reference's
            return super().moments(x, axis)
        out = self.cupy.empty((2, x.shape[1 - axis]), x.dtype)
        norm.moments(contiguous(x), axis == 1, out)
        return out

    def normalize(self, x, mean, variance, gamma, beta, epsilon, axis):
        x = contiguous(x)
        out = self.cupy.empty_like(x)
        if out.size:
            norm.normalize(x, *(None if a is None else contiguous(a) for a in (mean, variance, gamma, beta)),
                           epsilon, axis == 1, out)
        return out

    def normalize_backward(self, x, mean, variance, gamma, grad, epsilon, axis, through_statistics):
        if x.size == 0 or (axis == 1 and not through_statistics):     # nothing to do, or no layer's case
            return super().normalize_backward(x, mean, variance, gamma, grad, epsilon, axis, through_statistics)
        cp = self.cupy
        x, grad = contiguous(x), contiguous(grad)
        dx, dgamma, dbeta = cp.empty_like(x), cp.empty(x.shape[1], x.dtype), cp.empty(x.shape[1], x.dtype)
        norm.normalize_backward(x, grad, contiguous(mean), contiguous(variance),
                                None if gamma is None else contiguous(gamma), epsilon, axis == 1, through_statistics,
                                dx, dgamma, dbeta)
        return dx, dgamma, dbeta
