"""The phone sign-in settings of the auth service (``AuthSettings`` inherits them; env prefix
``SPENDSENSE_``). Documented in ``.env.example``."""

from __future__ import annotations

from pydantic import Field, SecretStr

from spendsense_auth.domain.phone import PhonePolicy
from spendsense_shared.settings import ServiceSettings


class PhoneSettings(ServiceSettings):
    phone_code_ttl_s: int = Field(600, ge=1, le=3600, description="How long an SMS code is valid")
    phone_code_max_attempts: int = Field(3, ge=1, le=10, description="Attempts per code; then it is void")
    phone_sms_per_hour: int = Field(5, ge=1, description="SMS per number per hour")
    phone_sms_per_day: int = Field(10, ge=1, description="SMS per number per day")
    phone_sms_per_ip_per_hour: int = Field(20, ge=1, description="SMS requests per client address per hour")
    phone_verify_per_ip_per_hour: int = Field(
        60, ge=1, description="Code attempts per client address per hour"
    )
    # The HMAC key of the stored code digests; derived from the JWT signing key when unset.
    phone_code_secret: SecretStr | None = None

    def phone_policy(self) -> PhonePolicy:
        return PhonePolicy(
            code_ttl_s=self.phone_code_ttl_s,
            max_attempts=self.phone_code_max_attempts,
            sms_per_hour=self.phone_sms_per_hour,
            sms_per_day=self.phone_sms_per_day,
            sms_per_ip_per_hour=self.phone_sms_per_ip_per_hour,
            verify_per_ip_per_hour=self.phone_verify_per_ip_per_hour,
        )
