"""`command` spiders: any program, run as a subprocess of the worker (Crawlab style).

The program gets, in its environment (besides the worker's own and the spec's `env`):

- `SHOPKEEPER_JOB_ID`, `SHOPKEEPER_JOB_ATTEMPT`, `SHOPKEEPER_JOB_ARGS` (JSON object)
- `SHOPKEEPER_JOB_TOKEN`: a bearer token for this job's own endpoints, valid while it runs
- `SHOPKEEPER_API_URL`: e.g. `http://127.0.0.1:8000/api/v1`
- `SHOPKEEPER_CRAWL_ID`: the job's crawl, when the spec has a `scope`

and reports through the API: `POST {api}/crawl/jobs/{id}/requests` (URLs to fetch, politely,
by the crawl workers), `GET .../pages` (what was fetched), `POST .../items`, `POST .../progress`.
Its stdout and stderr lines become the job's log lines. Exit status 0 is success. Cancelling the
job sends SIGTERM to its process group (SIGKILL 10 s later); the program is killed with its
worker (Linux parent-death signal).

Spiders file entry: `command` (list of arguments, or one string split like a shell would),
optional `env` (table), `cwd`, `timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shlex
import signal
from collections.abc import Iterable, Mapping
from typing import Any

from shopkeeper.crawl.spiders.base import JobRun, SpiderFailed, SpiderSpec, spec_from_config

TERM_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1


class CommandKind:
    name = "command"

    def from_config(self, name: str, entry: Mapping[str, Any]) -> SpiderSpec:
        command = entry.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(part, str) for part in command)
        ):
            raise ValueError(f"spider {name}: `command` must be a non-empty list of strings")
        env = entry.get("env", {})
        if not isinstance(env, Mapping):
            raise ValueError(f"spider {name}: `env` must be a table")
        timeout = entry.get("timeout_s")
        return spec_from_config(
            name,
            self.name,
            entry,
            command=command,
            env={str(k): str(v) for k, v in env.items()},
            cwd=entry.get("cwd"),
            timeout_s=float(timeout) if timeout is not None else None,
        )

    def discover(self) -> Iterable[SpiderSpec]:
        return ()

    async def run(self, run: JobRun) -> None:
        options = run.spider.options
        env = {
            **os.environ,
            **options.get("env", {}),
            "SHOPKEEPER_JOB_ID": str(run.job_id),
            "SHOPKEEPER_JOB_ATTEMPT": str(run.attempt),
            "SHOPKEEPER_JOB_ARGS": json.dumps(dict(run.args)),
            "SHOPKEEPER_JOB_TOKEN": run.token,
            "SHOPKEEPER_API_URL": run.api_url,
        }
        if run.crawl_id is not None:
            env["SHOPKEEPER_CRAWL_ID"] = str(run.crawl_id)
        process = await asyncio.create_subprocess_exec(
            *options["command"],
            env=env,
            cwd=options.get("cwd"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        run.log.info("spider_process_started", pid=process.pid, command=options["command"])
        readers = [
            asyncio.create_task(_forward(process.stdout, run, "stdout")),
            asyncio.create_task(_forward(process.stderr, run, "stderr")),
        ]
        try:
            timeout = options.get("timeout_s")
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            await _stop(process)
            raise SpiderFailed(f"the command ran past its timeout of {timeout} s") from None
        except asyncio.CancelledError:
            await asyncio.shield(_stop(process))
            raise
        finally:
            await asyncio.gather(*readers, return_exceptions=True)
        run.log.info("spider_process_exited", code=code)
        if code != 0:
            raise SpiderFailed(f"the command exited with status {code}")


async def _forward(stream: asyncio.StreamReader | None, run: JobRun, name: str) -> None:
    if stream is None:
        return
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if line:
            run.log.info("spider_output", stream=name, line=line)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), TERM_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the worker dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
