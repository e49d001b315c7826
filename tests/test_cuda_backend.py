"""The GPU backend's Python side, tested on any machine (no GPU, no CUDA driver needed).

Launch configurations and dtype dispatch are pure functions. The backend itself runs over
``cuda_fake``: CuPy answered by numpy, and every kernel launch checked against the kernel's C
signature in our ``.cu`` sources before a numpy emulation of the kernel runs. So each primitive's
argument preparation (axes, contiguity, transposes, placeholders, scalar types) is checked
against the numpy reference here; the real kernels are checked on a GPU by the
backend-parametrized suite (device "cuda") and ``benchmarks/gpu_check.py``.
"""
import json
import sys

import cuda_fake
import numpy as np
import pytest
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given
from hypothesis import strategies as st
from test_backends import CASES, REFERENCE, Sizes, assert_agrees_with_reference, run, sizes

import nnengine as nn
from nnengine import backends
from nnengine.backends import Backend, DeviceUnavailableError, get_backend
from nnengine.backends import cuda_graphs, cupy_backend
from nnengine.backends.cupy_backend import CUPY_PRIMITIVES, CupyBackend
from nnengine.kernels.cuda import captured_gemm, elementwise, gemm, launch, loader


class FakeGPU:
    """Context manager: a CupyBackend over the fake CuPy and the checked kernel emulations."""

    def __init__(self, device_count=1):
        self.launches = []
        self.device_count = device_count

    def __enter__(self):
        self.patch = pytest.MonkeyPatch()
        cupy = cuda_fake.fake_cupy()
        cupy.cuda.runtime.getDeviceCount = lambda: self.device_count
        self.patch.setitem(sys.modules, "cupy", cupy)
        self.patch.setattr(loader, "function", cuda_fake.fake_function_factory(self.launches))
        self.patch.setattr(loader, "pointer", cuda_fake.fake_pointer)
        self.patch.setattr(elementwise, "kernel", cuda_fake.fake_elementwise_kernel)
        self.patch.setattr(backends, "_INSTANCES", {})        # backends made here stay here
        self.cublas = cuda_fake.FakeCublas()
        self.patch.setattr(captured_gemm, "library", lambda: self.cublas)
        self.patch.setattr(captured_gemm, "_HANDLES", {})
        self.patch.setattr(cuda_graphs, "ENABLED", True)      # the fake GPU checks what a real one will run
        self.cupy = cupy
        return self

    def backend(self, device="cuda:0"):
        return CupyBackend(device)

    def __exit__(self, *exc_info):
        self.patch.undo()
        return False


# -- completeness ------------------------------------------------------------------------------
def test_cupy_backend_implements_every_primitive_itself():
    inherited = [name for name in Backend.primitives() if getattr(CupyBackend, name) is getattr(Backend, name)]
    assert not inherited, f"CupyBackend keeps the reference {inherited}"
    assert set(CUPY_PRIMITIVES) < set(Backend.primitives())


@pytest.mark.parametrize("route", gemm.ROUTES)
@pytest.mark.parametrize("name", sorted(CASES))
@given(s=sizes, seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_primitive_through_checked_launches_agrees_with_reference(name, route, s, seed, dtype):
    if route == "tiled" and name not in ("matmul", "dense_forward", "dense_backward"):
        return
    args = CASES[name](np.random.default_rng(seed), np.dtype(dtype), s)
    with FakeGPU() as gpu:
        gemm.set_gemm_route(route)
        try:
            assert_agrees_with_reference(gpu.backend(), name, args, dtype)
        finally:
            gemm.set_gemm_route(None)


def test_every_kernel_is_launched_and_checked_by_some_primitive():
    launched = set()
    with FakeGPU() as gpu:
        backend = gpu.backend()
        rng = np.random.default_rng(0)
        gemm.set_gemm_route("tiled")
        try:
            for name in sorted(CASES):
                for flag in (True, False):
                    for activation in ("none", "relu", "softmax"):
                        sizes = Sizes(((2, 3), (3,)), 3, 2, 4, flag, activation)
                        run(backend, name, CASES[name](rng, np.dtype(np.float32), sizes))
            backend.sum(backend.from_numpy(np.ones((1, 3 * launch.SEGMENT), np.float32)), (0, 1), False)
            backend.argmax(backend.from_numpy(np.ones((2, 3, 4), np.float32)), 1)
            backend.argmax(backend.from_numpy(np.ones(3 * launch.SEGMENT, np.float32)), None)
            nn.use_deterministic_algorithms(True)
            run(backend, "index_add", CASES["index_add"](rng, np.dtype(np.float32), sizes))
            backend.graph_recording.slots = cuda_fake.ImmediateSlots(gpu.cupy)     # as inside a CUDA Graph
            for name in ("sgd_update", "adam_update", "adam_update_many", "rmsprop_update", "adagrad_update",
                         "adamax_update", "nadam_update", "lion_update", "adadelta_update", "ftrl_update"):
                run(backend, name, CASES[name](rng, np.dtype(np.float32), sizes))
        finally:
            backend.graph_recording.slots = None
            gemm.set_gemm_route(None)
            nn.use_deterministic_algorithms(False)
        launched = {name for name, _, _ in gpu.launches}
    every = {kernel for source in loader.SOURCES for kernel in cuda_fake.signatures(source)}
    assert launched == every


# -- reductions: every path --------------------------------------------------------------------
@pytest.mark.parametrize("shape, axes", [
    ((1, 5 * launch.SEGMENT + 7), (1,)),          # one long row: two passes
    ((3 * launch.SEGMENT + 1,), (0,)),            # a long total
    ((4, 3000), (1,)),                            # a block per row
    ((700, 5), (1,)),                             # a warp per row
    ((3, 4, 5), (0, 2)),                          # non-adjacent axes: transposed first
    ((6, 4, 5), (1,)),                            # a middle axis
    ((3000, 7), (0,)),                            # few outputs: the middle axis cut into chunks
    ((2, 3), ()),                                 # no axis: a copy
])
@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_reductions_agree_with_reference(shape, axes, op, dtype):
    x = np.random.default_rng(1).uniform(-100, 100, shape).astype(dtype)
    with FakeGPU() as gpu:
        backend = gpu.backend()
        for keepdims in (False, True):
            got = backend.to_numpy(getattr(backend, op)(backend.from_numpy(x), axes, keepdims))
            expected = getattr(REFERENCE, op)(x, axes, keepdims)
            assert got.shape == expected.shape and got.dtype == expected.dtype
            # sums in another order may differ by rounding: a few ulps of the sum of |x| (exact for integers)
            scale = float(np.finfo(dtype).eps * np.abs(x).sum()) if np.dtype(dtype).kind == "f" else 0.0
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=4 * scale)


def test_empty_reductions_follow_numpy():
    with FakeGPU() as gpu:
        backend = gpu.backend()
        empty = backend.from_numpy(np.zeros((0, 3), np.float32))
        np.testing.assert_array_equal(backend.to_numpy(backend.sum(empty, (0,), False)), np.zeros(3))
        assert backend.max(empty, (1,), False).shape == (0,)
        with pytest.raises(ValueError, match="zero-size array"):
            backend.max(empty, (0,), False)
        with pytest.raises(ValueError, match="empty sequence"):
            backend.argmax(empty, 0)


def test_argmax_over_all_elements_and_along_a_middle_axis():
    x = np.random.default_rng(2).integers(0, 3, (3, 4, 5)).astype(np.float64)   # many ties: first one wins
    with FakeGPU() as gpu:
        backend = gpu.backend()
        assert int(backend.to_numpy(backend.argmax(backend.from_numpy(x), None))) == np.argmax(x)
        for axis in range(3):
            np.testing.assert_array_equal(backend.to_numpy(backend.argmax(backend.from_numpy(x), axis)),
                                          np.argmax(x, axis=axis))
        for where in (5, launch.SEGMENT - 1, launch.SEGMENT, 3 * launch.SEGMENT + 2):   # two passes over segments
            long = np.zeros(3 * launch.SEGMENT + 7, np.float32)
            long[[where, -1]] = 2.0                  # a tie with the last element: the first one wins
            long[where + 1:][:3] = np.nan if where == 5 else 1.0
            got = backend.to_numpy(backend.argmax(backend.from_numpy(long), None))
            assert got.shape == () and int(got) == np.argmax(long)


def test_integer_power_refuses_negative_exponents_as_numpy_does():
    with FakeGPU() as gpu:
        backend = gpu.backend()
        a, b = backend.from_numpy(np.array([2, 3], np.int64)), backend.from_numpy(np.array([3, -1], np.int64))
        with pytest.raises(ValueError, match="negative integer powers"):
            backend.power(a, b)
        np.testing.assert_array_equal(backend.power(a, backend.from_numpy(np.array([3, 2], np.int64))), [8, 9])


def test_float_only_operations_refuse_integer_operands():
    with FakeGPU() as gpu:
        backend = gpu.backend()
        with pytest.raises(TypeError, match="exp on cuda supports dtypes float32, float64; got int64"):
            backend.exp(backend.from_numpy(np.arange(3)))


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_index_add_takes_every_index_kind_and_dtype_as_numpy_does(dtype, deterministic):
    rng = np.random.default_rng(4)
    rows = rng.integers(-6, 6, 40)                    # repeats and negative rows
    cases = [((6, 5), (rows,), (40, 5)), ((6, 5), (rows, rng.integers(0, 5, 40)), (40,)),
             ((6, 5, 2), (rows[:7], 3), (7, 2)), ((6, 5), (slice(1, 4), [0, 2, 2]), (3, 3)),
             ((6, 5), (rng.random((6, 5)) > 0.5,), None), ((6, 5), 2, (5,)), ((4,), (np.array([], int),), (0,)),
             ((3, 6, 2), (slice(None), rows[:9]), (3, 9, 2)), ((2, 3, 6), (slice(None), slice(None), rows[:4]),
                                                                (2, 3, 4))]
    nn.use_deterministic_algorithms(deterministic)
    try:
        with FakeGPU() as gpu:
            backend = gpu.backend()
            for shape, index, values_shape in cases:
                count = int(np.count_nonzero(index[0])) if values_shape is None else None
                values = rng.integers(-9, 9, (count,) if count is not None else values_shape).astype(dtype)
                expected = np.zeros(shape, dtype)
                np.add.at(expected, index, values)
                target = backend.from_numpy(np.zeros(shape, dtype))
                device_index = tuple(backend.from_numpy(p) if isinstance(p, np.ndarray) else p for p in index) \
                    if isinstance(index, tuple) else index
                backend.index_add(target, device_index, backend.from_numpy(values))
                np.testing.assert_array_equal(backend.to_numpy(target), expected)
            kernels = {name for name, _, _ in gpu.launches}
    finally:
        nn.use_deterministic_algorithms(False)
    assert kernels == ({"scatter_add_sorted"} if deterministic else {"scatter_add"})
    assert not nn.are_deterministic_algorithms_enabled()
    with pytest.raises(TypeError, match="True or False"):
        nn.use_deterministic_algorithms("yes")


def test_index_add_of_embedding_rows_makes_no_array_as_large_as_the_table():
    with FakeGPU() as gpu:
        backend = gpu.backend()
        table = backend.from_numpy(np.zeros((10_000, 8), np.float32))
        rows = backend.from_numpy(np.array([3, 3, 9_999]))
        allocated = []
        real_arange = gpu.cupy.arange
        gpu.cupy.arange = lambda n, *args, **kwargs: allocated.append(n) or real_arange(n, *args, **kwargs)
        backend.index_add(table, (rows,), backend.from_numpy(np.ones((3, 8), np.float32)))
        assert max(allocated) == 8 and backend.to_numpy(table)[3].tolist() == [2.0] * 8


def test_optimizer_updates_refuse_non_contiguous_arrays():
    with FakeGPU() as gpu:
        backend = gpu.backend()
        param = np.zeros((3, 4), np.float32).T
        with pytest.raises(ValueError, match="C-contiguous"):
            backend.adagrad_update(param, np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32), 0.1, 1e-7, 0)


def test_tiled_gemm_takes_transposed_views_without_copies_and_batches():
    rng = np.random.default_rng(3)
    with FakeGPU() as gpu:
        gemm.set_gemm_route("tiled")
        try:
            backend = gpu.backend()
            up = backend.from_numpy
            a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 5))
            got = backend.matmul(up(a), up(b), transpose_a=True, transpose_b=True)
            np.testing.assert_allclose(got, a.T @ b.T, rtol=1e-12)
            batched, shared = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(5, 6))
            np.testing.assert_allclose(backend.matmul(up(batched), up(shared)), batched @ shared, rtol=1e-12)
            zero_k = backend.matmul(up(np.ones((2, 0))), up(np.ones((0, 3))))
            np.testing.assert_array_equal(zero_k, np.zeros((2, 3)))
        finally:
            gemm.set_gemm_route(None)


def test_the_gemm_route_is_chosen_by_code_or_environment(monkeypatch):
    monkeypatch.delenv(gemm.ENV_VARIABLE, raising=False)
    assert gemm.gemm_route() == "cublas"
    monkeypatch.setenv(gemm.ENV_VARIABLE, "tiled")
    assert gemm.gemm_route() == "tiled"
    gemm.set_gemm_route("cublas")
    try:
        assert gemm.gemm_route() == "cublas"
    finally:
        gemm.set_gemm_route(None)
    monkeypatch.setenv(gemm.ENV_VARIABLE, "magma")
    with pytest.raises(ValueError, match="NNENGINE_CUDA_GEMM must be one of"):
        gemm.gemm_route()
    with pytest.raises(ValueError, match="GEMM route must be one of"):
        gemm.set_gemm_route("blas")


# -- devices and errors ------------------------------------------------------------------------
def test_several_gpus_each_primitive_runs_with_its_gpu_current():
    with FakeGPU(device_count=2) as gpu:
        chosen = []
        current = {"device": 0}
        gpu.cupy.cuda.runtime.getDevice = lambda: current["device"]
        gpu.cupy.cuda.runtime.setDevice = lambda i: (chosen.append(i), current.update(device=i))
        backend = gpu.backend("cuda:1")
        x = backend.from_numpy(np.ones(2))
        backend.add(x, x)
        backend.add(x, x)
        assert chosen == [1]                      # switched once, then already current
        assert backend.add.__doc__ == CupyBackend.add.__doc__


def test_missing_cupy_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)       # makes `import cupy` raise ImportError
    with pytest.raises(DeviceUnavailableError, match=r'nnengine\[cuda12\].*nnengine\[cuda13\]'):
        cupy_backend.import_cupy()


def test_no_gpu_and_a_missing_gpu_index_are_clear_errors():
    with FakeGPU(device_count=2) as gpu:
        with pytest.raises(DeviceUnavailableError, match=r"'cuda:2'.*2 CUDA GPU\(s\), 'cuda:0' to 'cuda:1'"):
            gpu.backend("cuda:2")
        gpu.cupy.cuda.is_available = lambda: False
        with pytest.raises(DeviceUnavailableError, match="sees no CUDA GPU"):
            gpu.backend("cuda:0")


def test_without_a_gpu_cuda_tensors_are_a_clear_error_and_tests_skip():
    if nn.is_device_available("cuda"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceUnavailableError, match="'cuda:0' is not available|CuPy"):
        get_backend("cuda")
    with pytest.raises(DeviceUnavailableError):
        nn.tensor([1.0], device="cuda").numpy()


# -- launch configurations and dtype dispatch (pure functions) --------------------------------
@given(st.integers(0, 10**9))
def test_grid_stride_launch_covers_any_size_with_bounded_blocks(n):
    (blocks,), (threads,) = launch.grid_stride(n)
    assert 1 <= blocks <= launch.MAX_GRID_STRIDE_BLOCKS and threads == launch.THREADS
    assert blocks == launch.MAX_GRID_STRIDE_BLOCKS or blocks * threads >= n


@given(st.integers(0, 10**7), st.integers(1, 10**5))
def test_row_column_and_middle_launches_cover_their_work(rows, cols):
    (blocks,), block = launch.rows(rows)
    assert block == (32, launch.WARPS_PER_BLOCK) and blocks * launch.WARPS_PER_BLOCK >= rows
    (col_blocks, row_blocks), _ = launch.columns(rows, cols)
    assert col_blocks * 32 >= cols and 1 <= row_blocks <= launch.BIAS_GRAD_ROW_BLOCKS
    (middle_blocks,), _ = launch.middle(rows, 1, cols)
    assert middle_blocks == max(rows * launch.ceil_div(cols, 32), 1)
    (matrix_x, matrix_y), _ = launch.matrix(rows, cols)
    assert matrix_x * 32 >= cols and 1 <= matrix_y <= launch.MAX_GRID_Y


@given(st.integers(1, 1000), st.integers(1, 10**7), st.integers(1, 1000))
def test_a_middle_reduction_with_few_outputs_is_cut_into_chunks_that_cover_it(outer, reduced, inner):
    chunk = launch.middle_chunk(outer, reduced, inner)
    chunks = launch.ceil_div(reduced, chunk)
    assert 1 <= chunk <= reduced and (chunks - 1) * chunk < reduced <= chunks * chunk
    (blocks,), _ = launch.middle(outer, chunks, inner)
    if chunks > 1:
        assert 2 * chunk >= launch.MIN_CHUNK and blocks <= 2 * launch.MIDDLE_TARGET_BLOCKS
    else:
        assert blocks >= launch.MIDDLE_TARGET_BLOCKS or reduced < 2 * launch.MIN_CHUNK
    assert launch.ceil_div(launch.middle_chunk(1, 100_000, 10), 1) < 100_000      # the (100000, 10) sum splits


def test_gemm_launch_tiles_the_output_and_refuses_oversized_batches():
    grid, block = launch.gemm(300, 129, 7)
    assert grid == (6, 1, 7) and block == (16, 16)            # 3 row tiles x 2 column tiles, on x
    with pytest.raises(ValueError, match="1 to 65535"):
        launch.gemm(4, 4, launch.MAX_GRID_Z + 1)
    tall, _ = launch.gemm(9_000_000, 64, 1)                     # y would stop at 65535 tiles (8.4M rows)
    assert tall == (launch.ceil_div(9_000_000, 128), 1, 1)
    with pytest.raises(ValueError, match="more than CUDA"):
        launch.gemm(2**40, 2**20, 1)


def test_long_rows_get_a_block_and_short_rows_a_warp():
    assert launch.use_block_per_row(1, 5000) and launch.use_block_per_row(10, 300)
    assert not launch.use_block_per_row(10, 100) and not launch.use_block_per_row(5000, 300)


def test_dtype_dispatch_names_the_instantiation_or_refuses_clearly():
    assert loader.c_type(np.float32) == "float" and loader.c_type(np.float64) == "double"
    assert loader.c_type(np.int64, loader.ALL_TYPES) == "long long"
    with pytest.raises(TypeError, match="softmax_rows on cuda supports dtypes float32, float64; got float16"):
        loader.c_type(np.float16, what="softmax_rows")
    elementwise.check_dtype("add", np.int32)
    with pytest.raises(TypeError, match="sqrt"):
        elementwise.check_dtype("sqrt", np.int32)


def test_sources_are_compiled_once_per_process_and_functions_looked_up_once(monkeypatch):
    made = []

    class RawModule:
        def __init__(self, code, name_expressions):
            made.append(name_expressions)
            self.lookups = []

        def get_function(self, expression):
            self.lookups.append(expression)
            return expression

    fake = cuda_fake.fake_cupy()
    fake.RawModule = RawModule
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(loader, "_MODULES", {})
    monkeypatch.setattr(loader, "_FUNCTIONS", {})
    assert loader.function("nn.cu", "softmax_rows", np.float32) == "softmax_rows<float>"
    assert loader.function("nn.cu", "softmax_rows", np.float32) == "softmax_rows<float>"
    assert loader.function("nn.cu", "softmax_rows", np.float64) == "softmax_rows<double>"
    assert len(made) == 1 and "softmax_xent_index<double>" in made[0]
    assert loader.module("nn.cu").lookups == ["softmax_rows<float>", "softmax_rows<double>"]
    with pytest.raises(ValueError, match="no CUDA source 'missing.cu'"):
        loader.module("missing.cu")


# -- the whole GPU path end to end, on the fake -----------------------------------------------
def test_keras_model_trains_on_the_cuda_backend_as_on_the_cpu():
    def losses(device):
        nn.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((64, 10)).astype(np.float32), rng.integers(0, 3, 64)
        model = nn.Sequential([nn.layers.Dense(8, activation="tanh", input_shape=(10,)),
                               nn.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.to(device)
        return model.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"]

    with FakeGPU():
        on_gpu = losses("cuda")
    np.testing.assert_allclose(on_gpu, losses("numpy"), rtol=1e-5)


def test_a_cnn_with_normalization_trains_on_the_cuda_backend_as_on_the_cpu():
    # every image-layer kernel (im2col and col2im, both poolings, moments, normalize and its backward over
    # columns and rows) through a whole fit, compiled, with the window tables uploaded once and inverted once
    def losses(device, launches=None):
        nn.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((24, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 24)
        layers = nn.layers
        model = nn.Sequential([nn.Input((6, 6, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                               layers.BatchNormalization(), layers.MaxPooling2D(2), layers.Conv2D(3, 2, padding="same"),
                               layers.AveragePooling2D(2, 1), layers.Flatten(), layers.LayerNormalization(),
                               layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.to(device)
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"]
        assert model.jit_report()["fallback_reason"] is None
        return history

    with FakeGPU() as gpu:
        on_gpu = losses("cuda")
        kernels = {name for name, _, _ in gpu.launches}
        sorts = cuda_fake._LOG["current"].operations.count("cupy argsort")
    # the inverse of each window table that a backward reads (conv2's, both poolings') is made once, not per step
    assert sorts == 3
    assert {"window_gather", "window_scatter", "max_pool", "max_pool_backward", "average_pool",
            "average_pool_backward", "column_moments", "merge_column_moments", "row_moments", "normalize",
            "column_gradient_sums", "finish_gradient_sums", "normalize_dx_columns", "normalize_dx_rows"} <= kernels
    np.testing.assert_allclose(on_gpu, losses("numpy"), rtol=2e-5)


def test_gpu_check_benchmarks_run_through_on_the_fake(monkeypatch):
    import sys as system
    from pathlib import Path
    system.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import gpu_check
    monkeypatch.setattr(gpu_check, "GEMM_SIZES", (64, 96))
    monkeypatch.setattr(gpu_check, "QUICK_FUSED_SHAPE", (64, 256))
    monkeypatch.setattr(gpu_check, "TRAINING_MODELS", {"document": ((10, 16, 3), 8), "mlp4096": ((12, 8, 3), 16)})
    monkeypatch.setattr(gpu_check, "CNN_BATCH", 2)
    from benchmarks import recurrent
    monkeypatch.setattr(recurrent, "SIZES", (4, 3, 2, 5))
    with FakeGPU():
        assert gpu_check.gpu_name() == "Fake GPU"
        assert gpu_check.preflight() == dict.fromkeys(
            ["raw_module", "elementwise_kernel", "gemm_routes", "multi_tensor_adam", "training_step", "cuda_graph",
             "recurrent_cells", "new_layers"], "ok")
        gemm_rows = gpu_check.bench_gemm(quick=True)
        fused = gpu_check.bench_fused(quick=True)
        training = gpu_check.bench_training(quick=True)
    assert [row["n"] for row in gemm_rows] == [64, 96] and gemm_rows[0]["max_relative_difference"] < 1e-5
    assert {k["kernel"] for k in fused["kernels"]} >= {"bias_relu", "softmax_cross_entropy", "adam_update",
                                                       "adam_update_many_16"}
    assert all(row["nnengine_cupy_s"] > 0 and row["nnengine_numba_s"] > 0 for row in training)
    assert [row["graph_launches_per_step"] for row in training[:2]] == [1.0, 1.0]
    assert [row["model"] for row in training] == ["document", "mlp4096", "cnn_mnist", "lstm", "gru"]
    summary = gpu_check.summarize({"gemm": gemm_rows, "fused": fused, "training": training})
    assert "fused_min_copy_fraction" in summary and "document_numba_over_cupy" in summary
    assert summary["document_graph_launches_per_step"] == 1.0 and "| document compiled step" in gpu_check.markdown(
        {"summary": {**summary, "document_torch_over_graph": 2.0}, "training": training})


def test_gpu_check_stops_after_a_failed_preflight_and_says_why(monkeypatch, tmp_path):
    import sys as system
    from pathlib import Path
    system.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import gpu_check
    monkeypatch.setattr(gpu_check, "gpu_name", lambda: "Fake GPU")
    monkeypatch.setattr(gpu_check, "preflight", lambda: {"raw_module": "ok", "multi_tensor_adam": "CUDADriverError: x"})
    monkeypatch.setattr(gpu_check, "run_tests", lambda outdir: pytest.fail("tests ran after a failed preflight"))
    assert gpu_check.main([str(tmp_path)]) == 3
    report = (tmp_path / "gpu_check.md").read_text()
    assert "| multi_tensor_adam | CUDADriverError: x |" in report and "the preflight failed" in report
    assert "| preflight |" in report and "| tests | - | 180 |" in report        # expected seconds stated


def test_gpu_check_keeps_going_after_a_failed_preflight_when_asked_and_keeps_each_failure(monkeypatch, tmp_path):
    import sys as system
    from pathlib import Path
    system.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import gpu_check
    ran = []
    monkeypatch.setattr(gpu_check, "gpu_name", lambda: "Fake GPU")
    monkeypatch.setattr(gpu_check, "preflight", lambda: {"raw_module": "ok", "cuda_graph": "RuntimeError: x"})
    monkeypatch.setattr(gpu_check, "run_tests", lambda outdir: ran.append("tests") or {
        "exit_status": 1, "summary": "1 failed", "seconds": 1.0})

    def failing_gemm(quick):
        raise RuntimeError("cuBLAS said no")
    monkeypatch.setattr(gpu_check, "bench_gemm", failing_gemm)
    monkeypatch.setattr(gpu_check, "bench_fused", lambda quick: ran.append("fused") or None)
    monkeypatch.setattr(gpu_check, "bench_training", lambda quick, cpu: ran.append(("training", cpu)) or [])
    assert gpu_check.main([str(tmp_path), "--keep-going", "--skip-cpu"]) == 3
    assert ran == [("training", False), "fused", "tests"]        # the compiled step's targets first, tests last
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["gemm_error"].startswith("RuntimeError: cuBLAS said no (at test_cuda_backend.py:")
    assert "| cuda_graph | RuntimeError: x |" in (tmp_path / "gpu_check.md").read_text()


def test_gpu_check_training_keeps_the_other_measurements_when_one_fails(monkeypatch):
    import sys as system
    from pathlib import Path
    system.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import gpu_check
    monkeypatch.setattr(gpu_check, "TRAINING_MODELS", {"document": ((10, 16, 3), 8)})
    monkeypatch.setattr(gpu_check, "CNN_BATCH", 2)

    def no_graph(sizes, batch):
        raise RuntimeError("the compiled step is not a CUDA Graph: because")
    monkeypatch.setattr(gpu_check, "_compiled_step", no_graph)
    with FakeGPU():
        rows = gpu_check.bench_training(quick=True, cpu=False)
    document = rows[0]
    assert document["nnengine_cupy_graph_s"] is None and "because" in document["nnengine_cupy_graph_s_error"]
    assert document["nnengine_cupy_s"] > 0 and document["nnengine_fit_step_s"] > 0
    assert "nnengine_numba_s" not in document
    report = gpu_check.markdown({"training": rows})
    assert "| document |" in report and "failed" in report and "nnengine_cupy_graph_s: RuntimeError" in report


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("run_eagerly", [True, False])
def test_a_training_step_of_the_document_model_is_at_most_20_device_operations_and_no_sync(loss, run_eagerly):
    """Counted on the fake GPU: kernels, cuBLAS calls, fills, copies and transfers, and host reads. Forward,
    loss, backward and Adam take at most 20; the accuracy's hits, counted in the step since the host no longer
    reads the predictions, take one kernel more."""
    log = cuda_fake.DeviceLog()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    y = labels if loss.startswith("sparse") else np.eye(10, dtype=np.float32)[labels]
    with FakeGPU():
        cuda_fake._LOG["current"] = log
        model = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(10,)),
                               nn.layers.Dense(32, activation="relu"), nn.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"], run_eagerly=run_eagerly)
        model.to("cuda")
        inside = {}
        run = model._compiler.run

        def counted(*args, **kwargs):       # the device step: forward, loss, backward, Adam
            operations, syncs = len(log.operations), len(log.syncs)
            result = run(*args, **kwargs)
            inside["operations"] = log.operations[operations:]
            inside["syncs"] = log.syncs[syncs:]
            return result
        model._compiler.run = counted
        for _ in range(3):                  # the first step makes Adam's slots, the second is captured
            log.clear()
            model.train_on_batch(x, y)
    hits = [op for op in inside["operations"] if op.startswith("argmax_hits")]
    assert hits == ["argmax_hits_labels" if loss.startswith("sparse") else "argmax_hits_rows"], inside["operations"]
    assert len(inside["operations"]) - len(hits) <= 20, inside["operations"]
    assert inside["syncs"] == [], inside["syncs"]
    assert log.operations.count("upload") == 2                       # the batch: inputs and targets
    assert "adam_update_many" in inside["operations"] and "copy" not in inside["operations"]
    assert log.syncs == ["asnumpy", "asnumpy"]                       # after the step: the loss and the hits


def test_a_cnn_with_batchnorm_and_an_embedding_model_train_on_the_cuda_backend_as_on_the_cpu():
    def histories(device):
        nn.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        images, labels = rng.standard_normal((24, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 24)
        cnn = nn.Sequential([nn.layers.Input((6, 6, 1)), nn.layers.Conv2D(4, 3, padding="same", activation="relu"),
                             nn.layers.BatchNormalization(), nn.layers.MaxPooling2D(2),
                             nn.layers.AveragePooling2D(2, padding="same"), nn.layers.Flatten(),
                             nn.layers.Dense(3, activation="softmax")])
        words = nn.Sequential([nn.layers.Input((5,), dtype="int32"), nn.layers.Embedding(9, 3),
                               nn.layers.LayerNormalization(), nn.layers.GlobalAveragePooling1D(),
                               nn.layers.Dense(3, activation="softmax")])
        losses = []
        for model, x in ((cnn, images), (words, rng.integers(0, 9, (24, 5)))):
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.to(device)
            losses += model.fit(x, labels, epochs=2, batch_size=8, verbose=0).history["loss"]
        return losses

    with FakeGPU():
        on_gpu = histories("cuda")
    np.testing.assert_allclose(on_gpu, histories("numpy"), rtol=1e-5)


def test_recurrent_models_train_on_the_fake_gpu_as_on_the_reference():
    """The CUDA backend's step loop and kernel launches (checked against their C signatures) over the fake GPU."""
    def histories(device):
        nn.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((16, 5, 3)).astype(np.float32), rng.integers(0, 3, 16)
        layers = nn.layers
        model = nn.Sequential([nn.Input((5, 3)), layers.LSTM(4, return_sequences=True, go_backwards=True),
                               layers.GRU(3, return_sequences=True),
                               layers.GRU(3, reset_after=False, return_sequences=True), layers.SimpleRNN(3),
                               layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.to(device)
        return model.fit(x, y, epochs=3, batch_size=8, verbose=0).history["loss"]

    with FakeGPU() as gpu:
        on_gpu = histories("cuda")
        launched = {name for name, _, _ in gpu.launches}
    assert {"lstm_step", "gru_step", "gru_gates_step", "rnn_step_backward", "gru_reset_step_backward"} <= launched
    np.testing.assert_allclose(on_gpu, histories("numpy"), rtol=1e-5)


def _trains_on_the_fake_gpu_as_on_the_reference(make_model, x, y, loss="sparse_categorical_crossentropy",
                                                metric="accuracy"):
    """Fit ``make_model()`` (compiled with Adam, ``loss`` and ``metric``) for two epochs on the fake GPU and on the
    numpy reference, from the same seed; the histories agree."""
    def history(device):
        nn.utils.set_random_seed(0)
        model = make_model()
        model.compile(optimizer="adam", loss=loss, metrics=[metric])
        model.to(device)
        return model.fit(x, y, epochs=2, batch_size=8, verbose=0).history

    with FakeGPU():
        on_gpu = history("cuda")
    reference = history("numpy")
    for key in ("loss", metric):
        np.testing.assert_allclose(on_gpu[key], reference[key], rtol=1e-5)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the fake graph capture
def test_a_transposed_convolution_trains_on_the_fake_gpu_as_on_the_reference():
    """Conv2DTranspose is a product and the backend's window_scatter (col2im): both run on CuPy."""
    rng = np.random.default_rng(0)
    _trains_on_the_fake_gpu_as_on_the_reference(
        lambda: nn.Sequential([nn.Input((4, 4, 2)), nn.layers.Conv2DTranspose(3, 3, strides=2, padding="same",
                                                                               activation="relu"),
                               nn.layers.Flatten(), nn.layers.Dense(3, activation="softmax")]),
        rng.standard_normal((16, 4, 4, 2)).astype("float32"), rng.integers(0, 3, 16))


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the fake graph capture
def test_a_model_with_dropout_trains_compiled_on_the_fake_gpu_as_on_the_reference():
    """The masks are drawn on the host before each step and uploaded as the step's inputs (dropout_masks.py)."""
    rng = np.random.default_rng(0)
    _trains_on_the_fake_gpu_as_on_the_reference(
        lambda: nn.Sequential([nn.Input((5,)), nn.layers.Dense(8, activation="relu"), nn.layers.Dropout(0.4),
                               nn.layers.Dense(3, activation="softmax")]),
        rng.standard_normal((32, 5)).astype("float32"), rng.integers(0, 3, 32))


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the fake graph capture
@pytest.mark.parametrize("activation, loss, output", [
    ("mish", "categorical_focal_crossentropy", "softmax"), ("selu", "categorical_hinge", "log_softmax"),
    ("hard_silu", "binary_focal_crossentropy", "sigmoid"), ("celu", "squared_hinge", "tanh")])
def test_keras_3_activations_and_losses_train_on_the_fake_gpu_as_on_the_reference(activation, loss, output):
    rng = np.random.default_rng(0)
    _trains_on_the_fake_gpu_as_on_the_reference(
        lambda: nn.Sequential([nn.Input((5,)), nn.layers.Dense(6, activation=activation),
                               nn.layers.Dense(3, activation=output)]),
        rng.standard_normal((16, 5)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 16)], loss,
        "categorical_accuracy")


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the fake graph capture
def test_a_masked_model_trains_on_the_fake_gpu_as_on_the_reference():                       # runs on staging data
    """Padded sequences (Keras's masks): the CUDA backend runs the reference loop with the step mask."""
    layers = nn.layers
    rng = np.random.default_rng(0)
    _trains_on_the_fake_gpu_as_on_the_reference(
        lambda: nn.Sequential([nn.Input((5,)), layers.Embedding(6, 3, mask_zero=True),
                               layers.Bidirectional(layers.GRU(3, return_sequences=True)),
                               layers.Dense(3, activation="softmax")]),
        rng.integers(0, 6, (16, 5)), rng.integers(0, 3, (16, 5)))


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the fake graph capture
def test_an_attention_model_trains_on_the_fake_gpu_as_on_the_reference():                  # runs on staging data
    """MultiHeadAttention with Keras's masks and a causal mask: batched matmuls, softmax and the shared causal
    constant on the CUDA backend, as on the numpy reference."""
    layers = nn.layers

    def make_model():
        inputs = nn.keras.Input((5,))
        embedded = layers.Embedding(6, 4, mask_zero=True)(inputs)
        attended = layers.MultiHeadAttention(2, 3, use_gate=True)(embedded, embedded, use_causal_mask=True)
        return nn.keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(attended)))
    rng = np.random.default_rng(0)
    _trains_on_the_fake_gpu_as_on_the_reference(make_model, rng.integers(0, 6, (16, 5)), rng.integers(0, 3, 16))


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the fake graph capture
def test_a_seq2seq_model_trains_on_the_fake_gpu_as_on_the_reference():                     # runs on staging data
    """An LSTM encoder's last state and carry start an LSTM decoder: the CUDA backend runs the reference loop from
    the given state, and hands the gradient of the last carry back through time."""
    layers = nn.layers

    def make_model():
        source, target = nn.keras.Input((4, 3)), nn.keras.Input((5, 2))
        _, h, c = layers.LSTM(4, return_state=True)(source)
        decoded = layers.LSTM(4, return_sequences=True)(target, initial_state=[h, c])
        return nn.keras.Model([source, target], layers.Dense(3, activation="softmax")(decoded))
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((16, 4, 3)).astype("float32"), rng.standard_normal((16, 5, 2)).astype("float32")]
    _trains_on_the_fake_gpu_as_on_the_reference(make_model, x, rng.integers(0, 3, (16, 5)))
