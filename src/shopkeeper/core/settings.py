"""One settings class for the whole process, read from `SHOPKEEPER_*` environment variables."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values copied from examples must never run a real shop.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "dev", "development", "test"})
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", env_file=".env", extra="ignore")

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

    login_attempts_per_account: str = "5/minute"
    login_attempts_per_address: str = "20/minute"
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
    cors_origins: list[str] = Field(default_factory=list)
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
    redis_channel_prefix: str = "shopkeeper"
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

    run_background_in_process: bool | None = None
    """Run outbox relay, consumers and periodic jobs inside `serve`; default: when no broker."""

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
        return self

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
