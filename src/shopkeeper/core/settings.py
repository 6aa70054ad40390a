"""One settings class for the whole process, read from `SHOPKEEPER_*` environment variables."""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values copied from examples must never run a real shop.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "dev", "development", "test"})
MIN_SECRET_LENGTH = 32
ENV_PREFIX = "SHOPKEEPER_"
_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    environment: Literal["embedded", "production", "test"] = "embedded"
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = Path("var")
    public_url: str | None = None
    """Base URL the outside world reaches us at; provider callbacks and links are built from it."""

    database_url: str | None = None
    database_pool_size: int = 10
    database_pool_pre_ping: bool = False
    """Test each pooled connection before use (three round trips per checkout of a connection).
    Off: after a database restart the first request per process fails and the pool reconnects."""
    database_echo: bool = False
    redis_url: str | None = None
    redis_namespace: str = "shopkeeper"
    """Prefix of every Redis key and channel, so several shops (or test runs) can share a server."""
    broker_url: str | None = None

    secret_key: SecretStr | None = None
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    jwt_issuer: str = "shopkeeper"

    admin_email: str | None = None
    admin_password: SecretStr | None = None

    currency: str = "USD"
    shipping_flat_rate: int = 500
    prices_include_tax: bool = False
    """`SHOPKEEPER_PRICES_INCLUDE_TAX`: catalog prices already hold the tax of the buyer's
    country (`PUT /tax-rates/{country}`); the order's `tax` is then the included share."""
    reservation_ttl_seconds: int = 1800
    stock_low_threshold: int = 5
    competitor_undercut_alert_percent: float | None = Field(default=None, ge=0, le=100)
    """`SHOPKEEPER_COMPETITOR_UNDERCUT_ALERT_PERCENT`: e-mail staff when a watched competitor's
    price is more than this many percent below ours (same currency); unset: no alert."""

    login_attempts_per_account: str = "5/minute"
    login_attempts_per_address: str = "20/minute"
    registrations_per_address: str = "20/minute"
    """Accounts one client address may register (each costs an argon2 hash)."""
    guest_carts_per_address: str = "60/minute"
    """How many guest carts one client address may open (a signed-in user has one open cart)."""
    cart_retention_days: int = 30
    """The `carts.purge` job deletes guest carts untouched this long and closed (checked-out or
    merged) carts older than this; a signed-in user's open cart is kept. Orders keep their own
    copy of every line."""
    max_body_bytes: int = 1024 * 1024
    forwarded_allow_ips: str = "127.0.0.1,::1"
    """Proxies (addresses or CIDRs, comma-separated, `*` for any) whose X-Forwarded-For and
    X-Forwarded-Proto `serve` believes; everyone else's are ignored, so clients cannot spoof
    their address past the login rate limits."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Browser origins allowed to call the API (`https://shop.example,https://admin.example`,
    or a JSON list); empty: no cross-origin access."""
    log_level: str = "INFO"
    log_json: bool = True
    cache_ttl_seconds: int = 300
    cache_max_bytes: int = 64 * 1024 * 1024
    """Bound on the response bytes one process keeps in its L1 cache (oldest dropped first)."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "shopkeeper <shop@localhost>"

    sandbox_enabled: bool | None = None
    sandbox_webhook_secret: SecretStr | None = None

    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"

    alipay_app_id: str | None = None
    alipay_private_key: SecretStr | None = None
    alipay_public_key: SecretStr | None = None
    alipay_gateway: str = "https://openapi.alipay.com/gateway.do"

    wechatpay_mchid: str | None = None
    wechatpay_appid: str | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_private_key: SecretStr | None = None
    wechatpay_cert_serial_no: str | None = None
    wechatpay_platform_public_key: SecretStr | None = None
    wechatpay_platform_public_key_id: str | None = None
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"

    broker_queue: str = "shopkeeper"
    """RabbitMQ exchange and queue name (dead letters go to `<queue>.dead_letter`)."""
    redis_channel_prefix: str | None = None
    """Extra prefix of real-time channels, inside `redis_namespace` (which alone isolates)."""
    outbox_poll_seconds: float = 1.0
    outbox_redeliver_after_seconds: float = 600.0
    """Jobs of an event published this long ago whose handlers have not all finished are
    published again (a crashed embedded process loses its in-memory jobs)."""
    outbox_max_attempts: int = 5
    outbox_retention_days: int = 7
    job_max_retries: int = 6
    job_retry_base_seconds: float = 1.0
    mail_claim_timeout_seconds: float = 30.0
    """A mail claimed for sending this long ago whose sender never finished is sent again."""
    scheduler_tick_seconds: float = 1.0
    worker_concurrency: int = 20
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Where `worker` and `scheduler` serve Prometheus metrics; unset: they serve none (`serve`
    has its own `/metrics`)."""
    realtime_heartbeat_seconds: float = 20.0
    realtime_client_queue_size: int = 100

    crawl_user_agent: str = "shopkeeper-crawler/1.0 (+https://github.com/shopkeeper/shopkeeper)"
    """What the crawler sends as User-Agent; robots.txt groups are matched on its product token
    (the part before the first "/")."""
    crawl_allow_private: bool | None = None
    """Let crawls fetch loopback, private and link-local addresses (and names resolving to them).
    Default: true only when `environment` is embedded or test, so that the crawl API cannot be
    used to reach the network a production server runs in."""
    crawl_fetch_timeout_seconds: float = 10.0
    """Per connect/read/write; a whole fetch (redirects included) gets three times this."""
    crawl_max_body_bytes: int = 5 * 1024 * 1024
    """Bodies larger than this (after decompression) are abandoned: the page fails `too-large`."""
    crawl_max_redirects: int = 5
    crawl_max_connections: int = 100
    """Connection pool size of one worker process's HTTP client."""
    crawl_robots_ttl_seconds: int = 24 * 3600
    """How long a fetched robots.txt (or its 4xx) is trusted before it is fetched again."""
    crawl_retry_base_seconds: float = 2.0
    """First retry delay after a 5xx, time-out or connection error; doubles per attempt, with
    jitter, up to `crawl_retry_max_seconds`."""
    crawl_retry_max_seconds: float = 300.0

    crawl_frontier: Literal["sql", "redis"] = "sql"
    """Where the crawl frontier (queued URLs, leases, hosts' politeness state) lives: `sql` in the
    database (SQLite embedded, PostgreSQL), `redis` on `redis_url` (Lua scripts)."""
    crawl_lease_seconds: float = 30.0
    """How long a worker holds a leased URL without renewing it; a dead worker's URLs come back
    to the frontier after this."""

    crawl_enabled: bool = True
    """Serve the crawl API under `/api/v1/crawl`."""
    crawl_inprocess_worker: bool | None = None
    """Run one crawl worker inside `serve`; default: only in the embedded mode."""
    crawl_worker_concurrency: int = Field(default=32, ge=1, le=1000)
    """Fetches one worker process runs at once (`crawl worker --concurrency` overrides it)."""
    crawl_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """How often a worker reports itself alive; three missed beats and it shows as `lost`."""
    crawl_worker_key: SecretStr | None = None
    """An API key with the `crawl:worker` scope for `crawl worker` processes started away from
    the server's own settings: checked at start and on every heartbeat (revoking it stops them)."""
    crawl_spiders_file: Path | None = None
    """The deploy's spiders (TOML, `[spiders.<name>]` tables; see docs/crawl.md, "Spiders")."""
    crawl_job_slots: int = Field(default=4, ge=0, le=1000)
    """Jobs (spider runs, scheduled crawls) one crawl worker runs at once; 0: none."""
    crawl_api_url: str = "http://127.0.0.1:8000/api/v1"
    """The API's base URL as a `command` spider started by a worker reaches it."""
    crawl_schedule_tick_seconds: float = Field(default=0.25, gt=0)
    """How often `shopkeeper scheduler` looks for due schedules (their jobs' lateness)."""

    run_background_in_process: bool | None = None
    """Run outbox relay, consumers and periodic jobs inside `serve`; default: when no broker."""

    logs_enabled: bool = True
    """Serve the logs system (ingest, query, UI) and ship this process's own logs into it."""
    logs_dir: Path | None = None
    """Where chDB keeps the embedded log storage; default `<var_dir>/logs`. Only one process
    may open it: the `serve` process that owns it (see docs/logs.md)."""
    logs_chdb_config: Path | None = None
    """A ClickHouse server configuration file (XML or YAML) for the embedded chDB: server
    settings such as memory limits or merge pools, `remote_servers` for `remote()` queries."""
    logs_clickhouse_url: str | None = None
    """A ClickHouse server's HTTP URL (`http://user:password@host:8123`); replaces chDB."""
    logs_database: str = "shopkeeper_logs"
    """ClickHouse database holding the `logs` table."""
    logs_retention_days: int = Field(default=14, ge=1)
    """Lines older than this are dropped, by whole daily partitions."""
    logs_retention_tenant_days: dict[str, int] = Field(default_factory=dict)
    """Per-tenant retention overriding `logs_retention_days`, as JSON: `{"acme": 30}`."""
    logs_max_disk_bytes: int | None = Field(default=None, ge=1)
    """When the log store takes more than this on disk, its oldest daily partitions are dropped
    (never today's) until it fits; unset: no limit."""
    logs_alert_webhook_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 `X-Shopkeeper-Signature` on alert webhooks; unset: a random one
    kept in `<var_dir>/logs_alert_webhook_secret`."""
    logs_max_body_bytes: int = 16 * 1024 * 1024
    """Largest ingest body, compressed or after decompression; larger ones are 413."""
    logs_max_pending_lines: int = 400_000
    """Lines accepted but not yet stored before ingest answers 429 with Retry-After."""
    logs_batch_lines: int = 50_000
    """At most this many lines go into one INSERT when concurrent requests are coalesced."""
    logs_ship_own_logs: bool = True
    """Store this process's own request and application logs (service `shopkeeper`)."""
    logs_max_query_range: str = "30d"
    """Longest time range one log query may cover (a Loki duration such as `30d`, `12h`)."""
    logs_syslog_port: int = Field(default=5514, ge=0, le=65535)
    """UDP and TCP port of the syslog receiver (RFC 5424 and 3164); 0 turns it off."""
    logs_syslog_host: str = "127.0.0.1"
    """Interface the syslog receiver binds; syslog has no auth, so only trusted senders."""
    logs_syslog_tenant: str = "default"
    """Tenant of every line received by syslog."""
    logs_buffer_url: str | None = None
    """`amqp://` URL of the production ingest buffer (a RabbitMQ stream); unset: ingest writes
    straight to storage. Set, gateways publish and `shopkeeper logs writer` stores."""
    logs_buffer_stream: str = "shopkeeper.logs.ingest"
    """Name of the RabbitMQ stream queue carrying ingest batches."""
    logs_buffer_max_bytes: int = Field(default=20 * 1024**3, ge=1024**2)
    """Retention of the stream (`x-max-length-bytes`): must exceed the writers' worst backlog."""
    logs_buffer_max_in_flight_lines: int = Field(default=400_000, ge=1)
    """Lines a gateway has published but the broker not yet confirmed before it answers 429."""
    logs_buffer_confirm_timeout: float = Field(default=10.0, gt=0)
    """Seconds a gateway waits for the broker's confirm before answering 429 (nothing acked)."""

    @field_validator("database_url")
    @classmethod
    def _database_url_has_an_async_driver(cls, value: str | None) -> str | None:
        """`postgresql://` and `sqlite:///` as people write them, run on the async drivers."""
        if value is None:
            return None
        value = value.strip()
        scheme, separator, rest = value.partition("://")
        if not separator or not rest:
            raise ValueError(
                "must be a URL such as postgresql://user:password@host:5432/dbname or "
                "sqlite:///var/shopkeeper.db"
            )
        driver = _DRIVERS.get(scheme.lower())
        if driver is None:
            raise ValueError(
                f"{scheme}:// is not supported: use postgresql:// (runs on asyncpg) or "
                "sqlite:/// (runs on aiosqlite)"
            )
        return f"{driver}://{rest}"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins_from_a_list_or_commas(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip().rstrip("/") for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("currency")
    @classmethod
    def _currency_is_iso_4217_shaped(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("currency must be a three-letter ISO 4217 code")
        return value.upper()

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / 'shopkeeper.db'}"
        if self.sandbox_enabled is None:
            self.sandbox_enabled = self.environment != "production"
        if self.crawl_allow_private is None:
            self.crawl_allow_private = self.environment in {"embedded", "test"}
        if self.crawl_inprocess_worker is None:
            self.crawl_inprocess_worker = self.environment == "embedded"
        if self.run_background_in_process is None:
            self.run_background_in_process = self.broker_url is None
        if self.secret_key is None:
            if self.environment == "production":
                raise ValueError("SHOPKEEPER_SECRET_KEY is required in production")
            self.secret_key = SecretStr(_embedded_secret(self.var_dir, "secret_key"))
        _check_secret_strength("SHOPKEEPER_SECRET_KEY", self.secret_key, self.environment)
        if self.sandbox_webhook_secret is None:
            if self.environment == "production" and self.sandbox_enabled:
                raise ValueError(
                    "SHOPKEEPER_SANDBOX_WEBHOOK_SECRET is required to enable the sandbox"
                )
            self.sandbox_webhook_secret = SecretStr(
                _embedded_secret(self.var_dir, "sandbox_secret")
            )
        if self.logs_alert_webhook_secret is None:
            self.logs_alert_webhook_secret = SecretStr(
                _embedded_secret(self.var_dir, "logs_alert_webhook_secret")
            )
        if any(days < 1 for days in self.logs_retention_tenant_days.values()):
            raise ValueError("SHOPKEEPER_LOGS_RETENTION_TENANT_DAYS: days must be at least 1")
        return self

    @property
    def logs_longest_retention_days(self) -> int:
        """The table keeps lines this long; shorter tenant retentions are applied on top."""
        return max([self.logs_retention_days, *self.logs_retention_tenant_days.values()])

    @property
    def logs_path(self) -> Path:
        return self.logs_dir if self.logs_dir is not None else self.var_dir / "logs"

    @property
    def is_sqlite(self) -> bool:
        return str(self.database_url).startswith("sqlite")

    @property
    def database(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _check_secret_strength(name: str, value: SecretStr, environment: str) -> None:
    raw = value.get_secret_value()
    if environment == "production" and (
        raw.lower() in PLACEHOLDER_SECRETS or len(raw) < MIN_SECRET_LENGTH
    ):
        raise ValueError(
            f"{name} must be a random value of at least {MIN_SECRET_LENGTH} characters"
        )


def _embedded_secret(var_dir: Path, name: str) -> str:
    """A random secret kept under var/, so embedded restarts keep sessions and signatures valid."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
