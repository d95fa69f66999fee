from spendsense_shared.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    service_name: str = "profile"
    upload_max_bytes: int = 100 * 1024 * 1024  # larger uploads answer 413
    max_request_bytes: int = 100 * 1024 * 1024 + 64 * 1024  # an upload plus multipart framing
    fx_rates: dict[str, float] = {}  # currency → USD rate, e.g. {"EUR": 1.08}; others are rejected
