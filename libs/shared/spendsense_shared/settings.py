"""Settings come only from the environment (prefix ``SPENDSENSE_``); each service extends the base."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service process reads. Documented in ``.env.example``."""

    model_config = SettingsConfigDict(env_prefix="SPENDSENSE_", env_file=None, extra="ignore")

    service_name: str = "unknown"
    env: str = Field(
        "dev",
        pattern=r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$",
        description="Deployment name: dev, staging, prod…",
    )

    # Database: one PostgreSQL database, one schema per service (its search path).
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:15432/spendsense")
    db_schema: str = ""  # defaults to the service name
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout_s: float = 10.0
    db_pool_recycle_s: int = 1800
    # Hot reads answered from memory until the user's data changes (``read_cache``); off: every read
    # queries (a fallback, and the baseline of ``bench/load.py --compare-without-cache``).
    read_cache: bool = True

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:16379/0")

    # AWS (or the local emulator when aws_endpoint_url is set).
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    # Event bus. The resource names derive from ``env`` (see messaging.topology).
    bus_max_receives: int = Field(5, ge=1, description="Receives before a message goes to the DLQ")
    bus_visibility_timeout_s: int = 30
    bus_wait_time_s: int = Field(
        20, ge=0, le=20, description="SQS long-poll wait (the maximum: an idle worker asks once per 20 s)"
    )
    bus_concurrency: int = Field(8, ge=1)
    bus_retry_base_s: float = 1.0
    bus_retry_max_s: float = 60.0
    outbox_poll_interval_s: float = 0.5
    outbox_batch_size: int = 100

    # Faults: the worker's heartbeat (Redis) and the reconciler that finds stuck work and finishes it.
    worker_heartbeat_required: bool = Field(
        False, description="The API's /ready also requires a live heartbeat of the service's worker"
    )
    worker_heartbeat_ttl_s: int = Field(20, ge=2, description="A worker silent this long counts as dead")
    reconcile_interval_s: float = Field(60.0, gt=0, description="How often the worker looks for stuck work")
    reconcile_stuck_after_s: float = Field(
        300.0, ge=0, description="Work not followed up this long is stuck: its event is published again"
    )

    # Security: tokens are verified with the auth service's JWKS.
    jwks_url: str | None = None
    jwt_issuer: str = "spendsense-auth"
    jwt_audience: str = "spendsense"
    jwks_cache_ttl_s: int = 300
    # The access-token lifetime the auth service issues: every verifier refuses a longer-lived token.
    access_token_ttl_s: int = Field(3600, ge=60)

    # HTTP conventions.
    cors_origins: list[str] = []
    max_request_bytes: int = 10 * 1024 * 1024
    log_level: str = "INFO"
    log_json: bool = True
    metrics_emf: bool = Field(False, description="Also write CloudWatch embedded-metric-format records")
    worker_metrics_port: int | None = None
    readiness_cache_s: float = Field(
        2.0, ge=0, description="How long /ready's result is kept (concurrent callers share one check)"
    )

    # Request rate limits (429 rate_limited with Retry-After): per access token on requests carrying
    # one, per client address on the others, per window.
    rate_limit_per_user: int = Field(1200, ge=1)
    rate_limit_per_ip: int = Field(600, ge=1)
    rate_limit_window_s: int = Field(60, ge=1)
    # Behind a trusted proxy (the gateway, a load balancer): the client is the first X-Forwarded-For
    # entry and https is as X-Forwarded-Proto says.
    trust_proxy: bool = False

    @property
    def schema_name(self) -> str:
        return self.db_schema or self.service_name
