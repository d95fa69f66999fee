"""The features service's HTTP API: `uvicorn spendsense_features.main:app`."""

from spendsense_features.bootstrap import SERVICE
from spendsense_shared.service import build_app

app = build_app(SERVICE)
