"""``spendsense eval`` against the running stack: everything read through the gateway, signed in as the
bootstrap admin (an operator), exactly what a reviewer may read, and only for users with current
consent.

Per user: ``GET /api/v1/operator/users/{id}`` (signals of both windows, persona history with upload ids
and times, review items with their states and times), ``GET /api/v1/recommendations/{id}/traces`` (the
decision traces, with the service's verification of the user's hash chain) and ``GET
/api/v1/uploads/{upload_id}`` (when the upload was received). The evaluation looks at the user's latest
upload that has recommendations; each of its traces is replayed with the recommender's domain code.

Latencies, from the stack's own timestamps: end to end = the upload received (profile) → its
recommendations generated (``recommendations.batch_generated``); generation = the persona assigned (features)
→ recommendations generated (the recommender's stage, its queue wait included).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from spendsense_cli.evaluation.metrics import DECIDED, UserOutcome
from spendsense_cli.evaluation.offline import Evaluated
from spendsense_cli.evaluation.records import behaviours, distribution_values, rec_outcome, refusals, replayed

Json = dict[str, Any]
PAGE = 200
SETTLE_S = 60.0  # how long a recorded decision may take to reach the recommender's trace


class StackReader:
    def __init__(self, gateway: str, headers: dict[str, str], concurrency: int = 6) -> None:
        self.gateway = gateway
        self.headers = headers
        self.concurrency = concurrency
        self._local = threading.local()
        self._uploads: dict[str, datetime | None] = {}

    def _client(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(base_url=self.gateway, timeout=60, headers=self.headers)
        client: httpx.Client = self._local.client
        return client

    def _get(self, path: str, **params: Any) -> Json:
        response = self._retrying(path, params or None)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        body: Json = response.json()
        return body

    def _retrying(self, path: str, params: Json | None) -> httpx.Response:
        """GETs are safe to repeat: a dropped connection on a busy machine is tried again, three times."""
        for attempt in range(3):
            try:
                return self._client().get(path, params=params)
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt == 2:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def queue_users(self) -> list[str]:
        """Every user with items in the review queue (any state), in first-seen order."""
        seen: dict[str, None] = {}
        cursor: str | None = None
        while True:
            params: Json = {"sort": "user", "limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            page = self._get("/api/v1/operator/review", **params)
            for item in page["items"]:
                seen.setdefault(item["user_id"], None)
            cursor = page.get("next_cursor")
            if not cursor:
                return list(seen)

    def traces(self, user_id: str) -> tuple[list[Json], bool]:
        items: list[Json] = []
        cursor: str | None = None
        chain_ok = True
        while True:
            params: Json = {"limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            page = self._get(f"/api/v1/recommendations/{user_id}/traces", **params)
            items += page["items"]
            chain_ok = chain_ok and bool(page["chain"]["ok"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items, chain_ok

    def _settled_traces(self, user_id: str, review: dict[str, Json]) -> tuple[list[Json], bool]:
        """The user's traces once every decision the operator service recorded has reached the recommender
        (``recommendation.reviewed`` is asynchronous), waiting up to ``SETTLE_S``; a decision still missing
        then leaves its trace incomplete."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            traces, chain_ok = self.traces(user_id)
            missing = [
                t
                for t in traces
                if (review.get(t["recommendation_id"]) or {}).get("status") in DECIDED
                and not t.get("operator_actions")
            ]
            if not missing or time.monotonic() > deadline:
                return traces, chain_ok
            time.sleep(1.0)

    def upload_received(self, upload_id: str) -> datetime | None:
        if upload_id not in self._uploads:
            response = self._retrying(f"/api/v1/uploads/{upload_id}", None)
            self._uploads[upload_id] = (
                datetime.fromisoformat(response.json()["created_at"]) if response.status_code == 200 else None
            )
        return self._uploads[upload_id]

    def evaluate(self, user_id: str) -> Evaluated:
        detail = self._get(f"/api/v1/operator/users/{user_id}")
        review = {r["recommendation_id"]: r for r in detail["recommendations"]}
        traces, chain_ok = self._settled_traces(user_id, review)
        latest = _latest_upload(traces)
        mine = [t for t in traces if t["input"].get("upload_id") == latest]
        checked = [(t, replayed(t)) for t in mine]
        signals = ((detail["signals"].get("180d") or {}).get("signals")) or {}
        outcome = UserOutcome(
            user_id=user_id,
            personas={w: p for w, p in detail["personas"].items()},
            behaviours=behaviours(signals),
            recommendations=[
                rec_outcome(
                    t,
                    chain_ok=chain_ok,
                    status=(review.get(t["recommendation_id"]) or {}).get("status"),
                    replay_result=r,
                )
                for t, r in checked
            ],
            refusals=refusals(checked[0][1].decision.rejected_offers)
            if checked and checked[0][1].decision
            else [],
            signals=distribution_values(signals),
        )
        outcome.generation_ms, outcome.end_to_end_ms = self._latencies(detail, latest, mine, review)
        return Evaluated(outcome, json.dumps(mine, separators=(",", ":"), ensure_ascii=False).encode())

    def _latencies(
        self, detail: Json, upload_id: str | None, traces: list[Json], review: dict[str, Json]
    ) -> tuple[float | None, float | None]:
        created = [
            datetime.fromisoformat(review[t["recommendation_id"]]["created_at"])
            for t in traces
            if t["recommendation_id"] in review
        ]
        if not created or upload_id is None:
            return None, None
        generated = min(created)
        assigned = [
            datetime.fromisoformat(p["assigned_at"])
            for p in detail["persona_history"]
            if p["upload_id"] == upload_id and p["window"] == "180d"
        ]
        received = self.upload_received(upload_id)
        generation = (generated - min(assigned)).total_seconds() * 1000 if assigned else None
        end_to_end = (generated - received).total_seconds() * 1000 if received else None
        return _rounded(generation), _rounded(end_to_end)

    def evaluate_all(self, users: list[str]) -> Iterator[Evaluated]:
        """Users evaluated a few at a time, yielded in order (memory: ``concurrency`` users' traces)."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            window = 2 * self.concurrency
            pending = [pool.submit(self.evaluate, u) for u in users[:window]]
            queued = users[window:]
            while pending:
                yield pending.pop(0).result()
                if queued:
                    pending.append(pool.submit(self.evaluate, queued.pop(0)))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(max(0.0, value), 1)


def _latest_upload(traces: list[Json]) -> str | None:
    """The upload of the newest trace (traces come oldest first)."""
    return traces[-1]["input"].get("upload_id") if traces else None


def signed_in_headers(gateway: str, email: str, password: str) -> dict[str, str]:
    from spendsense_cli.accounts import login

    with httpx.Client(base_url=gateway, timeout=60) as client:
        return login(client, email, password).headers()


Progress = Callable[[int, int | None], None]
