"""Products recorded into a CUDA Graph go to cuBLAS directly (kernels/cuda/captured_gemm.py).

CuPy refuses its cuBLAS calls on a capturing stream (found on the first real GPU run). These tests check,
on the fake GPU, the column-major arguments each product hands cuBLAS: ``cuda_fake.emulate_gemm`` computes
from those arguments alone, reading memory exactly as cuBLAS would, and checks cuBLAS's rules on leading
dimensions and extents. The real library is exercised by the GPU tests (tests/test_cuda_gpu.py).
"""
import types

import cuda_fake
import numpy as np
import pytest
from test_cuda_backend import FakeGPU

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

from nnengine.kernels.cuda import captured_gemm  # noqa: E402


def _operand(rng, shape, transposed, dtype):
    """A host matrix of ``shape``; when ``transposed``, a transposed view of a contiguous one (as a backward
    hands its products)."""
    if transposed and len(shape) == 2:
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(m=st.integers(1, 7), k=st.integers(1, 7), n=st.integers(1, 7),
                  batch=st.sampled_from([(), (1,), (3,), (2, 2)]), a_batched=st.booleans(), b_batched=st.booleans(),
                  a_transposed=st.booleans(), b_transposed=st.booleans(),
                  dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_the_cublas_arguments_of_a_product_compute_it(m, k, n, batch, a_batched, b_batched, a_transposed,
                                                      b_transposed, dtype, seed):
    rng = np.random.default_rng(seed)
    a = _operand(rng, (batch if a_batched else ()) + (m, k), a_transposed, dtype)
    b = _operand(rng, (batch if b_batched else ()) + (k, n), b_transposed, dtype)
    with FakeGPU() as gpu:
        backend = gpu.backend()
        # a transposed view stays one on the device: the transpose of a contiguous device matrix
        on_gpu = [backend.from_numpy(np.ascontiguousarray(x.T)).T if x.ndim == 2 and t else backend.from_numpy(x)
                  for x, t in ((a, a_transposed), (b, b_transposed))]
        call, shape = captured_gemm.plan_product(*on_gpu)
        out = cuda_fake.on_device(np.full(shape, np.nan, dtype))
        cuda_fake.emulate_gemm(call, cuda_fake.on_host(call.first.array), cuda_fake.on_host(call.second.array),
                               cuda_fake.on_host(out))
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert shape == expected.shape
    np.testing.assert_allclose(cuda_fake.on_host(out), expected, rtol=1e-5, atol=1e-5)
    # a transposed view goes in as its contiguous matrix with op T, not as a copy (one that is also C-ordered,
    # a single row or column, needs neither)
    transposed_views = [x for x in (a, b) if x.ndim == 2 and not x.flags.c_contiguous]
    assert len([o for o in (call.first, call.second) if o.op == captured_gemm.OP_T]) == len(transposed_views)


def test_a_product_over_nothing_is_zeros_and_an_empty_product_is_empty():
    with FakeGPU() as gpu:
        backend = gpu.backend()
        with captured_gemm.recording(gpu.cupy.cuda.Stream()):
            zeros = captured_gemm.matmul(backend.from_numpy(np.ones((3, 0), np.float32)),
                                         backend.from_numpy(np.ones((0, 2), np.float32)))
            empty = captured_gemm.matmul(backend.from_numpy(np.ones((0, 4))), backend.from_numpy(np.ones((4, 2))))
        assert gpu.cublas.calls == []                       # neither reaches cuBLAS
    assert np.array_equal(cuda_fake.on_host(zeros), np.zeros((3, 2), np.float32)) and empty.shape == (0, 2)


def test_recording_readies_one_handle_per_gpu_with_its_own_workspace_then_gives_the_stream_back():
    with FakeGPU() as gpu:
        stream = gpu.cupy.cuda.Stream(non_blocking=True)
        for _ in range(2):
            with captured_gemm.recording(stream):
                (handle,) = gpu.cublas.streams
                assert gpu.cublas.streams[handle] == stream.ptr
                # given after the stream, which resets it
                assert gpu.cublas.workspaces[handle].nbytes == captured_gemm.WORKSPACE_BYTES
        assert gpu.cublas.streams == {handle: 0}             # one handle, back on the default stream


def test_a_product_outside_a_recording_says_so():
    with FakeGPU() as gpu:
        x = gpu.backend().from_numpy(np.ones((2, 2), np.float32))
        with pytest.raises(RuntimeError, match="outside captured_gemm.recording"):
            captured_gemm.matmul(x, x)


def test_only_float_products_of_one_dtype_go_to_cublas_directly():
    f32, f64, i64 = (np.ones((2, 2), d) for d in (np.float32, np.float64, np.int64))
    assert captured_gemm.can_multiply(f32, f32) and captured_gemm.can_multiply(f64, f64)
    assert not captured_gemm.can_multiply(i64, i64) and not captured_gemm.can_multiply(f32, f64)


class _RecordingLibrary:
    """Stands for libcublas under ctypes: each function records its arguments and returns success."""

    def __init__(self):
        self.called = []
        for name in ("cublasCreate_v2", "cublasSetStream_v2", "cublasSetWorkspace_v2", "cublasSgemm_v2",
                     "cublasDgemm_v2", "cublasSgemmStridedBatched", "cublasDgemmStridedBatched"):
            setattr(self, name, self._function(name))

    def _function(self, name):
        def call(*args):
            self.called.append((name, args))
            return 0
        return call


def _device_array(pointer, dtype=np.float32):
    return types.SimpleNamespace(data=types.SimpleNamespace(ptr=pointer), dtype=np.dtype(dtype))


def test_the_ctypes_calls_pass_cublas_its_arguments_in_its_order():
    """cublas<t>gemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) and the strided
    batched form (with strideA, strideB, strideC and the batch count), S for float32 and D for float64."""
    lib = _RecordingLibrary()
    blas = captured_gemm.Cublas(lib)
    first = captured_gemm.Operand(_device_array(100), 7, captured_gemm.OP_T, 0)
    second = captured_gemm.Operand(_device_array(200), 5, captured_gemm.OP_N, 35)
    blas.gemm(9, captured_gemm.GemmCall(first, second, m=7, n=4, k=5, ldc=7, stride_c=28, batch=1),
              _device_array(300))
    blas.gemm(9, captured_gemm.GemmCall(first, second, m=7, n=4, k=5, ldc=7, stride_c=28, batch=3),
              _device_array(300, np.float64))
    (single_name, single), (batched_name, batched) = lib.called
    assert single_name == "cublasSgemm_v2" and batched_name == "cublasDgemmStridedBatched"
    assert single[:6] == (9, captured_gemm.OP_T, captured_gemm.OP_N, 7, 4, 5)
    assert (single[7], single[8], single[9], single[10], single[12], single[13]) == (100, 7, 200, 5, 300, 7)
    assert single[6]._obj.value == 1.0 and single[11]._obj.value == 0.0          # alpha 1, beta 0
    assert batched[7:] == (100, 7, 0, 200, 5, 35, batched[13], 300, 7, 28, 3)
    assert batched[13]._obj.value == 0.0
