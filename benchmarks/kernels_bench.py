"""The machine's limits, GEMM, fused kernels and the serial/parallel threshold, measured in one run.

Every figure is the median of repeated runs after warm-up (which also compiles
the numba kernels), and each is given as a ratio to a reference measured in the
same run: GEMM against the measured fp32 peak (the best BLAS product), fused
kernels against the bandwidth of a plain copy of the same bytes.
"""
import os

import numpy as np
from numba import njit, prange

from nnengine.backends.numba_backend import NumbaBackend
from nnengine.backends.numpy_backend import NumpyBackend
from nnengine.backends.optimizer_scalars import adam_scalars, typed
from nnengine.kernels.cpu import config, elementwise, gemm, nn, op_codes, optim

from .common import best_time, cpu_info, median_time

NUMBA, NUMPY = NumbaBackend("cpu"), NumpyBackend("numpy")


@njit(cache=True, parallel=True)
def _copy(a, b):
    """a = b, split across threads: the machine's best plain copy."""
    for i in prange(a.size):
        a[i] = b[i]


def copy_rate(nbytes, repeats):
    """Bytes per second of the best plain copy (numpy's or a parallel one) moving ``nbytes`` in all."""
    size = max(1, nbytes // 8)                       # a copy reads and writes: 2 x 4 bytes per float32
    source, target = np.ones(size, np.float32), np.empty(size, np.float32)
    t_numpy = best_time(lambda: np.copyto(target, source), repeats)
    t_parallel = best_time(lambda: _copy(target, source), repeats)
    return nbytes / min(t_numpy, t_parallel)


@njit(cache=True, parallel=True)
def _triad(a, b, c, s):
    """STREAM triad: a = b + s * c (2 reads and 1 write per element)."""
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def flops_per_cycle(flags):
    """fp32 FLOP per cycle per core from the CPU's flags: two FMA units of the widest vector it has.

    AVX-512: 2 x 16 lanes x 2 (multiply and add) = 64; AVX2 with FMA: 2 x 8 x 2 = 32; SSE: 2 x 4 x 2 = 16
    (the upper bound: some parts have one FMA unit, which halves it).
    """
    if "avx512f" in flags:
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    return 16


def theoretical_peak():
    """(FLOP/s, how it was computed): cores x FLOP per cycle (from the CPU's flags) x the reported clock."""
    mhz = None
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz"))
    except (OSError, StopIteration):
        pass
    cores = os.cpu_count() or 1
    per_cycle = flops_per_cycle(cpu_info()[1])
    if mhz is None:
        return None, "no clock reported"
    return cores * per_cycle * mhz * 1e6, f"{cores} cores x {per_cycle} flop/cycle x {mhz / 1e3:.2f} GHz"


def machine_limits(repeats):
    """Measured fp32 peak (the BEST of several BLAS sgemm runs, n = 2048) and memory bandwidth (best triad and
    copy over 3 x 128 MB). Best, not median: a limit is what the machine can do, and noise only ever slows."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    out = np.empty_like(a)
    t_gemm = best_time(lambda: np.matmul(a, a, out=out), max(repeats, 5))
    size = 32 * 1024 * 1024                       # float32 elements: 128 MB per array
    x, y, z = (np.full(size, v, np.float32) for v in (1.0, 2.0, 3.0))
    t_triad = best_time(lambda: _triad(x, y, z, np.float32(0.5)), repeats)
    t_copy = best_time(lambda: np.copyto(x, y), repeats)
    theoretical, how = theoretical_peak()
    return {"peak_flops_measured": 2 * n ** 3 / t_gemm, "peak_flops_theoretical": theoretical,
            "peak_flops_theoretical_from": how,
            "triad_bytes_per_s": 3 * 4 * size / t_triad, "copy_bytes_per_s": 2 * 4 * size / t_copy}


def raise_peak_to_best_seen(limits, gemm_rows):
    """The measured peak is at least the best GEMM rate seen anywhere in the run (a peak cannot be exceeded)."""
    best = max([limits["peak_flops_measured"]] + [r[k] * 1e9 for r in gemm_rows
                                                  for k in ("numba_gflops", "blas_route_gflops", "numpy_gflops")])
    limits["peak_flops_measured"] = best
    for row in gemm_rows:
        row["numba_of_peak"] = row["numba_gflops"] * 1e9 / best
        row["numpy_of_peak"] = row["numpy_gflops"] * 1e9 / best
    return limits


def gemm_rates(sizes, repeats, peak):
    """GFLOP/s of our numba GEMM, the backend's BLAS route and numpy's matmul, and fractions of the peak."""
    rows = []
    for n in sizes:
        a = np.random.default_rng(n).standard_normal((n, n)).astype(np.float32)
        out = np.empty_like(a)
        reps = max(3, repeats if n <= 1024 else 3)
        t_numba, _ = median_time(lambda: gemm.gemm(a, a, out), reps)
        previous = config.set_gemm_route("blas")
        t_route, _ = median_time(lambda: NUMBA.matmul(a, a), reps)
        config.set_gemm_route(previous)
        t_numpy, _ = median_time(lambda: np.matmul(a, a, out=out), reps)
        flops = 2 * n ** 3
        rows.append({"n": n, "numba_gflops": flops / t_numba / 1e9, "blas_route_gflops": flops / t_route / 1e9,
                     "numpy_gflops": flops / t_numpy / 1e9, "numba_vs_numpy": t_numpy / t_numba,
                     "numba_of_peak": flops / t_numba / peak, "numpy_of_peak": flops / t_numpy / peak})
    return rows


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def fused_kernels(repeats):
    """Bias + relu, softmax cross-entropy and Adam over 1M float32 values: GB/s, as a fraction of a plain copy
    moving the same bytes (measured beside each), and time against numpy and PyTorch (when installed)."""
    rng = np.random.default_rng(1)
    rows, cols = 4096, 256                                     # 1M elements
    z = rng.standard_normal((rows, cols)).astype(np.float32)
    bias = rng.standard_normal(cols).astype(np.float32)
    work = z.copy()
    zero, one = np.float32(0), np.float32(1)
    labels = rng.integers(0, cols, rows)
    params = {k: rng.standard_normal(rows * cols).astype(np.float32) for k in ("p", "g", "m")}
    params["v"] = np.abs(params["m"])
    torch = _torch()
    cases = {
        # bytes moved per call: what a perfect single pass must read and write
        "bias + relu (in place)": (2 * z.nbytes,
                                   # the variant the backend takes at this size
                                   lambda: (nn.bias_activation_parallel if config.parallel(rows * cols, True)
                                            else nn.bias_activation)(work, bias, True, nn.RELU, zero, one),
                                   lambda: np.maximum(z + bias, 0), None),
        "softmax cross-entropy (loss + grad)": (2 * z.nbytes + labels.nbytes,
                                                lambda: NUMBA.softmax_cross_entropy(z, labels, True),
                                                lambda: NUMPY.softmax_cross_entropy(z, labels, True), None),
        "Adam update (1M params)": (6 * params["p"].nbytes,           # reads p, g, m, v; writes p, m, v
                                    lambda: NUMBA.adam_update(params["p"], params["g"], params["m"], params["v"],
                                                              None, 10, 1e-3, 0.9, 0.999, 1e-7, False, 0.0),
                                    lambda: NUMPY.adam_update(params["p"], params["g"], params["m"], params["v"],
                                                              None, 10, 1e-3, 0.9, 0.999, 1e-7, False, 0.0), None),
    }
    torch_cases = _torch_fused(torch, z, bias, labels) if torch is not None else {}
    rows_out = []
    for name, (nbytes, ours, reference, _) in cases.items():
        t_ours, _ = median_time(ours, repeats)
        t_numpy, _ = median_time(reference, repeats)
        copy = copy_rate(nbytes, repeats)
        row = {"kernel": name, "bytes": nbytes, "numba_gbps": nbytes / t_ours / 1e9, "copy_gbps": copy / 1e9,
               "of_copy_bandwidth": nbytes / t_ours / copy, "numpy_s": t_numpy, "numba_s": t_ours,
               "speedup_vs_numpy": t_numpy / t_ours}
        if name in torch_cases:
            t_torch, _ = median_time(torch_cases[name], repeats)
            row.update(torch_s=t_torch, speedup_vs_torch=t_torch / t_ours)
        rows_out.append(row)
    return rows_out


def _torch_fused(torch, z, bias, labels):
    """PyTorch's best CPU equivalents: in-place add + relu, F.cross_entropy forward + backward, fused Adam."""
    tz, tb = torch.from_numpy(z.copy()), torch.from_numpy(bias)
    logits = torch.from_numpy(z.copy()).requires_grad_(True)
    target = torch.from_numpy(labels)
    param = torch.nn.Parameter(torch.from_numpy(z.reshape(-1).copy()))
    param.grad = torch.ones_like(param)
    try:
        adam = torch.optim.Adam([param], fused=True)
    except (RuntimeError, TypeError):                      # a build without the fused CPU kernel
        adam = torch.optim.Adam([param], foreach=False)

    def cross_entropy():
        logits.grad = None
        torch.nn.functional.cross_entropy(logits, target, reduction="sum").backward()

    return {"bias + relu (in place)": lambda: torch.relu_(tz.add_(tb)),
            "softmax cross-entropy (loss + grad)": cross_entropy,
            "Adam update (1M params)": adam.step}


def parallel_threshold(repeats):
    """Times the serial and parallel variants of three kernels at every power of 2 from 2^10 to 2^22
    elements: tanh (arithmetic per element) and two streaming ones, bias + relu and Adam. Each threshold is
    the smallest size from which the parallel variants win at every larger size (tanh for
    ``PARALLEL_MIN_ELEMENTS``, bias + relu and Adam both for ``PARALLEL_MIN_STREAMING_ELEMENTS``), or None."""
    rows = []
    for power in range(10, 23):
        n = 2 ** power
        x = np.random.default_rng(power).standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        zero, one = np.float32(0), np.float32(1)
        t_serial, _ = median_time(lambda: elementwise.unary(op_codes.TANH, x, out, zero, one), repeats)
        t_parallel, _ = median_time(lambda: elementwise.unary_parallel(op_codes.TANH, x, out, zero, one), repeats)
        z, bias = out.reshape(-1, 256), x[:256]                 # rows of 256: every size here is 2^10 or more
        r_serial, _ = median_time(lambda: nn.bias_activation(z, bias, True, nn.RELU, zero, one), repeats)
        r_parallel, _ = median_time(lambda: nn.bias_activation_parallel(z, bias, True, nn.RELU, zero, one), repeats)
        p, g, m, v = x.copy(), x.copy(), x.copy(), np.abs(x)
        c = typed(adam_scalars(1, 1e-3, 0.9, 0.999, 1e-7, 0.0), x.dtype)
        a_serial, _ = median_time(lambda: optim.adam(p, g, m, v, p[:0], *c, False), repeats)
        a_parallel, _ = median_time(lambda: optim.adam_parallel(p, g, m, v, p[:0], *c, False), repeats)
        rows.append({"elements": n, "tanh_serial_s": t_serial, "tanh_parallel_s": t_parallel,
                     "bias_relu_serial_s": r_serial, "bias_relu_parallel_s": r_parallel,
                     "adam_serial_s": a_serial, "adam_parallel_s": a_parallel})
    return {"rows": rows, "measured_threshold": _first_winning_size(rows, ("tanh",)),
            "measured_streaming_threshold": _first_winning_size(rows, ("bias_relu", "adam")),
            "configured_threshold": config.PARALLEL_MIN_ELEMENTS,
            "configured_streaming_threshold": config.PARALLEL_MIN_STREAMING_ELEMENTS,
            "threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))}


def _first_winning_size(rows, kernels):
    """The smallest row's size from which the parallel variant of every kernel in ``kernels`` is faster at
    that size and every larger one; None when there is none."""
    for i, row in enumerate(rows):
        if all(r[f"{k}_parallel_s"] < r[f"{k}_serial_s"] for r in rows[i:] for k in kernels):
            return row["elements"]
    return None


def run(repeats=7, quick=False):
    """All kernel benchmarks; returns a dict for the JSON."""
    limits = machine_limits(repeats)
    sizes = (128, 256, 512) if quick else (128, 256, 512, 1024, 2048)
    gemm_rows = gemm_rates(sizes, repeats, limits["peak_flops_measured"])
    return {"machine_limits": raise_peak_to_best_seen(limits, gemm_rows),
            "gemm": gemm_rows,
            "fused": fused_kernels(repeats),
            "threshold": parallel_threshold(repeats)}
