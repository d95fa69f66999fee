from pydantic import Field, SecretStr

from spendsense_shared.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    service_name: str = "profile"
    upload_max_bytes: int = 100 * 1024 * 1024  # larger uploads answer 413
    max_request_bytes: int = 100 * 1024 * 1024 + 64 * 1024  # an upload plus multipart framing
    fx_rates: dict[str, float] = {}  # currency → USD rate, e.g. {"EUR": 1.08}; others are rejected

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
