"""Markdown tables and a PNG chart from the benchmark results (matplotlib is optional for the chart).

Every sentence is built from measured values. A fraction of a measured limit above 100% cannot be
true (the limit was under-measured in that run), so it is flagged instead of printed.
"""


def fraction(value):
    """A fraction of a measured limit as a percentage; above 100% it is flagged, never printed as a number."""
    if value is None:
        return "not measured"
    if value > 1.0:
        return "above the measured limit (flagged: limit under-measured)"
    return f"{value:.0%}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _limits(results):
    limits = results["kernels"]["machine_limits"]
    theoretical = limits["peak_flops_theoretical"]
    how = limits.get("peak_flops_theoretical_from", "cores x flop/cycle x clock")
    return _table(["measure", "value"], [
        ["fp32 peak, measured (best BLAS sgemm of the run)", f"{limits['peak_flops_measured'] / 1e9:.0f} GFLOP/s"],
        [f"fp32 peak, theoretical ({how})",
         "not known (no clock reported)" if theoretical is None else f"{theoretical / 1e9:.0f} GFLOP/s"],
        ["memory bandwidth, STREAM triad (3 x 128 MB)", f"{limits['triad_bytes_per_s'] / 1e9:.1f} GB/s"],
        ["memory bandwidth, numpy copy (2 x 128 MB)", f"{limits['copy_bytes_per_s'] / 1e9:.1f} GB/s"]])


def _gemm(results):
    return _table(["n", "our numba GEMM", "BLAS route (backend)", "numpy matmul", "numba / numpy",
                   "numba of peak", "numpy of peak"],
                  [[r["n"], f"{r['numba_gflops']:.1f} GFLOP/s", f"{r['blas_route_gflops']:.1f} GFLOP/s",
                    f"{r['numpy_gflops']:.1f} GFLOP/s", f"{r['numba_vs_numpy']:.0%}", fraction(r['numba_of_peak']),
                    fraction(r['numpy_of_peak'])] for r in results["kernels"]["gemm"]])


def _fused(results):
    rows = []
    for r in results["kernels"]["fused"]:
        torch = f"{r['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in r else "not installed"
        rows.append([r["kernel"], f"{r['numba_s'] * 1e3:.3f} ms", f"{r['numba_gbps']:.1f} GB/s",
                     f"{r['copy_gbps']:.1f} GB/s", fraction(r['of_copy_bandwidth']), f"{r['speedup_vs_numpy']:.2f}x",
                     torch])
    return _table(["kernel (1M float32)", "numba time", "numba GB/s", "copy GB/s (same bytes)", "of copy",
                   "vs numpy reference", "vs PyTorch"], rows)


def _threshold(results):
    t = results["kernels"]["threshold"]
    kernels = [k for k in ("tanh", "bias_relu", "adam") if all(f"{k}_serial_s" in r for r in t["rows"])]
    rows = [[r["elements"], *[f"{r[f'{k}_{v}_s'] * 1e6:.1f}" for k in kernels for v in ("serial", "parallel")]]
            for r in t["rows"]]
    names = {"tanh": "tanh", "bias_relu": "bias + relu", "adam": "Adam"}
    header = ["elements", *[f"{names[k]} {v} us" for k in kernels for v in ("serial", "parallel")]]
    largest = t["rows"][-1]["elements"] if t["rows"] else 0
    verdicts = []
    for kind, measured, configured in (("arithmetic (tanh)", "measured_threshold", "configured_threshold"),
                                       ("streaming (bias + relu, Adam)", "measured_streaming_threshold",
                                        "configured_streaming_threshold")):
        if configured not in t:                 # results written before the streaming threshold existed
            continue
        if t.get(measured) is None:
            found = f"the parallel variants did not win at every size from any point up to {largest:,} elements"
        else:
            found = f"parallel wins from {t[measured]:,} elements on"
        verdicts.append(f"- {kind} kernels: {found} ({t['threads']} threads); the backend switches at "
                        f"{t[configured]:,}.")
    return _table(header, rows) + "\n" + "\n".join(verdicts) + "\n"


def _training(results):
    steps = {(s["model"], s["framework"]): s for s in results["training"]["steps"]}
    rows = []
    for model in ("document", "mnist"):
        ours = steps[(model, "nnengine-numba")]["step_s"]
        for framework in ("nnengine-numba", "nnengine-numba-replay", "nnengine-aot-replay", "nnengine-numba-eager",
                          "nnengine-numpy", "numpy-loop", "torch"):
            s = steps.get((model, framework))
            if s is None:
                continue
            rows.append([model, framework, f"{s['step_s'] * 1e3:.3f} ms", f"{s['step_s'] / ours:.2f}x",
                         f"{s['peak_rss_mb']:.0f} MB"])
    start = results["training"]["start"]
    text = (f"\nCold start (import + first step of the document model, empty numba cache): "
            f"{start['cold_start_s']:.2f} s. Warm start (cache filled): {start['warm_start_s']:.2f} s.\n")
    if "program_cold_s" in start:
        text += (f"\nThe document's program (examples/document_model.py) as a whole process: "
                 f"{start['program_cold_s']:.2f} s on its first run (empty numba cache), "
                 f"{start['program_warm_s']:.2f} s after")
        if "program_warm_jit_s" in start:
            text += (f" (ahead-of-time kernels, no numba loaded; on numba's kernels, NNENGINE_AOT=0: "
                     f"{start['program_cold_jit_s']:.2f} s and {start['program_warm_jit_s']:.2f} s)")
        if "torch_program_s" in start:
            torch = start["torch_program_s"]
            text += (f"; the same program in PyTorch (benchmarks/torch_document.py): {torch:.2f} s, so "
                     f"{start['program_cold_s'] / torch:.2f}x PyTorch's time cold and {torch / start['program_warm_s']:.1f}x "
                     "faster warm")
        text += ".\n"
    return _table(["model", "framework", "step (median)", "time relative to nnengine-numba", "peak RSS"], rows) + text


def markdown(results):
    """The whole report as Markdown."""
    machine = results["machine"]
    torch = ("PyTorch " + results["torch_version"]) if results.get("torch_version") else "PyTorch not installed"
    return (f"# nnengine benchmarks\n\nMachine: {machine['processor']}, {machine['cpus']} CPUs "
            f"({machine['machine']}), Python {machine['python']}, {torch}; run on {machine.get('date', 'an unknown date')}. "
            "Every time is the median of repeated runs after warm-up; the machine's limits are the best "
            "run; every ratio is to a reference measured in the same run.\n\n"
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
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    _gemm_panel(axes[0, 0], results)
    _fused_panel(axes[0, 1], results["kernels"]["fused"])
    for axis, model in zip((axes[1, 0], axes[1, 1]), ("document", "mnist")):
        _step_panel(axis, [s for s in results["training"]["steps"] if s["model"] == model], model)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


def _gemm_panel(axis, results):
    gemm = results["kernels"]["gemm"]
    sizes = [r["n"] for r in gemm]
    axis.plot(sizes, [r["numba_gflops"] for r in gemm], "o-", label="our numba GEMM")
    axis.plot(sizes, [r["numpy_gflops"] for r in gemm], "s-", label="numpy (BLAS)")
    axis.axhline(results["kernels"]["machine_limits"]["peak_flops_measured"] / 1e9, color="gray", ls="--",
                 label="measured peak")
    axis.set(xscale="log", yscale="log", xlabel="n (log scale)", ylabel="GFLOP/s (log scale)", title="GEMM, float32")
    axis.set_xticks(sizes, [str(n) for n in sizes])       # one plain label per size, no overlapping powers
    _plain_log_labels(axis.yaxis)
    axis.minorticks_off()
    axis.legend()


def _plain_log_labels(axis):
    """Plain numbers (1, 2, 5, 10, 20, ...) at a few places of a log axis, and no minor labels to overlap."""
    from matplotlib import ticker
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _fused_panel(axis, fused):
    names = [r["kernel"].split(" (")[0] for r in fused]
    positions = range(len(fused))
    axis.bar([p - 0.2 for p in positions], [r["numba_gbps"] for r in fused], 0.4, label="numba kernel")
    axis.bar([p + 0.2 for p in positions], [r["copy_gbps"] for r in fused], 0.4, label="copy, same bytes")
    axis.set_xticks(list(positions), names, rotation=10)
    axis.set(ylabel="GB/s", title="Fused kernels, 1M float32")
    axis.legend()


def _step_panel(axis, rows, model):
    """Horizontal bars on a log scale, each labelled with its time: a slow peer cannot squash the rest."""
    rows = sorted(rows, key=lambda s: s["step_s"])
    times = [s["step_s"] * 1e3 for s in rows]
    axis.barh([s["framework"] for s in rows], times)
    axis.set_xscale("log")
    for position, value in enumerate(times):
        axis.text(value, position, f" {value:.3g} ms", va="center")
    axis.set_xlim(min(times) / 2, max(times) * 4)
    _plain_log_labels(axis.xaxis)
    axis.set(xlabel="ms per step (log scale)", title=f"Training step: {model} model")
