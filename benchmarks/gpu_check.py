"""One run on a machine with a GPU: a preflight, the GPU tests, then the GPU benchmarks, results to a directory.

    python -m benchmarks.gpu_check OUTDIR [--skip-tests] [--skip-cpu] [--keep-going] [--quick]

Works from an installed nnengine or a bare checkout (PYTHONPATH=.). Writes OUTDIR/gpu_check.json and
OUTDIR/gpu_check.md after each part (a timeout keeps what finished) and the tests' output
OUTDIR/gpu_tests.txt. Planned for about 9 minutes on an H200; the expected seconds of each part
(EXPECTED_SECONDS) come from timing what can be timed without a GPU (NVRTC compiles every source in
3.2 s on a 2-core machine; the numba CPU steps of the training part) plus the GPU's own share:

1. preflight (~20 s): compile and run one RawModule kernel, one ElementwiseKernel, one GEMM on each
   route, one multi-tensor Adam launch (its table is a by-value struct parameter), one training
   step, six compiled steps run as a CUDA Graph against the same steps replayed in Python, each
   recurrent cell's kernels (recurrent.cu) forwards and back through time against numpy, and four
   compiled steps of a model with augmentation, Resizing, Dropout, SeparableConv2D, Conv2DTranspose and the
   Group and RMS normalizations,
   trained by each of Adamax, Nadam, Lion, Adadelta and Ftrl, and four of an Attention model, against numpy.
   If any fails, the run stops
   there with a report that says which, why and where, instead of spending
   the rest of the budget on failures with the same cause; ``--keep-going`` runs the rest anyway
   (a first run on a GPU, where one call must show every failure).
2. benchmarks of training first (the compiled step's targets), all medians, each figure a ratio to
   something measured in the same run: the training-step time (forward, loss, backward, Adam) for
   the document's model (10-64-32-10, batch 32), an MLP (4096-4096-4096-10, batch 4096) and the
   MNIST-size CNN of benchmarks/cnn.py (batch 128), and benchmarks/recurrent.py's LSTM and GRU models
   (batch 32, 20 steps, 64 units): nnengine on cuda, PyTorch on CUDA when it is
   importable, and nnengine on the numba CPU backend (not with ``--skip-cpu``). Inputs AND labels
   are on the device for both frameworks; each step ends by reading the loss (one sync each). For
   the dense models also nnengine's compiled step as fit runs it (``train_on_batch``: the batch
   uploaded from the host, one CUDA Graph launched, the loss read back) and its graph launches per
   step, and for the document's model the time per step of ``fit`` itself (reads deferred).
3. GEMM TFLOP/s for n = 1024 ... 8192, float32: cuBLAS (``cupy.matmul``) and our ``gemm_tiled``;
   then fused kernels' GB/s as a fraction of a device-to-device copy's GB/s: bias+relu epilogue,
   activation backward with the bias gradient, row softmax, softmax cross-entropy, Adam (one
   tensor, and the multi-tensor launch over many), a full sum.
4. tests (limit 240 s; four pytest-xdist workers where it is installed): only those that need the
   GPU, ``tests/test_cuda_gpu.py`` and the ``cuda`` cases of the backend-parametrized suite, in
   deterministic mode; not the fake-GPU, emulation and compile tests, which CI runs on every machine.

CUDA Graphs are off by default (``NNENGINE_CUDA_GRAPHS``) until a run like this one shows them equal to
the Python replay; this check turns them on for all its parts, tests included, to show just that.

Without a GPU it writes a result that says so and exits with status 2; a failed preflight exits 3
(after the rest, with ``--keep-going``).
"""
import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TIME_LIMIT_S = 240
#: what each part should take on an H200 (seconds), stated up front so an overrun is visible in the report
EXPECTED_SECONDS = {"preflight": 20, "tests": 180, "gemm": 45, "fused": 25, "training": 90}
#: test modules that run without a GPU (fake GPU, float32 emulation, NVRTC compiles): CI runs them
NO_GPU_TEST_MODULES = ("test_cuda_backend.py", "test_cuda_arithmetic.py", "test_cuda_compile.py", "test_cuda_graphs.py")
GEMM_SIZES = (1024, 2048, 4096, 8192)
FUSED_SHAPE, QUICK_FUSED_SHAPE = (65536, 1024), (8192, 1024)     # (rows, columns) of the fused kernels' inputs
TRAINING_MODELS = {"document": ((10, 64, 32, 10), 32), "mlp4096": ((4096, 4096, 4096, 10), 4096)}
CNN_BATCH = 128                 # the MNIST-size CNN of benchmarks/cnn.py

#: the issue's targets: (result key, description, test on the results)
TARGETS = [
    ("fused_min_copy_fraction", "fused kernels >= 70% of copy bandwidth", lambda v: v >= 0.70),
    ("tiled_vs_cublas_4096", "tiled SGEMM >= 25% of cuBLAS at n = 4096", lambda v: v >= 0.25),
    ("mlp4096_torch_over_cupy", "MLP 4096 step no slower than PyTorch CUDA", lambda v: v >= 1.0),
    ("document_torch_over_cupy", "document step >= 1.5x faster than PyTorch CUDA", lambda v: v >= 1.5),
    ("document_torch_over_graph", "document compiled step (one CUDA Graph) >= 1.5x faster than PyTorch CUDA",
     lambda v: v >= 1.5),
    ("document_graph_launches_per_step", "one graph launch per compiled step", lambda v: v == 1.0),
    ("graph_matches_replay", "CUDA Graph steps train as the Python replay does (preflight)", lambda v: v == 1.0),
    ("cnn_mnist_torch_over_cupy", "MNIST-size CNN step no slower than PyTorch CUDA", lambda v: v >= 1.0),
]


def run_tests(outdir, selection="cuda"):
    """The tests that need the GPU (``-k selection`` over the suite without NO_GPU_TEST_MODULES), in
    deterministic mode; returns a summary dict."""
    # The GPU machine has no pytest-cov: `-o addopts=` drops setup.cfg's coverage flags, and
    # `-p no:pytest_cov` makes a machine that has it run the same way (so CI checks this command).
    command = [sys.executable, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider", "-p", "no:pytest_cov",
               "-k", selection, "-o", "addopts=", str(ROOT / "tests")]
    command += [f"--ignore={ROOT / 'tests' / name}" for name in NO_GPU_TEST_MODULES]
    if importlib.util.find_spec("xdist") is not None:      # a GPU machine has cores to spare: 4 workers share it
        command += ["-n", "4"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "NNENGINE_DETERMINISTIC": "1", "NNENGINE_CUDA_GRAPHS": "1"}     # every model's compiled step as a graph
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=TEST_TIME_LIMIT_S)
        output, status = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as error:
        partial = error.stdout or ""          # bytes on some Pythons even with text=True
        partial = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        output, status = f"{partial}\n[timed out after {TEST_TIME_LIMIT_S} s]", "timeout"
    (outdir / "gpu_tests.txt").write_text(output)
    # pytest's count line ("3 failed, 40 passed in 9.1s"); plugins may print warnings after it
    counts = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    last = counts[-1:] or [line for line in output.splitlines() if line.strip()][-1:] or [""]
    return {"exit_status": status, "summary": last[0].strip("= "), "seconds": round(time.perf_counter() - start, 1)}


def preflight():
    """Each first use of the GPU path once, against numpy: {check: "ok" or the error}; stops at nothing."""
    import cupy
    import numpy as np

    import nnengine as nn
    from nnengine import capture
    from nnengine.backends.optimizer_scalars import adam_scalars, typed
    from nnengine.kernels.cuda import elementwise, gemm, nn as nn_kernels, optim

    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 45)).astype(np.float32)

    def raw_module():
        out = cupy.empty((37, 45), np.float32)
        nn_kernels.softmax_rows(cupy.asarray(x), None, out, False)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        np.testing.assert_allclose(cupy.asnumpy(out), e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)

    def elementwise_kernel():
        np.testing.assert_array_equal(cupy.asnumpy(elementwise.run("relu", cupy.asarray(x))), np.maximum(x, 0))

    def gemm_routes():
        a, b = rng.standard_normal((130, 70)).astype(np.float32), rng.standard_normal((70, 129)).astype(np.float32)
        for product in (cupy.matmul, gemm.gemm_tiled):
            got = cupy.asnumpy(product(cupy.asarray(a), cupy.asarray(b)))
            np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)

    def multi_tensor_adam():
        shapes = [(10, 64), (64,), (64, 32)]
        host = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]
        host[3] = [np.abs(v) for v in host[3]]
        device = [[cupy.asarray(a) for a in column] for column in host]
        scalars = typed(adam_scalars(3, 1e-2, 0.9, 0.999, 1e-7, 0.0), np.dtype(np.float32))
        optim.adam_many(*device, [None] * len(shapes), scalars, False)
        reference = nn.backends.NumpyBackend("numpy")
        for p, g, m, v, got in zip(*host, device[0]):
            reference.adam_update(p, g, m, v, None, 3, 1e-2, 0.9, 0.999, 1e-7, False, 0.0)
            np.testing.assert_allclose(cupy.asnumpy(got), p, rtol=1e-5, atol=1e-6)

    def training_step():
        model = nn.Sequential([nn.layers.Dense(16, activation="relu", input_shape=(10,)),
                               nn.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.to("cuda")
        loss = model.train_on_batch(rng.standard_normal((8, 10)).astype(np.float32), rng.integers(0, 3, 8))
        assert np.isfinite(loss), f"loss {loss}"

    def cuda_graph():
        steps = [(rng.standard_normal((8, 10)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(6)]
        weights, graphs, reasons, enabled = [], [], [], capture.LOWERING_ENABLED
        for graphed in (True, False):
            capture.LOWERING_ENABLED = graphed
            try:
                nn.utils.set_random_seed(0)
                model = nn.Sequential([nn.layers.Dense(16, activation="relu", input_shape=(10,)),
                                       nn.layers.Dense(3, activation="softmax")])
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                model.to("cuda")
                for x_batch, y_batch in steps:
                    model.train_on_batch(x_batch, y_batch)
            finally:
                capture.LOWERING_ENABLED = enabled
            weights.append(model.get_weights())
            graphs.append(model.jit_report()["plans_lowered"])
            if graphed:
                reasons = [plan.lowering_reason for plan in model._compiler.plans().values()]
        assert graphs == [1, 0], f"plans run as a CUDA Graph (graphs on, off): {graphs}; why not: {reasons}"
        for got, expected in zip(*weights):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    def recurrent_cells():
        # every cell's kernels (recurrent.cu) forwards and back through time, against the numpy reference
        reference, device = nn.backends.NumpyBackend("numpy"), nn.get_backend("cuda")
        steps, n, units = 5, 3, 4
        for cell, gates, reset_after, bias in (("simple_rnn", 1, True, False), ("lstm", 4, True, False),
                                               ("gru", 3, True, True), ("gru", 3, False, False)):
            p = rng.standard_normal((steps, n, gates * units)).astype(np.float32)
            kernel = (0.5 * rng.standard_normal((units, gates * units))).astype(np.float32)
            b = rng.standard_normal((2, gates * units)).astype(np.float32) if bias else None
            grad = rng.standard_normal((steps, n, units)).astype(np.float32)
            options = ("tanh", "sigmoid", cell != "lstm", reset_after)
            expected = reference.recurrent_forward(cell, p, kernel, b, *options)
            got = device.recurrent_forward(cell, cupy.asarray(p), cupy.asarray(kernel),
                                           None if b is None else cupy.asarray(b), *options)
            expected += reference.recurrent_backward(cell, kernel, b, expected[0], expected[2], grad, *options)
            got += device.recurrent_backward(cell, cupy.asarray(kernel), None if b is None else cupy.asarray(b),
                                             got[0], got[2], cupy.asarray(grad), *options)
            for mine, theirs in zip(got, expected):
                if theirs is not None:
                    np.testing.assert_allclose(cupy.asnumpy(mine), theirs, rtol=1e-4, atol=1e-5, err_msg=cell)
        # an LSTM from a given state, handing its last carry's gradient back (return_state, initial_state)
        p = rng.standard_normal((steps, n, 4 * units)).astype(np.float32)
        kernel = (0.5 * rng.standard_normal((units, 4 * units))).astype(np.float32)
        h0, c0, d_cell = (rng.standard_normal((n, units)).astype(np.float32) for _ in range(3))
        grad = rng.standard_normal((steps, n, units)).astype(np.float32)
        expected = reference.recurrent_forward("lstm", p, kernel, None, "tanh", "sigmoid", False, True, None, None,
                                               (h0, c0))
        expected += reference.recurrent_backward("lstm", kernel, None, expected[0], expected[2], grad, "tanh",
                                                 "sigmoid", False, True, None, None, (h0, c0), d_cell)
        on_device = [cupy.asarray(a) for a in (p, kernel, h0, c0, d_cell, grad)]
        got = device.recurrent_forward("lstm", *on_device[:2], None, "tanh", "sigmoid", False, True, None, None,
                                       tuple(on_device[2:4]))
        got += device.recurrent_backward("lstm", on_device[1], None, got[0], got[2], on_device[5], "tanh", "sigmoid",
                                         False, True, None, None, tuple(on_device[2:4]), on_device[4])
        for mine, theirs in zip(got, expected):
            if theirs is not None:
                np.testing.assert_allclose(cupy.asnumpy(mine), theirs, rtol=1e-4, atol=1e-5, err_msg="lstm from h0")

    def new_layers():
        # dropout masks and augmentation tables fed to a compiled step, resizing, the separable and transposed
        # convolutions, GroupNormalization and RMSNormalization, Attention, EinsumDense, grouped convolutions,
        # RNN(cell), and each optimizer added since the first GPU review (Adamax, Nadam, Lion, Adadelta, Ftrl), on
        # the GPU as on the numpy reference: four steps from the same seed (the masks and tables come from the same
        # host generator)
        images, labels = rng.standard_normal((8, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 8)
        for make_optimizer in (lambda: nn.optimizers.Adamax(0.01), lambda: nn.optimizers.Nadam(0.01),
                               lambda: nn.optimizers.Lion(0.001), lambda: nn.optimizers.Adadelta(1.0),
                               lambda: nn.optimizers.Ftrl(0.05, l1_regularization_strength=0.001, beta=0.1)):
            losses = []
            for device in ("cuda", "numpy"):
                nn.utils.set_random_seed(0)
                model = nn.Sequential([nn.Input((6, 6, 2)), nn.layers.RandomFlip(), nn.layers.RandomRotation(0.1),
                                       nn.layers.Resizing(7, 7),
                                       nn.layers.SeparableConv2D(4, 3, padding="same", activation="relu"),
                                       nn.layers.GroupNormalization(groups=2),
                                       nn.layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
                                       nn.layers.Flatten(), nn.layers.Dropout(0.3), nn.layers.RMSNormalization(),
                                       nn.layers.Dense(3, activation="softmax")])
                optimizer = make_optimizer()
                model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
                model.to(device)
                losses.append([model.train_on_batch(images, labels) for _ in range(4)])
            np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4, err_msg=type(optimizer).__name__)
        sequences, keras = rng.standard_normal((8, 5, 4)).astype(np.float32), nn.keras
        losses = []
        for device in ("cuda", "numpy"):
            # Attention and AdditiveAttention (causal, attention dropout), EinsumDense, a grouped Conv1D and an
            # RNN over a stack of cells with dropout: ordinary ops, each a step loop or a transposed product
            nn.utils.set_random_seed(0)
            inputs = keras.Input((5, 4))
            hidden = keras.layers.Dense(6, activation="tanh")(inputs)
            dot = keras.layers.Attention(use_scale=True, dropout=0.2)([hidden, hidden], use_causal_mask=True)
            additive = keras.layers.AdditiveAttention()([hidden, dot])
            heads = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de")(additive)
            grouped = keras.layers.Conv1D(6, 2, groups=2, padding="causal")(keras.layers.Reshape((5, 6))(heads))
            looped = keras.layers.RNN([keras.layers.LSTMCell(4, dropout=0.2, recurrent_dropout=0.2),
                                       keras.layers.GRUCell(3)])(grouped)
            model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(looped))
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.to(device)
            losses.append([model.train_on_batch(sequences, labels) for _ in range(4)])
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4,
                                   err_msg="Attention, EinsumDense, grouped Conv1D, RNN(cells)")

    checks = {}
    for name, check in (("raw_module", raw_module), ("elementwise_kernel", elementwise_kernel),
                        ("gemm_routes", gemm_routes), ("multi_tensor_adam", multi_tensor_adam),
                        ("training_step", training_step), ("cuda_graph", cuda_graph),
                        ("recurrent_cells", recurrent_cells), ("new_layers", new_layers)):
        try:
            check()
            checks[name] = "ok"
        except Exception as error:      # report every failure (with where it came from), then stop the run
            checks[name] = f"{type(error).__name__}: {error}"[:2000] + _where(error)
    return checks


def _where(error):
    """The last frames of ``error``'s traceback, one line: on a first GPU run a message alone rarely says enough."""
    frames = traceback.extract_tb(error.__traceback__)[-4:]
    return " (at " + " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames)) + ")"


def gpu_median(function, repeats=7, warmup=2):
    """Median seconds of ``function()`` on the GPU, timed with CUDA events around each call."""
    import cupy
    for _ in range(warmup):
        function()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        function()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1000)
    return statistics.median(times)


def bench_gemm(quick):
    """TFLOP/s of cuBLAS and of our tiled kernel, float32, n x n x n."""
    import cupy

    from nnengine.kernels.cuda import gemm
    rows = []
    for n in GEMM_SIZES[:2] if quick else GEMM_SIZES:
        a, b = (cupy.random.standard_normal((n, n), dtype=cupy.float32) for _ in range(2))
        repeats = 3 if n >= 8192 else 5
        cublas = gpu_median(lambda: cupy.matmul(a, b), repeats)
        tiled = gpu_median(lambda: gemm.gemm_tiled(a, b), repeats)
        error = float(cupy.abs(gemm.gemm_tiled(a, b) - cupy.matmul(a, b)).max() / cupy.abs(cupy.matmul(a, b)).max())
        flop = 2 * n ** 3
        rows.append({"n": n, "cublas_tflops": flop / cublas / 1e12, "tiled_tflops": flop / tiled / 1e12,
                     "tiled_vs_cublas": cublas / tiled, "max_relative_difference": error})
    return rows


def bench_fused(quick):
    """GB/s of our fused kernels and their fraction of a same-run device-to-device copy."""
    import cupy
    import numpy as np

    from nnengine.backends.optimizer_scalars import adam_scalars, typed
    from nnengine.kernels.cuda import nn, optim, reduce
    rows_, cols = QUICK_FUSED_SHAPE if quick else FUSED_SHAPE
    n = rows_ * cols
    f32 = cupy.float32
    src, dst = cupy.ones(n, f32), cupy.empty(n, f32)
    copy_s = gpu_median(lambda: cupy.copyto(dst, src))
    copy_gbs = 2 * n * 4 / copy_s / 1e9
    z = cupy.random.standard_normal((rows_, cols), dtype=f32)
    bias = cupy.zeros(cols, f32)
    grad = cupy.random.standard_normal((rows_, cols), dtype=f32)
    dz, out = cupy.empty_like(z), cupy.empty_like(z)

    def column_sums(partials):
        return reduce.reduce3(partials.reshape(1, *partials.shape), "sum").reshape(-1)
    labels = cupy.random.randint(0, cols, rows_).astype(cupy.int64)
    losses = cupy.empty(rows_, f32)
    param, m, v = (cupy.zeros(n, f32) for _ in range(3))
    flat_grad = grad.reshape(-1)
    # the same elements as 16 tensors (rows of a (16, n / 16) view: contiguous), updated by one launch
    pieces = [tuple(a.reshape(16, -1)[i] for i in range(16)) for a in (param, flat_grad, m, v)]
    adam_step = typed(adam_scalars(1, 1e-3, 0.9, 0.999, 1e-7, 0.0), np.dtype(f32))
    cases = {  # name: (function, bytes moved per call)
        "bias_relu": (lambda: nn.bias_activation(z, bias, "relu"), 2 * n * 4 + cols * 4),
        "relu_grad_and_bias_grad": (lambda: nn.activation_grad_bias(z, grad, dz, "relu", column_sums), 3 * n * 4),
        "softmax_rows": (lambda: nn.softmax_rows(z, None, out, False), 2 * n * 4),
        "softmax_cross_entropy": (lambda: nn.softmax_cross_entropy(z, labels, losses, out, True), 2 * n * 4),
        "adam_update": (lambda: optim.adam(param, flat_grad, m, v, None, adam_step, False), 7 * n * 4),
        "adam_update_many_16": (lambda: optim.adam_many(*pieces, [None] * 16, adam_step, False), 7 * n * 4),
        "sum_all": (lambda: reduce.reduce_rows(flat_grad.reshape(1, -1), "sum"), n * 4),
    }
    results = []
    for name, (function, moved) in cases.items():
        seconds = gpu_median(function)
        gbs = moved / seconds / 1e9
        results.append({"kernel": name, "gb_per_s": gbs, "fraction_of_copy": gbs / copy_gbs,
                        "microseconds": seconds * 1e6})
    return {"copy_gb_per_s": copy_gbs, "elements": n, "kernels": results}


def _nnengine_step(sizes, batch, device):
    """One training step of the Keras-style dense model with its inputs and labels already on ``device``."""
    from benchmarks import training
    return _device_step(training.nnengine_model(sizes, device), (batch, sizes[0]), sizes[-1], device)


def _compiled_step(sizes, batch):
    """(step, graph): the model's whole compiled step as fit runs it (``train_on_batch``: the batch uploaded
    from the host, the plan's CUDA Graph launched, the loss read back), after the warm-up that captures its
    plan; ``graph`` is the plan's GraphStep (its ``launches`` count the steps it ran)."""
    import numpy as np

    from benchmarks import training
    model = training.nnengine_model(sizes, "cuda")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)

    def step():
        return model.train_on_batch(x, y)
    for _ in range(4):            # the optimizer's slots, the capture, its check, the graph's recording
        step()
    (plan,) = model._compiler.plans().values()
    if not plan.is_lowered:
        raise RuntimeError(f"the compiled step is not a CUDA Graph: {plan.lowering_reason}")
    return step, plan.lowered


def _nnengine_cnn_step(batch, device):
    """The same for the MNIST-size CNN of benchmarks/cnn.py (issue 14's GPU target)."""
    from benchmarks import cnn
    shape, _, padding = cnn.MODELS["mnist"]
    return _device_step(cnn.nnengine_model(shape, padding).to(device), (batch, *shape), 10, device)


def _device_step(model, input_shape, classes, device):
    """The model's own device step (``_device_step``: forward, fused softmax cross-entropy, backward, Adam),
    as ``train_on_batch`` runs it eagerly, without its host-to-device copies of the batch: PyTorch's
    step below keeps x and y on the GPU too. The labels are checked once on the host before the upload
    (as fit does per batch), so the step itself never reads them back.
    """
    import numpy as np

    import nnengine as nn
    rng = np.random.default_rng(0)
    batch = input_shape[0]
    x = nn.tensor(rng.standard_normal(input_shape).astype(np.float32), device=device)
    targets = model.loss.prepare_targets(rng.integers(0, classes, batch), (batch, classes), model.dtype)
    y = nn.Tensor(targets, device=device)
    logits, trainable = model.trains_on_logits(), model.trainable_weights
    to_host = x.backend.to_numpy

    def step():
        loss, *_ = model._device_step(x, [y], True, [logits], [None], trainable)
        return float(to_host(loss))        # a float: waits for the device, as PyTorch's loss.item()
    return step


def _torch_cnn_step(batch):
    """PyTorch eager's CUDA step of the same CNN, data on the GPU."""
    import numpy as np
    import torch

    from benchmarks import cnn, training
    shape, _, padding = cnn.MODELS["mnist"]
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 1, *shape[:2])).astype(np.float32)).cuda()
    y = torch.from_numpy(rng.integers(0, 10, batch)).cuda()
    return training.torch_training_step(cnn.torch_model(shape, padding).cuda(), x, y)


def bench_training(quick, cpu=True):
    """Step times per model and framework. A measurement that fails leaves its key None and says why under
    ``<key>_error``, and the others still run: on a first GPU run one failure must not hide the rest."""
    rows = []
    for model, (sizes, batch) in TRAINING_MODELS.items():
        small = model == "document"
        inner = 50 if small else 5
        entry = {"model": model, "sizes": sizes, "batch": batch}
        _measure(entry, "nnengine_cupy_s", lambda: _median(_nnengine_step(sizes, batch, "cuda"), inner))
        _measure(entry, "nnengine_cupy_graph_s", lambda: _graph_entry(entry, sizes, batch, inner))
        if small:
            _measure(entry, "nnengine_fit_step_s", lambda: _fit_step_time(sizes, batch))
        _measure(entry, "torch_cuda_s", lambda: _median(_torch_step(sizes, batch), inner))
        if cpu:      # the 4096-wide MLP takes about a second per step on the CPU: few runs
            _measure(entry, "nnengine_numba_s", lambda: (
                _median(_nnengine_step(sizes, batch, "cpu"), 20) if small else
                _median(_nnengine_step(sizes, batch, "cpu"), 1, 1 if quick else 3, warmup=1)))
        rows.append(entry)
    entry = {"model": "cnn_mnist", "sizes": "28x28x1 conv32 pool conv64 pool dense10", "batch": CNN_BATCH}
    _measure(entry, "nnengine_cupy_s", lambda: _median(_nnengine_cnn_step(CNN_BATCH, "cuda"), 10))
    _measure(entry, "torch_cuda_s", lambda: _median(_torch_cnn_step(CNN_BATCH), 10))
    if cpu:
        _measure(entry, "nnengine_numba_s", lambda: _median(_nnengine_cnn_step(CNN_BATCH, "cpu"), 2, 3 if quick else 5))
    rows.append(entry)
    from benchmarks import recurrent
    for name in ("lstm", "gru"):           # benchmarks/recurrent.py's models: batch 32, 20 steps, 64 units
        entry = {"model": name, "sizes": "20 steps x 16 features, 64 units, dense10", "batch": recurrent.SIZES[0]}
        _measure(entry, "nnengine_cupy_s", lambda: _median(_nnengine_recurrent_step(name, "cuda"), 10))
        _measure(entry, "torch_cuda_s", lambda: _median(_torch_recurrent_step(name), 10))
        if cpu:
            _measure(entry, "nnengine_numba_s", lambda: _median(_nnengine_recurrent_step(name, "cpu"), 10))
        rows.append(entry)
    return rows


def _nnengine_recurrent_step(name, device):
    """The device step of benchmarks/recurrent.py's model ``name`` (as ``_device_step``)."""
    from benchmarks import recurrent
    batch, steps, features, _ = recurrent.SIZES
    return _device_step(recurrent.nnengine_model(name).to(device), (batch, steps, features), 10, device)


def _torch_recurrent_step(name):
    """PyTorch eager's CUDA step of the same recurrent model, data on the GPU."""
    import numpy as np
    import torch

    from benchmarks import recurrent, training
    batch, steps, features, _ = recurrent.SIZES
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, steps, features)).astype(np.float32)).cuda()
    y = torch.from_numpy(rng.integers(0, 10, batch)).cuda()
    return training.torch_training_step(recurrent.torch_model(name).cuda(), x, y)


def _median(step, inner, repeats=7, warmup=5):
    from benchmarks import training
    return training.median_step_time(step, inner, repeats, warmup)


def _measure(entry, key, measure):
    """entry[key] = measure(), or None with the reason under ``<key>_error`` (PyTorch missing, a failed step)."""
    try:
        entry[key] = measure()
    except Exception as error:
        entry[key], entry[f"{key}_error"] = None, f"{type(error).__name__}: {error}"[:1000] + _where(error)


def _torch_step(sizes, batch):
    from benchmarks import training
    return training._torch_step(sizes, batch, "cuda")


def _graph_entry(entry, sizes, batch, inner):
    """The compiled step's median time; its graph launches per step go into ``entry``."""
    graph_step, graph = _compiled_step(sizes, batch)
    launches, steps = graph.launches, []
    seconds = _median(lambda: steps.append(graph_step()), inner)
    entry["graph_launches_per_step"] = (graph.launches - launches) / len(steps)
    return seconds


def _fit_step_time(sizes, batch, steps=100):
    """Seconds per step of ``fit`` itself (verbose=0, one epoch of ``steps`` batches from host arrays): the
    compiled step with the batch upload, the deferred reads of losses and predictions, the metrics."""
    import numpy as np

    from benchmarks import training
    model = training.nnengine_model(sizes, "cuda", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], steps * batch)
    return _median(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), 1, 5, warmup=2) / steps


def summarize(results):
    """The headline ratios the targets are judged on (absent when their inputs are missing)."""
    summary = {}
    graph_check = (results.get("preflight") or {}).get("cuda_graph")
    if graph_check is not None:        # what decides whether graphs can be on by default
        summary["graph_matches_replay"] = 1.0 if graph_check == "ok" else 0.0
    fused = results.get("fused")
    if fused:
        summary["fused_min_copy_fraction"] = min(k["fraction_of_copy"] for k in fused["kernels"])
    for row in results.get("gemm") or []:
        if row["n"] == 4096:
            summary["tiled_vs_cublas_4096"] = row["tiled_vs_cublas"]
    for row in results.get("training") or []:
        model, cupy_s, graph_s, torch_s = (row["model"], row.get("nnengine_cupy_s"), row.get("nnengine_cupy_graph_s"),
                                           row.get("torch_cuda_s"))
        if torch_s and cupy_s:
            summary[f"{model}_torch_over_cupy"] = torch_s / cupy_s
        if row.get("nnengine_numba_s") and cupy_s:
            summary[f"{model}_numba_over_cupy"] = row["nnengine_numba_s"] / cupy_s
        if graph_s:
            summary[f"{model}_graph_launches_per_step"] = row["graph_launches_per_step"]
            if torch_s:
                summary[f"{model}_torch_over_graph"] = torch_s / graph_s
        if row.get("nnengine_fit_step_s") and torch_s:
            summary[f"{model}_torch_over_fit_step"] = torch_s / row["nnengine_fit_step_s"]
    return summary


def markdown(results):
    """The results as a Markdown report."""
    lines = ["# nnengine GPU check", "", f"GPU: {results.get('gpu') or 'none'}", ""]
    tests = results.get("tests")
    if tests:
        lines += [f"Tests (`-k cuda`): {tests['summary']} in {tests['seconds']} s (exit {tests['exit_status']})", ""]
    if results.get("preflight"):
        lines += [f"Preflight ({results.get('preflight_seconds', '?')} s):", "", "| check | outcome |", "|---|---|"]
        lines += [f"| {name} | {outcome} |" for name, outcome in results["preflight"].items()]
        lines.append("")
    if results.get("error"):
        lines += [f"**Error:** {results['error']}", ""]
    timing = [(part, results.get(f"{part}_seconds", (results.get("tests") or {}).get("seconds") if part == "tests"
                                 else None), expected) for part, expected in EXPECTED_SECONDS.items()]
    if any(seconds is not None for _, seconds, _ in timing):
        lines += ["| part | seconds | expected |", "|---|---|---|"]
        lines += [f"| {part} | {'-' if seconds is None else seconds} | {expected} |"
                  for part, seconds, expected in timing]
        lines.append("")
    if results.get("gemm"):
        lines += ["| n | cuBLAS TFLOP/s | tiled TFLOP/s | tiled / cuBLAS |", "|---|---|---|---|"]
        lines += [f"| {r['n']} | {r['cublas_tflops']:.1f} | {r['tiled_tflops']:.1f} | {r['tiled_vs_cublas']:.0%} |"
                  for r in results["gemm"]]
        lines.append("")
    if results.get("fused"):
        fused = results["fused"]
        lines += [f"Device-to-device copy: {fused['copy_gb_per_s']:.0f} GB/s ({fused['elements']} float32)", "",
                  "| kernel | GB/s | of copy | µs |", "|---|---|---|---|"]
        lines += [f"| {k['kernel']} | {k['gb_per_s']:.0f} | {k['fraction_of_copy']:.0%} | {k['microseconds']:.0f} |"
                  for k in fused["kernels"]]
        lines.append("")
    if results.get("training"):
        lines += ["| model | nnengine cuda ms (eager step) | nnengine cuda ms (compiled: one graph) | nnengine cuda ms "
                  "(per step of fit) | PyTorch CUDA ms | nnengine numba ms |", "|---|---|---|---|---|---|"]
        keys = ("nnengine_cupy_s", "nnengine_cupy_graph_s", "nnengine_fit_step_s", "torch_cuda_s", "nnengine_numba_s")
        for r in results["training"]:
            cells = [f"{r[key] * 1e3:.3f}" if r.get(key) else ("failed" if r.get(f"{key}_error") else "-")
                     for key in keys]
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += [f"- {r['model']} {key[:-len('_error')]}: {error}" for r in results["training"]
                  for key, error in r.items() if key.endswith("_error")]
        lines.append("")
    summary = results.get("summary", {})
    if summary:
        lines += ["| target | value | met |", "|---|---|---|"]
        for key, description, test in TARGETS:
            value = summary.get(key)
            lines.append(f"| {description} | {'n/a' if value is None else f'{value:.2f}'} | "
                         f"{'n/a' if value is None else ('yes' if test(value) else 'NO')} |")
    return "\n".join(lines) + "\n"


def gpu_name():
    """The GPU's name, or None when CuPy sees no GPU (or is not installed)."""
    try:
        import cupy
        if not cupy.cuda.is_available():
            return None
        return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # ImportError, or CUDA libraries missing
        return None


def write(outdir, results):
    """Write gpu_check.json and gpu_check.md into ``outdir``; return their paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = outdir / "gpu_check.json", outdir / "gpu_check.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _graphs_on():
    """Record compiled CUDA steps as graphs (off by default until a GPU run like this one shows them right)."""
    from nnengine.backends import cuda_graphs
    cuda_graphs.ENABLED = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--skip-tests", action="store_true", help="benchmarks only")
    parser.add_argument("--skip-cpu", action="store_true", help="no numba CPU rows (saves their compile time)")
    parser.add_argument("--keep-going", action="store_true",
                        help="run the tests and benchmarks after a failed preflight too (one call, every failure)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = {"gpu": gpu_name(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "expected_seconds": EXPECTED_SECONDS}
    if results["gpu"] is None:
        results["error"] = "no CUDA GPU is visible to CuPy here; nothing was run"
        write(args.outdir, results)
        print(markdown(results))
        return 2
    _graphs_on()
    start = time.perf_counter()
    results["preflight"] = preflight()
    results["preflight_seconds"] = round(time.perf_counter() - start, 1)
    write(args.outdir, results)
    failed = any(outcome != "ok" for outcome in results["preflight"].values())
    if failed and not args.keep_going:
        results["error"] = "the preflight failed (see its table); nothing else was run"
        write(args.outdir, results)
        print(markdown(results))
        return 3
    parts = [("training", lambda: bench_training(args.quick, cpu=not args.skip_cpu)),
             ("gemm", lambda: bench_gemm(args.quick)), ("fused", lambda: bench_fused(args.quick))]
    if not args.skip_tests:       # last: the benchmarks are short, the tests have their own time limit
        parts.append(("tests", lambda: run_tests(args.outdir)))
    for name, part in parts:
        start = time.perf_counter()
        try:
            results[name] = part()
        except Exception as error:   # keep the other parts' results
            results[f"{name}_error"] = f"{type(error).__name__}: {error}" + _where(error)
        if name != "tests":
            results[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
        results["summary"] = summarize(results)
        write(args.outdir, results)          # after each part, so a timeout keeps what finished
    print(markdown(results))
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
