"""chDB: ClickHouse inside this process, on a data directory only this process may open.

chDB runs one engine per process, on one directory. Every `EmbeddedStore` of a process on that
directory shares it (an app, the shop's own log handler and tests alike). Queries and DDL run on
one worker thread and connection; INSERTs on `INSERT_CONNECTIONS` connections of their own, so
that two INSERTs overlap (one's single-threaded query analysis beside the other's parallel
parsing) and a query never waits behind an INSERT. chDB is synchronous and releases the GIL
while it works, so the event loop keeps serving. A batch reaches ClickHouse as files under the
data directory, read by `file()` and parsed there; the group-commit writer has them written
(`stage`) while its request waits for the round, so an INSERT starts without copying bodies."""

from __future__ import annotations

import asyncio
import fcntl
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from shopkeeper.logs.store.base import (
    RECORD_STRUCTURE,
    Batch,
    LogStore,
    StoreUnavailable,
    batch_parameters,
    combine_batches,
    combined_batch_id,
    insert_sql,
)
from shopkeeper.logs.store.syslog_transform import SYSLOG_STRUCTURE

_SESSION_SETTINGS = (
    "SET output_format_json_quote_64bit_integers = 0",
    "SET output_format_json_quote_decimals = 0",
)


INSERT_CONNECTIONS = 2
"""INSERTs that may run at once (the group-commit writer runs as many rounds)."""
PARALLEL_PARTS = 2
"""Files a large batch is split into (this machine class has two cores)."""
_MIN_PART_BYTES = 512 * 1024


def _split_lines(payload: bytes, parts: int) -> list[bytes]:
    """`payload` cut at line boundaries into up to `parts` pieces of at least 512 KiB."""
    pieces: list[bytes] = []
    start = 0
    count = max(1, min(parts, len(payload) // _MIN_PART_BYTES))
    for n in range(1, count):
        cut = payload.find(b"\n", len(payload) * n // count)
        if cut < 0:
            break
        pieces.append(payload[start : cut + 1])
        start = cut + 1
    pieces.append(payload[start:])
    return [piece for piece in pieces if piece] or [payload]


class _Engine:
    """The process's chDB session and the thread that talks to it."""

    def __init__(self, path: Path, config_file: Path | None) -> None:
        from chdb import session

        self.path = path
        self.config_file = config_file
        self.incoming = path / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(exist_ok=True)
        for leftover in self.incoming.iterdir():  # files of batches a crash never acknowledged
            leftover.unlink(missing_ok=True)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        # The first connection to a path starts the engine with its configuration; the others
        # share that engine.
        opening = f"{path}?config-file={config_file}" if config_file else str(path)
        self.session: Any = self.executor.submit(session.Session, opening).result()
        for statement in _SESSION_SETTINGS:
            self.executor.submit(self.session.query, statement).result()
        # Connections to one path share the engine; each has its own settings and parameters.
        self.insert_executor = ThreadPoolExecutor(
            max_workers=INSERT_CONNECTIONS, thread_name_prefix="chdb-insert"
        )
        self.inserters: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._insert_sessions: list[Any] = [
            self.executor.submit(session.Session, str(path)).result()
            for _ in range(INSERT_CONNECTIONS)
        ]
        for inserter in self._insert_sessions:
            self.inserters.put(inserter)
        self.users = 0

    def close(self) -> None:
        self.insert_executor.shutdown(wait=True)
        for inserter in self._insert_sessions:
            self.executor.submit(inserter.close).result()
        self.executor.submit(self.session.close).result()
        self.executor.shutdown(wait=True)


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _acquire(path: Path, config_file: Path | None) -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            if _owned_elsewhere(path):
                raise StoreUnavailable(
                    f"another process owns the chDB directory {path}: only one process may open "
                    "it (run one `serve` process, or point SHOPKEEPER_LOGS_CLICKHOUSE_URL at a "
                    "ClickHouse server)"
                )
            _engine = _Engine(path, config_file)
        elif _engine.path != path:
            raise StoreUnavailable(
                f"this process already opened chDB on {_engine.path}; one directory per process"
            )
        elif config_file is not None and _engine.config_file != config_file:
            raise StoreUnavailable(
                f"this process already opened chDB on {path} with the configuration "
                f"{_engine.config_file}, not {config_file}"
            )
        _engine.users += 1
        return _engine


def _owned_elsewhere(path: Path) -> bool:
    """Whether another process holds the lock ClickHouse takes on `<dir>/status` (chDB then
    fails with a bare "Error initializing EmbeddedServer")."""
    status = path / "status"
    if not status.exists():
        return False
    with status.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
    return False


def _release(engine: _Engine) -> None:
    global _engine
    with _engine_lock:
        engine.users -= 1
        if engine.users == 0:
            engine.close()
            if _engine is engine:
                _engine = None


def _write_parts(incoming: Path, batch: Batch) -> list[Path]:
    """`batch`'s payload as files in `incoming`, cut for parallel parsing (`_split_lines`)."""
    files: list[Path] = []
    try:
        for n, part in enumerate(_split_lines(batch.payload, PARALLEL_PARTS)):
            file = incoming / f"{batch.batch_id}.{n}.{batch.format}"
            files.append(file)
            file.write_bytes(part)
    except BaseException:
        _unlink(files)
        raise
    return files


def _unlink(files: Sequence[Path]) -> None:
    for file in files:
        file.unlink(missing_ok=True)


class EmbeddedStore(LogStore):
    def __init__(
        self,
        path: Path,
        *,
        database: str,
        retention_days: int,
        config_file: Path | None = None,
    ) -> None:
        super().__init__(database=database, retention_days=retention_days)
        self.path = path.resolve()
        self.config_file = config_file.resolve() if config_file is not None else None
        """ClickHouse server configuration for the engine (`SHOPKEEPER_LOGS_CHDB_CONFIG`),
        applied by the first store of the process to open the directory."""
        self._engine: _Engine | None = None
        self._staged: dict[str, asyncio.Future[list[Path]]] = {}
        """Files being written for queued batches, by batch id (see `stage`)."""

    async def _connect(self) -> None:
        # chDB starts without a configuration file it cannot find, silently.
        if self.config_file is not None and not self.config_file.is_file():
            raise StoreUnavailable(
                f"the chDB configuration file {self.config_file} (SHOPKEEPER_LOGS_CHDB_CONFIG) "
                "does not exist"
            )
        self._engine = await asyncio.to_thread(_acquire, self.path, self.config_file)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        staged, self._staged = [*self._staged.values()], {}
        for files in await asyncio.gather(*staged, return_exceptions=True):
            if isinstance(files, list):
                _unlink(files)
        if engine is not None:
            await asyncio.to_thread(_release, engine)

    @property
    def concurrent_inserts(self) -> int:
        return INSERT_CONNECTIONS

    def stage(self, batches: Sequence[Batch]) -> None:
        """Write the batches' files now, on a worker thread, while their requests wait for a
        round: the INSERT then starts at once, where it copied every body of the round into
        one payload and wrote it out first (~6 ms of the ~190 ms cycle at 4 bodies of 2 MB)."""
        engine = self._engine
        if engine is None:
            return
        loop = asyncio.get_running_loop()
        for batch in batches:
            # Small ones are joined into one file at the INSERT: a file each would cost a
            # round of many small pushes an open and a reader per push.
            if len(batch.payload) >= _MIN_PART_BYTES and batch.batch_id not in self._staged:
                self._staged[batch.batch_id] = loop.run_in_executor(
                    None, _write_parts, engine.incoming, batch
                )

    async def insert(self, batch: Batch) -> None:
        await self._insert_group([batch])

    async def _insert_group(self, batches: Sequence[Batch]) -> None:
        """One INSERT reading every batch's files (written by `stage`, or now)."""
        engine = self._engine
        if engine is None:
            raise StoreUnavailable("the log store is closed")
        loop = asyncio.get_running_loop()
        writes: list[asyncio.Future[list[Path]]] = []
        rest: list[Batch] = []
        for batch in batches:
            staged = self._staged.pop(batch.batch_id, None)
            if staged is None:
                rest.append(batch)
            else:
                writes.append(staged)
        if rest:
            joined = combine_batches(rest) if len(rest) > 1 else rest[0]
            writes.append(loop.run_in_executor(None, _write_parts, engine.incoming, joined))
        written = await asyncio.gather(*writes, return_exceptions=True)
        files = [file for result in written if isinstance(result, list) for file in result]
        try:
            for result in written:
                if isinstance(result, BaseException):
                    _unlink(files)
                    raise result
            await loop.run_in_executor(
                engine.insert_executor,
                self._insert_files,
                engine,
                batches[0],
                files,
                combined_batch_id(batches),
            )
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _insert_files(self, engine: _Engine, first: Batch, files: list[Path], token: str) -> None:
        # Several files: ClickHouse reads (and transforms) them on parallel streams, where one
        # file of a few MB would be parsed on one.
        names = ",".join(file.name for file in files)
        pattern = str(engine.incoming / (f"{{{names}}}" if len(files) > 1 else names))
        if first.format == "json_lines":
            relation = f"file({_quote(pattern)}, 'LineAsString', 'line String')"
        elif first.format == "syslog":
            relation = f"file({_quote(pattern)}, 'TabSeparated', {_quote(SYSLOG_STRUCTURE)})"
        else:
            relation = f"file({_quote(pattern)}, 'JSONEachRow', {_quote(RECORD_STRUCTURE)})"
        sql = insert_sql(self.table, first.format, relation, self.insert_settings(token))
        inserter = engine.inserters.get()
        try:
            inserter.query(sql, params=chdb_parameters(batch_parameters(first)))
        finally:
            engine.inserters.put(inserter)
            # Here, once the query returned: a round cancelled meanwhile (the writer stopping)
            # must not take files from under an INSERT still reading them.
            _unlink(files)

    async def query_bytes(
        self, sql: str, parameters: Mapping[str, Any] | None = None, fmt: str = "JSONEachRow"
    ) -> bytes:
        result: bytes = await self._run(self._query, sql, parameters, fmt)
        return result

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        await self._run(self._query, sql, parameters, "TSV")

    @staticmethod
    def _query(engine: _Engine, sql: str, parameters: Mapping[str, Any] | None, fmt: str) -> bytes:
        result = engine.session.query(sql, fmt, params=chdb_parameters(parameters))
        data: bytes = result.bytes()
        return data

    async def _run(self, function: Any, *args: Any) -> Any:
        engine = self._engine
        if engine is None:
            raise StoreUnavailable("the log store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(engine.executor, function, engine, *args)


def chdb_parameters(parameters: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as chDB needs them: text in ClickHouse's escaped format (as the HTTP
    interface's `param_` values), arrays and maps as literals. chDB itself only calls `str()`,
    which breaks a tab, a newline or a backslash in a string and every map or array."""
    if not parameters:
        return None
    return {name: _parameter(value) for name, value in parameters.items()}


def _parameter(value: Any) -> str:
    if isinstance(value, str):
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    if isinstance(value, Mapping | list | tuple):
        return _literal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "\\N"
    return str(value)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_literal(k)}:{_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_literal(item) for item in value) + "]"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
