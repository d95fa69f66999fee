"""The demo's operator: reviews the queue through the operator API, as a person at the console would.

The demo policy (documented in the README): every item whose four guardrail checks passed is approved;
an item that failed a check is rejected, naming the checks; and, so that the evaluation has decisions of
both kinds to show, the lowest-ranked partner offer of every fifth user is rejected ("demo policy: offer
held back for a second look"). Decisions go in batches of at most 500 ids, like any operator's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

Progress = Callable[[str], None]
BATCH = 500
HELD_BACK = "demo policy: offer held back for a second look"


@dataclass(frozen=True)
class ReviewSummary:
    approved: int
    rejected: int
    seconds: float


def demo_decision(item: dict[str, Any], user_index: int, lowest_offer: bool) -> tuple[str, str | None]:
    """("approve", None) or ("reject", reason) for one pending item of the user at ``user_index``."""
    failed = [name for name, ok in item["guardrails"].items() if not ok]
    if failed:
        return "reject", f"failed guardrail checks: {', '.join(failed)}"
    if item["kind"] == "offer" and lowest_offer and user_index % 5 == 0:
        return "reject", HELD_BACK
    return "approve", None


def pending_items(client: httpx.Client, headers: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every pending item in the queue, page by page."""
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"status": "pending", "sort": "user", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/v1/operator/review", params=params, headers=headers)
        response.raise_for_status()
        page = response.json()
        yield from page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return


def wait_for_queue(
    client: httpx.Client, headers: dict[str, str], users: list[str], progress: Progress, timeout: float
) -> list[dict[str, Any]]:
    """The pending items of ``users``, once every one of them has items in the queue (or the timeout)."""
    deadline = time.monotonic() + timeout
    wanted = set(users)
    while True:
        items = [i for i in pending_items(client, headers) if i["user_id"] in wanted]
        queued = {i["user_id"] for i in items}
        if queued >= wanted or time.monotonic() > deadline:
            progress(f"review queue: {len(items)} items of {len(queued)}/{len(wanted)} users pending")
            return items
        time.sleep(0.5)


def review(
    client: httpx.Client,
    headers: dict[str, str],
    users: list[str],
    progress: Progress = print,
    timeout: float = 120,
) -> ReviewSummary:
    """Decide on every pending item of ``users`` by the demo policy, through the operator API."""
    started = time.monotonic()
    items = wait_for_queue(client, headers, users, progress, timeout)
    index = {user_id: n for n, user_id in enumerate(users)}
    lowest_offer: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["kind"] == "offer":
            current = lowest_offer.get(item["user_id"])
            if current is None or item["rank"] > current["rank"]:
                lowest_offer[item["user_id"]] = item
    approve: list[str] = []
    reject: dict[str, list[str]] = {}
    for item in items:
        is_lowest = lowest_offer.get(item["user_id"]) is item
        decision, reason = demo_decision(item, index[item["user_id"]], is_lowest)
        if decision == "approve":
            approve.append(item["recommendation_id"])
        else:
            reject.setdefault(reason or "", []).append(item["recommendation_id"])
    for chunk in _chunks(approve):
        _post(client, "/api/v1/operator/approve", {"recommendation_ids": chunk}, headers)
    for reason, ids in reject.items():
        for chunk in _chunks(ids):
            _post(client, "/api/v1/operator/reject", {"recommendation_ids": chunk, "reason": reason}, headers)
    rejected = sum(len(ids) for ids in reject.values())
    progress(f"operator review: {len(approve)} approved, {rejected} rejected (demo policy)")
    return ReviewSummary(len(approve), rejected, round(time.monotonic() - started, 1))


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _post(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    response = client.post(path, json=body, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{path} refused: {response.status_code} {response.text[:500]}")


def approved_count(client: httpx.Client, headers: dict[str, str], user_id: str) -> int:
    response = client.get("/api/v1/operator/review", params={"user_id": user_id, "limit": 1}, headers=headers)
    response.raise_for_status()
    counts: dict[str, int] = response.json()["counts"]
    return counts.get("approved", 0) + counts.get("overridden", 0)


def wait_until_visible(
    client: httpx.Client, user_id: str, headers: dict[str, str], expected: int, timeout: float = 60
) -> list[dict[str, Any]]:
    """The user's visible recommendations, once the recommender has applied ``expected`` approvals."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/recommendations/{user_id}", headers=headers)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json().get("items", [])
        if len(items) >= expected or time.monotonic() > deadline:
            return items
        time.sleep(0.5)
