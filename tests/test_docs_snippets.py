"""The Python snippets of docs/kernels.md run as a reader would paste them, and print what the text says."""
import contextlib
import io
import platform
import re
from pathlib import Path

import pytest

KERNELS = (Path(__file__).resolve().parent.parent / "docs" / "kernels.md").read_text(encoding="utf-8")


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the snippet counts x86-64 instructions (AVX's packed forms)")
def test_the_vectorisation_check_tells_a_vectorised_loop_from_a_serial_one():
    (code,) = re.findall(r"```python\n(.*?)```", KERNELS, re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/kernels.md snippet", "exec"), {})  # noqa: S102 - our own docs
    first, second = out.getvalue().split("\n")[:2]
    doubled, running = map(int, first.split())
    assert doubled > 0 and running == 0        # a map vectorises; a running sum cannot
    assert second == "True"                     # bias + relu, the loop of its own, vectorises
