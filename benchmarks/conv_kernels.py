"""The image layers' kernels measured alone, at the MNIST-size CNN's shapes (part of ``benchmarks.cnn``).

* Pooling and normalization primitives of the numba backend: bytes each must move (every input read
  once, every output written once) over its median time, as a fraction of the machine's copy
  bandwidth measured in the same run (``kernels_bench.machine_limits``).
* Convolution forward, two ways, for the model's two convolutions: the engine's im2col route
  (``Backend.window_gather`` then the fused dense GEMM) and a direct numba kernel written here for the
  comparison (each output reads its window straight from the input; the filters are the contiguous
  inner loop). The engine uses the faster: issue 14 asks the choice to be made by measurement.
"""
import numpy as np
from numba import njit, prange

from .common import median_time

MNIST_POOL = (128, 26, 26, 32)          # the first pooling's input: conv1's output
MNIST_NORM = (128 * 26 * 26, 32)        # a BatchNormalization after conv1, as (samples, channels)
CONVOLUTIONS = {"conv1 28x28x1 -> 32": ((128, 28, 28, 1), 32), "conv2 13x13x32 -> 64": ((128, 13, 13, 32), 64)}


def _pool_cases(backend, rng):
    """(name, function, bytes moved) for each pooling primitive on the first pooling's input."""
    from nnengine.conv_layers import window_positions
    n, h, w, c = MNIST_POOL
    x = rng.standard_normal((n, h * w, c)).astype(np.float32)
    _, _, positions, _ = window_positions(h, w, (2, 2), (2, 2), (1, 1), "valid")
    out, chosen = backend.max_pool(x, positions, 4)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    size = h * w
    return [("max_pool", lambda: backend.max_pool(x, positions, 4), x.nbytes + out.nbytes + chosen.nbytes),
            ("max_pool_backward", lambda: backend.max_pool_backward(grad, chosen, positions, 4, size),
             grad.nbytes + chosen.nbytes + x.nbytes),
            ("average_pool", lambda: backend.average_pool(x, positions, 4), x.nbytes + out.nbytes),
            ("average_pool_backward", lambda: backend.average_pool_backward(grad, positions, 4, size),
             grad.nbytes + x.nbytes)]


def _norm_cases(backend, rng):
    """(name, function, bytes moved) for the normalization primitives of a BatchNormalization."""
    x = (rng.standard_normal(MNIST_NORM) * 2 + 1).astype(np.float32)
    grad = rng.standard_normal(MNIST_NORM).astype(np.float32)
    gamma, beta = np.ones(MNIST_NORM[1], np.float32), np.zeros(MNIST_NORM[1], np.float32)
    mean, variance = backend.moments(x, 0)
    return [("moments", lambda: backend.moments(x, 0), x.nbytes),
            ("normalize", lambda: backend.normalize(x, mean, variance, gamma, beta, 1e-3, 0), 2 * x.nbytes),
            ("normalize_backward", lambda: backend.normalize_backward(x, mean, variance, gamma, grad, 1e-3, 0, True),
             3 * x.nbytes)]


def layer_kernel_rates(copy_bytes_per_s, repeats):
    """Each pooling and normalization primitive's GB/s and its fraction of the copy bandwidth."""
    import nnengine as nn
    backend, rng = nn.get_backend("cpu"), np.random.default_rng(0)
    rows = []
    for name, function, moved in _pool_cases(backend, rng) + _norm_cases(backend, rng):
        seconds, _ = median_time(function, repeats)
        rows.append({"kernel": name, "ms": seconds * 1e3, "gb_per_s": moved / seconds / 1e9,
                     "of_copy": moved / seconds / copy_bytes_per_s})
    return rows


@njit(cache=True, parallel=True)
def direct_convolution(x, kernel, out):
    """out[b, i, j, f] = sum over (a, e, c) of x[b, i + a, j + e, c] * kernel[a, e, c, f] ('valid', stride 1)."""
    kh, kw, channels, filters = kernel.shape
    for b in prange(x.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                acc = out[b, i, j]
                acc[:] = 0
                for a in range(kh):
                    for e in range(kw):
                        for c in range(channels):
                            v = x[b, i + a, j + e, c]
                            weights = kernel[a, e, c]
                            for f in range(filters):
                                acc[f] += v * weights[f]


def convolution_routes(repeats):
    """Forward time of each MNIST convolution: the engine's im2col route and the direct kernel above."""
    import nnengine as nn
    rng, rows = np.random.default_rng(1), []
    for name, (shape, filters) in CONVOLUTIONS.items():
        layer = nn.layers.Conv2D(filters, 3)
        x = rng.standard_normal(shape).astype(np.float32)
        tensor = nn.tensor(x)
        layer(tensor)
        kernel = layer.kernel.numpy()
        out = np.empty((shape[0], shape[1] - 2, shape[2] - 2, filters), np.float32)
        direct_convolution(x, kernel, out)
        with nn.no_grad():
            np.testing.assert_allclose(out, layer(tensor).numpy(), rtol=1e-3, atol=1e-3)
            im2col, _ = median_time(lambda: layer(tensor), repeats)
        direct, _ = median_time(lambda: direct_convolution(x, kernel, out), repeats)
        rows.append({"convolution": name, "im2col_ms": im2col * 1e3, "direct_ms": direct * 1e3,
                     "direct_over_im2col": direct / im2col})
    return rows
