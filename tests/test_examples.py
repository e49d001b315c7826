"""The main job trains: its loss falls and it learns the synthetic task."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import train_mlp  # noqa: E402


def test_reference_model_loss_falls_and_accuracy_beats_chance(device):
    lines = []
    losses, accuracy = train_mlp.train(epochs=5, samples=1280, device=device, log=lines.append)
    assert len(losses) == 5 and len(lines) == 5
    assert lines[0].startswith("Epoch 1/5") and "loss:" in lines[0] and "accuracy:" in lines[0]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.75 * losses[0], losses
    assert accuracy > 0.5  # ten classes: chance is 0.1


@pytest.mark.parametrize("args", [["--epochs", "2", "--samples", "200"]])
def test_script_runs_from_the_command_line(args):
    out = subprocess.run([sys.executable, str(EXAMPLES / "train_mlp.py"), *args],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert "Epoch 2/2" in out and "Accuracy:" in out


def test_digits_example_reaches_97_percent_and_saves_its_curves(tmp_path):
    pytest.importorskip("sklearn", reason="examples/digits.py needs the [examples] extra")
    pytest.importorskip("matplotlib", reason="examples/digits.py needs the [examples] extra")
    import digits
    plot = tmp_path / "curves.png"
    accuracy = digits.main(["--plot", str(plot), "--verbose", "0"])
    assert accuracy >= 0.97
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unavailable_device_prints_one_line_and_exits_non_zero():
    result = subprocess.run([sys.executable, str(EXAMPLES / "train_mlp.py"), "--device", "cuda:7"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "cuda:7" in result.stderr


def test_digits_without_its_extra_names_the_extra_to_install(monkeypatch, capsys):
    import digits
    monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as exit_info:
        digits.main(["--epochs", "1"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "scikit-learn" in message and 'pip install -e ".[examples]"' in message


def test_digits_cnn_example_reaches_98_5_percent_and_saves_its_curves(tmp_path):
    pytest.importorskip("sklearn", reason="examples/digits_cnn.py needs the [examples] extra")
    pytest.importorskip("matplotlib", reason="examples/digits_cnn.py needs the [examples] extra")
    import digits_cnn
    plot = tmp_path / "cnn.png"
    accuracy = digits_cnn.main(["--plot", str(plot), "--verbose", "0"])
    assert accuracy >= 0.985
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_embedding_example_learns_which_words_are_positive():
    import text_embedding
    accuracy, scores = text_embedding.main(["--verbose", "0"])
    assert accuracy >= 0.95
    order = np.argsort(scores)
    assert set(order[-10:]) <= set(text_embedding.POSITIVE) and set(order[:10]) <= set(text_embedding.NEGATIVE)


def test_text_lstm_example_learns_word_order_that_a_bag_of_words_cannot():
    import text_lstm
    accuracies = text_lstm.main(["--verbose", "0"])
    assert accuracies["LSTM"] >= 0.95
    assert accuracies["bag of words"] <= 0.65            # chance, or near it: the order is the signal


def test_residual_spirals_needs_its_skips_and_both_apis_build_the_same_model():
    import residual_spirals
    results = residual_spirals.main([])
    accuracy = {name: result[1] for name, result in results.items()}
    assert accuracy["plain"] < 0.85 and accuracy["residual (functional)"] >= 0.97, accuracy
    functional, subclassed = results["residual (functional)"][0], results["residual (subclassed)"][0]
    x, _ = residual_spirals.spirals(seed=1)
    np.testing.assert_array_equal(functional.predict(x, verbose=0), subclassed.predict(x, verbose=0))
