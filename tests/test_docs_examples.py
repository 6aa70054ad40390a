"""The Python examples of the docs and the README: each parses and is formatted as our code is,
so that what a reader pastes is valid Python in the project's style."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
RUFF = Path(sys.executable).parent / "ruff"


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in sorted([*ROOT.joinpath("docs").glob("*.md"), ROOT / "README.md"]):
        for number, match in enumerate(_BLOCK.finditer(page.read_text()), start=1):
            found.append((f"{page.relative_to(ROOT)}#{number}", match.group(1)))
    return found


EXAMPLES = _examples()


def test_the_docs_have_python_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("where", "source"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_a_python_example_parses_and_is_formatted(where: str, source: str) -> None:
    # `ruff format --check` parses first: a syntax error fails here as well as a layout change.
    checked = subprocess.run(
        [str(RUFF), "format", "--check", "--diff", "--stdin-filename", "example.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert checked.returncode == 0, f"{where}:\n{checked.stdout}{checked.stderr}"
