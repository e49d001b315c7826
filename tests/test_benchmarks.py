"""The benchmark runs and writes its JSON and Markdown (no speed is asserted here: speed is claimed
only from a benchmark run, never from a test)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, keras_fit  # noqa: E402


def test_keras_fit_benchmark_writes_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    results = keras_fit.main(["--repeats", "1"])
    saved = json.loads((tmp_path / "keras_fit.json").read_text())
    assert saved["nnengine_fit_s"] == results["nnengine_fit_s"] > 0
    assert 0 < saved["share_in_steps"] <= 1
    assert saved["machine"]["cpus"] >= 1
    markdown = (tmp_path / "keras_fit.md").read_text()
    assert "| nnengine fit (median) |" in markdown and markdown in capsys.readouterr().out


def test_training_benchmark_measures_each_framework_in_this_process():
    from benchmarks import training
    for framework in ("nnengine-numba", "nnengine-numba-eager", "numpy-loop"):
        result = training.measure_one(framework, "document", 1)
        assert result["framework"] == framework and result["step_s"] > 0 and result["peak_rss_mb"] > 10


def test_numpy_loop_reference_learns():
    """The hand-written numpy loop the benchmark compares with really trains (its loss falls)."""
    from benchmarks import training
    step = training._numpy_loop_step((10, 64, 32, 10), 32)
    first = step()
    for _ in range(200):
        last = step()
    assert last < 0.5 * first


def test_report_renders_every_section(tmp_path):
    from benchmarks import kernels_bench, report
    gemm = kernels_bench.gemm_rates((64,), 1, peak=1e11)
    results = {
        "machine": {"cpus": 2, "processor": "test", "machine": "x86_64", "python": "3"},
        "kernels": {"machine_limits": {"peak_flops_measured": 1e11, "peak_flops_theoretical": None,
                                       "triad_bytes_per_s": 1e10, "copy_bytes_per_s": 1e10},
                    "gemm": gemm, "fused": [],
                    "threshold": {"rows": [], "measured_threshold": None, "configured_threshold": 1, "threads": 2}},
        "training": {"steps": [{"model": m, "framework": "nnengine-numba", "step_s": 1e-3, "peak_rss_mb": 1}
                               for m in ("document", "mnist")],
                     "start": {"cold_start_s": 1.0, "warm_start_s": 0.5}},
    }
    text = report.markdown(results)
    for heading in ("## Machine limits", "## GEMM", "## Fused kernels", "## Serial or parallel", "## Training step"):
        assert heading in text
    assert "| 64 |" in text and "Cold start" in text and gemm[0]["numba_gflops"] > 0


def test_gpu_check_without_a_gpu_says_so_and_exits_2(tmp_path, capsys):
    import nnengine as nn
    from benchmarks import gpu_check
    if nn.is_device_available("cuda"):
        import pytest
        pytest.skip("this machine has a GPU: benchmarks/gpu_check.py runs for real there")
    assert gpu_check.main([str(tmp_path / "out")]) == 2
    saved = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert saved["gpu"] is None and "no CUDA GPU" in saved["error"]
    assert "no CUDA GPU" in (tmp_path / "out" / "gpu_check.md").read_text()


def test_gpu_check_report_judges_each_target_from_its_ratio():
    from benchmarks import gpu_check
    results = {
        "gpu": "Test GPU", "tests": {"summary": "10 passed", "seconds": 1.0, "exit_status": 0},
        "gemm": [{"n": 4096, "cublas_tflops": 40.0, "tiled_tflops": 12.0, "tiled_vs_cublas": 0.3,
                  "max_relative_difference": 1e-6}],
        "fused": {"copy_gb_per_s": 3000.0, "elements": 10, "kernels": [
            {"kernel": "bias_relu", "gb_per_s": 2400.0, "fraction_of_copy": 0.8, "microseconds": 5.0},
            {"kernel": "adam_update", "gb_per_s": 1800.0, "fraction_of_copy": 0.6, "microseconds": 9.0}]},
        "training": [{"model": "document", "nnengine_cupy_s": 1e-4, "torch_cuda_s": 2e-4, "nnengine_numba_s": 3e-4,
                      "nnengine_cupy_graph_s": 0.5e-4, "graph_launches_per_step": 1.0},
                     {"model": "mlp4096", "nnengine_cupy_s": 2e-2, "torch_cuda_s": None, "nnengine_numba_s": 1.0,
                      "torch_cuda_s_error": "ModuleNotFoundError: no torch"}],
    }
    results["summary"] = summary = gpu_check.summarize(results)
    assert summary["fused_min_copy_fraction"] == 0.6 and summary["tiled_vs_cublas_4096"] == 0.3
    assert summary["document_torch_over_cupy"] == 2.0 and "mlp4096_torch_over_cupy" not in summary
    text = gpu_check.markdown(results)
    assert "| fused kernels >= 70% of copy bandwidth | 0.60 | NO |" in text
    assert "| tiled SGEMM >= 25% of cuBLAS at n = 4096 | 0.30 | yes |" in text
    assert "| MLP 4096 step no slower than PyTorch CUDA | n/a | n/a |" in text
    assert "| mlp4096 | 20.000 | - | - | failed | 1000.000 |" in text
    assert "- mlp4096 torch_cuda_s: ModuleNotFoundError: no torch" in text
    assert "| document | 0.100 | 0.050 | - | 0.200 | 0.300 |" in text
    assert summary["document_torch_over_graph"] == 4.0 and "mlp4096_torch_over_graph" not in summary
    assert "| document compiled step (one CUDA Graph) >= 1.5x faster than PyTorch CUDA | 4.00 | yes |" in text
    assert "| one graph launch per compiled step | 1.00 | yes |" in text
    failed = gpu_check.summarize({"preflight": {"cuda_graph": "AssertionError: weights differ"}})
    assert failed == {"graph_matches_replay": 0.0}
    assert gpu_check.summarize({"preflight": {"cuda_graph": "ok"}})["graph_matches_replay"] == 1.0


def test_a_bare_checkout_finds_its_kernels_without_an_install(tmp_path):
    """nnengine imported from a checkout on sys.path (no pip, as on the GPU machine) maps nnengine.kernels."""
    import subprocess
    root = Path(__file__).resolve().parent.parent
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
            f"sys.path.insert(0, {str(root)!r}); import nnengine, nnengine.kernels.cuda.loader as l; "
            "print(l.SOURCE_DIR); print(nnengine.tensor([1.0, 2.0]).sum().item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == [str(root / "kernels" / "cuda"), "3.0"]


def test_gpu_check_runs_the_tests_without_coverage_flags(tmp_path):
    """The GPU machine has pytest but not pytest-cov: the command must not need it."""
    from benchmarks import gpu_check
    summary = gpu_check.run_tests(tmp_path, selection="cuda and test_primitive_agrees_with_numpy_reference and full")
    assert summary["exit_status"] == 0, (tmp_path / "gpu_tests.txt").read_text()
    expected = "2 passed" if nn.is_device_available("cuda") else "2 skipped"      # float32 and float64
    assert expected in summary["summary"]


def test_gpu_check_leaves_the_tests_that_need_no_gpu_to_ci(tmp_path):
    from benchmarks import gpu_check
    summary = gpu_check.run_tests(tmp_path, selection="launch_constants or fake or emulat")
    assert summary["exit_status"] == 5 and "deselected" in summary["summary"]         # none left to run
    assert "passed" not in summary["summary"]


def _fake_results(peak=1e11, gemm_rate=50.0, copy_fraction=0.5, threshold=None):
    gemm = [{"n": 64, "numba_gflops": gemm_rate, "blas_route_gflops": gemm_rate, "numpy_gflops": gemm_rate,
             "numba_vs_numpy": 1.0, "numba_of_peak": gemm_rate * 1e9 / peak, "numpy_of_peak": gemm_rate * 1e9 / peak}]
    fused = [{"kernel": "Adam update (1M params)", "numba_s": 1e-3, "numba_gbps": 10.0, "copy_gbps": 10.0,
              "of_copy_bandwidth": copy_fraction, "speedup_vs_numpy": 2.0}]
    rows = [{"elements": 1024, "tanh_serial_s": 1e-6, "tanh_parallel_s": 2e-6, "bias_relu_serial_s": 1e-6,
             "bias_relu_parallel_s": 2e-6, "adam_serial_s": 1e-6, "adam_parallel_s": 2e-6}]
    return {
        "machine": {"cpus": 2, "processor": "AMD EPYC", "machine": "x86_64", "python": "3", "date": "2026-11-30"},
        "torch_version": None,
        "kernels": {"machine_limits": {"peak_flops_measured": peak, "peak_flops_theoretical": 1.5e11,
                                       "peak_flops_theoretical_from": "2 cores x 32 flop/cycle x 2.45 GHz",
                                       "triad_bytes_per_s": 1e10, "copy_bytes_per_s": 1e10},
                    "gemm": gemm, "fused": fused,
                    "threshold": {"rows": rows, "measured_threshold": threshold, "configured_threshold": 1 << 20,
                                  "measured_streaming_threshold": None, "configured_streaming_threshold": 1 << 22,
                                  "threads": 2}},
        "training": {"steps": [{"model": m, "framework": f, "step_s": t, "peak_rss_mb": 1}
                               for m in ("document", "mnist")
                               for f, t in (("nnengine-numba", 1e-4), ("numpy-loop", 2e-4), ("torch", 5e-2))],
                     "start": {"cold_start_s": 1.0, "warm_start_s": 0.5}},
    }


def test_report_never_prints_none_and_names_the_cpu():
    from benchmarks import report
    text = report.markdown(_fake_results(threshold=None))
    assert "None" not in text
    assert "AMD EPYC" in text and "2026-11-30" in text and "PyTorch not installed" in text
    assert "did not win at every size" in text and "1,024" in text
    text = report.markdown(_fake_results(threshold=4096))
    assert "arithmetic (tanh) kernels: parallel wins from 4,096" in text and "switches at 1,048,576" in text
    assert "streaming (bias + relu, Adam) kernels: the parallel variants did not win" in text
    assert "switches at 4,194,304" in text and "bias + relu parallel us" in text


def test_each_threshold_is_where_its_kernels_win_from_then_on():
    from benchmarks.kernels_bench import _first_winning_size

    def row(n, tanh, bias_relu, adam):          # each: (serial, parallel) seconds
        kernels = (("tanh", tanh), ("bias_relu", bias_relu), ("adam", adam))
        return {"elements": n, **{f"{k}_{v}_s": t for k, pair in kernels for v, t in zip(("serial", "parallel"), pair)}}
    rows = [row(1, (1, 2), (1, 2), (1, 2)), row(2, (2, 1), (1, 2), (2, 1)), row(4, (1, 2), (2, 1), (2, 1)),
            row(8, (4, 1), (4, 1), (4, 1)), row(16, (8, 1), (8, 1), (8, 1))]
    assert _first_winning_size(rows, ("tanh",)) == 8                  # a loss at 4 restarts the count
    assert _first_winning_size(rows, ("bias_relu", "adam")) == 4
    assert _first_winning_size(rows[:1], ("tanh",)) is None


def test_a_fraction_above_a_measured_limit_is_flagged_not_printed():
    from benchmarks import report
    text = report.markdown(_fake_results(peak=1e10, gemm_rate=27.2, copy_fraction=1.03))
    assert "272%" not in text and "103%" not in text
    assert text.count("flagged") >= 3          # numba and numpy of peak, and the fused kernel of copy
    assert "| 50% |" in report.markdown(_fake_results(peak=1e11, gemm_rate=50.0))


def test_the_measured_peak_is_at_least_the_best_gemm_of_the_run():
    from benchmarks import kernels_bench
    limits = {"peak_flops_measured": 36e9}
    rows = [{"numba_gflops": 20.0, "blas_route_gflops": 90.0, "numpy_gflops": 98.0}]
    kernels_bench.raise_peak_to_best_seen(limits, rows)
    assert limits["peak_flops_measured"] == 98e9
    assert rows[0]["numpy_of_peak"] == 1.0 and rows[0]["numba_of_peak"] < 1.0


def test_theoretical_peak_follows_the_cpu_flags():
    from benchmarks import kernels_bench
    assert kernels_bench.flops_per_cycle(("avx512f", "avx2", "fma")) == 64
    assert kernels_bench.flops_per_cycle(("avx2", "fma")) == 32
    assert kernels_bench.flops_per_cycle(("sse2",)) == 16


def test_the_chart_renders_with_a_slow_peer(tmp_path):
    pytest.importorskip("matplotlib")
    from benchmarks import report
    path = tmp_path / "chart.png"
    assert report.chart(_fake_results(), path) and path.stat().st_size > 10_000


def test_benchmarks_help_names_the_command(capsys):
    from benchmarks.__main__ import main
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m benchmarks")


def test_the_report_compares_the_whole_program_with_pytorchs():
    from benchmarks import report
    results = _fake_results()
    results["training"]["start"].update(program_cold_s=4.0, program_warm_s=1.0, torch_program_s=5.0)
    text = report.markdown(results)
    assert "as a whole process: 4.00 s on its first run" in text and "0.80x PyTorch's time cold" in text
    assert "5.0x faster warm" in text
    results["training"]["start"].update(program_cold_jit_s=3.0, program_warm_jit_s=2.0)
    assert "on numba's kernels, NNENGINE_AOT=0: 3.00 s and 2.00 s" in report.markdown(results)


def test_the_pytorch_program_trains():
    pytest.importorskip("torch", reason="PyTorch is an optional benchmark peer")
    from benchmarks import torch_document
    assert torch_document.main(samples=200, epochs=2) > 0.1


def test_saveload_benchmark_writes_results(tmp_path, monkeypatch):
    from benchmarks import saveload
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    results = saveload.main(["--repeats", "1", "--widths", "8,16,4"])
    saved = json.loads((tmp_path / "saveload.json").read_text())
    assert saved["parameters"] == 8 * 16 + 16 + 16 * 4 + 4 == results["parameters"]
    assert saved["nnengine_load_s"] > 0 and saved["h5py_read_s"] > 0
    assert "| nnengine load |" in (tmp_path / "saveload.md").read_text()


def test_cnn_benchmark_compares_with_pytorch_in_one_run(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the CNN benchmark's peer is PyTorch")
    from benchmarks import cnn
    monkeypatch.setattr(cnn, "MODELS", {"digits": ((8, 8, 1), 4, "same"), "mnist": ((12, 12, 1), 4, "valid")})
    results = cnn.main(["--repeats", "1", "--out", str(tmp_path)])
    assert [row["model"] for row in results["steps"]] == ["digits", "mnist"]
    assert all(row["nnengine_s"] > 0 and row["torch_s"] > 0 for row in results["steps"])
    assert 0 < results["conv_forward"]["of_peak"]
    assert "| digits | 4 |" in (tmp_path / "cnn.md").read_text()
    assert json.loads((tmp_path / "cnn.json").read_text())["steps"][1]["batch"] == 4


def test_recurrent_benchmark_compares_with_pytorch_in_one_run(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the recurrent benchmark's peer is PyTorch")
    from benchmarks import recurrent
    from nnengine import capture
    monkeypatch.setattr(recurrent, "SIZES", (4, 3, 2, 5))
    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 2)
    results = recurrent.main(["--repeats", "1", "--out", str(tmp_path)])
    assert [row["model"] for row in results["steps"]] == ["lstm", "gru", "simple_rnn"]
    assert all(row["nnengine_s"] > 0 and row["torch_s"] > 0 for row in results["steps"])
    assert "| gru |" in (tmp_path / "recurrent.md").read_text()
    # the same model in both frameworks: PyTorch's cells have one bias vector more (b_hh), except the GRU's
    for name, extra in (("lstm", 4 * 5), ("gru", 0), ("simple_rnn", 5)):
        theirs = sum(p.numel() for p in recurrent.torch_model(name, (4, 3, 2, 5)).parameters())
        assert theirs == recurrent.nnengine_model(name, (4, 3, 2, 5)).count_params() + extra


def test_model_apis_benchmark_compares_the_same_networks_with_pytorch(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the model_apis benchmark's peer is PyTorch")
    from benchmarks import model_apis
    from nnengine import capture
    monkeypatch.setattr(model_apis, "RESIDUAL", (4, 3, 5, 2, 3))
    monkeypatch.setattr(model_apis, "TEXT", (7, 4, 3, 5))
    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 2)
    results = model_apis.main(["--repeats", "1", "--out", str(tmp_path)])
    assert [row["model"] for row in results["steps"]] == list(model_apis.MODELS)
    assert all(row["nnengine_s"] > 0 and row["torch_s"] > 0 for row in results["steps"])
    assert "| residual_subclassed |" in (tmp_path / "model_apis.md").read_text()
    # the same networks in both frameworks: PyTorch's LSTM has one bias vector more (b_hh)
    for name, extra in (("residual_functional", 0), ("residual_subclassed", 0), ("text_lstm", 4 * 5),
                        ("dropout_mlp", 0)):
        theirs = sum(p.numel() for p in model_apis.torch_model(name).parameters())
        assert theirs == model_apis.nnengine_model(name).count_params() + extra
        assert model_apis.nnengine_model(name).jit_report()["fallback_reason"] is None


def test_the_cnn_step_is_the_same_model_in_both_frameworks():
    pytest.importorskip("torch", reason="the CNN benchmark's peer is PyTorch")
    from benchmarks import cnn
    for shape, batch, padding in cnn.MODELS.values():
        theirs = sum(p.numel() for p in cnn.torch_model(shape, padding).parameters())
        assert theirs == cnn.nnengine_model(shape, padding).count_params()


def test_layer_kernels_are_rated_against_copy_and_the_direct_convolution_agrees(monkeypatch):
    from benchmarks import conv_kernels
    monkeypatch.setattr(conv_kernels, "MNIST_POOL", (2, 6, 6, 3))
    monkeypatch.setattr(conv_kernels, "MNIST_NORM", (50, 3))
    monkeypatch.setattr(conv_kernels, "CONVOLUTIONS", {"small": ((2, 7, 6, 2), 4)})
    rows = conv_kernels.layer_kernel_rates(1e10, 1)
    assert [r["kernel"] for r in rows] == ["max_pool", "max_pool_backward", "average_pool", "average_pool_backward",
                                           "moments", "normalize", "normalize_backward"]
    assert all(r["ms"] > 0 and r["of_copy"] == pytest.approx(r["gb_per_s"] * 1e9 / 1e10) for r in rows)
    # convolution_routes checks the direct kernel against the layer before timing either
    (route,) = conv_kernels.convolution_routes(1)
    assert route["im2col_ms"] > 0 and route["direct_ms"] > 0


def test_gpu_checks_device_step_runs_the_models_own_step_on_any_device():
    """gpu_check times ``Trainer._device_step`` directly: a change to its arguments must not wait for a GPU to
    show. On the CPU the loss of the same step falls as it trains."""
    from benchmarks import gpu_check, training
    step = gpu_check._device_step(training.nnengine_model((10, 64, 32, 10), "cpu"), (32, 10), 10, "cpu")
    losses = [step() for _ in range(5)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
