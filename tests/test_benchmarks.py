"""The benchmark runs and writes its JSON and Markdown (no speed is asserted here: speed is claimed
only from a benchmark run, never from a test)."""
import json
import sys
from pathlib import Path

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
    for framework in ("nnengine-numba", "numpy-loop"):
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
        "training": [{"model": "document", "nnengine_cupy_s": 1e-4, "torch_cuda_s": 2e-4, "nnengine_numba_s": 3e-4},
                     {"model": "mlp4096", "nnengine_cupy_s": 2e-2, "torch_cuda_s": None, "nnengine_numba_s": 1.0}],
    }
    results["summary"] = summary = gpu_check.summarize(results)
    assert summary["fused_min_copy_fraction"] == 0.6 and summary["tiled_vs_cublas_4096"] == 0.3
    assert summary["document_torch_over_cupy"] == 2.0 and "mlp4096_torch_over_cupy" not in summary
    text = gpu_check.markdown(results)
    assert "| fused kernels >= 70% of copy bandwidth | 0.60 | NO |" in text
    assert "| tiled SGEMM >= 25% of cuBLAS at n = 4096 | 0.30 | yes |" in text
    assert "| MLP 4096 step no slower than PyTorch CUDA | n/a | n/a |" in text
    assert "| mlp4096 | 20.000 | not installed | 1000.000 |" in text


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
    summary = gpu_check.run_tests(tmp_path, selection="cuda and launch_constants")
    assert summary["exit_status"] == 0 and "1 passed" in summary["summary"]
    assert "1 passed" in (tmp_path / "gpu_tests.txt").read_text()
