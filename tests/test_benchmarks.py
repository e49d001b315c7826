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
