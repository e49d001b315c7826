"""Matrix products inside a CUDA Graph: cuBLAS called directly, because CuPy will not call it while a stream captures.

CuPy's cuBLAS bindings refuse every call on a capturing stream (their ``setStream`` raises
NotImplementedError: "calling cuBLAS API during stream capture is currently unsupported"). cuBLAS itself
records its GEMMs into a graph like any kernel; PyTorch's CUDA Graphs rely on that. So a product made
while ``backends/cuda_graphs.py`` records a step comes here instead:

* one cuBLAS handle per GPU, our own, made before any capture (making one allocates and may synchronise);
* a workspace of its own for that handle (``cublasSetWorkspace``), so that cuBLAS allocates nothing while
  recording; graphs keep its address, so it lives as long as the process;
* the handle's stream set to the capturing stream before the capture begins, and back to the default
  stream after it;
* the calls through ``ctypes`` on the cuBLAS library CuPy has already loaded (no new dependency).

Row-major products on a column-major library. Read column-major, the row-major C = A @ B (m x n) is
C^T = B^T @ A^T, so cuBLAS gets B first: ``gemm(op_B, op_A, n, m, k, B, ldb, A, lda, C, ldc=n)``. A
transposed view of a contiguous matrix goes in as that matrix with its op set to T, without a copy.
Batches (3-D operands) use the strided-batched GEMM, a 2-D operand serving every matrix with stride 0.
"""
import contextlib
import ctypes
import ctypes.util
import importlib
from dataclasses import dataclass

import numpy as np

from . import gemm

OP_N, OP_T = 0, 1
#: cuBLAS's recommended workspace for Hopper GPUs (smaller GPUs need less; it is allocated once per GPU)
WORKSPACE_BYTES = 32 * 1024 * 1024
#: the float dtypes cuBLAS's S/D GEMMs take; other products keep CuPy's path
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Operand:
    """One cuBLAS operand: the contiguous device array that holds it, its leading dimension, its op (OP_N or
    OP_T) and the elements between the matrices of a batch (0: one matrix serves the whole batch)."""

    array: object
    ld: int
    op: int
    stride: int


@dataclass(frozen=True)
class GemmCall:
    """The arguments of one cuBLAS GEMM (strided batched when ``batch`` > 1), in cuBLAS's column-major terms:
    C (m x n, leading dimension ldc) = op(first) (m x k) @ op(second) (k x n), for each of ``batch`` matrices."""

    first: Operand
    second: Operand
    m: int
    n: int
    k: int
    ldc: int
    stride_c: int
    batch: int


def plan_product(a, b):
    """(GemmCall, output shape) of the row-major product ``a @ b`` (a (..., m, k), b (..., k, n), batch dims
    broadcast). The call's ``first`` is ``b`` and its ``second`` is ``a`` (module docstring)."""
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align (k {a.shape[-1]} vs {b.shape[-2]})")
    batch_shape = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    m, k = a.shape[-2:]
    n = b.shape[-1]
    a_array, a_ld, a_transposed, a_stride = gemm._operand(a, batch_shape)
    b_array, b_ld, b_transposed, b_stride = gemm._operand(b, batch_shape)
    batch = int(np.prod(batch_shape, dtype=np.int64))
    call = GemmCall(first=Operand(b_array, max(1, b_ld), OP_T if b_transposed else OP_N, b_stride),
                    second=Operand(a_array, max(1, a_ld), OP_T if a_transposed else OP_N, a_stride),
                    m=n, n=m, k=k, ldc=max(1, n), stride_c=m * n, batch=batch)
    return call, batch_shape + (m, n)


def matmul(a, b):
    """``a @ b`` while a CUDA Graph records (``recording`` is active): a new array from the current allocator
    (the graph's pool), filled by one cuBLAS GEMM recorded on the capturing stream."""
    import cupy
    call, shape = plan_product(a, b)
    out = cupy.empty(shape, a.dtype)
    if out.size == 0:
        return out
    if call.k == 0:                       # a sum over nothing is 0 (and cuBLAS wants leading dimensions >= 1)
        out.fill(0)
        return out
    library().gemm(_handle_of_this_gpu(), call, out)
    return out


def can_multiply(a, b):
    """True when ``matmul`` takes these operands: one float dtype cuBLAS's S/D GEMMs compute."""
    return a.dtype == b.dtype and a.dtype in DTYPES


# -- the handle, per GPU -----------------------------------------------------------------------------------
_HANDLES = {}       # GPU index -> (cuBLAS handle, its workspace array)


def _handle_of_this_gpu():
    import cupy
    handle = _HANDLES.get(cupy.cuda.runtime.getDevice())
    if handle is None:
        raise RuntimeError("a product was recorded outside captured_gemm.recording(): no cuBLAS handle is ready")
    return handle[0]


@contextlib.contextmanager
def recording(stream):
    """While inside: products (``matmul``) go to this GPU's own cuBLAS handle, set to ``stream``. Enter it
    BEFORE the capture begins: it may make the handle and its workspace, which a capture must not see."""
    import cupy
    blas = library()
    device = cupy.cuda.runtime.getDevice()
    if device not in _HANDLES:
        workspace = cupy.empty(WORKSPACE_BYTES, np.uint8)      # the shared pool: it lives as long as the process
        _HANDLES[device] = (blas.create(), workspace)
    handle, workspace = _HANDLES[device]
    blas.set_stream(handle, stream.ptr)
    # after the stream: cublasSetStream gives the handle back cuBLAS's own workspace pool
    blas.set_workspace(handle, workspace, WORKSPACE_BYTES)
    try:
        yield
    finally:
        blas.set_stream(handle, 0)


# -- the library -----------------------------------------------------------------------------------------
_LIBRARY = {}


def library():
    """This process's cuBLAS, as a ``Cublas`` (loaded once). RuntimeError when it cannot be found."""
    if "cublas" not in _LIBRARY:
        _LIBRARY["cublas"] = Cublas(_load_cublas())
    return _LIBRARY["cublas"]


def _load_cublas():
    """The cuBLAS shared library CuPy uses: CuPy loads it first, and opening it by name then finds that copy."""
    with contextlib.suppress(Exception):      # importing CuPy's binding loads libcublas into this process
        importlib.import_module("cupy_backends.cuda.libs.cublas")
    candidates = ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "cublas64_13.dll", "cublas64_12.dll"]
    found = ctypes.util.find_library("cublas")
    candidates += [found] if found else []
    for name in candidates:
        with contextlib.suppress(OSError):
            return ctypes.CDLL(name)
    with contextlib.suppress(Exception):       # CuPy's wheels find the library through cuda.pathfinder
        from cuda.pathfinder import load_nvidia_dynamic_lib
        return ctypes.CDLL(load_nvidia_dynamic_lib("cublas").abs_path)
    raise RuntimeError("the cuBLAS library could not be opened, so no product can be recorded into a CUDA Graph")


class Cublas:
    """The few cuBLAS calls a recorded product needs, through ctypes. Each raises RuntimeError with cuBLAS's
    status when the call fails."""

    def __init__(self, lib):
        self.lib = lib
        p, i, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
        lib.cublasCreate_v2.argtypes = [ctypes.POINTER(p)]
        lib.cublasSetStream_v2.argtypes = [p, p]
        self.has_workspace = hasattr(lib, "cublasSetWorkspace_v2")
        if self.has_workspace:
            lib.cublasSetWorkspace_v2.argtypes = [p, p, ctypes.c_size_t]
        plain = [p, i, i, i, i, i, p, p, i, p, i, p, p, i]
        batched = [p, i, i, i, i, i, p, p, i, i64, p, i, i64, p, p, i, i64, i]
        for name in ("cublasSgemm_v2", "cublasDgemm_v2"):
            getattr(lib, name).argtypes = plain
        for name in ("cublasSgemmStridedBatched", "cublasDgemmStridedBatched"):
            getattr(lib, name).argtypes = batched

    @staticmethod
    def _check(status, what):
        if status != 0:
            raise RuntimeError(f"cuBLAS {what} failed with status {status}")

    def create(self):
        """A new cuBLAS handle on the current GPU."""
        handle = ctypes.c_void_p()
        self._check(self.lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        return handle.value

    def set_stream(self, handle, stream_pointer):
        """Issue ``handle``'s later calls on this stream (0: the default stream)."""
        self._check(self.lib.cublasSetStream_v2(handle, stream_pointer or None), "cublasSetStream")

    def set_workspace(self, handle, workspace, size):
        """Give ``handle`` a workspace of its own (older cuBLAS without the call allocate theirs ahead)."""
        if self.has_workspace:
            self._check(self.lib.cublasSetWorkspace_v2(handle, workspace.data.ptr, size), "cublasSetWorkspace")

    def gemm(self, handle, call, out):
        """Run ``call`` into ``out`` (alpha 1, beta 0, read from host memory when the call is made)."""
        double = out.dtype == np.float64
        scalar = ctypes.c_double if double else ctypes.c_float
        one, zero = scalar(1.0), scalar(0.0)
        first, second = call.first, call.second
        head = (handle, first.op, second.op, call.m, call.n, call.k, ctypes.byref(one))
        if call.batch == 1:
            name = "cublasDgemm_v2" if double else "cublasSgemm_v2"
            status = getattr(self.lib, name)(*head, first.array.data.ptr, first.ld, second.array.data.ptr, second.ld,
                                             ctypes.byref(zero), out.data.ptr, call.ldc)
        else:
            name = "cublasDgemmStridedBatched" if double else "cublasSgemmStridedBatched"
            status = getattr(self.lib, name)(*head, first.array.data.ptr, first.ld, first.stride,
                                             second.array.data.ptr, second.ld, second.stride, ctypes.byref(zero),
                                             out.data.ptr, call.ldc, call.stride_c, call.batch)
        self._check(status, name)
