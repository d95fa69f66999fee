"""The demo's main job: synthetic users pushed through the whole event pipeline of the running stack.

Each user signs up through the auth service (``POST /api/v1/auth/register``: a real account, a real
token) and consents as themself; the bootstrap admin signs in and uploads everyone in one batch import
through the gateway, and the demo follows the upload's progress (received → profile's worker parses it →
S3 → ``upload.ingested`` → features → ``persona.assigned`` → profile) until every user is analyzed, then
compares the assigned personas with the generator's ground truth; then follows recommendations
(``persona.assigned`` → recommender → ``recommendations.generated`` → profile and operator); the admin
reviews the queue through the operator API by the demo policy (``spendsense_cli.review``), and the demo
shows one user's approved items with their rationales.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from spendsense_cli.accounts import Account, login, register_many
from spendsense_cli.review import ReviewSummary, approved_count, review, wait_until_visible
from spendsense_cli.synthetic import generate

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    upload_id: str
    users: int
    transactions: int
    seconds_to_analyzed: float
    seconds_to_recommended: float | None
    accuracy_180d: float
    personas: dict[str, int]
    review: ReviewSummary
    sample: dict[str, object]


def run_pipeline_demo(
    gateway: str,
    state_dir: Path,
    admin: tuple[str, str],
    users: int = 60,
    seed: int = 7,
    progress: Progress = print,
    timeout: float = 300,
) -> DemoResult:
    """``admin``: the bootstrap admin's email and password (an admin may batch-import, as an operator)."""
    data_dir = state_dir / "demo"
    summary = generate(users=users, seed=seed, out=data_dir / "users.jsonl")
    progress(f"generated {summary.users} users, {summary.transactions:,} transactions → {summary.path}")
    accounts = _sign_up(gateway, summary.labels_path, progress)
    labels = {
        accounts[r["user_id"]].user_id: r
        for r in map(json.loads, summary.labels_path.read_text().splitlines())
    }
    upload_file = _with_account_ids(summary.path, data_dir / "users.accounts.jsonl", accounts)
    headers = {a.user_id: a.headers() for a in accounts.values()}
    with httpx.Client(base_url=gateway, timeout=120) as client:
        for i, user_id in enumerate(labels, start=1):
            response = client.post("/api/v1/consent", json={"user_id": user_id}, headers=headers[user_id])
            response.raise_for_status()
            if i % 20 == 0 or i == len(labels):
                progress(f"consent granted by {i}/{len(labels)} users")
        operator = login(client, *admin).headers()
        progress(f"signed in as the admin ({admin[0]}) to import everyone's data")
        started = time.monotonic()
        with upload_file.open("rb") as body:
            response = client.post(
                "/api/v1/uploads",
                files={"file": ("users.jsonl", body, "application/x-ndjson")},
                headers=operator,
            )
        if response.status_code != 202:
            raise RuntimeError(f"upload refused: {response.status_code} {response.text[:500]}")
        upload_id = response.json()["upload_id"]
        progress(
            f"batch upload {upload_id} received in {time.monotonic() - started:.1f} s (the profile worker "
            "parses it); following the pipeline"
        )
        status = _follow(client, upload_id, operator, progress, timeout, until=("analyzed", "recommended"))
        analyzed_after = time.monotonic() - started
        recommended_after = None
        if status == "analyzed":  # recommendations follow when the recommender has published them
            status = _follow(client, upload_id, operator, progress, timeout, until=("recommended",))
        if status == "recommended":
            recommended_after = round(time.monotonic() - started, 1)
        personas = _personas(client, headers)
        reviewed = review(client, operator, list(labels), progress)
        sample_user = next(iter(labels))
        shown = approved_count(client, operator, sample_user)
        sample_items = wait_until_visible(client, sample_user, headers[sample_user], expected=shown)
    correct = sum(1 for u, p in personas.items() if p == labels[u]["persona"])
    if status not in ("analyzed", "recommended"):
        raise RuntimeError(f"the upload ended as {status!r}; see `spendsense status` and the logs")
    return DemoResult(
        upload_id=upload_id,
        users=len(labels),
        transactions=summary.transactions,
        seconds_to_analyzed=round(analyzed_after, 1),
        seconds_to_recommended=recommended_after,
        accuracy_180d=correct / len(labels),
        personas=dict(Counter(personas.values())),
        review=reviewed,
        sample={"user_id": sample_user, "persona": personas[sample_user], "items": sample_items},
    )


def _sign_up(gateway: str, labels_path: Path, progress: Progress) -> dict[str, Account]:
    """One account per synthetic user, through ``POST /api/v1/auth/register``; by synthetic id."""
    synthetic = [json.loads(line)["user_id"] for line in labels_path.read_text().splitlines()]
    started = time.monotonic()

    def report(done: int) -> None:
        if done % 20 == 0 or done == len(synthetic):
            progress(f"signed up {done}/{len(synthetic)} users ({time.monotonic() - started:.1f} s)")

    by_email = register_many(gateway, [f"{u}@demo.example.com" for u in synthetic], report)
    return {u: by_email[f"{u}@demo.example.com"] for u in synthetic}


def _with_account_ids(source: Path, target: Path, accounts: dict[str, Account]) -> Path:
    """The generated file with each synthetic user id replaced by the id of the user's account."""
    with source.open() as lines, target.open("w") as out:
        for line in lines:
            user = json.loads(line)
            user["user_id"] = accounts[user["user_id"]].user_id
            out.write(json.dumps(user) + "\n")
    return target


def _follow(
    client: httpx.Client,
    upload_id: str,
    operator: dict[str, str],
    progress: Progress,
    timeout: float,
    until: tuple[str, ...],
) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/uploads/{upload_id}", headers=operator).json()
        stages = Counter(u["stage"] for u in body["users"])
        line = f"upload {body['status']}: " + ", ".join(f"{n} {s}" for s, n in sorted(stages.items()))
        if line != last:
            progress(line)
            last = line
        if body["status"] == "failed" and not body["users"]:  # refused as a whole once parsed
            raise RuntimeError(f"upload {upload_id} failed: {json.dumps(body['error'])[:1000]}")
        if body["status"] in (*until, "failed"):
            return str(body["status"])
        time.sleep(0.5)
    raise TimeoutError(f"upload {upload_id} did not reach {'/'.join(until)} within {timeout:.0f} s")


def _personas(client: httpx.Client, headers: dict[str, dict[str, str]]) -> dict[str, str]:
    found = {}
    for user_id, user_headers in headers.items():
        response = client.get(f"/api/v1/profile/{user_id}/persona", headers=user_headers)
        response.raise_for_status()
        found[user_id] = response.json()["current"]["180d"]["primary"]
    return found
