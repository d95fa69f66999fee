import os
from pathlib import Path

from pydantic import Field, SecretStr

from spendsense_auth.oauth_settings import OAuthSettings
from spendsense_auth.phone_settings import PhoneSettings
from spendsense_shared.settings import ServiceSettings


class AuthSettings(OAuthSettings, PhoneSettings, ServiceSettings):
    service_name: str = "auth"
    jwt_private_key: SecretStr | None = None  # PEM; from Secrets Manager in production
    jwt_private_key_file: Path | None = None  # PEM file (the embedded stack writes one)

    # Key rotation: earlier keys (PEM, private or public), still served in the JWKS so tokens they
    # signed verify until they expire; signing always uses the current key.
    jwt_previous_keys: list[SecretStr] = []
    jwt_previous_key_files: list[Path] = []

    access_token_ttl_s: int = Field(3600, ge=60)
    refresh_token_ttl_s: int = Field(30 * 24 * 3600, ge=300)

    password_bcrypt_rounds: int = Field(12, ge=4, le=16)
    # bcrypt hashes running at once (thread pool): one core fewer than the machine has, so a burst of
    # logins never takes the core the event loop needs to answer every other request.
    password_hash_concurrency: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1)
    common_passwords_file: Path | None = None  # default: the packaged list

    # Created (or given the admin role) at start when both are set.
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    # Behind a trusted proxy (the gateway), the client address is the first X-Forwarded-For entry.
    trust_proxy: bool = False

    rate_limit_login_per_account: int = Field(10, ge=1)
    rate_limit_login_per_ip: int = Field(30, ge=1)
    rate_limit_login_window_s: int = Field(60, ge=1)
    rate_limit_register_per_account: int = Field(5, ge=1)
    rate_limit_register_per_ip: int = Field(10, ge=1)
    rate_limit_register_window_s: int = Field(3600, ge=1)
