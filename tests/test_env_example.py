"""``.env.example`` documents every setting the code reads."""

from __future__ import annotations

from pathlib import Path

from spendsense_auth.settings import AuthSettings
from spendsense_operator.settings import OperatorSettings
from spendsense_profile.settings import ProfileSettings
from spendsense_recommender.settings import RecommenderSettings
from spendsense_shared.gateway.app import GatewaySettings
from spendsense_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    for settings in (
        ServiceSettings,
        AuthSettings,
        GatewaySettings,
        ProfileSettings,
        RecommenderSettings,
        OperatorSettings,
    ):
        for name in settings.model_fields:
            assert f"SPENDSENSE_{name.upper()}=" in text, (
                f"SPENDSENSE_{name.upper()} missing from .env.example"
            )
