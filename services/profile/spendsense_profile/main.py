"""The profile service's HTTP API: `uvicorn spendsense_profile.main:app`."""

from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.service import build_app

app = build_app(SERVICE)
