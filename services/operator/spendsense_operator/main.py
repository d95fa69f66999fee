"""The operator service's HTTP API: `uvicorn spendsense_operator.main:app`."""

from spendsense_operator.bootstrap import SERVICE
from spendsense_shared.service import build_app

app = build_app(SERVICE)
