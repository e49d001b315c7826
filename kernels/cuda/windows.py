"""Launchers for windows.cu: im2col, col2im, max and average pooling (one kernel each way).

x is (n, size, channels), C-contiguous; ``positions`` the int64 window table (see windows.cu). The
backward kernels gather through the inverse of ``positions`` (``inverse``), which depends on the
table alone: the backend makes it once per table and keeps it.
"""
import numpy as np

from . import launch, loader

SOURCE = "windows.cu"
_i = np.int64


def inverse(positions, size):
    """(order, starts): the entries sorted by position (stable) and, for each input position p < size,
    starts[p]..starts[p + 1] the range of ``order`` holding the entries that read p."""
    import cupy
    order = cupy.argsort(positions).astype(np.int64, copy=False)     # CuPy's argsort is always stable
    starts = cupy.searchsorted(positions[order], cupy.arange(size + 1, dtype=np.int64)).astype(np.int64, copy=False)
    return order, starts


def _launch(kernel, dtype, elements, args):
    grid, block = launch.grid_stride(elements)
    loader.function(SOURCE, kernel, dtype)(grid, block, args)


def window_gather(x, positions, fill, out):
    """out (n, entries, channels) = x at each entry's position, ``fill`` in the padding."""
    n, size, channels = x.shape
    _launch("window_gather", x.dtype, out.size,
            (x, positions, out, _i(n), _i(size), _i(positions.size), _i(channels), x.dtype.type(fill)))


def window_scatter(grad, order, starts, out):
    """out (n, size, channels) = the sum of grad over the entries reading each position (col2im)."""
    n, size, channels = out.shape
    _launch("window_scatter", grad.dtype, out.size,
            (grad, order, starts, out, _i(n), _i(size), _i(grad.shape[1]), _i(channels)))


def max_pool(x, positions, window, out, chosen):
    """out and chosen (n, windows, channels): each window's maximum and the position of its first holder."""
    n, size, channels = x.shape
    _launch("max_pool", x.dtype, out.size,
            (x, positions, out, chosen, _i(n), _i(size), _i(out.shape[1]), _i(window), _i(channels)))


def max_pool_backward(grad, chosen, order, starts, window, out):
    """out (n, size, channels): each position's share of the windows that chose it."""
    n, size, channels = out.shape
    _launch("max_pool_backward", grad.dtype, out.size,
            (grad, chosen, order, starts, out, _i(n), _i(size), _i(grad.shape[1]), _i(window), _i(channels)))


def average_pool(x, positions, window, out):
    """out (n, windows, channels): the mean of each window's real elements."""
    n, size, channels = x.shape
    _launch("average_pool", x.dtype, out.size,
            (x, positions, out, _i(n), _i(size), _i(out.shape[1]), _i(window), _i(channels)))


def average_pool_backward(grad, positions, order, starts, window, out):
    """out (n, size, channels): each position's share, grad / count, of the windows that read it."""
    n, size, channels = out.shape
    _launch("average_pool_backward", grad.dtype, out.size,
            (grad, positions, order, starts, out, _i(n), _i(size), _i(grad.shape[1]), _i(window), _i(channels)))
