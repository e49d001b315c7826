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

The library is found in ``blas_library.py`` (without numba, which also calls the same routine through
ctypes for the ahead-of-time tier, ``aot.py``). ``AVAILABLE`` is False when no bundled OpenBLAS with a
known cblas name is found (numpy built against MKL or Accelerate, say). Callers then use ``np.matmul``
and the compiled step keeps its Python replay.

Arguments are passed as in the C prototype
``cblas_sgemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)``. The pointers go
as 64-bit integers (``arr.ctypes.data``): on the 64-bit platforms numba supports, a pointer and an
integer are passed in the same registers.
"""
import numpy as np
from llvmlite import binding

from . import blas_library
from .blas_library import NO_TRANS, ROW_MAJOR, TRANS
from .jit import njit, types


def _load_for_llvm():
    """Make the library's symbols visible to LLVM (numba's compiled code finds ?gemm by name); True on success."""
    if not blas_library.AVAILABLE:
        return False
    try:
        binding.load_library_permanently(blas_library.LIBRARY_PATH)
    except RuntimeError:        # LLVM could not load it: every product (ctypes' too) stays on np.matmul
        blas_library.AVAILABLE = False
        return False
    return True


AVAILABLE = _load_for_llvm()
_SINGLE, _DOUBLE, _ILP64 = blas_library.SINGLE, blas_library.DOUBLE, blas_library.ILP64


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

