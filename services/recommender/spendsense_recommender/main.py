"""The recommender service's HTTP API: `uvicorn spendsense_recommender.main:app`."""

from spendsense_recommender.bootstrap import SERVICE
from spendsense_shared.service import build_app

app = build_app(SERVICE)
