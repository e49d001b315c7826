"""Threading thresholds and the GEMM route of the numba kernels.

* ``PARALLEL_MIN_ELEMENTS``: elementwise and update kernels run their parallel
  (prange) variant from this many elements up and the serial one below it. The
  value comes from ``python -m benchmarks.threshold``, which times both variants
  over sizes on this machine; below it, starting the thread pool costs more than
  it saves.
* ``gemm_route()``: "blas" (numpy's matmul, OpenBLAS) or "numba" (our GEMM in
  ``gemm.py``), from the environment variable ``NNENGINE_GEMM``; read on every call
  so tests and benchmarks can switch it.
* numba itself honours ``NUMBA_NUM_THREADS`` for the size of its thread pool.
"""
import os

PARALLEL_MIN_ELEMENTS = 1 << 17

#: below this many multiply-adds a dense layer runs entirely inside one serial fused kernel
SMALL_DENSE_FLOPS = 1 << 18

GEMM_ROUTES = ("blas", "numba")


def gemm_route():
    """'blas' or 'numba' from NNENGINE_GEMM (default 'blas'); ValueError for anything else."""
    route = os.environ.get("NNENGINE_GEMM", "blas").lower()
    if route not in GEMM_ROUTES:
        raise ValueError(f"NNENGINE_GEMM must be one of {GEMM_ROUTES}, got {route!r}")
    return route
