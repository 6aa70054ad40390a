"""Set-up shared by the orders tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from shopkeeper.core.runtime import Runtime

RecordStatements = Callable[..., AbstractContextManager[list[str]]]


@pytest.fixture
def record_statements(runtime: Runtime) -> RecordStatements:
    """`with record_statements() as statements:` the SQL the app sends meanwhile, one string per
    cursor statement (BEGIN and COMMIT are not among them); `kind="SELECT"` keeps only those."""

    @contextmanager
    def recording(kind: str | None = None) -> Iterator[list[str]]:
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if kind is None or statement.lstrip().upper().startswith(kind):
                statements.append(statement)

        engine = runtime.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return recording
