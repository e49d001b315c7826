"""The numba window kernels that add windows' gradients into their output (col2im, max and average pooling's
backward) zero each sample's output themselves: whatever ``out`` holds beforehand, the result is the numpy
reference's. Serial and parallel variants, overlapping and padded windows."""
import numpy as np
import pytest

from nnengine.backends.numpy_backend import NumpyBackend
from nnengine.conv_layers import window_positions
from nnengine.kernels.cpu import windows

REFERENCE = NumpyBackend("numpy")


def _case(padding, strides):
    height, width, kernel = 5, 4, (3, 2)
    _, _, positions, _ = window_positions(height, width, kernel, strides, (1, 1), padding)
    positions = np.array(positions, np.int64)
    x = np.random.default_rng(1).standard_normal((3, height * width, 2)).astype(np.float32)
    return x, positions, kernel[0] * kernel[1], height * width


def _garbage(shape):
    out = np.full(shape, np.nan, np.float32)
    out.reshape(-1)[::3] = 7.0                   # not all NaN: a kernel that adds into it would keep 7s too
    return out


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("padding, strides", [("valid", (1, 1)), ("same", (2, 1)), ("valid", (3, 2))])
def test_gradient_scatters_overwrite_their_output(parallel, padding, strides):
    x, positions, window, size = _case(padding, strides)
    suffix = "_parallel" if parallel else ""
    rng = np.random.default_rng(2)

    columns = rng.standard_normal((x.shape[0], positions.size, x.shape[2])).astype(np.float32)
    out = _garbage((x.shape[0], size, x.shape[2]))
    getattr(windows, "window_scatter" + suffix)(columns, positions, out)
    np.testing.assert_allclose(out, REFERENCE.window_scatter(columns, positions, size), rtol=1e-6, atol=1e-6)

    pooled, chosen = REFERENCE.max_pool(x, positions, window)
    grad = rng.standard_normal(pooled.shape).astype(np.float32)
    out = _garbage((x.shape[0], size, x.shape[2]))
    getattr(windows, "max_pool_backward" + suffix)(grad, chosen, out)
    np.testing.assert_allclose(out, REFERENCE.max_pool_backward(grad, chosen, positions, window, size),
                               rtol=1e-6, atol=1e-6)

    counts = np.empty(positions.size // window, np.float32)
    windows.window_counts(positions, window, size, counts)
    out = _garbage((x.shape[0], size, x.shape[2]))
    getattr(windows, "average_pool_backward" + suffix)(grad, positions, window, counts, out)
    np.testing.assert_allclose(out, REFERENCE.average_pool_backward(grad, positions, window, size),
                               rtol=1e-6, atol=1e-6)
