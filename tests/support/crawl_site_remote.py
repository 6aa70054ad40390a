"""The crawl test site in a child process, driven over its control address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.support.crawl_pages import PRODUCTS
from tests.support.crawl_site import ROLES, SiteRequest


class RemoteCrawlSite:
    """The site in a child process (its own CPU and clock, independent of the test process's
    GIL), with the in-process site's interface: `url`, `base`, `authority`, `requests`,
    `clear`, `reset`, `recover`, plus `set(**knobs)` and `override_robots`. Arrival times are
    the child's `time.monotonic()`: compare them with each other only."""

    def __init__(self, *, big_pages: int = 2000, bench_pages: int = 1000, first_address: int = 30):
        self._argv = [
            sys.executable,
            "-m",
            "tests.support.crawl_site",
            "--big-pages",
            str(big_pages),
            "--bench-pages",
            str(bench_pages),
            "--first-address",
            str(first_address),
        ]
        self.products = PRODUCTS
        self.big_pages = big_pages
        self.bench_pages = bench_pages
        self._process: subprocess.Popen[str] | None = None
        self._bases: dict[str, str] = {}

    def start(self) -> RemoteCrawlSite:
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
        self._process = subprocess.Popen(
            self._argv, cwd=root, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the crawl site process did not start")
        self._bases = json.loads(line)
        self._control = httpx.Client(base_url=self._bases["control"], timeout=30)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._control.close()
            self._process.terminate()
            self._process.wait(10)
            self._process = None

    def __enter__(self) -> RemoteCrawlSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def addresses(self) -> dict[str, str]:
        return {role: urlsplit(self._bases[role]).hostname or "" for role in ROLES}

    def base(self, role: str) -> str:
        return self._bases[role]

    def url(self, role: str, path: str = "/") -> str:
        return self._bases[role] + path

    def authority(self, role: str) -> str:
        return self._bases[role].removeprefix("http://")

    def requests(self, role: str | None = None) -> list[SiteRequest]:
        params = {"role": role} if role else {}
        rows = self._control.get("/records", params=params).raise_for_status().json()
        return [SiteRequest(**row) for row in rows]

    def clear(self) -> None:
        self._control.post("/clear").raise_for_status()

    def reset(self) -> None:
        self._control.post("/reset").raise_for_status()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not any(self._control.get("/in-flight").json().values()):
                break
            time.sleep(0.02)
        self.clear()

    def recover(self, role: str) -> None:
        self._control.post(f"/recover/{role}").raise_for_status()

    def set(self, **knobs: object) -> None:
        """Knobs: slow_delay_s, throttle_retry_after, throttle_always, robots_timeout_s,
        shop_crawl_delay."""
        self._control.post("/set", json=knobs).raise_for_status()

    def override_robots(self, role: str, status: int, body: bytes) -> None:
        self._control.post(f"/robots/{role}", params={"status": status}, content=body)
