"""Window kernels of convolution and pooling: im2col, col2im, max and average pooling, each one pass.

Layout (channels_last, spatial axes flattened): x is (n, s, c); ``positions`` (p * k,) int64 lists,
for each of the p windows, the flat input position of each of its k elements, or s for an element in
the padding. Every kernel works one sample at a time: the inner loops run over the c contiguous
channels (LLVM vectorises them), and the ``_parallel`` variants give samples to threads. Samples
never share output rows, so the results do not depend on the number of threads.

Pooling needs no patch matrix: the forward reads each window straight from x. Max pooling keeps the
position of the FIRST element holding each maximum (padding never wins, NaN propagates and the first
NaN wins), which alone receives the gradient, as Keras's (TensorFlow's) max pooling does.
"""
import numpy as np
from .jit import njit, prange


@njit(inline="always")
def _gather_sample(x, positions, fill, out, b):
    xb, ob = x[b], out[b]
    size, channels = xb.shape
    if channels == 1:          # one channel (a first convolution on grey images): a flat gather, 2.4x faster
        flat_x, flat_out = xb[:, 0], ob[:, 0]
        for i in range(positions.size):
            position = positions[i]
            flat_out[i] = flat_x[position] if position < size else fill
        return
    for i in range(positions.size):
        position = positions[i]
        if position >= size:
            for ch in range(channels):
                ob[i, ch] = fill
        else:
            for ch in range(channels):
                ob[i, ch] = xb[position, ch]


@njit(cache=True, error_model="numpy")
def window_gather(x, positions, fill, out):
    """out[b, i] = x[b, positions[i]], or ``fill`` in the padding (im2col), for out (n, p * k, c)."""
    for b in range(x.shape[0]):
        _gather_sample(x, positions, fill, out, b)


@njit(cache=True, error_model="numpy", parallel=True)
def window_gather_parallel(x, positions, fill, out):
    """``window_gather`` with the samples split across threads."""
    for b in prange(x.shape[0]):
        _gather_sample(x, positions, fill, out, b)


@njit(inline="always")
def _zero_sample(ob):
    """Zero one sample's output (n, c) before its windows add into it: done here, per sample, while the
    sample stays in the cache, instead of a fill of the whole output beforehand (a pass over 11 MB for the
    MNIST-size CNN's first pooling)."""
    for position in range(ob.shape[0]):
        for ch in range(ob.shape[1]):
            ob[position, ch] = 0


@njit(inline="always")
def _scatter_sample(grad, positions, out, b):
    gb, ob = grad[b], out[b]
    size, channels = ob.shape
    _zero_sample(ob)
    for i in range(positions.size):
        position = positions[i]
        if position < size:
            for ch in range(channels):
                ob[position, ch] += gb[i, ch]


@njit(cache=True, error_model="numpy")
def window_scatter(grad, positions, out):
    """out[b, p] = the sum of grad[b, i] over the i with positions[i] = p, outside the padding (col2im);
    ``out`` is overwritten."""
    for b in range(grad.shape[0]):
        _scatter_sample(grad, positions, out, b)


@njit(cache=True, error_model="numpy", parallel=True)
def window_scatter_parallel(grad, positions, out):
    """``window_scatter`` with the samples split across threads."""
    for b in prange(grad.shape[0]):
        _scatter_sample(grad, positions, out, b)


@njit(inline="always")
def _max_pool_sample(x, positions, window, out, chosen, b):
    xb, ob, cb = x[b], out[b], chosen[b]
    size, channels = xb.shape
    for i in range(ob.shape[0]):
        first = True
        for j in range(i * window, (i + 1) * window):
            position = positions[j]
            if position >= size:
                continue
            if first:
                for ch in range(channels):
                    ob[i, ch] = xb[position, ch]
                    cb[i, ch] = position
                first = False
                continue
            for ch in range(channels):
                v, current = xb[position, ch], ob[i, ch]
                # strictly greater keeps the first maximum; the first NaN wins and then stays
                if v > current or (v != v and current == current):
                    ob[i, ch] = v
                    cb[i, ch] = position


@njit(cache=True, error_model="numpy")
def max_pool(x, positions, window, out, chosen):
    """out[b, i, ch] = max of window i's real elements, chosen[b, i, ch] the position of the first one."""
    for b in range(x.shape[0]):
        _max_pool_sample(x, positions, window, out, chosen, b)


@njit(cache=True, error_model="numpy", parallel=True)
def max_pool_parallel(x, positions, window, out, chosen):
    """``max_pool`` with the samples split across threads."""
    for b in prange(x.shape[0]):
        _max_pool_sample(x, positions, window, out, chosen, b)


@njit(inline="always")
def _max_pool_backward_sample(grad, chosen, out, b):
    gb, cb, ob = grad[b], chosen[b], out[b]
    _zero_sample(ob)
    for i in range(gb.shape[0]):
        for ch in range(gb.shape[1]):
            ob[cb[i, ch], ch] += gb[i, ch]


@njit(cache=True, error_model="numpy")
def max_pool_backward(grad, chosen, out):
    """out[b, s, ch] = the sum of grad[b, i, ch] over the windows i whose chosen[b, i, ch] is s, else 0;
    ``out`` (n, s, c) is overwritten."""
    for b in range(grad.shape[0]):
        _max_pool_backward_sample(grad, chosen, out, b)


@njit(cache=True, error_model="numpy", parallel=True)
def max_pool_backward_parallel(grad, chosen, out):
    """``max_pool_backward`` with the samples split across threads."""
    for b in prange(grad.shape[0]):
        _max_pool_backward_sample(grad, chosen, out, b)


@njit(cache=True, error_model="numpy")
def window_counts(positions, window, size, counts):
    """counts[i] = how many of window i's elements are real (not padding), as counts' dtype."""
    for i in range(counts.size):
        real = 0
        for j in range(i * window, (i + 1) * window):
            if positions[j] < size:
                real += 1
        counts[i] = real


@njit(inline="always")
def _average_pool_sample(x, positions, window, counts, out, b):
    xb, ob = x[b], out[b]
    size, channels = xb.shape
    for i in range(ob.shape[0]):
        for ch in range(channels):
            ob[i, ch] = 0
        for j in range(i * window, (i + 1) * window):
            position = positions[j]
            if position < size:
                for ch in range(channels):
                    ob[i, ch] += xb[position, ch]
        for ch in range(channels):
            ob[i, ch] /= counts[i]


@njit(cache=True, error_model="numpy")
def average_pool(x, positions, window, counts, out):
    """out[b, i] = sum of window i's real elements / counts[i]."""
    for b in range(x.shape[0]):
        _average_pool_sample(x, positions, window, counts, out, b)


@njit(cache=True, error_model="numpy", parallel=True)
def average_pool_parallel(x, positions, window, counts, out):
    """``average_pool`` with the samples split across threads."""
    for b in prange(x.shape[0]):
        _average_pool_sample(x, positions, window, counts, out, b)


@njit(inline="always")
def _average_pool_backward_sample(grad, positions, window, counts, out, b):
    gb, ob = grad[b], out[b]
    size, channels = ob.shape
    _zero_sample(ob)
    share = np.empty(channels, grad.dtype)
    for i in range(gb.shape[0]):
        for ch in range(channels):
            share[ch] = gb[i, ch] / counts[i]
        for j in range(i * window, (i + 1) * window):
            position = positions[j]
            if position < size:
                for ch in range(channels):
                    ob[position, ch] += share[ch]


@njit(cache=True, error_model="numpy")
def average_pool_backward(grad, positions, window, counts, out):
    """out[b, p] = the sum of grad[b, i] / counts[i] over the windows i that p is a real position of;
    ``out`` is overwritten."""
    for b in range(grad.shape[0]):
        _average_pool_backward_sample(grad, positions, window, counts, out, b)


@njit(cache=True, error_model="numpy", parallel=True)
def average_pool_backward_parallel(grad, positions, window, counts, out):
    """``average_pool_backward`` with the samples split across threads."""
    for b in prange(grad.shape[0]):
        _average_pool_backward_sample(grad, positions, window, counts, out, b)
