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
    assert "pip install -e ." in commands[0] and "examples/train_mlp.py" in commands[0]
    assert 'pip install -e ".[dev]"' in commands[1] and commands[1].endswith("pytest")
