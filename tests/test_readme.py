"""The README's example runs as printed, and its first screen gives the two set-up commands."""
import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_example_prints_what_the_readme_shows():
    match = re.search(r"<!-- readme-example.*?-->\n```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```", README, re.S)
    assert match, "the README's marked example and its output block were not found"
    code, expected = match.groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    assert out.getvalue() == expected


def test_first_screen_has_exactly_two_setup_commands():
    first_screen = README.split("## Status")[0]
    commands = re.findall(r"```bash\n(.*?)\n```", first_screen, re.S)
    assert len(commands) == 2
    assert "pip install -e ." in commands[0] and "examples/document_model.py" in commands[0]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    ci_extras = re.search(r'pip install --quiet -e "(\.\[[^]]*\])"', ci).group(1)
    assert f'pip install -e "{ci_extras}"' in commands[1] and commands[1].endswith("pytest")   # what CI runs


def _without_times(text):
    """Drop what varies from run to run: the time per step and the epoch's elapsed seconds (compile time)."""
    text = re.sub(r"\d+(us|ms|s)/step", "T/step", text)
    return re.sub(r"━ \d+s ", "━ Ts ", text)


def test_readme_shows_what_the_document_program_prints(tmp_path, monkeypatch):
    match = re.search(r"## The document's program.*?```text\n(.*?)```", README, re.S)
    assert match, "the document program's output block was not found"
    shown = [line for line in match.group(1).splitlines() if line != "..."]
    monkeypatch.chdir(tmp_path)
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    import document_model
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        document_model.main([])
    printed = _without_times(out.getvalue()).splitlines()
    for line in shown:
        assert _without_times(line) in printed, line
