"""Launchers for norm.cu: moments, normalize and its backward on a C-contiguous (rows, cols) matrix."""
import numpy as np

from . import launch, loader

SOURCE = "norm.cu"
_i = np.int64


def _column_chunks(rows, cols):
    """(grid, block, chunk_rows, chunks) for the per-column partial sums (launch.column_chunks)."""
    chunk_rows, chunks = launch.column_chunks(rows)
    return (max(launch.ceil_div(cols, launch.WARP_SIZE), 1), chunks), (launch.WARP_SIZE, launch.WARPS_PER_BLOCK), \
        chunk_rows, chunks


def moments(x, per_row, out):
    """out (2, k): the means and biased variances of x per column, or per row when ``per_row``."""
    import cupy
    rows, cols = x.shape
    if per_row:
        grid, block = launch.rows(rows)
        loader.function(SOURCE, "row_moments", x.dtype)(grid, block, (x, out, _i(rows), _i(cols)))
        return
    grid, block, chunk_rows, chunks = _column_chunks(rows, cols)
    partials = cupy.empty((chunks, 2, cols), np.float64)
    loader.function(SOURCE, "column_moments", x.dtype)(grid, block, (x, partials, _i(rows), _i(cols), _i(chunk_rows)))
    grid, block = launch.grid_stride(cols)
    loader.function(SOURCE, "merge_column_moments", x.dtype)(
        grid, block, (partials, out, _i(chunks), _i(rows), _i(cols), _i(chunk_rows)))


def normalize(x, mean, variance, gamma, beta, epsilon, per_row, out):
    """out = ((x - mean) * r) * gamma + beta; gamma/beta None when absent."""
    rows, cols = x.shape
    grid, block = launch.grid_stride(x.size)
    loader.function(SOURCE, "normalize", x.dtype)(
        grid, block, (x, mean, variance, mean if gamma is None else gamma, mean if beta is None else beta, out,
                      _i(rows), _i(cols), _i(gamma is not None), _i(beta is not None), _i(per_row),
                      x.dtype.type(epsilon)))


def normalize_backward(x, grad, mean, variance, gamma, epsilon, per_row, through, dx, dgamma, dbeta):
    """dx, dgamma and dbeta of normalize (statistics per column, or per row when ``per_row``)."""
    import cupy
    rows, cols = x.shape
    eps = x.dtype.type(epsilon)
    scale = mean if gamma is None else gamma                 # a stand-in the kernels never read
    grid, block, chunk_rows, chunks = _column_chunks(rows, cols)
    partials = cupy.empty((chunks, 2, cols), np.float64)
    loader.function(SOURCE, "column_gradient_sums", x.dtype)(
        grid, block, (x, grad, mean, variance, partials, _i(rows), _i(cols), _i(chunk_rows), _i(per_row), eps))
    grid, block = launch.grid_stride(cols)
    loader.function(SOURCE, "finish_gradient_sums", x.dtype)(
        grid, block, (partials, dgamma, dbeta, _i(chunks), _i(cols)))
    if per_row:
        grid, block = launch.rows(rows)
        loader.function(SOURCE, "normalize_dx_rows", x.dtype)(
            grid, block, (x, grad, mean, variance, scale, dx, _i(rows), _i(cols), _i(gamma is not None), eps))
        return
    grid, block = launch.grid_stride(x.size)
    loader.function(SOURCE, "normalize_dx_columns", x.dtype)(
        grid, block, (x, grad, mean, variance, scale, dgamma, dbeta, dx, _i(rows), _i(cols), _i(gamma is not None),
                      _i(through), eps))
