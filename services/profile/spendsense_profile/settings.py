from pydantic import Field, SecretStr

from spendsense_shared.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    service_name: str = "profile"
    upload_max_bytes: int = 100 * 1024 * 1024  # larger uploads answer 413
    max_request_bytes: int = 100 * 1024 * 1024 + 64 * 1024  # an upload plus multipart framing
    fx_rates: dict[str, float] = {}  # currency → USD rate, e.g. {"EUR": 1.08}; others are rejected

    # Uploads are parsed off the request path, by the worker, in a child process with these budgets; an
    # upload that exceeds one ends `failed` with reason budget_exceeded naming the budget.
    upload_parse_cpu_seconds: int = Field(
        120, ge=1, description="CPU seconds one upload's parse may use (RLIMIT_CPU of the parsing process)"
    )
    upload_parse_wall_seconds: float = Field(
        600, gt=0, description="Wall-clock seconds one upload's parse may take (a stalled parse is killed)"
    )
    upload_max_decompressed_bytes: int = Field(
        1024**3, ge=1, description="Bytes one upload may inflate to (gzip stream, zip members) before parsing"
    )
    upload_job_concurrency: int = Field(1, ge=1, description="Uploads one worker parses at once")
    upload_job_poll_interval_s: float = Field(
        30.0, gt=0, description="How often the worker looks for received uploads besides LISTEN/NOTIFY"
    )
    upload_job_max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts (e.g. worker crashes mid-parse) before an upload fails processing_failed",
    )

    # Push notifications through Amazon SNS mobile push: one platform application per device platform,
    # spendsense-{env}-push-ios (APNs) and spendsense-{env}-push-android (FCM), found by name at the first
    # push or created then with these credentials (and updated with them, so a rotated key takes effect
    # at the next start). Unset against the AWS emulator (aws_endpoint_url), placeholders are used; unset
    # in AWS, the application must exist already, else that platform's devices get no push (logged).
    push_apns_credential: SecretStr | None = Field(
        None, description="APNs PlatformCredential: the .p8 signing key (token auth) or the private key"
    )
    push_apns_principal: str | None = Field(
        None, description="APNs PlatformPrincipal: the signing key id (token auth) or the certificate"
    )
    push_apns_team_id: str | None = Field(None, description="APNs token auth: the Apple team id")
    push_apns_bundle_id: str | None = Field(None, description="APNs token auth: the app's bundle id")
    push_apns_sandbox: bool = Field(False, description="APNS_SANDBOX (development builds) instead of APNS")
    push_fcm_credential: SecretStr | None = Field(
        None, description="FCM PlatformCredential (SNS platform GCM): the service account JSON"
    )
