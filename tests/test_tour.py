"""docs/tour.md runs: every snippet, in order, in one session, as a reader would paste them."""
import contextlib
import io
import re
from pathlib import Path

TOUR = (Path(__file__).resolve().parent.parent / "docs" / "tour.md").read_text(encoding="utf-8")


def snippets():
    return re.findall(r"```python\n(.*?)```", TOUR, re.S)


def test_the_tour_has_a_snippet_per_stop():
    stops = re.findall(r"^## Stop \d+", TOUR, re.M)
    assert len(stops) >= 8 and len(snippets()) == len(stops)


def test_every_snippet_of_the_tour_runs_and_its_checks_hold(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    namespace, out = {}, io.StringIO()
    for number, code in enumerate(snippets(), start=1):
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"docs/tour.md snippet {number}", "exec"), namespace)  # noqa: S102 - our docs
    printed = out.getvalue()
    assert "True" in printed                        # stop 2: the model trains on its logits
    assert "NumbaBackend cpu" in printed or "NumpyBackend" in printed
    assert "alpha = " in printed and "None" in printed   # stop 7: the gradients are reset after the step
