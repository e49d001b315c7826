"""Checks that need a real GPU: our CUDA kernels at sizes that exercise every launch path.

Skipped where ``cupy.cuda.is_available()`` is false (through ``nn.is_device_available``). The
backend-parametrized suite (device "cuda") compares every primitive with the numpy reference on
small property-generated inputs; these tests add large and awkward shapes, the tiled GEMM, and
whole models trained on the GPU.
"""
import numpy as np
import pytest

import nnengine as nn
from nnengine.backends import NumpyBackend

pytestmark = pytest.mark.skipif(not nn.is_device_available("cuda"), reason="no CUDA GPU here")
REFERENCE = NumpyBackend("numpy")


@pytest.fixture(scope="module")
def gpu():
    return nn.get_backend("cuda")


def on_gpu(backend, array):
    return backend.from_numpy(np.asarray(array))


@pytest.mark.parametrize("route", ["cublas", "tiled"])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (127, 129, 130), (300, 64, 257), (1024, 512, 768)])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False), (False, True), (True, True)])
def test_cuda_matmul_routes_agree_with_numpy(gpu, route, m, k, n, transpose_a, transpose_b):
    from nnengine.kernels.cuda import gemm
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(np.float32)
    gemm.set_gemm_route(route)
    try:
        got = gpu.to_numpy(gpu.matmul(on_gpu(gpu, a), on_gpu(gpu, b), transpose_a, transpose_b))
    finally:
        gemm.set_gemm_route(None)
    expected = REFERENCE.matmul(a.astype(np.float64), b.astype(np.float64), transpose_a, transpose_b)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_cuda_tiled_gemm_batches_and_float64(gpu):
    from nnengine.kernels.cuda import gemm
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 2, 65, 33)), rng.standard_normal((33, 140))
    gemm.set_gemm_route("tiled")
    try:
        got = gpu.to_numpy(gpu.matmul(on_gpu(gpu, a), on_gpu(gpu, b)))
    finally:
        gemm.set_gemm_route(None)
    np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, axes", [((10_000_019,), (0,)), ((3, 1_000_003), (1,)), ((4096, 300), (1,)),
                                         ((2, 5000, 3), (1,)), ((64, 7, 129), (0, 2)), ((100_000, 10), (0,))])
@pytest.mark.parametrize("op", ["sum", "max"])
def test_cuda_reductions_at_every_launch_path(gpu, shape, axes, op):
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    got = gpu.to_numpy(getattr(gpu, op)(on_gpu(gpu, x), axes, False))
    expected = getattr(np, op)(x.astype(np.float64), axis=axes)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.sqrt(x.size))


def test_cuda_max_and_argmax_follow_numpy_on_nan_and_ties(gpu):
    x = np.array([[1.0, 3.0, 3.0, np.nan, 2.0], [5.0, 5.0, 1.0, 0.0, 5.0]], np.float32)
    np.testing.assert_array_equal(gpu.to_numpy(gpu.argmax(on_gpu(gpu, x), 1)), np.argmax(x, axis=1))
    np.testing.assert_array_equal(gpu.to_numpy(gpu.max(on_gpu(gpu, x), (1,), False)), np.max(x, axis=1))
    np.testing.assert_array_equal(gpu.to_numpy(gpu.relu(on_gpu(gpu, x))), np.maximum(x, 0))


@pytest.mark.parametrize("rows, cols", [(1, 5000), (5000, 10), (333, 1025)])
def test_cuda_softmax_and_cross_entropy_on_wide_and_tall_inputs(gpu, rows, cols):
    rng = np.random.default_rng(2)
    logits = (rng.standard_normal((rows, cols)) * 30).astype(np.float32)
    labels = rng.integers(0, cols, rows)
    np.testing.assert_allclose(gpu.to_numpy(gpu.softmax(on_gpu(gpu, logits), 1)),
                               REFERENCE.softmax(logits, 1), rtol=1e-4, atol=1e-7)
    got_loss, got_grad = gpu.softmax_cross_entropy(on_gpu(gpu, logits), on_gpu(gpu, labels), True)
    loss, grad = REFERENCE.softmax_cross_entropy(logits.astype(np.float64), labels, True)
    np.testing.assert_allclose(gpu.to_numpy(got_loss), loss, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(gpu.to_numpy(got_grad), grad, atol=1e-6)


@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh", "softmax"])
def test_cuda_dense_layer_forward_and_backward_at_size(gpu, activation):
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) * 0.1 for s in ((2048, 300), (300, 517), (517,)))
    grad_out = rng.standard_normal((2048, 517)).astype(np.float32)
    out = gpu.dense_forward(on_gpu(gpu, x), on_gpu(gpu, w), on_gpu(gpu, b), activation)
    expected = REFERENCE.dense_forward(x.astype(np.float64), w, b, activation)
    np.testing.assert_allclose(gpu.to_numpy(out), expected, rtol=1e-4, atol=1e-5)
    grads = gpu.dense_backward(on_gpu(gpu, x), on_gpu(gpu, w), out, on_gpu(gpu, grad_out), activation, True)
    expected_grads = REFERENCE.dense_backward(x.astype(np.float64), w, gpu.to_numpy(out).astype(np.float64),
                                              grad_out, activation, True)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(gpu.to_numpy(got), want, rtol=1e-3, atol=1e-3)


def test_cuda_tensors_move_explicitly_and_never_mix(gpu):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = nn.tensor(host).to("cuda")
    assert t.device == "cuda:0"
    np.testing.assert_array_equal(t.numpy(), host)
    with pytest.raises(ValueError, match="device"):
        t + nn.tensor(host)


def _trained_losses(device):
    nn.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 10)).astype(np.float32)
    y = nn.utils.to_categorical(rng.integers(0, 10, 256), 10)
    model = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(10,)),
                           nn.layers.Dense(32, activation="relu"), nn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.to(device)
    history = model.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
    return history.history["loss"], model


def test_cuda_model_trains_like_the_cpu_model(tmp_path):
    cpu_losses, _ = _trained_losses("cpu")
    gpu_losses, model = _trained_losses("cuda")
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)
    model.save(tmp_path / "model.h5")
    loaded = nn.models.load_model(tmp_path / "model.h5")
    x = np.ones((2, 10), np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_cuda_tiled_gemm_beyond_65535_row_tiles(gpu):
    from nnengine.kernels.cuda import gemm
    rng = np.random.default_rng(6)
    a = rng.standard_normal((8_500_000, 4)).astype(np.float32)       # 66,407 row tiles: y would refuse it
    b = rng.standard_normal((4, 8)).astype(np.float32)
    gemm.set_gemm_route("tiled")
    try:
        got = gpu.to_numpy(gpu.matmul(on_gpu(gpu, a), on_gpu(gpu, b)))
    finally:
        gemm.set_gemm_route(None)
    np.testing.assert_allclose(got[::9973], (a[::9973].astype(np.float64) @ b), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[-3:], a[-3:].astype(np.float64) @ b, rtol=1e-4, atol=1e-5)


def test_cuda_argmax_of_a_long_flat_array_and_a_bad_label(gpu):
    x = np.zeros(3_000_001, np.float32)
    x[[1_234_567, 2_999_999]] = 5.0                        # a tie: the first wins, as in numpy
    assert int(gpu.to_numpy(gpu.argmax(on_gpu(gpu, x), None))) == 1_234_567
    logits = np.zeros((3, 4), np.float32)
    losses, grad = gpu.softmax_cross_entropy(on_gpu(gpu, logits), on_gpu(gpu, np.array([1, 4, -1])), True)
    losses, grad = gpu.to_numpy(losses), gpu.to_numpy(grad)
    assert np.isfinite(losses[0]) and np.isnan(losses[1:]).all() and np.isnan(grad[1:]).all()


def test_cuda_multi_tensor_adam_over_many_groups(gpu):
    rng = np.random.default_rng(7)
    shapes = [(int(rng.integers(1, 300)), int(rng.integers(1, 40))) for _ in range(53)]   # three launches
    host = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    host.append([np.abs(rng.standard_normal(s)).astype(np.float32) for s in shapes])
    device = [tuple(on_gpu(gpu, a) for a in column) for column in host]
    gpu.adam_update_many(*device, (None,) * len(shapes), 4, 1e-2, 0.9, 0.999, 1e-7, False, 0.004)
    for p, g, m, v, got in zip(*host, device[0]):
        REFERENCE.adam_update(p, g, m, v, None, 4, 1e-2, 0.9, 0.999, 1e-7, False, 0.004)
        np.testing.assert_allclose(gpu.to_numpy(got), p, rtol=1e-5, atol=1e-6)


def test_cuda_deterministic_index_add_gives_the_same_bits_every_run(gpu):
    rng = np.random.default_rng(8)
    rows = on_gpu(gpu, rng.integers(0, 50, 200_000))          # thousands of values meet at each row
    values = on_gpu(gpu, rng.standard_normal((200_000, 16)).astype(np.float32))
    nn.use_deterministic_algorithms(True)
    try:
        results = []
        for _ in range(3):
            table = on_gpu(gpu, np.zeros((50, 16), np.float32))
            gpu.index_add(table, (rows,), values)
            results.append(gpu.to_numpy(table))
    finally:
        nn.use_deterministic_algorithms(False)
    assert all(np.array_equal(results[0], r) for r in results[1:])
    expected = np.zeros((50, 16))
    np.add.at(expected, gpu.to_numpy(rows), gpu.to_numpy(values).astype(np.float64))
    np.testing.assert_allclose(results[0], expected, rtol=1e-4, atol=1e-3)
    integers = on_gpu(gpu, np.zeros(5, np.int64))
    gpu.index_add(integers, (on_gpu(gpu, np.array([1, 1, 4])),), on_gpu(gpu, np.array([2, 3, -1])))
    assert gpu.to_numpy(integers).tolist() == [0, 5, 0, 0, -1]


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_cuda_graph_steps_train_as_the_python_replay_does(monkeypatch, optimizer):
    """Each compiled step as one CUDA Graph (its updates' scalars read from device memory, its batch staged)
    against the same steps replayed in Python, over a fit with validation and a last partial batch."""
    from nnengine import capture
    from nnengine.backends import cuda_graphs
    monkeypatch.setattr(cuda_graphs, "ENABLED", True)       # off by default until this test passes on a GPU
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 12)).astype(np.float32)
    y = rng.integers(0, 4, 90)

    def fit(graphs):
        monkeypatch.setattr(capture, "LOWERING_ENABLED", graphs)
        nn.utils.set_random_seed(0)
        model = nn.Sequential([nn.layers.Dense(32, activation="relu", input_shape=(12,)),
                               nn.layers.Dense(4, activation="softmax")])
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.to("cuda")
        history = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.2, verbose=0).history
        graphs_run = [plan.lowered for plan in model._compiler.plans().values() if plan.is_lowered]
        return history, model.get_weights(), graphs_run

    history, weights, graphs = fit(True)
    replay_history, replay_weights, _ = fit(False)
    assert graphs and all(isinstance(g, cuda_graphs.GraphStep) and g.launches > 0 for g in graphs)
    np.testing.assert_allclose(history["loss"], replay_history["loss"], rtol=1e-5)
    for got, expected in zip(weights, replay_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_shape, b_shape, transpose_a, transpose_b", [
    ((37, 20), (20, 45), False, False), ((20, 37), (20, 45), True, False), ((37, 20), (45, 20), False, True),
    ((3, 37, 20), (20, 45), False, False), ((37, 20), (2, 20, 45), False, False), ((1, 1), (1, 1), False, False)])
def test_products_recorded_into_a_cuda_graph_by_direct_cublas_equal_cupys(gpu, dtype, a_shape, b_shape,
                                                                         transpose_a, transpose_b):
    """captured_gemm's cuBLAS calls, recorded under stream capture and launched as a graph, give CuPy's
    products: the leading dimensions, ops and batch strides are right on the real library."""
    import cupy

    from nnengine.kernels.cuda import captured_gemm
    rng = np.random.default_rng(len(a_shape) + len(b_shape))
    a, b = (on_gpu(gpu, rng.standard_normal(s).astype(dtype)) for s in (a_shape, b_shape))
    a, b = (a.T if transpose_a else a), (b.T if transpose_b else b)
    stream, pool = cupy.cuda.Stream(non_blocking=True), cupy.cuda.MemoryPool()
    with captured_gemm.recording(stream), cupy.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        out = captured_gemm.matmul(a, b)
        graph = stream.end_capture()
    graph.launch()
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gpu.to_numpy(out), gpu.to_numpy(cupy.matmul(a, b)), rtol=tolerance, atol=tolerance)
