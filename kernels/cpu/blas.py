"""The BLAS numpy itself uses, called from numba code: C = op(A) @ op(B) through cblas ?gemm.

numpy's wheels bundle OpenBLAS (``numpy.libs/libscipy_openblas64_*.so``, or the ``.dylib`` beside
numpy on macOS). Its cblas entry points are declared here as numba external functions, found by
*name*: LLVM resolves the name in the library loaded with ``load_library_permanently``, so the
compiled code holds no address and numba can cache it on disk (a ctypes function pointer would pin
an address of this process and could not be cached).

Why call it ourselves instead of ``np.matmul``: the compiled training step (docs/compile.md) runs a
whole step inside one numba function, and its products must be bitwise those of the eager step. When
both call this same routine with the same arguments, they are by construction. (numpy's matmul
picks among gemm, gemv, syrk and a copy path by shapes and strides; we call gemm always.)

``AVAILABLE`` is False when no bundled OpenBLAS with a known cblas name is found (numpy built against
MKL or Accelerate, say). Callers then use ``np.matmul`` and the compiled step keeps its Python replay.

Arguments are passed as in the C prototype
``cblas_sgemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)``. The pointers go
as 64-bit integers (``arr.ctypes.data``): on the 64-bit platforms numba supports, a pointer and an
integer are passed in the same registers.
"""
import ctypes
import glob
import os

import numpy as np
from llvmlite import binding
from numba import njit, types

#: CBLAS enum values (cblas.h)
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

#: (single, double, whether the integer arguments are 64-bit), in the order they are tried
_NAMES = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
          ("cblas_sgemm64_", "cblas_dgemm64_", True),
          ("scipy_cblas_sgemm", "scipy_cblas_dgemm", False),
          ("cblas_sgemm", "cblas_dgemm", False))


def _bundled_libraries():
    """Paths of the OpenBLAS libraries that ship with numpy (Linux/Windows wheels, then macOS ones)."""
    here = os.path.dirname(np.__file__)
    patterns = (os.path.join(here, os.pardir, "numpy.libs", "*openblas*"),
                os.path.join(here, ".dylibs", "*openblas*"))
    return sorted(path for pattern in patterns for path in glob.glob(pattern))


def _find_gemm():
    """(single name, double name, 64-bit ints) of the first bundled library that exports cblas ?gemm, or None."""
    for path in _bundled_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for single, double, ilp64 in _NAMES:
            if hasattr(library, single) and hasattr(library, double):
                try:
                    binding.load_library_permanently(path)
                except RuntimeError:        # LLVM could not load it: products stay on np.matmul
                    return None
                return single, double, ilp64
    return None


_FOUND = None if os.environ.get("NNENGINE_NO_BUNDLED_BLAS") else _find_gemm()
AVAILABLE = _FOUND is not None
_SINGLE, _DOUBLE, _ILP64 = _FOUND if AVAILABLE else ("cblas_sgemm", "cblas_dgemm", False)


def _external(name, real):
    integer = types.int64 if _ILP64 else types.intc
    pointer = types.intp
    signature = types.void(types.intc, types.intc, types.intc, integer, integer, integer, real, pointer, integer,
                           pointer, integer, real, pointer, integer)
    return types.ExternalFunction(name, signature)


_sgemm = _external(_SINGLE, types.float32)
_dgemm = _external(_DOUBLE, types.float64)


@njit(cache=True, nogil=True)
def gemm(a, b, out, transpose_a, transpose_b):
    """out = op(a) @ op(b), where op transposes when asked; a, b and out C-contiguous float32 or float64.

    ``a`` is (M, K), or (K, M) with ``transpose_a``; ``b`` is (K, N), or (N, K) with ``transpose_b``;
    ``out`` is (M, N). Only call when ``AVAILABLE``.
    """
    m, n = out.shape
    k = a.shape[0] if transpose_a else a.shape[1]
    lda, ldb = a.shape[1], b.shape[1]
    trans_a = TRANS if transpose_a else NO_TRANS
    trans_b = TRANS if transpose_b else NO_TRANS
    if out.itemsize == 4:                  # float32 (the caller passes float32 or float64)
        _sgemm(ROW_MAJOR, trans_a, trans_b, m, n, k, np.float32(1), a.ctypes.data, lda, b.ctypes.data, ldb,
               np.float32(0), out.ctypes.data, n)
    else:
        _dgemm(ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
               out.ctypes.data, n)


def operand(a):
    """(C-contiguous array, transposed) such that ``a`` is that array or its transpose; copies only when neither."""
    if a.flags.c_contiguous:
        return a, False
    if a.T.flags.c_contiguous:
        return a.T, True
    return np.ascontiguousarray(a), False


def usable(a, b):
    """Whether ``gemm`` takes a @ b: BLAS found, both float32 or both float64, 2-D, nothing empty."""
    return AVAILABLE and a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and a.ndim == b.ndim == 2 \
        and 0 not in a.shape + b.shape


def product(a, b, out):
    """out = a @ b through ``gemm``, transposed operands passed as flags (``usable(a, b)`` must hold)."""
    a, transpose_a = operand(a)
    b, transpose_b = operand(b)
    gemm(a, b, out, transpose_a, transpose_b)
    return out
