"""Markdown tables and a PNG chart from the benchmark results (matplotlib is optional for the chart)."""


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _limits(results):
    limits = results["kernels"]["machine_limits"]
    theoretical = limits["peak_flops_theoretical"]
    return _table(["measure", "value"], [
        ["fp32 peak, measured (BLAS sgemm n=2048)", f"{limits['peak_flops_measured'] / 1e9:.0f} GFLOP/s"],
        ["fp32 peak, theoretical (cores x 32 flop/cycle x clock)",
         "unknown" if theoretical is None else f"{theoretical / 1e9:.0f} GFLOP/s"],
        ["memory bandwidth, STREAM triad (3 x 128 MB)", f"{limits['triad_bytes_per_s'] / 1e9:.1f} GB/s"],
        ["memory bandwidth, numpy copy (2 x 128 MB)", f"{limits['copy_bytes_per_s'] / 1e9:.1f} GB/s"]])


def _gemm(results):
    return _table(["n", "our numba GEMM", "BLAS route (backend)", "numpy matmul", "numba / numpy",
                   "numba of peak", "numpy of peak"],
                  [[r["n"], f"{r['numba_gflops']:.1f} GFLOP/s", f"{r['blas_route_gflops']:.1f} GFLOP/s",
                    f"{r['numpy_gflops']:.1f} GFLOP/s", f"{r['numba_vs_numpy']:.0%}", f"{r['numba_of_peak']:.0%}",
                    f"{r['numpy_of_peak']:.0%}"] for r in results["kernels"]["gemm"]])


def _fused(results):
    rows = []
    for r in results["kernels"]["fused"]:
        torch = f"{r['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in r else "not installed"
        rows.append([r["kernel"], f"{r['numba_s'] * 1e3:.3f} ms", f"{r['numba_gbps']:.1f} GB/s",
                     f"{r['copy_gbps']:.1f} GB/s", f"{r['of_copy_bandwidth']:.0%}", f"{r['speedup_vs_numpy']:.2f}x",
                     torch])
    return _table(["kernel (1M float32)", "numba time", "numba GB/s", "copy GB/s (same bytes)", "of copy",
                   "vs numpy", "vs PyTorch"], rows)


def _threshold(results):
    t = results["kernels"]["threshold"]
    rows = [[r["elements"], f"{r['tanh_serial_s'] * 1e6:.1f}", f"{r['tanh_parallel_s'] * 1e6:.1f}",
             f"{r['adam_serial_s'] * 1e6:.1f}", f"{r['adam_parallel_s'] * 1e6:.1f}"] for r in t["rows"]]
    return (_table(["elements", "tanh serial us", "tanh parallel us", "Adam serial us", "Adam parallel us"], rows)
            + f"\nParallel wins from {t['measured_threshold']} elements on ({t['threads']} threads); "
              f"the backend switches at {t['configured_threshold']}.\n")


def _training(results):
    steps = {(s["model"], s["framework"]): s for s in results["training"]["steps"]}
    rows = []
    for model in ("document", "mnist"):
        ours = steps[(model, "nnengine-numba")]["step_s"]
        for framework in ("nnengine-numba", "nnengine-numpy", "numpy-loop", "torch"):
            s = steps.get((model, framework))
            if s is None:
                continue
            rows.append([model, framework, f"{s['step_s'] * 1e3:.3f} ms", f"{s['step_s'] / ours:.2f}x",
                         f"{s['peak_rss_mb']:.0f} MB"])
    start = results["training"]["start"]
    return (_table(["model", "framework", "step (median)", "time relative to nnengine-numba", "peak RSS"], rows)
            + f"\nCold start (import + first step of the document model, empty numba cache): "
              f"{start['cold_start_s']:.2f} s. Warm start (cache filled): {start['warm_start_s']:.2f} s.\n")


def markdown(results):
    """The whole report as Markdown."""
    machine = results["machine"]
    return (f"# nnengine benchmarks\n\nMachine: {machine['cpus']} CPUs ({machine['processor']}, "
            f"{machine['machine']}), Python {machine['python']}. Every time is the median of repeated runs "
            "after warm-up; every ratio is to a reference measured in the same run.\n\n"
            "## Machine limits\n\n" + _limits(results) + "\n## GEMM (float32, n x n x n)\n\n" + _gemm(results)
            + "\n## Fused kernels\n\n" + _fused(results) + "\n## Serial or parallel\n\n" + _threshold(results)
            + "\n## Training step (forward, loss, backward, Adam)\n\n" + _training(results))


def chart(results, path):
    """Save a 2x2 PNG: GEMM rates, fused-kernel bandwidth, training-step times, start-up. False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    gemm = results["kernels"]["gemm"]
    sizes = [r["n"] for r in gemm]
    axes[0, 0].plot(sizes, [r["numba_gflops"] for r in gemm], "o-", label="our numba GEMM")
    axes[0, 0].plot(sizes, [r["numpy_gflops"] for r in gemm], "s-", label="numpy (BLAS)")
    axes[0, 0].axhline(results["kernels"]["machine_limits"]["peak_flops_measured"] / 1e9, color="gray", ls="--",
                       label="measured peak")
    axes[0, 0].set(xscale="log", xlabel="n", ylabel="GFLOP/s", title="GEMM, float32")
    axes[0, 0].legend()
    fused = results["kernels"]["fused"]
    names = [r["kernel"].split(" (")[0] for r in fused]
    positions = range(len(fused))
    axes[0, 1].bar([p - 0.2 for p in positions], [r["numba_gbps"] for r in fused], 0.4, label="numba kernel")
    axes[0, 1].bar([p + 0.2 for p in positions], [r["copy_gbps"] for r in fused], 0.4, label="copy, same bytes")
    axes[0, 1].set_xticks(list(positions), names)
    axes[0, 1].set(ylabel="GB/s", title="Fused kernels, 1M float32")
    axes[0, 1].legend()
    steps = results["training"]["steps"]
    for axis, model in zip((axes[1, 0], axes[1, 1]), ("document", "mnist")):
        rows = [s for s in steps if s["model"] == model]
        axis.bar([s["framework"] for s in rows], [s["step_s"] * 1e3 for s in rows])
        axis.set(ylabel="ms per step", title=f"Training step: {model} model")
        axis.tick_params(axis="x", rotation=15)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True
