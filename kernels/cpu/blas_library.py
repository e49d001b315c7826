"""The OpenBLAS bundled with numpy, found and called without numba: cblas ?gemm through ctypes.

``blas.py`` calls the same routine from numba code (the eager products and the lowered step). This module
finds the library for both, and gives the ahead-of-time tier (``aot.py``) a way to run a product before
numba is loaded: ``gemm`` here passes the same arguments to the same routine as ``blas.gemm`` does, so
the two products are bitwise equal (``tests/test_aot.py`` checks it).
"""
import ctypes
import glob
import os

import numpy as np

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
    """(path, loaded library, single name, double name, 64-bit ints) of the first bundled library that
    exports cblas ?gemm, or None."""
    for path in _bundled_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for single, double, ilp64 in _NAMES:
            if hasattr(library, single) and hasattr(library, double):
                return path, library, single, double, ilp64
    return None


_FOUND = None if os.environ.get("NNENGINE_NO_BUNDLED_BLAS") else _find_gemm()
#: whether products go through the bundled cblas ?gemm (``blas.py`` sets it False if LLVM cannot load it)
AVAILABLE = _FOUND is not None
LIBRARY_PATH, _LIBRARY, SINGLE, DOUBLE, ILP64 = _FOUND if AVAILABLE else (None, None, "cblas_sgemm",
                                                                         "cblas_dgemm", False)


def _prototype(name, real):
    """The ctypes function ``name`` with cblas ?gemm's prototype (``real``: float or double)."""
    function = getattr(_LIBRARY, name)
    integer, pointer = (ctypes.c_int64 if ILP64 else ctypes.c_int), ctypes.c_void_p
    function.restype = None
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real, pointer,
                         integer, pointer, integer, real, pointer, integer)
    return function


_ROUTINES = {np.dtype(np.float32): _prototype(SINGLE, ctypes.c_float),
             np.dtype(np.float64): _prototype(DOUBLE, ctypes.c_double)} if AVAILABLE else {}


def gemm(a, b, out, transpose_a, transpose_b):
    """out = op(a) @ op(b) as ``blas.gemm`` computes it (same routine, same arguments), through ctypes.

    a, b and out C-contiguous and writeable, all float32 or all float64; only call when ``usable(a, b)``.
    """
    m, n = out.shape
    k = a.shape[0] if transpose_a else a.shape[1]
    _ROUTINES[out.dtype](ROW_MAJOR, TRANS if transpose_a else NO_TRANS, TRANS if transpose_b else NO_TRANS,
                         m, n, k, 1.0, _address(a), a.shape[1], _address(b), b.shape[1], 0.0, _address(out), n)


def _address(array):
    """The address of a writeable array's first byte (a third of ``array.ctypes.data``'s cost: 0.33 against
    1.0 us, and a product takes three)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(array))


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
