"""CNN training steps, nnengine against PyTorch CPU in one run; the convolution against the machine's peak.

    python -m benchmarks.cnn [--repeats 7] [--out FOLDER]

Models (issue 14), both Adam and sparse categorical cross-entropy on the fused softmax path:
  * digits:  8x8x1 images, batch 64: Conv2D 32 3x3 relu same -> MaxPooling 2 -> Conv2D 64 3x3 relu same ->
             MaxPooling 2 -> Flatten -> Dense 10 softmax;
  * mnist:   28x28x1 images, batch 128: Conv2D 32 3x3 relu -> MaxPooling 2 -> Conv2D 64 3x3 relu ->
             MaxPooling 2 -> Flatten -> Dense 10 softmax.
Each framework's step is forward, loss, backward and Adam on a batch already in memory, timed as the
median of ``repeats`` runs of several steps; PyTorch runs its own eager CPU step with as many threads
as nnengine's numba. The second table is the forward of the MNIST model's second convolution
(the biggest GEMM) in GFLOP/s against the BLAS sgemm peak measured in the same run; the third, the
pooling and normalization primitives against the copy bandwidth measured in the same run; the last,
the engine's im2col convolution against a direct numba kernel (``conv_kernels.py``).
Writes benchmarks/results/cnn.{json,md}.
"""
import numpy as np

from .common import command_line, median_time
from .conv_kernels import convolution_routes, layer_kernel_rates
from .kernels_bench import machine_limits
from .training import median_step_time, torch_training_step, torch_version

MODELS = {"digits": ((8, 8, 1), 64, "same"), "mnist": ((28, 28, 1), 128, "valid")}


def nnengine_model(shape, padding):
    """The Keras-style CNN, compiled with Adam and sparse categorical cross-entropy."""
    import nnengine as nn
    nn.utils.set_random_seed(0)
    layers = nn.layers
    model = nn.Sequential([nn.Input(shape), layers.Conv2D(32, 3, padding=padding, activation="relu"),
                           layers.MaxPooling2D(2), layers.Conv2D(64, 3, padding=padding, activation="relu"),
                           layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def nnengine_step(shape, batch, padding):
    """One training step of the nnengine CNN on a batch in memory (``train_on_batch``)."""
    model = nnengine_model(shape, padding)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, *shape)).astype(np.float32), rng.integers(0, 10, batch)
    model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def torch_model(shape, padding):
    """The same CNN in PyTorch (channels first, its native layout)."""
    import torch
    torch.manual_seed(0)
    side = shape[0]
    for _ in range(2):                              # a 3x3 convolution ('valid' loses 2), then a 2x2 pool
        side = (side if padding == "same" else side - 2) // 2
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=padding), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=padding), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * side * side, 10))


def torch_step(shape, batch, padding):
    """PyTorch eager's CPU step of the same model: forward, loss, backward, Adam."""
    import torch
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 1, *shape[:2])).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch))
    return torch_training_step(torch_model(shape, padding), x, y)


def conv_forward_rate(repeats):
    """GFLOP/s of the MNIST model's second convolution forward (13x13x32 -> 11x11x64, batch 128)."""
    import nnengine as nn
    layer = nn.layers.Conv2D(64, 3, activation="relu")
    x = nn.tensor(np.random.default_rng(1).standard_normal((128, 13, 13, 32)).astype(np.float32))
    layer(x)
    with nn.no_grad():
        seconds, _ = median_time(lambda: layer(x), repeats)
    flops = 2 * 128 * 11 * 11 * 64 * 3 * 3 * 32
    return flops / seconds / 1e9


def run(repeats=7):
    """Every measurement of this benchmark, in one process. The kernels alone come first, before PyTorch
    has run: its OpenMP threads keep spinning for a while after each of its steps and would share the
    two cores with the kernels being timed."""
    import torch
    import numba
    limits = machine_limits(3)
    kernels = layer_kernel_rates(limits["copy_bytes_per_s"], repeats)
    routes = convolution_routes(repeats)
    rate = conv_forward_rate(repeats)
    torch.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    rows = []
    for name, (shape, batch, padding) in MODELS.items():
        inner = 20 if name == "digits" else 3
        ours = median_step_time(nnengine_step(shape, batch, padding), inner, repeats)
        theirs = median_step_time(torch_step(shape, batch, padding), inner, repeats)
        rows.append({"model": name, "batch": batch, "nnengine_s": ours, "torch_s": theirs,
                     "torch_over_nnengine": theirs / ours})
    return {"torch_version": torch_version(), "steps": rows,
            "conv_forward": {"gflops": rate, "peak_gflops_measured": limits["peak_flops_measured"] / 1e9,
                             "of_peak": rate * 1e9 / limits["peak_flops_measured"]},
            "copy_gb_per_s": limits["copy_bytes_per_s"] / 1e9, "layer_kernels": kernels, "convolution_routes": routes}


def markdown(results):
    """The results as Markdown tables."""
    lines = ["# CNN training steps: nnengine (numba CPU) and PyTorch CPU, one run", "",
             f"PyTorch {results['torch_version']}. Medians.", "",
             "| model | batch | nnengine ms | PyTorch ms | PyTorch / nnengine |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['batch']} | {r['nnengine_s'] * 1e3:.2f} | {r['torch_s'] * 1e3:.2f} | "
              f"{r['torch_over_nnengine']:.2f}x |" for r in results["steps"]]
    conv = results["conv_forward"]
    lines += ["", "| convolution forward (128x13x13x32 -> 64, 3x3) | GFLOP/s | measured sgemm peak | of peak |",
              "|---|---|---|---|",
              f"| im2col gather + fused dense | {conv['gflops']:.1f} | {conv['peak_gflops_measured']:.1f} | "
              f"{conv['of_peak']:.0%} |", "",
              f"| pooling / normalization primitive (MNIST-size) | ms | GB/s | of copy ({results['copy_gb_per_s']:.1f} "
              "GB/s) |", "|---|---|---|---|"]
    lines += [f"| {r['kernel']} | {r['ms']:.2f} | {r['gb_per_s']:.1f} | {r['of_copy']:.0%} |"
              for r in results["layer_kernels"]]
    lines += ["", "| convolution forward, batch 128 | im2col + GEMM ms | direct numba ms | direct / im2col |",
              "|---|---|---|---|"]
    lines += [f"| {r['convolution']} | {r['im2col_ms']:.2f} | {r['direct_ms']:.2f} | {r['direct_over_im2col']:.2f}x |"
              for r in results["convolution_routes"]]
    return "\n".join(lines + [""])


def main(argv=None):
    """``python -m benchmarks.cnn [--repeats 7] [--out FOLDER]``."""
    return command_line("cnn", run, markdown, __doc__, argv)


if __name__ == "__main__":
    main()
