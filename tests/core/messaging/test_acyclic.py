"""`core.messaging` has no import cycle and does not reach for the runtime that wires it."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import shopkeeper.core.messaging as messaging

PACKAGE = messaging.__name__
MODULES = sorted(f"{PACKAGE}.{info.name}" for info in pkgutil.iter_modules(messaging.__path__))
# Within core, messaging builds on these only; never on the runtime, mail, or any system.
ALLOWED_OUTSIDE = {
    "shopkeeper.core.db",
    "shopkeeper.core.settings",
    "shopkeeper.core.writes",
    "shopkeeper.core.observability",
}


def _imports_of(module: str) -> set[str]:
    """Every `shopkeeper` module `module` imports, anywhere in the file (also inside functions
    and `if TYPE_CHECKING:`, which a cycle would otherwise hide in)."""
    path = Path(messaging.__path__[0]) / f"{module.rsplit('.', 1)[1]}.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("shopkeeper")}


def test_the_package_has_the_modules_this_test_expects() -> None:
    assert {name.rsplit(".", 1)[1] for name in MODULES} >= {
        "codec",
        "events",
        "handlers",
        "broker",
        "host",
        "periodic",
        "dispatch",
        "relay",
    }


def test_modules_import_one_another_without_a_cycle_and_nothing_above_core() -> None:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        imports = _imports_of(module)
        outside = {name for name in imports if not name.startswith(f"{PACKAGE}.")}
        assert outside <= ALLOWED_OUTSIDE, f"{module} imports {outside - ALLOWED_OUTSIDE}"
        graph[module] = imports - outside
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"import cycle in core.messaging: {exc.args[1]}")
    assert set(order) == set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    """Importing a module first (as a worker or a script might) works, and does not drag in
    the runtime, mail or a system."""
    probe = (
        f"import sys, {module}\n"
        "leaked = sorted(name for name in sys.modules if name in {"
        "'shopkeeper.core.runtime', 'shopkeeper.core.mail'} "
        "or name.startswith(('shopkeeper.shop', 'shopkeeper.accounts', 'shopkeeper.logs', "
        "'shopkeeper.crawl')))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
