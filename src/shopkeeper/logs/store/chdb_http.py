"""A ClickHouse HTTP interface backed by chDB: one process owns the chDB directory and every
other process (ingest gateways, the buffer's writer, queries, alerts) reaches it as a ClickHouse
server through clickhouse-connect (`SHOPKEEPER_LOGS_CLICKHOUSE_URL=http://127.0.0.1:8123`).
It runs the production topology on one machine (`shopkeeper logs chdb-server`,
deploy/local/run.sh) and tests the server adapter where no modern ClickHouse server can be
installed. It is not a ClickHouse replacement for a cluster: statements run one at a time.

It answers what clickhouse-connect sends: `/ping`; statements in the `query` parameter, the
body or a multipart form; `param_*` query parameters; settings as URL parameters (applied with
`SET` around the statement) and `SET`/`USE` kept per `session_id`; inserts whose data follows
the statement (`INSERT ... FORMAT F` and `... FROM input('structure') FORMAT F`), which chDB,
having no stdin, reads from a file; request and response compression; and ClickHouse's
summary, format and exception headers and error texts.

chDB runs one engine per process, so the server runs in a process of its own
(`shopkeeper logs chdb-server --path DIR`, or `python -m shopkeeper.logs.store.chdb_http`),
prints its port, and serialises every statement on one thread."""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import gzip
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Request parameters that are not settings (ClickHouse's HTTPHandler reserves these names).
TRANSPORT_PARAMS = {
    "query",
    "database",
    "default_format",
    "session_id",
    "session_timeout",
    "session_check",
    "query_id",
    "quota_key",
    "user",
    "password",
    "buffer_size",
    "wait_end_of_query",
    "compress",
    "decompress",
    "client_protocol_version",
    "role",
    "stacktrace",
}

# ClickHouse's `exceptionCodeToHTTPStatus` for the codes a client can cause.
_STATUS_BY_CODE = {
    **dict.fromkeys((60, 81, 1002), 404),  # UNKNOWN_TABLE, UNKNOWN_DATABASE
    **dict.fromkeys((62, 47, 46, 36, 27, 53, 69, 115, 117, 456, 457), 400),
    **dict.fromkeys((516,), 401),
    **dict.fromkeys((497,), 403),
    **dict.fromkeys((159, 394), 500),
}
_CODE_RE = re.compile(r"Code: (\d+)\.")
_FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9]*)\s*;?\s*$", re.IGNORECASE)
_INSERT_RE = re.compile(r"^\s*INSERT\s+INTO\b", re.IGNORECASE)
_INSERT_FORMAT_RE = re.compile(
    r"^(?P<head>.*?)(?P<settings>\s+SETTINGS\s+.*?)?\s+FORMAT\s+(?P<fmt>[A-Za-z][A-Za-z0-9]*)"
    r"[ \t]*(?:\r?\n)?",
    re.IGNORECASE | re.DOTALL,
)
_INPUT_RE = re.compile(r"\binput\s*\(", re.IGNORECASE)
_SET_RE = re.compile(r"^\s*SET\s+(?P<body>.*?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_USE_RE = re.compile(r"^\s*USE\s+(?P<db>`[^`]+`|\"[^\"]+\"|\w+)\s*;?\s*$", re.IGNORECASE)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_SET_NAME = re.compile(r"(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


class ClickHouseError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Session:
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None


@dataclass
class _Request:
    sql: str
    data: bytes | None
    params: dict[str, str]
    query_params: dict[str, str]


class ChdbBackend:
    """One chDB session on a directory, every statement on one thread."""

    def __init__(self, path: Path) -> None:
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self.incoming = path / "http-inserts"
        self.incoming.mkdir(exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        self._session: Any = self._executor.submit(session.Session, str(path)).result()
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self.version = self._call(lambda: self._session.query("SELECT version()", "TSV"))
        self.version = bytes(self.version.bytes()).decode().strip()

    def close(self) -> None:
        self._executor.submit(self._session.close).result()
        self._executor.shutdown(wait=True)

    def _call(self, function: Callable[[], Any]) -> Any:
        return self._executor.submit(function).result()

    def execute(self, request: _Request) -> tuple[bytes, str, dict[str, str]]:
        """Body, output format and summary of one statement."""
        session_id = request.params.get("session_id")
        with self._lock:
            state = self._sessions.setdefault(session_id, _Session()) if session_id else _Session()
        settings = dict(state.settings)
        settings.update(
            (key, value)
            for key, value in request.params.items()
            if key not in TRANSPORT_PARAMS and not key.startswith("param_")
        )
        database = request.params.get("database") or state.database or "default"
        sql = request.sql
        if (use := _USE_RE.match(sql)) is not None:
            state.database = use["db"].strip('`"')
            sql = f"USE {use['db']}"
        elif (set_statement := _SET_RE.match(sql)) is not None:
            body = set_statement["body"]
            for name in _SET_NAME.findall(_STRING_LITERAL.sub("''", body)):
                state.settings[name] = self._scalar(
                    f"SELECT toString(getSetting('{name}')) SETTINGS {body}", settings, database
                )
            return b"", "TabSeparated", _summary(None)
        fmt = _FORMAT_RE.search(sql)
        output = request.params.get("default_format", "TabSeparated")
        data_file: Path | None = None
        if _INSERT_RE.match(sql) and request.data is not None:
            sql, data_file = self._insert_from_file(sql, request.data)
            output = "TabSeparated"
        elif fmt is not None:
            output = fmt[1]
        try:
            result = self._run_statement(sql, settings, database, request.query_params, output)
        finally:
            if data_file is not None:
                data_file.unlink(missing_ok=True)
        return bytes(result.bytes()) if result is not None else b"", output, _summary(result)

    def _insert_from_file(self, sql: str, data: bytes) -> tuple[str, Path]:
        """`INSERT ... FORMAT F` with its data as an INSERT that reads the data from a file."""
        match = _INSERT_FORMAT_RE.match(sql)
        if match is None:
            raise ClickHouseError(62, "Syntax error: an INSERT with data needs a FORMAT clause")
        with tempfile.NamedTemporaryFile(dir=self.incoming, delete=False) as file:
            file.write(sql[match.end() :].encode("utf-8", "surrogateescape") + data)
            path = Path(file.name)
        head, fmt = match["head"], match["fmt"]
        settings = match["settings"] or ""
        quoted = "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"
        if _INPUT_RE.search(head):
            return _INPUT_RE.sub(f"file({quoted}, {fmt}, ", head, count=1) + settings, path
        return f"{head} FROM INFILE {quoted}{settings} FORMAT {fmt}", path

    def _run_statement(
        self,
        sql: str,
        settings: dict[str, str],
        database: str,
        query_params: dict[str, str],
        output: str,
    ) -> Any:
        def run() -> Any:
            query = self._session.query
            applied: list[str] = []
            try:
                query(f"USE {_identifier(database)}", "TSV")
                for name, value in settings.items():
                    query(f"SET {_identifier(name)} = {_literal(value)}", "TSV")
                    applied.append(name)
                return query(sql, output, params=query_params or None)
            finally:
                for name in applied:
                    query(f"SET {_identifier(name)} = DEFAULT", "TSV")
                query("USE default", "TSV")

        try:
            return self._call(run)
        except Exception as exc:  # chDB raises its own error type with ClickHouse's text
            message = str(exc)
            code = _CODE_RE.search(message)
            raise ClickHouseError(int(code[1]) if code else 1002, message) from exc

    def _scalar(self, sql: str, settings: dict[str, str], database: str) -> str:
        result = self._run_statement(sql, settings, database, {}, "TSV")
        return bytes(result.bytes()).decode().rstrip("\n")


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(value: str) -> str:
    """A setting's value as the SQL literal ClickHouse's HTTP handler would read it as."""
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _summary(result: Any) -> dict[str, str]:
    if result is None:
        numbers = dict.fromkeys(("read_rows", "read_bytes", "written_rows", "written_bytes"), 0)
        elapsed = 0.0
    else:
        numbers = {
            "read_rows": result.rows_read(),
            "read_bytes": result.bytes_read(),
            "written_rows": result.rows_written(),
            "written_bytes": result.bytes_written(),
        }
        elapsed = result.elapsed()
    return {
        **{key: str(value) for key, value in numbers.items()},
        "total_rows_to_read": "0",
        "result_rows": "0",
        "result_bytes": "0",
        "elapsed_ns": str(int(elapsed * 1e9)),
    }


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    if encoding == "zstd":
        from backports import zstd

        return bytes(zstd.decompress(data))
    if encoding == "br":
        import brotli

        return bytes(brotli.decompress(data))
    raise ClickHouseError(1, f"Unknown HTTP compression method: {encoding}")


def _compressor(accept: str) -> tuple[str, Callable[[bytes], bytes]] | None:
    """The first encoding of the client's list that this server can produce."""

    def lz4(data: bytes) -> bytes:
        import lz4.frame

        return bytes(lz4.frame.compress(data))

    def zstd(data: bytes) -> bytes:
        from backports import zstd as module

        return bytes(module.compress(data))

    def brotli(data: bytes) -> bytes:
        import brotli as module

        return bytes(module.compress(data))

    known: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "lz4": lz4,
        "zstd": zstd,
        "br": brotli,
    }
    for name in (part.split(";")[0].strip().lower() for part in accept.split(",")):
        if name in known:
            return name, known[name]
    return None


def _form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload if isinstance(payload, bytes) else b""
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path in ("/ping", "/") and "query" not in url.query and not body:
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            request = self._request(params, body)
            output, fmt, summary = self.server.backend.execute(request)
        except ClickHouseError as exc:
            self._error(exc, query_id)
            return
        except Exception as exc:  # a bug here must reach the client as an error, not a hang
            self._error(ClickHouseError(1001, f"std::exception: {exc!r}"), query_id)
            return
        headers = {
            "Content-Type": "application/octet-stream"
            if fmt in ("Native", "RowBinary", "RowBinaryWithNamesAndTypes", "Parquet", "Arrow")
            else "text/plain; charset=UTF-8",
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb-http",
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        compressing = params.get("enable_http_compression") == "1" or self.server.backend_compress(
            params
        )
        chosen = _compressor(self.headers.get("Accept-Encoding", "")) if compressing else None
        if chosen is not None and output:
            headers["Content-Encoding"], compress = chosen
            output = compress(output)
        self._reply(200, output, headers)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _request(self, params: dict[str, str], body: bytes) -> _Request:
        content_type = self.headers.get("Content-Type", "")
        body = _decompress(body, self.headers.get("Content-Encoding", ""))
        if content_type.startswith("multipart/form-data"):
            for name, value in _form_fields(content_type, body).items():
                params[name] = value.decode("utf-8", "surrogateescape")
            body = b""
        query_params = {
            key.removeprefix("param_"): value
            for key, value in params.items()
            if key.startswith("param_")
        }
        sql = params.get("query", "")
        data: bytes | None = None
        if sql and body:
            if _INSERT_RE.match(sql):
                data = body
            else:
                sql = sql + "\n" + body.decode("utf-8", "surrogateescape")
        elif body:
            text = body.decode("utf-8", "surrogateescape")
            if _INSERT_RE.match(text) and (match := _INSERT_FORMAT_RE.match(text)) is not None:
                sql, data = text[: match.end()], body[len(text[: match.end()].encode()) :]
            else:
                sql = text
        if not sql.strip():
            raise ClickHouseError(62, "Empty query. (SYNTAX_ERROR)")
        return _Request(sql=sql, data=data, params=params, query_params=query_params)

    def _error(self, exc: ClickHouseError, query_id: str) -> None:
        message = str(exc)
        if not message.startswith("Code:"):
            message = f"Code: {exc.code}. DB::Exception: {message}"
        if "(version " not in message:
            message += f" (version {self.server.backend.version})"
        self._reply(
            _STATUS_BY_CODE.get(exc.code, 500),
            (message + "\n").encode(),
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(exc.code),
                "X-ClickHouse-Query-Id": query_id,
            },
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: ChdbBackend) -> None:
        super().__init__(address, _Handler)
        self.backend = backend

    def backend_compress(self, params: dict[str, str]) -> bool:
        session = params.get("session_id")
        state = self.backend._sessions.get(session) if session else None
        return state is not None and state.settings.get("enable_http_compression") == "1"


def _exit_with(parent: int) -> None:
    """End this server when the process that started it is gone (a killed test run must not
    leave a server behind on a shared machine)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def serve(path: Path, port: int = 0, host: str = "127.0.0.1", parent: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or until `parent` is gone); statements in progress finish
    before chDB closes."""
    import signal

    if parent is not None:
        _exit_with(parent)
    backend = ChdbBackend(path)
    server = _Server((host, port), backend)

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever, which runs on this thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The parent reads this line to learn the port; everything after it is the server's.
    print(f"listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        backend.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", type=Path, required=True, help="chDB data directory")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    serve(args.path, args.port, args.host, parent=args.parent_pid)


class ChdbHttpServer:
    """The server in a child process: `start()` returns its URL, `stop()` ends it."""

    def __init__(self, path: Path, *, startup_timeout: float = 60) -> None:
        self.path = path
        self.startup_timeout = startup_timeout
        self.process: Any = None
        self.url = ""
        self._log: Any = None

    def start(self) -> str:
        import subprocess

        self.path.mkdir(parents=True, exist_ok=True)
        self._log = (self.path / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 -- our own module, a fixed argv
            [
                sys.executable,
                *("-m", "shopkeeper.logs.store.chdb_http", "--path", str(self.path)),
                *("--parent-pid", str(os.getpid())),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=dict(os.environ),
        )
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(self.process.stdout.readline().decode()), daemon=True
        )
        reader.start()
        reader.join(self.startup_timeout)
        line = ready[0] if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            error = (self.path / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the chDB HTTP server did not start: {line!r} {error}")
        self.url = "http://" + line.removeprefix("listening on ").strip()
        return self.url

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log.close()


if __name__ == "__main__":
    main()
