"""docs/configuration.md lists every setting, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

from shopkeeper.core.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def documented_settings() -> set[str]:
    """The variable names in the first column of the doc's tables."""
    names: set[str] = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Za-z0-9_*]+)`", line.split("|")[1]))
    return names


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    documented = documented_settings()
    assert sorted(fields - documented) == [], "add these to docs/configuration.md"
    assert sorted(documented - fields) == [], "docs/configuration.md names settings that are gone"
