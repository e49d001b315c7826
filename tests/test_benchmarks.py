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
