"""The numba backend on the inputs property tests rarely draw: empty and one-element arrays,
non-contiguous views, every broadcasting loop shape, the parallel path, NaN, integers, both GEMM routes.
Every result is compared with the numpy reference backend."""
import numpy as np
import pytest
from conftest import tolerance
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import assume, given
from hypothesis import strategies as st

from nnengine.backends.numba_backend import NumbaBackend
from nnengine.backends.numpy_backend import NumpyBackend
from nnengine.kernels.cpu import config

NUMBA, NUMPY = NumbaBackend("cpu"), NumpyBackend("numpy")
UNARY = ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "erf"]
BINARY = ["add", "sub", "mul", "div", "power", "maximum", "minimum"]
COMPARE = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]


@pytest.fixture(autouse=True, params=["numpy below 1024", "kernels always"])
def small_path(request, monkeypatch):
    """Every test twice: as configured (tiny arithmetic on numpy's ufuncs) and with the kernels for every size."""
    if request.param == "kernels always":
        monkeypatch.setattr(config, "NUMPY_MAX_ELEMENTS", 0)
    return request.param


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "minimum", "sum"])
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=40),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_the_tiny_path_is_bitwise_the_kernels_for_exact_operations(name, values, dtype):
    a = np.array(values, dtype)
    b = a[::-1].copy()
    if name == "sum":     # where finite terms can overflow, the order decides between inf and nan: no rounding then
        assume(np.abs(a[np.isfinite(a)].astype(np.float64)).sum() < np.finfo(dtype).max)
    tiny = NUMBA.sum(a, (0,), False) if name == "sum" else getattr(NUMBA, name)(a, b)
    previous, config.NUMPY_MAX_ELEMENTS = config.NUMPY_MAX_ELEMENTS, 0
    try:
        kernel = NUMBA.sum(a, (0,), False) if name == "sum" else getattr(NUMBA, name)(a, b)
    finally:
        config.NUMPY_MAX_ELEMENTS = previous
    assert tiny.shape == kernel.shape and tiny.dtype == kernel.dtype and isinstance(tiny, np.ndarray)
    if name == "sum":      # a total: numpy's pairwise order against the kernel's lanes, both within rounding
        np.testing.assert_allclose(tiny, kernel, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6,
                                   equal_nan=True)
    else:
        np.testing.assert_array_equal(tiny, kernel)


def same(name, *args, dtype=np.float32):
    expected = getattr(NUMPY, name)(*args)
    got = getattr(NUMBA, name)(*args)
    expected, got = (expected if isinstance(expected, tuple) else (expected,)), (got if isinstance(got, tuple)
                                                                                 else (got,))
    for g, e in zip(got, expected):
        if e is None:
            assert g is None
            continue
        assert g.shape == e.shape and g.dtype == e.dtype, (name, g.shape, e.shape, g.dtype, e.dtype)
        np.testing.assert_allclose(g, e, **tolerance(dtype), equal_nan=True)


def positive(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype(dtype)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (1,), (), (1, 1), (3, 1, 2)])
def test_unary_on_empty_scalar_and_one_element_arrays(name, shape):
    same(name, positive(shape))


@pytest.mark.parametrize("name", BINARY + COMPARE)
@pytest.mark.parametrize("shapes", [
    ((4, 5), (4, 5)),       # same
    ((4, 5), ()),           # scalar right
    ((), (4, 5)),           # scalar left
    ((4, 5), (5,)),         # row right
    ((1, 5), (4, 5)),       # row left
    ((2, 3, 4), (3, 4)),    # row of a 3-D output
    ((4, 1), (1, 5)),       # outer product shape: materialised
    ((4, 5), (4, 1)),       # column: materialised
    ((0, 5), (5,)),         # empty
    ((1,), (1,)),           # one element
])
def test_binary_and_compare_on_every_broadcast_shape(name, shapes):
    a, b = positive(shapes[0], seed=1), positive(shapes[1], seed=2)
    same(name, a, b)
    if name in COMPARE:       # ties matter for comparisons
        same(name, a, a.copy())


@pytest.mark.parametrize("name", ["add", "mul", "maximum", "less", "exp", "relu"])
def test_non_contiguous_inputs(name):
    x = positive((6, 8), seed=3)
    a, b = x.T, x[::2, 1::2]
    if name in UNARY:
        same(name, a)
        same(name, b)
    else:
        same(name, a, positive((8, 6), seed=4)[:, ::-1])
        same(name, b, b[::-1])


def test_parallel_path_matches(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_ELEMENTS", 16)
    monkeypatch.setattr(config, "PARALLEL_MIN_STREAMING_ELEMENTS", 16)
    x, y = positive((40, 30), seed=5), positive((40, 30), seed=6)
    for name in ("add", "mul", "div", "power", "maximum"):
        same(name, x, y)
    for name in ("exp", "tanh", "sigmoid", "relu", "neg"):
        same(name, x)
    wide = positive((80, 70), seed=9)                  # past SMALL_DENSE_FLOPS: a product, then bias + activation
    for activation in ("relu", "tanh", "none"):
        same("dense_forward", wide, positive((70, 60), seed=10) / 70, positive(60, seed=11), activation)
    for axis in (0, 1):
        same("softmax", x, axis)
        same("log_softmax", x, axis)
    same("softmax_cross_entropy", x, np.arange(40) % 30, True)
    same("softmax_cross_entropy", x, y, True)
    param = positive(1200, seed=7)
    for update in ("sgd_update", "adam_update", "rmsprop_update", "adagrad_update"):
        _same_update(update, param)


def _same_update(name, param):
    rng = np.random.default_rng(8)
    grad = rng.standard_normal(param.shape).astype(param.dtype)

    def states(count):
        return [np.abs(rng.standard_normal(param.shape)).astype(param.dtype) for _ in range(count)]

    args = {"sgd_update": lambda s: (s[0], 0.1, 0.9, True, 0.01),
            "adam_update": lambda s: (s[0], s[1], s[2], 4, 0.01, 0.9, 0.999, 1e-7, True, 0.004),
            "rmsprop_update": lambda s: (s[0] + 1, s[1] * 0.1, s[2], 0.01, 0.9, 0.5, 1e-7, True, 0.0),
            "adagrad_update": lambda s: (s[0], 0.01, 1e-7, 0.0)}[name]
    state = states(3)
    mine = [param.copy(), grad.copy(), *[a.copy() if isinstance(a, np.ndarray) else a for a in args(state)]]
    reference = [param.copy(), grad.copy(), *[a.copy() if isinstance(a, np.ndarray) else a for a in args(state)]]
    getattr(NUMBA, name)(*mine)
    getattr(NUMPY, name)(*reference)
    for got, expected in zip(mine, reference):
        if isinstance(got, np.ndarray):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axes, keepdims", [((0,), False), ((1,), True), ((2,), False), ((0, 2), False),
                                            ((0, 1, 2), True), ((), False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_reductions_over_any_axes_and_dtypes(axes, keepdims, dtype):
    x = (np.random.default_rng(9).standard_normal((3, 37, 5)) * 10).astype(dtype)
    same("sum", x, axes, keepdims, dtype=np.float64 if dtype == np.int64 else dtype)
    if axes:
        same("max", x, axes, keepdims, dtype=dtype)
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(NUMBA.argmax(x, axis), NUMPY.argmax(x, axis))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_over_the_whole_float_range(dtype):
    x = np.array([-1e4, -100, -87.5, -87, -10, -1e-6, 0, 1e-6, 0.3, 1, 20, 88, 88.5, 100, np.inf, -np.inf, np.nan],
                 dtype)
    x = np.concatenate([x, np.random.default_rng(13).uniform(-90, 90, 1000).astype(dtype)])
    with np.errstate(over="ignore"):
        same("exp", x, dtype=dtype)


def test_reductions_propagate_nan_and_find_the_first_maximum():
    x = np.array([[1.0, np.nan, 3.0, 3.0], [2.0, 5.0, 5.0, -1.0]], np.float32)
    for axes in ((1,), (0,)):
        same("max", x, axes, False)
    np.testing.assert_array_equal(NUMBA.argmax(x, 1), NUMPY.argmax(x, 1))
    long = np.ones(100, np.float32)
    long[77] = np.nan
    assert np.isnan(NUMBA.max(long, (0,), False))
    assert np.isnan(NUMBA.relu(np.array([np.nan], np.float32))[0])


def test_index_add_accumulates_repeated_positions():
    for index in [(np.array([0, 2, 0, 0]),), (np.array([1, 1]), np.array([0, 0])), (slice(1, 3),)]:
        target_numba, target_numpy = np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32)
        values = np.ones_like(target_numpy[index])
        NUMBA.index_add(target_numba, index, values)
        NUMPY.index_add(target_numpy, index, values)
        np.testing.assert_array_equal(target_numba, target_numpy)


@pytest.mark.parametrize("route", ["numba", "blas"])
@given(m=st.integers(1, 70), k=st.integers(1, 300), n=st.integers(1, 300), transpose_a=st.booleans(),
       transpose_b=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_matmul_on_both_gemm_routes(route, m, k, n, transpose_a, transpose_b, dtype):
    previous = config.set_gemm_route(route)
    try:
        rng = np.random.default_rng(m * 1000 + n)
        a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
        got = NUMBA.matmul(a, b, transpose_a, transpose_b)
        expected = NUMPY.matmul(a, b, transpose_a, transpose_b)
        bound = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got, expected, **bound)     # float32: k-term sums, rounding ~ k * eps
    finally:
        config.set_gemm_route(previous)


def test_batched_matmul_broadcasts_batch_axes():
    rng = np.random.default_rng(10)
    a, b = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2))
    same("matmul", a, b, False, False, dtype=np.float64)


def test_gemm_route_is_checked():
    with pytest.raises(ValueError, match=r"set_gemm_route must be one of \('blas', 'numba'\), got 'cuda'"):
        config.set_gemm_route("cuda")


@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("route", ["numba", "blas"])
def test_large_dense_layers_take_the_gemm_path(activation, route, monkeypatch):
    monkeypatch.setattr(config, "SMALL_DENSE_FLOPS", 0)        # force GEMM + fused epilogue
    previous = config.set_gemm_route(route)
    try:
        rng = np.random.default_rng(11)
        x, w, b = rng.standard_normal((9, 7)), rng.standard_normal((7, 5)), rng.standard_normal(5)
        same("dense_forward", x, w, b, activation, dtype=np.float64)
        out = NUMPY.dense_forward(x, w, b, activation)
        same("dense_backward", x, w, out, rng.standard_normal((9, 5)), activation, True, dtype=np.float64)
        same("dense_forward", x, w, None, activation, dtype=np.float64)
    finally:
        config.set_gemm_route(previous)


@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("route", ["numba", "blas"])
def test_small_dense_layers_fuse_off_the_blas_route(activation, route):
    """Off the bundled-BLAS route a small layer runs in ``dense_small``; on it, a BLAS product and the bias
    kernel (faster at every small size measured). Both match the reference."""
    from nnengine.kernels.cpu import blas
    previous = config.set_gemm_route(route)
    try:
        assert NUMBA._dense_is_small(9, 7, 5) == (route == "numba" or not blas.AVAILABLE)
        rng = np.random.default_rng(12)
        x, w, b = rng.standard_normal((9, 7)), rng.standard_normal((7, 5)), rng.standard_normal(5)
        same("dense_forward", x, w, b, activation, dtype=np.float64)
        same("dense_forward", x, w, None, activation, dtype=np.float32)
    finally:
        config.set_gemm_route(previous)


def test_integer_arithmetic_and_comparisons():
    a = np.array([[3, -2, 7]], np.int64)
    b = np.array([2, 2, -7], np.int64)
    for name in ("add", "sub", "mul", "maximum", "minimum", "power", "less", "equal"):
        got, expected = getattr(NUMBA, name)(a, np.abs(b) if name == "power" else b), \
            getattr(NUMPY, name)(a, np.abs(b) if name == "power" else b)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_softmax_family_along_any_axis_and_on_empty_batches():
    x = np.random.default_rng(12).standard_normal((3, 4, 5)).astype(np.float32)
    for axis in (0, 1, 2):
        same("softmax", x, axis)
        same("log_softmax", x, axis)
    same("softmax_cross_entropy", np.zeros((0, 4), np.float32), np.zeros(0, np.int64), True)
    same("softmax_cross_entropy", np.full((2, 3), 1000, np.float32), np.array([0, 2]), True)   # no overflow


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_index_add_of_whole_slices_along_one_axis_matches_numpy(axis):
    backend = NumbaBackend("cpu")
    rng = np.random.default_rng(axis)
    target = np.zeros((4, 5, 3))
    rows = rng.integers(-target.shape[axis], target.shape[axis], (2, 6))      # repeats and negative indices
    index = (slice(None),) * axis + (rows,)
    values = rng.standard_normal(target[index].shape)
    expected = target.copy()
    np.add.at(expected, index, values)
    backend.index_add(target, index, values)
    np.testing.assert_allclose(target, expected, rtol=1e-12)


@pytest.mark.parametrize("small", [(3, 1, 5), (1, 4, 5), (3, 1, 1)])
@pytest.mark.parametrize("op", ["sub", "div", "maximum", "less", "equal"])
def test_an_operand_broadcast_along_a_middle_axis_matches_numpy(small, op):
    backend, reference = NumbaBackend("cpu"), NumpyBackend("numpy")
    rng = np.random.default_rng(len(small))
    big = rng.uniform(0.5, 2, (3, 4, 5)) if small != (3, 1, 1) else rng.uniform(0.5, 2, (3, 4, 1))
    other = np.round(rng.uniform(0.5, 2, small), 1)
    for a, b in ((big, other), (other, big)):
        expected = getattr(reference, op)(a, b)
        got = getattr(backend, op)(a, b)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_the_normalization_kernels_give_the_same_bits_serial_and_parallel():
    # both forms are made of the same inline pieces and merge chunk partials in chunk order
    from nnengine.kernels.cpu import norm
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3 * norm.CHUNK_ROWS + 5, 17)) * 4 + 30).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    gamma, eps, one = rng.standard_normal(17).astype(np.float32), np.float32(1e-3), np.float32(1)
    pairs = [(norm.moments_columns, norm.moments_columns_parallel, lambda f: _run(f, (2, 17), x, True)),
             (norm.moments_rows, norm.moments_rows_parallel, lambda f: _run(f, (2, x.shape[0]), x))]
    for serial, parallel, run in pairs:
        np.testing.assert_array_equal(run(serial), run(parallel))
    mean, variance = x.mean(axis=0), x.var(axis=0)
    for through in (True, False):
        results = []
        for kernel in (norm.normalize_backward_columns, norm.normalize_backward_columns_parallel):
            dx, dgamma, dbeta = np.empty_like(x), np.empty(17, np.float32), np.empty(17, np.float32)
            kernel(x, grad, mean, variance, gamma, True, eps, one, through, dx, dgamma, dbeta)
            results.append((dx, dgamma, dbeta))
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)


def _run(kernel, shape, *args):
    out = np.empty(shape, np.float32)
    kernel(args[0], out, *args[1:])
    return out
