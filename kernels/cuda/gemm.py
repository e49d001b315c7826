"""Launcher for gemm.cu, our tiled GEMM, and the route switch between it and cuBLAS.

``NNENGINE_CUDA_GEMM=cublas`` (the default) sends products to cuBLAS through ``cupy.matmul``;
``NNENGINE_CUDA_GEMM=tiled`` or ``set_gemm_route("tiled")`` sends them to ``gemm_tiled``.
"""
import os

import numpy as np

from . import launch, loader

ROUTES = ("cublas", "tiled")
ENV_VARIABLE = "NNENGINE_CUDA_GEMM"
_route = {"value": None}
_i = np.int64


def set_gemm_route(route):
    """Choose "cublas" or "tiled" for every later product; None returns to the environment's choice."""
    if route is not None and route not in ROUTES:
        raise ValueError(f"GEMM route must be one of {ROUTES}, got {route!r}")
    _route["value"] = route


def gemm_route():
    """The route products take now: set_gemm_route's choice, else NNENGINE_CUDA_GEMM, else cublas."""
    if _route["value"] is not None:
        return _route["value"]
    route = os.environ.get(ENV_VARIABLE, "cublas").strip().lower() or "cublas"
    if route not in ROUTES:
        raise ValueError(f"{ENV_VARIABLE} must be one of {ROUTES}, got {route!r}")
    return route


def _operand(x, batch_shape):
    """(array, leading dimension, transposed?, batch stride) describing the (.., r, c) operand x.

    A transposed view of a C-contiguous matrix is passed as the original with the flag set, so
    no copy is made; a 2-D operand serves every matrix of the batch with stride 0.
    """
    import cupy
    if x.ndim == 2:
        stride = 0
    else:
        rows, cols = x.shape[-2:]
        x = cupy.broadcast_to(x, batch_shape + (rows, cols)).copy(order="C").reshape(-1, rows, cols)
        stride = rows * cols
    if x.ndim == 2 and not x.flags.c_contiguous and x.T.flags.c_contiguous:
        return x.T, x.shape[0], True, stride           # x is the transpose of a contiguous matrix
    if not x.flags.c_contiguous:
        x = x.copy(order="C")
    return x, x.shape[-1], False, stride


def gemm_tiled(a, b):
    """op(a) @ op(b) with our kernel: a (..., m, k), b (..., k, n) of one float dtype; batch dims broadcast."""
    import cupy
    batch_shape = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    m, k = a.shape[-2:]
    n = b.shape[-1]
    batch = int(np.prod(batch_shape, dtype=np.int64))
    out = cupy.empty(batch_shape + (m, n), a.dtype)
    if out.size == 0:
        return out
    if k == 0:
        out.fill(0)
        return out
    a_arr, lda, trans_a, stride_a = _operand(a, batch_shape)
    b_arr, ldb, trans_b, stride_b = _operand(b, batch_shape)
    kernel = loader.function("gemm.cu", "gemm_tiled", a.dtype)
    for first in range(0, batch, launch.MAX_GRID_Z):
        count = min(launch.MAX_GRID_Z, batch - first)
        grid, block = launch.gemm(m, n, count)
        kernel(grid, block, (a_arr[first:] if stride_a else a_arr, b_arr[first:] if stride_b else b_arr,
                             out.reshape(-1, m, n)[first:], _i(m), _i(n), _i(k), _i(lda), _i(ldb),
                             _i(trans_a), _i(trans_b), _i(stride_a), _i(stride_b), _i(m * n)))
    return out
