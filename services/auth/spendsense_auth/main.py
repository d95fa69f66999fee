"""The auth service's HTTP API: `uvicorn spendsense_auth.main:app`."""

from spendsense_auth.bootstrap import SERVICE
from spendsense_shared.service import build_app

app = build_app(SERVICE)
