from pathlib import Path

from pydantic import SecretStr

from spendsense_shared.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: str = "auth"
    jwt_private_key: SecretStr | None = None  # PEM; from Secrets Manager in production
    jwt_private_key_file: Path | None = None  # PEM file (the embedded stack writes one)
