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


ROOT = Path(__file__).resolve().parent.parent


def _relative_links(text):
    """Markdown link targets that point into the repository (not http(s), mailto or a page anchor)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_every_relative_link_in_the_readme_and_docs_resolves_in_a_clone():
    # a path that .gitignore excludes (benchmarks/results/) would not be in a clone: only tracked files count
    import subprocess
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split())
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for document in documents:
        for target in _relative_links(document.read_text(encoding="utf-8")):
            path = (document.parent / target).resolve()
            relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else None
            in_clone = relative is not None and (relative in tracked or any(t.startswith(relative + "/")
                                                                            for t in tracked))
            if not in_clone:
                broken.append(f"{document.name}: {target}")
    assert not broken, f"links that a fresh clone cannot follow: {broken}"


def test_the_link_check_sees_a_broken_link():
    assert _relative_links("see [a](docs/nowhere.md), [b](https://x.org) and [c](#top)") == ["docs/nowhere.md"]
