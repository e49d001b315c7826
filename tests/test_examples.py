"""The main job trains: its loss falls and it learns the synthetic task."""
import subprocess
import sys
from pathlib import Path

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
