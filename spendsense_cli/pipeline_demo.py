"""The demo's main job: synthetic users through the real front door of the running stack, then the
evaluation.

Each synthetic user (``spendsense_cli.synthetic``, with a known persona and demographic groups) signs up
through the auth service (``POST /api/v1/auth/register``: a real account, a real token), consents as
themself through the profile service (``POST /api/v1/consent``) and uploads their own data
(``POST /api/v1/uploads``), a few users at a time. The demo follows every upload through the pipeline
(received → ingested → analyzed → recommended) with a live progress line, then the admin reviews the
queue through the operator API by the documented demo policy (``spendsense_cli.review``), and the
evaluation (``spendsense_cli.evaluation``) reads the results back through the gateway.

A second run reuses what is there: the stack, and the accounts (kept in ``<state>/demo/accounts.json``:
each session goes on with its refresh token, else the user signs in again; nobody signs up twice); each
user uploads again, so the pipeline runs again.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from spendsense_cli.accounts import Account, SignInFailed, login, new_password, register
from spendsense_cli.review import ReviewSummary, approved_count, review, wait_until_visible
from spendsense_cli.synthetic import generate

Progress = Callable[[str], None]
STAGES = ("received", "ingested", "analyzed", "recommended")
CONCURRENCY = 4  # users signing up or uploading at once (bcrypt and parsing are the costs)
EMAIL_DOMAIN = "demo.example.com"
FOLLOW_BATCH = 12  # uploads asked about per round while following the pipeline


@dataclass(frozen=True)
class DemoResult:
    users: int
    transactions: int
    new_accounts: int
    seconds_to_sign_up: float
    seconds_to_upload: float
    seconds_to_recommended: float
    stages: dict[str, int]
    review: ReviewSummary
    labels_path: Path
    sample: Account  # the first user, whose items the demo shows
    operator: dict[str, str]  # the admin's headers


class _Clients:
    """One HTTP client per thread."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.local = threading.local()

    def get(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.gateway, timeout=120)
        client: httpx.Client = self.local.client
        return client


def run_pipeline_demo(
    gateway: str,
    state_dir: Path,
    admin: tuple[str, str],
    users: int = 100,
    seed: int = 7,
    progress: Progress = print,
    timeout: float = 300,
    concurrency: int = CONCURRENCY,
) -> DemoResult:
    """``admin``: the bootstrap admin's email and password (the reviewer)."""
    data_dir = state_dir / "demo"
    summary = generate(users=users, seed=seed, out=data_dir / "users.jsonl")
    progress(f"generated {summary.users} users, {summary.transactions:,} transactions → {summary.path}")
    clients = _Clients(gateway)
    started = time.monotonic()
    accounts, new = _accounts(clients, data_dir / "accounts.json", summary.labels_path, progress, concurrency)
    signed_up = time.monotonic() - started
    labels_path = _stack_labels(summary.labels_path, data_dir / "labels.jsonl", accounts)
    uploaded_at = time.monotonic()
    uploads = _consent_and_upload(clients, summary.path, accounts, progress, concurrency)
    stages = follow(clients, uploads, accounts, progress, timeout)
    recommended = time.monotonic() - uploaded_at
    user_ids = [accounts[s].user_id for s in accounts]
    with httpx.Client(base_url=gateway, timeout=120) as client:
        operator = login(client, *admin).headers()
        progress(f"signed in as the admin ({admin[0]}) to review the queue")
        reviewed = review(client, operator, user_ids, progress)
    return DemoResult(
        users=len(accounts),
        transactions=summary.transactions,
        new_accounts=new,
        seconds_to_sign_up=round(signed_up, 1),
        seconds_to_upload=round(time.monotonic() - uploaded_at, 1),
        seconds_to_recommended=round(recommended, 1),
        stages=stages,
        review=reviewed,
        labels_path=labels_path,
        sample=next(iter(accounts.values())),
        operator=operator,
    )


def sample_items(gateway: str, result: DemoResult, timeout: float = 30) -> dict[str, object]:
    """What the first user sees once the recommender has applied the operator's approvals (the review
    reaches it asynchronously): their persona and approved items."""
    account = result.sample
    with httpx.Client(base_url=gateway, timeout=60) as client:
        shown = approved_count(client, result.operator, account.user_id)
        items = wait_until_visible(
            client, account.user_id, account.headers(), expected=shown, timeout=timeout
        )
        persona = client.get(f"/api/v1/profile/{account.user_id}/persona", headers=account.headers())
    primary = persona.json()["current"]["180d"]["primary"] if persona.status_code == 200 else "?"
    return {"user_id": account.user_id, "persona": primary, "items": items}


# -- accounts ----------------------------------------------------------------------------------------


def _accounts(
    clients: _Clients, saved_path: Path, labels_path: Path, progress: Progress, concurrency: int
) -> tuple[dict[str, Account], int]:
    """One account per synthetic user, by synthetic id: signed in again when a previous run made it,
    else signed up (``POST /api/v1/auth/register``). Returns the accounts and how many are new."""
    synthetic = [json.loads(line)["user_id"] for line in labels_path.read_text().splitlines()]
    saved: dict[str, dict[str, str]] = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    done: dict[str, Account] = {}
    new = 0
    lock = threading.Lock()
    started = time.monotonic()

    def one(synthetic_id: str) -> tuple[str, Account, bool]:
        client = clients.get()
        known = saved.get(synthetic_id)
        if known:
            resumed = _refreshed(client, known)  # no password hashing: the saved session goes on
            if resumed is not None:
                return synthetic_id, resumed, False
            try:
                return synthetic_id, login(client, known["email"], known["password"]), False
            except SignInFailed:
                pass  # e.g. the stack's data was reset: a fresh account below
        email = (
            f"{synthetic_id}-{int(time.time())}@{EMAIL_DOMAIN}" if known else f"{synthetic_id}@{EMAIL_DOMAIN}"
        )
        try:
            return synthetic_id, register(client, email, new_password()), True
        except SignInFailed:  # taken by an earlier run whose password is lost: a fresh address
            fresh = f"{synthetic_id}-{int(time.time() * 1000)}@{EMAIL_DOMAIN}"
            return synthetic_id, register(client, fresh, new_password()), True

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for synthetic_id, account, is_new in pool.map(one, synthetic):
            with lock:
                done[synthetic_id] = account
                new += is_new
                if len(done) % 20 == 0 or len(done) == len(synthetic):
                    progress(
                        f"accounts: {len(done)}/{len(synthetic)} ({new} signed up, "
                        f"{len(done) - new} signed in again) in {time.monotonic() - started:.1f} s"
                    )
    saved_path.parent.mkdir(parents=True, exist_ok=True)
    saved_path.write_text(
        json.dumps(
            {
                s: {
                    "email": a.email,
                    "password": a.password,
                    "user_id": a.user_id,
                    "refresh_token": a.refresh_token,
                }
                for s, a in done.items()
            },
            indent=1,
        )
    )
    saved_path.chmod(0o600)
    return done, new


def _refreshed(client: httpx.Client, known: dict[str, str]) -> Account | None:
    """The saved account with fresh tokens from its refresh token (rotated: the new one is saved), or None
    when the session is gone (expired, revoked, or the stack's data reset)."""
    if not known.get("refresh_token"):
        return None
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": known["refresh_token"]})
    if response.status_code != 200:
        return None
    body = response.json()
    return Account(
        user_id=known["user_id"],
        email=known["email"],
        password=known["password"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        roles=tuple((body.get("user") or {}).get("roles") or ("user",)),
    )


def _stack_labels(source: Path, target: Path, accounts: dict[str, Account]) -> Path:
    """The generator's labels (persona, demographic groups) keyed by the users' account ids."""
    with source.open() as lines, target.open("w") as out:
        for line in lines:
            label = json.loads(line)
            out.write(json.dumps({**label, "user_id": accounts[label["user_id"]].user_id}) + "\n")
    return target


# -- consent and uploads -----------------------------------------------------------------------------


def _consent_and_upload(
    clients: _Clients, data: Path, accounts: dict[str, Account], progress: Progress, concurrency: int
) -> dict[str, str]:
    """Each user consents and uploads their own data, a few at a time; upload ids by account id."""
    records = {}
    with data.open() as lines:
        for line in lines:
            user = json.loads(line)
            records[user["user_id"]] = user
    started = time.monotonic()
    uploads: dict[str, str] = {}
    lock = threading.Lock()

    def one(synthetic_id: str) -> None:
        account = accounts[synthetic_id]
        client = clients.get()
        consent = client.post("/api/v1/consent", json={"user_id": account.user_id}, headers=account.headers())
        if consent.status_code != 201:
            raise RuntimeError(
                f"consent refused for {account.user_id}: {consent.status_code} {consent.text[:300]}"
            )
        body = json.dumps({**records[synthetic_id], "user_id": account.user_id}, separators=(",", ":"))
        response = client.post(
            "/api/v1/uploads",
            content=body.encode(),
            headers={**account.headers(), "Content-Type": "application/json"},
        )
        if response.status_code != 202:
            raise RuntimeError(
                f"upload refused for {account.user_id}: {response.status_code} {response.text[:300]}"
            )
        with lock:
            uploads[account.user_id] = response.json()["upload_id"]
            if len(uploads) % 20 == 0 or len(uploads) == len(accounts):
                progress(
                    f"consent and upload: {len(uploads)}/{len(accounts)} users "
                    f"({time.monotonic() - started:.1f} s)"
                )

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, accounts))
    return uploads


# -- following the pipeline --------------------------------------------------------------------------


class LiveLine:
    """A progress line rewritten in place on a terminal; elsewhere, a line when it changes (at most
    every few seconds)."""

    def __init__(self, progress: Progress, every_s: float = 3.0) -> None:
        self.progress = progress
        self.tty = sys.stderr.isatty()
        self.every_s = every_s
        self.last_text = ""
        self.last_at = 0.0

    def show(self, text: str, final: bool = False) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K  " + text + ("\n" if final else ""))
            sys.stderr.flush()
        elif text != self.last_text and (final or time.monotonic() - self.last_at >= self.every_s):
            self.progress(text)
            self.last_at = time.monotonic()
        self.last_text = text


def _bar(stages: Counter[str], total: int, width: int = 30) -> str:
    done = stages["recommended"]
    filled = round(width * done / max(1, total))
    return "█" * filled + "░" * (width - filled)


def follow(
    clients: _Clients,
    uploads: dict[str, str],
    accounts: dict[str, Account],
    progress: Progress,
    timeout: float,
) -> dict[str, int]:
    """Polls every user's upload (as that user) until each is recommended or failed; the counts by stage."""
    headers = {a.user_id: a.headers() for a in accounts.values()}
    stage: dict[str, str] = dict.fromkeys(uploads, "received")
    line = LiveLine(progress)
    started = time.monotonic()
    deadline = started + timeout

    def poll(user_id: str) -> tuple[str, str]:
        response = clients.get().get(f"/api/v1/uploads/{uploads[user_id]}", headers=headers[user_id])
        if response.status_code != 200:
            return user_id, stage[user_id]
        body: dict[str, Any] = response.json()
        return user_id, str(body["status"])

    rounds = 0
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        while True:
            open_users = [u for u, s in stage.items() if s not in ("recommended", "failed")]
            # Uploads are worked on in the order they came: each round asks about the oldest open ones
            # (and every fifth round about all), so following 100 users does not load the stack itself.
            asked = open_users if rounds % 5 == 0 else open_users[:FOLLOW_BATCH]
            rounds += 1
            for user_id, status in pool.map(poll, asked):
                stage[user_id] = status
            counts = Counter(stage.values())
            text = (
                f"pipeline {_bar(counts, len(stage))} "
                + " · ".join(f"{s} {counts[s]}" for s in (*STAGES, "failed") if counts[s] or s in STAGES)
                + f"  ({time.monotonic() - started:.0f} s)"
            )
            finished = counts["recommended"] + counts["failed"] == len(stage)
            line.show(text, final=finished)
            if finished:
                break
            if time.monotonic() > deadline:
                line.show(text, final=True)
                raise TimeoutError(f"{len(open_users)} uploads not recommended within {timeout:.0f} s")
            time.sleep(1.0)
    if counts["failed"]:
        raise RuntimeError(f"{counts['failed']} uploads failed; see `spendsense status` and the logs")
    return {s: counts[s] for s in STAGES}
