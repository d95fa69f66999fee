"""aioboto3 clients configured from settings (real AWS, or the emulator when an endpoint is set)."""

from __future__ import annotations

from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from spendsense_shared.settings import ServiceSettings


class Aws:
    """One aioboto3 session per process; ``client(name)`` is an async context manager."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.session = aioboto3.Session(
            aws_access_key_id=settings.aws_access_key_id.get_secret_value()
            if settings.aws_access_key_id
            else None,
            aws_secret_access_key=(
                settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else None
            ),
            region_name=settings.aws_region,
        )
        self._config = AioConfig(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50)

    def client(self, name: str) -> Any:
        return self.session.client(name, endpoint_url=self.settings.aws_endpoint_url, config=self._config)
